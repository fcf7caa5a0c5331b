"""A complete XTREME-R predictions/labels folder, and ``scores.json``: what the benchmark's
``evaluate.py`` makes of it.

    python tests/golden/evaluate/make.py XTREME_DIR

``build(root)`` writes every task and language of XTREME-R (seeded, so the test rebuilds the
same bytes) under ``root/predictions`` and ``root/labels``. The official ``evaluate.evaluate(...,
'xtreme-r')`` from XTREME_DIR (a checkout of google-research/xtreme) is then run on it without
the ``lareqa`` folders: with them it raises (LAReQA has no languages and no metric there), and
without them it scores every other task and group but no overall score (``all_task`` needs
LAReQA). ``scores.json`` keeps its per-task scores (``avg_metric``), averages and groups. This
script is ours; the scores are the benchmark's.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
UPOS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
        "PUNCT", "SCONJ", "SYM", "VERB", "X")
NER = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
WORDS = ("the cat", "a dog", "Paris", "1999", "el río", "der Hund", "قطة", "猫", "बिल्ली", "yes")


def _noisy(rng, gold, choices, p=0.3):
    return [rng.choice(choices) if rng.random() < p else g for g in gold]


def build(root: Path) -> None:
    """Write ``root/predictions`` and ``root/labels`` for every XTREME-R task and language."""
    from trainables.scoring.evaluator import BENCHMARKS
    from trainables.scoring.files import write_json, write_jsonl, write_lines, write_tag_file

    rng = random.Random(20)
    pred, gold = root / "predictions", root / "labels"
    for key, task in BENCHMARKS["xtreme-r"].items():
        for lang in task.languages:
            name = f"{key}/test-{lang}.{task.suffix}"
            n = rng.randint(8, 15)
            if key == "xnli":
                labels = [rng.choice(("entailment", "neutral", "contradiction")) for _ in range(n)]
                write_lines(gold / name, labels)
                write_lines(pred / name, _noisy(rng, labels, ("entailment", "neutral", "contradiction")))
            elif key == "tatoeba":
                labels = [str(i) for i in range(n)]
                write_lines(gold / name, labels)
                write_lines(pred / name, _noisy(rng, labels, labels))
            elif key in ("udpos", "panx"):
                tags = UPOS if key == "udpos" else NER
                sents = [[rng.choice(tags) for _ in range(rng.randint(2, 9))] for _ in range(n)]
                write_tag_file(gold / name, sents)
                write_tag_file(pred / name, [_noisy(rng, s, tags) for s in sents])
            elif key == "xcopa":
                labels = [rng.randint(0, 1) for _ in range(n)]
                write_jsonl(gold / name, [{"label": x} for x in labels])
                write_jsonl(pred / name, [{"label": x} for x in _noisy(rng, labels, (0, 1), 0.4)])
            elif key in ("mewslix", "lareqa"):
                ids = [f"Q{i}" for i in range(40)]
                labels = {f"{lang}-{i}": rng.sample(ids, 1 if key == "mewslix" else rng.randint(1, 3))
                          for i in range(n)}
                write_json(gold / name, labels)
                write_json(pred / name, {q: rng.sample(ids, 20) for q in labels if rng.random() < 0.9})
            else:  # SQuAD-format QA
                qas = [{"id": f"{lang}-{i}", "question": "?",
                        "answers": [{"text": rng.choice(WORDS), "answer_start": 0}
                                    for _ in range(rng.randint(1, 3))]} for i in range(n)]
                write_json(gold / name, {"version": "1.1", "data": [
                    {"title": "t", "paragraphs": [{"context": " ".join(WORDS), "qas": qas}]}]})
                write_json(pred / name, {q["id"]: (q["answers"][0]["text"] if rng.random() < 0.5
                                                   else rng.choice(WORDS)) for q in qas if rng.random() < 0.9})


def official_scores(xtreme: str, root: Path) -> dict:
    """``evaluate.evaluate`` of the benchmark on ``root`` with its lareqa folders set aside."""
    sys.path.insert(0, xtreme)
    import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        for side in ("predictions", "labels"):
            shutil.copytree(root / side, Path(tmp) / side, ignore=shutil.ignore_patterns("lareqa"))
        overall, detailed = evaluate.evaluate(f"{tmp}/predictions", f"{tmp}/labels", "xtreme-r")
    return {"overall_scores": overall,
            "tasks": {t: {k: v for k, v in d.items() if k.startswith("avg")} for t, d in detailed.items()}}


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[2]))
    with tempfile.TemporaryDirectory() as d:
        build(Path(d))
        scores = official_scores(sys.argv[1], Path(d))
    (HERE / "scores.json").write_text(json.dumps(scores, indent=1, sort_keys=True) + "\n")
