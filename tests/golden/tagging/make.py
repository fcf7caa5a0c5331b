"""Regenerate ``features-{wordpiece,sentencepiece}.json``: utils_tag.py's features for ``sentences.tsv``.

    /tmp/xv28/bin/python tests/golden/tagging/make.py XTREME_DIR

``sentences.tsv`` (word<TAB>UPOS, a blank line between sentences): the first 12 sentences of
``tests/golden/udpos/en.tsv`` and four written here around words the tokenizer maps to no
sub-token (U+200B, U+FEFF, a lone U+0301). XTREME_DIR's ``third_party/utils_tag.py``
(google-research/xtreme) ``convert_examples_to_features`` runs on them as ``run_tag.py`` calls it
for ``--model_type bert`` (max_seq_length 128, pad label -100 = CrossEntropyLoss's ignore index)
with transformers 2.5.1's slow ``BertTokenizer`` over ``tests/fixtures/tokenizers/wordpiece-cased``
(do_lower_case False; the venv of ``tests/golden/qa/README.md``) -> ``features-wordpiece.json``;
and as it calls it for ``--model_type xlmr`` (``sep_token_extra=True``: ``<s> words </s> </s>``)
with the slow ``XLMRobertaTokenizer`` over ``tests/fixtures/tokenizers/sentencepiece-xlmr`` ->
``features-sentencepiece.json``. Kept: every feature's unpadded input ids and label ids. This
script is ours; the features are the benchmark's.

``/tmp/xv28`` is the venv of ``tests/golden/qa/README.md`` with transformers 2.8.0 instead of
2.5.1 (``pip install --no-deps transformers==2.8.0``; a ``.pth`` file adds ``/tmp/xv``'s
site-packages for the rest): the release nearest the commit XTREME's ``install_tools.sh`` pins
(cefd51c5, April 2020). It matters for the SentencePiece file only: from 2.6.0 on, the slow
``XLMRobertaTokenizer`` maps a piece its model does not know to ``<unk>`` (id 3); 2.5.1 maps it to
``PieceToId`` 0 + the fairseq offset 1, ``<pad>``, which changes 3 of the 16 features here. The
WordPiece file is byte-identical under both.
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
    from transformers import BertTokenizer, XLMRobertaTokenizer
    from utils_tag import InputExample, convert_examples_to_features

    from trainables.tasks import target_task

    labels = list(target_task("udpos").labels)
    tokenizers = ROOT / "tests" / "fixtures" / "tokenizers"
    examples = [InputExample(f"en-{i}", [w for w, _ in s], [t for _, t in s], langs=["en"] * len(s))
                for i, s in enumerate(sentences())]
    # run_tag.py's call: sep_token_extra for model_type roberta / xlmr, segment and label padding as there
    for name, tok, extra in (
            ("wordpiece", BertTokenizer.from_pretrained(str(tokenizers / "wordpiece-cased"), do_lower_case=False),
             False),
            ("sentencepiece", XLMRobertaTokenizer.from_pretrained(str(tokenizers / "sentencepiece-xlmr")), True)):
        feats = convert_examples_to_features(examples, labels, MAX_SEQ_LENGTH, tok, cls_token=tok.cls_token,
                                             sep_token=tok.sep_token, sep_token_extra=extra,
                                             pad_token=tok.convert_tokens_to_ids([tok.pad_token])[0],
                                             pad_token_label_id=-100, lang="en")
        out = []
        for f in feats:
            n = sum(f.input_mask)
            out.append({"input_ids": f.input_ids[:n], "label_ids": f.label_ids[:n]})
        (HERE / f"features-{name}.json").write_text(json.dumps(out) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main(sys.argv[1])
