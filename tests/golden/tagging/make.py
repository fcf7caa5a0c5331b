"""Regenerate ``features-wordpiece.json``: utils_tag.py's features for ``sentences.tsv``.

    /tmp/xv/bin/python tests/golden/tagging/make.py XTREME_DIR

``sentences.tsv`` (word<TAB>UPOS, a blank line between sentences): the first 12 sentences of
``tests/golden/udpos/en.tsv`` and four written here around words the tokenizer maps to no
sub-token (U+200B, U+FEFF, a lone U+0301). XTREME_DIR's ``third_party/utils_tag.py``
(google-research/xtreme) ``convert_examples_to_features`` runs on them as ``run_tag.py`` calls it
for ``--model_type bert`` (max_seq_length 128, pad label -100 = CrossEntropyLoss's ignore index)
with transformers 2.5.1's slow ``BertTokenizer`` over ``tests/fixtures/tokenizers/wordpiece-cased``
(do_lower_case False; the venv of ``tests/golden/qa/README.md``). Kept: every feature's unpadded
input ids and label ids. This script is ours; the features are the benchmark's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
MAX_SEQ_LENGTH = 128


def sentences(path: Path = HERE / "sentences.tsv") -> list[list[tuple[str, str]]]:
    """A word<TAB>tag file (``sentences.tsv``; utils_preprocess.py's train format) as (word, tag) lists."""
    out, cur = [], []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line:
            w, t = line.split("\t")
            cur.append((w, t))
        elif cur:
            out.append(cur)
            cur = []
    return out + ([cur] if cur else [])


def main(xtreme: str) -> None:
    sys.path.insert(0, str(Path(xtreme) / "third_party"))
    from transformers import BertTokenizer
    from utils_tag import InputExample, convert_examples_to_features

    from trainables.tasks import target_task

    labels = list(target_task("udpos").labels)
    tok = BertTokenizer.from_pretrained(str(ROOT / "tests" / "fixtures" / "tokenizers" / "wordpiece-cased"),
                                        do_lower_case=False)
    examples = [InputExample(f"en-{i}", [w for w, _ in s], [t for _, t in s], langs=["en"] * len(s))
                for i, s in enumerate(sentences())]
    feats = convert_examples_to_features(examples, labels, MAX_SEQ_LENGTH, tok, cls_token=tok.cls_token,
                                         sep_token=tok.sep_token, pad_token=tok.pad_token_id,
                                         pad_token_label_id=-100, lang="en")
    out = []
    for f in feats:
        n = sum(f.input_mask)
        out.append({"input_ids": f.input_ids[:n], "label_ids": f.label_ids[:n]})
    (HERE / "features-wordpiece.json").write_text(json.dumps(out) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main(sys.argv[1])
