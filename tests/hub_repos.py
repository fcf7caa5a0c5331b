"""Small Hugging Face dataset repos built on the spot, in the hub's own layout (parquet data files
plus a README whose YAML lists the configs), so ``datasets.load_dataset(<dir>/<id>, config)``
loads them exactly as it loads a clone of the real repo (``XLT_HUB_DIR`` / ``--hub-dir``).

Each repo has the real dataset's columns and feature types (ClassLabel where the real one has
it, strings where it has strings) as the dataset cards describe them.
"""

from __future__ import annotations

import random
from pathlib import Path

from datasets import ClassLabel, Dataset, Features, List, Value

S = Value("string")


def _write_repo(root: Path, hub_id: str, configs: dict[str | None, dict[str, Dataset]]) -> None:
    repo = root / hub_id
    lines = ["---", "configs:"]
    for config, splits in configs.items():
        name = config or "default"
        lines += [f"- config_name: {name}", "  data_files:"]
        for split, ds in splits.items():
            (repo / name).mkdir(parents=True, exist_ok=True)
            ds.to_parquet(str(repo / name / f"{split}-00000-of-00001.parquet"))
            lines += [f"  - split: {split}", f"    path: {name}/{split}-*"]
    lines.append("---")
    (repo / "README.md").write_text("\n".join(lines) + "\n")


def build_hub(root: Path, n: int = 48) -> Path:
    rng = random.Random(0)
    words = ["court", "contract", "party", "shall", "deliver", "goods", "cell", "drug", "market", "price"]

    def sent(k=6):
        return " ".join(rng.choice(words) for _ in range(k)).capitalize() + "."

    nli = Features({"premise": S, "hypothesis": S,
                    "label": ClassLabel(names=["entailment", "neutral", "contradiction"]), "idx": Value("int32")})
    _write_repo(root, "nyu-mll/glue", {"mnli": {"train": Dataset.from_dict(
        {"premise": [sent() for _ in range(n)], "hypothesis": [sent(4) for _ in range(n)],
         "label": [i % 3 for i in range(n)], "idx": list(range(n))}, features=nli)}})

    contexts = [sent(12) for _ in range(n)]
    answers = [{"text": [c.split()[3]], "answer_start": [len(" ".join(c.split()[:3])) + 1]} for c in contexts]
    squad = Features({"id": S, "title": S, "context": S, "question": S,
                      "answers": {"text": List(S), "answer_start": List(Value("int32"))}})
    _write_repo(root, "rajpurkar/squad", {"plain_text": {"train": Dataset.from_dict(
        {"id": [f"q{i}" for i in range(n)], "title": ["t"] * n, "context": contexts,
         "question": [sent(4)[:-1] + "?" for _ in range(n)], "answers": answers}, features=squad)}})

    hella = Features({"ind": Value("int32"), "activity_label": S, "ctx_a": S, "ctx_b": S, "ctx": S,
                      "endings": List(S), "source_id": S, "split": S, "split_type": S, "label": S})
    ctx = [sent() for _ in range(n)]
    _write_repo(root, "Rowan/hellaswag", {None: {"train": Dataset.from_dict(
        {"ind": list(range(n)), "activity_label": ["x"] * n, "ctx_a": ctx, "ctx_b": [""] * n, "ctx": ctx,
         "endings": [[sent(3) for _ in range(4)] for _ in range(n)], "source_id": ["s"] * n,
         "split": ["train"] * n, "split_type": ["indomain"] * n, "label": [str(i % 4) for i in range(n)]},
        features=hella)}})

    ledgar = Features({"text": S, "label": ClassLabel(names=["Adjustments", "Agreements", "Amendments"])})
    case = Features({"context": S, "endings": List(S), "label": ClassLabel(names=[str(i) for i in range(5)])})
    _write_repo(root, "coastalcph/lex_glue", {
        "ledgar": {"train": Dataset.from_dict({"text": [sent(10) for _ in range(n)],
                                               "label": [i % 3 for i in range(n)]}, features=ledgar)},
        "case_hold": {"train": Dataset.from_dict(
            {"context": [sent(10) + " <HOLDING>" for _ in range(n)],
             "endings": [[sent(5) for _ in range(5)] for _ in range(n)], "label": [i % 5 for i in range(n)]},
            features=case)}})

    xnli = Features({"premise": S, "hypothesis": S,
                     "label": ClassLabel(names=["entailment", "neutral", "contradiction"])})
    _write_repo(root, "facebook/xnli", {lang: {split: Dataset.from_dict(
        {"premise": [sent() for _ in range(n)], "hypothesis": [sent(4) for _ in range(n)],
         "label": [i % 3 for i in range(n)]}, features=xnli) for split in ("train", "validation", "test")}
        for lang in ("en", "de")})
    return root
