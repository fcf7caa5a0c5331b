"""Loading English training data and per-language evaluation data.

Sources, by the spec's ``data_dir``:
- a local directory in the XTREME layout (what ``builtin`` materialises, and what a mirror
  holds): ``{dir}/{task}/{split}-{lang}.tsv`` for targets, ``{dir}/intermediate/{key}/train.tsv``
  for intermediate tasks; each line ``premise<TAB>hypothesis<TAB>label`` with label *names*;
- ``hub``: the Hugging Face hub through ``datasets.load_dataset`` (ids from the registries).

Every malformed line is reported with its file and line number; nothing is silently dropped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path


class DataError(ValueError):
    """Bad input data; the message names the file and line."""


@dataclass(frozen=True)
class PairExample:
    premise: str
    hypothesis: str
    label: int


def read_pair_tsv(path: str | Path, labels: tuple[str, ...]) -> list[PairExample]:
    """Read a ``premise<TAB>hypothesis<TAB>label`` file; an exact header line is skipped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    index = {name: i for i, name in enumerate(labels)}
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            cols = line.split("\t")
            if n == 1 and [c.lower() for c in cols] in (
                ["premise", "hypothesis", "label"], ["sentence1", "sentence2", "label"]
            ):
                continue
            if len(cols) != 3:
                raise DataError(f"{path}:{n}: expected 3 tab-separated columns "
                                f"(premise, hypothesis, label), found {len(cols)}")
            if cols[2] not in index:
                raise DataError(f"{path}:{n}: label '{cols[2]}' is not one of {', '.join(labels)}")
            rows.append(PairExample(cols[0], cols[1], index[cols[2]]))
    if not rows:
        raise DataError(f"{path}: no examples")
    return rows


def _from_hub(hub_id: str, config: str | None, split: str, fields, labels) -> list[PairExample]:
    import datasets  # heavy; only needed for hub sources

    ds = datasets.load_dataset(hub_id, config, split=split)
    premise, hypothesis, label = fields
    feature = ds.features[label]
    names = getattr(feature, "names", None)
    index = {name: i for i, name in enumerate(labels)}
    rows = []
    for i, ex in enumerate(ds):
        raw = ex[label]
        if raw is None or raw == -1:  # unlabeled rows (e.g. GLUE test)
            continue
        name = names[raw] if names is not None else str(raw)
        if name not in index:
            raise DataError(f"{hub_id}[{config}] {split} row {i}: label '{name}' not in {labels}")
        rows.append(PairExample(ex[premise], ex[hypothesis], index[name]))
    return rows


def load_target(task, split: str, lang: str, data_dir: str) -> list[PairExample]:
    """One split of a target task in one language (``split`` in train/dev/test)."""
    if data_dir == "hub":
        hub_split = {"dev": "validation"}.get(split, split)
        return _from_hub(task.hub_id, lang, hub_split, ("premise", "hypothesis", "label"),
                         task.labels)
    return read_pair_tsv(Path(data_dir) / task.key / f"{split}-{lang}.tsv", task.labels)


def load_intermediate(entry, data_dir: str) -> list[PairExample]:
    """The English training set of one intermediate catalogue entry."""
    if data_dir == "hub":
        if entry.hub_id is None:
            raise DataError(f"intermediate task '{entry.key}' cannot be loaded from the hub "
                            f"({entry.access}); point data_dir at a local copy")
        return _from_hub(entry.hub_id, entry.hub_config, "train", entry.hub_fields, entry.labels)
    return read_pair_tsv(Path(data_dir) / "intermediate" / entry.key / "train.tsv", entry.labels)


def cap(examples: list, max_examples: int | None, seed: int) -> list:
    """A seeded random subset of at most ``max_examples`` (the same cap for every domain)."""
    if max_examples is None or len(examples) <= max_examples:
        return examples
    return random.Random(seed).sample(examples, max_examples)
