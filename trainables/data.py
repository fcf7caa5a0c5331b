"""Shared data plumbing: the data error type, hub access, the intermediate tasks' loader, caps.

Each task family reads its own raw formats (``trainables.tasks.<family>``); this module holds
what they share:

- ``DataError``: bad input data; the message names the file and line (or hub row);
- ``hub_rows``: rows of a Hugging Face hub dataset through ``datasets.load_dataset`` (data
  files only: ``datasets`` >= 4 runs no loading scripts), with the ClassLabel names;
- ``load_intermediate``: the English training set of an intermediate catalogue entry, from
  ``{dir}/intermediate/{key}/train.tsv`` or the hub;
- ``cap``: the seeded subset that gives every domain the same number of examples.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path


class DataError(ValueError):
    """Bad input data; the message names the file and line."""


def read_json_file(path: str | Path):
    """A JSON document; a missing file or a syntax error names the file (and line)."""
    import json

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno})") from None


def hub_rows(hub_id: str, config: str | None, split: str) -> Iterator[tuple[str, dict, dict]]:
    """Yield (where, row, {column: class names}) for one split of a hub dataset."""
    import datasets  # heavy; only needed for hub sources

    ds = datasets.load_dataset(hub_id, config, split=split)
    names = {}
    for column, feature in ds.features.items():
        inner = getattr(feature, "feature", feature)  # Sequence(ClassLabel) for tag columns
        if getattr(inner, "names", None) is not None:
            names[column] = list(inner.names)
    for i, row in enumerate(ds):
        yield f"{hub_id}[{config}] {split} row {i}", row, names


def load_intermediate(entry, data_dir: str) -> list:
    """The English training set of one intermediate catalogue entry (NLI format)."""
    from trainables.tasks.classification import pairs_from_hub, read_pair_tsv

    if data_dir == "hub":
        if entry.hub_id is None:
            raise DataError(f"intermediate task '{entry.key}' cannot be loaded from the hub "
                            f"({entry.access}); point data_dir at a local copy")
        return pairs_from_hub((entry.hub_id, entry.hub_config, "train"), entry.hub_fields,
                              entry.labels)
    return read_pair_tsv(Path(data_dir) / "intermediate" / entry.key / "train.tsv", entry.labels)


def cap(examples: list, max_examples: int | None, seed: int) -> list:
    """A seeded random subset of at most ``max_examples`` (the same cap for every domain)."""
    if max_examples is None or len(examples) <= max_examples:
        return examples
    return random.Random(seed).sample(examples, max_examples)
