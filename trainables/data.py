"""Shared data plumbing: the data error type, hub access, the intermediate tasks' loader, caps.

Each task family reads its own raw formats (``trainables.tasks.<family>``); this module holds
what they share:

- ``DataError``: bad input data; the message names the file and line (or hub row);
- ``hub_rows``: rows of a Hugging Face hub dataset through ``datasets.load_dataset`` (data
  files only: ``datasets`` >= 4 runs no loading scripts), with the ClassLabel names, or the
  same rows from the dataset's parquet copy in a local mirror (``xlt-data mirror``);
- ``resolve_labels``: label names from the data's ClassLabel feature, for catalogue entries
  that do not list them (LEDGAR, FiNER-139);
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


def jsonl_rows(path: str | Path):
    """(line number, object) for each non-blank line of a JSONL file; errors name file and line."""
    import json

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{n}: expected a JSON object")
            yield n, row


HUB_DIR_ENV = "XLT_HUB_DIR"
"""A directory of local clones of hub dataset repos (``<dir>/<owner>/<name>``, e.g. made with
``git clone https://huggingface.co/datasets/<id>``), read instead of the hub when set."""


def hub_dataset(hub_id: str, config: str | None, split: str):
    """``datasets.load_dataset`` of one split: from the hub, or from the local clone under
    ``$XLT_HUB_DIR`` (the same loader; data-file repos only: ``datasets`` >= 4 runs no
    loading scripts)."""
    import os

    import datasets  # heavy; only needed for hub sources

    local = os.environ.get(HUB_DIR_ENV)
    clone = bool(local) and (Path(local) / hub_id).is_dir()
    try:
        if clone:  # datasets keys a local repo's cache by its name and file patterns, not its path:
            # two clones of "glue" would share one cache entry, so each clone path gets its own
            import hashlib

            path = (Path(local) / hub_id).resolve()
            cache = Path(datasets.config.HF_DATASETS_CACHE) / "xlt_clones" / hashlib.sha1(
                str(path).encode()).hexdigest()[:16]
            return datasets.load_dataset(str(path), config, split=split, cache_dir=str(cache))
        return datasets.load_dataset(hub_id, config, split=split)
    except Exception as e:  # script-only repos, gated or missing datasets: say which and why
        why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        if "scripts are no longer supported" in str(e):  # the repo still holds its loading script
            why += (f"; mirror it instead: its raw files, or the hub's automatic parquet export, e.g. "
                    f"load_dataset('{hub_id}', revision='refs/convert/parquet', data_dir='{config or 'default'}', "
                    f"split='{split}').to_parquet(...) written to {{data_dir}}/hub/{hub_id}/{config or 'default'}/"
                    f"{split}.parquet")
        raise DataError(f"hub dataset {hub_id} (config {config}, split {split}) cannot be loaded: {why}") from e


def class_names(features: dict) -> dict[str, list[str]]:
    """{column: class names} for ClassLabel columns (also inside a list/sequence), from a
    ``datasets`` features dict (``Features.to_dict()`` or the parquet ``huggingface`` metadata)."""
    out = {}
    for column, feature in features.items():
        inner = feature
        while isinstance(inner, dict) and inner.get("_type") in ("Sequence", "List", "LargeList"):
            inner = inner.get("feature", {})
        if isinstance(inner, dict) and inner.get("_type") == "ClassLabel" and inner.get("names"):
            out[column] = list(inner["names"])
    return out


def parquet_path(data_dir: str, hub_id: str, config: str | None, split: str) -> Path:
    """Where ``xlt-data mirror`` stores one hub split: ``{dir}/hub/{id}/{config}/{split}.parquet``."""
    return Path(data_dir) / "hub" / hub_id / (config or "default") / f"{split}.parquet"


def hub_rows(hub_id: str, config: str | None, split: str,
             data_dir: str = "hub") -> Iterator[tuple[str, dict, dict]]:
    """Yield (where, row, {column: class names}) for one split of a hub dataset, read from the
    hub (``data_dir == "hub"``) or from its parquet copy in a mirror (``xlt-data mirror``);
    both give the same rows and the same ClassLabel names, so every loader has one code path."""
    if data_dir != "hub":
        import json

        import pyarrow.parquet as pq

        path = parquet_path(data_dir, hub_id, config, split)
        if not path.is_file():
            raise DataError(f"{path}: file not found (mirror it with xlt-data mirror)")
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {}).get(b"huggingface", b"{}"))
        names = class_names(meta.get("info", {}).get("features", {}))
        for i, row in enumerate(table.to_pylist()):
            yield f"{path} row {i}", row, names
        return
    ds = hub_dataset(hub_id, config, split)
    names = class_names(ds.features.to_dict())
    for i, row in enumerate(ds):
        yield f"{hub_id}[{config}] {split} row {i}", row, names


def source_class_names(hub_id: str, config: str | None, split: str, data_dir: str = "hub") -> dict[str, list[str]]:
    """{column: ClassLabel names} of a hub split, from the hub's features or the parquet copy's
    metadata (without reading its rows)."""
    if data_dir != "hub":
        import json

        import pyarrow.parquet as pq

        path = parquet_path(data_dir, hub_id, config, split)
        if not path.is_file():
            raise DataError(f"{path}: file not found (mirror it with xlt-data mirror)")
        meta = json.loads((pq.read_schema(path).metadata or {}).get(b"huggingface", b"{}"))
        return class_names(meta.get("info", {}).get("features", {}))
    return class_names(hub_dataset(hub_id, config, split).features.to_dict())


def resolve_labels(task, data_dir: str):
    """``task`` with its label names: its own, or (``labels=()``, e.g. LEDGAR's 100 classes,
    FiNER-139's 279 tags) the ClassLabel names of its data's label column."""
    from dataclasses import replace

    if task.labels or task.family not in ("classification", "tagging"):
        return task
    column = task.hub_fields[2] if task.family == "classification" else task.hub_fields[1]
    if not task.from_hub(data_dir, "train", "en"):
        raise DataError(f"{task.key}: its label names come from the dataset's ClassLabel feature; read it "
                        f"from the hub or an xlt-data parquet mirror, not from raw files")
    names = source_class_names(*task.hub_source("train", "en"), data_dir).get(column)
    if not names:
        raise DataError(f"{task.key}: column '{column}' of {task.hub_source('train', 'en')} has no ClassLabel "
                        f"names to use as labels")
    return replace(task, labels=tuple(names))


def cap(examples: list, max_examples: int | None, seed: int) -> list:
    """A seeded random subset of at most ``max_examples`` (the same cap for every domain)."""
    if max_examples is None or len(examples) <= max_examples:
        return examples
    return random.Random(seed).sample(examples, max_examples)
