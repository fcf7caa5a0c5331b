"""Write ``ids-{wordpiece,sentencepiece}.json.gz``: the token ids XTREME-R's LAReQA evaluation feeds its model.

    PYTHONPATH=. /tmp/xv28/bin/python tests/golden/lareqa/make_ids.py /tmp/xtreme

Run after ``make.py`` (it reads ``candidates.json.gz``). The venv and the way
``evaluate_retrieval.py`` is imported are those of ``tests/golden/mewslix/make_ids.py``
(transformers 2.8.0, torch, faiss-cpu; the module without its top-level ``main()``).

``train_lareqa.sh`` and ``run_eval_lareqa.sh`` pass ``--do_lower_case`` for
``xlm-roberta-large`` and not for ``bert-base-multilingual-cased`` (read from the scripts and
checked to agree). Each fixture tokenizer stands in for its model and is loaded as the scripts
load theirs (``do_lower_case`` False for WordPiece, True for XLM-R). ``evaluate_retrieval.py``'s
``tokenize_text`` and ``prepare_batch`` then encode, as its LAReQA branch does:

- ``candidates``: every pooled candidate string of ``candidates.json.gz`` (sentence + paragraph)
  at ``MAX_ANSWER_LEN``;
- ``queries`` / ``answers``: the question and the answer text of every English training feature
  of ``candidates.json.gz`` at ``MAX_QUERY_LEN`` / ``MAX_ANSWER_LEN``. The benchmark's training
  conversion (``encode_plus`` on one sequence) gives the same ids for one sequence, as
  ``tests/golden/mewslix/make_ids.py`` checks where that conversion runs.

Rows are the unpadded ``input_ids``; the files are gzipped (level 9, no time stamp). This
script is ours; the ids are the benchmark's.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _mewslix_maker():
    spec = importlib.util.spec_from_file_location("mewslix_make_ids", HERE.parent / "mewslix" / "make_ids.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script_settings(xtreme: Path, mewslix) -> dict:
    """The scripts' query and answer lengths and ``--do_lower_case`` by model (both must agree)."""
    scripts = ("train_lareqa.sh", "run_eval_lareqa.sh")
    lengths = [{k: int(v) for k, v in re.findall(r"^(MAX_QUERY_LEN|MAX_ANSWER_LEN)=(\d+)",
                                                  (xtreme / "scripts" / name).read_text(), re.M)} for name in scripts]
    if lengths[0] != lengths[1] or len(lengths[0]) != 2:
        raise SystemExit(f"the LAReQA scripts disagree on lengths: {lengths}")
    return {"do_lower_case": mewslix.lower_case_by_model(xtreme, scripts), **lengths[0]}


def main(xtreme: Path) -> None:
    sys.path.insert(0, str(xtreme / "third_party"))
    mewslix = _mewslix_maker()
    er = mewslix.import_without_main(xtreme / "third_party" / "evaluate_retrieval.py")

    golden = json.loads(gzip.decompress((HERE / "candidates.json.gz").read_bytes()))
    settings = script_settings(xtreme, mewslix)
    qlen, alen = settings["MAX_QUERY_LEN"], settings["MAX_ANSWER_LEN"]
    sides = {"candidates": (golden["candidates"], alen),
             "queries": ([q[0] for _, q, _ in golden["train_features"]], qlen),
             "answers": ([a[0] for _, _, a in golden["train_features"]], alen)}
    for name, cls, folder, model, model_type in mewslix.MODELS:
        lower = settings["do_lower_case"][model]
        tok = mewslix.fixture_tokenizer(cls, folder, lower)
        out = {side: mewslix.eval_ids(er, tok, model_type, rows, length) for side, (rows, length) in sides.items()}
        doc = {"about": {"made_by": "tests/golden/lareqa/make_ids.py", "model": model, "do_lower_case": lower,
                         "max_query_len": qlen, "max_answer_len": alen}, **out}
        (HERE / f"ids-{name}.json.gz").write_bytes(gzip.compress((json.dumps(doc) + "\n").encode(), 9, mtime=0))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
