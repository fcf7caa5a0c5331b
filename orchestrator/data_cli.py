"""``xlt-data``: the intermediate-task catalogue, and an offline mirror of the datasets a sweep reads.

    xlt-data list                                   # the catalogue: domain, key, source, format, size, licence
    xlt-data list --targets                         # the target tasks too
    xlt-data mirror --tasks general,legal,xnli --out /mnt/shared/xlt_data
    xlt-data mirror --tasks mnli --out DIR --hub-dir ~/hf-clones   # from local clones of hub repos
    xlt-data mirror --tasks xnli --languages en,de,sw --out DIR    # a target, some languages

``mirror`` takes task keys and domain names (a domain means all its tasks), loads every hub
split each task reads (for a target: every language) with ``datasets.load_dataset`` and writes
it with ``Dataset.to_parquet`` to ``{out}/hub/{dataset id}/{config}/{split}.parquet``; the
parquet files keep the ``datasets`` features (so ClassLabel names survive) in their metadata.
A sweep then reads them with ``data_dir: {out}`` (``target.data_dir`` or
``intermediate.data_dir``) through the same row adapters as the hub itself
(``trainables.data.hub_rows``), so a cluster without internet runs from the mirror. What
cannot be mirrored is said, not skipped silently: a task without a data-files hub source
(script-only repos, which ``datasets`` >= 4 cannot load; Tatoeba, Mewsli-X ...) names the raw
files to place instead, and credentialed data (MedNLI) is never mirrored.

Exit codes: 0 everything mirrored (or already there); 1 some split could not be mirrored (all
listed); 2 bad arguments (unknown keys, with suggestions).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from trainables.names import unknown


def _resolve(names: list[str]) -> tuple[list, list[str]]:
    """Task keys and domains -> (registry entries with .task, problems)."""
    from trainables.catalog import CATALOG, DOMAINS
    from trainables.tasks import ALL_TASKS

    entries, problems = [], []
    for name in names:
        if name in DOMAINS:
            entries += [CATALOG[k] for k in DOMAINS[name]]
        elif name in CATALOG:
            entries.append(CATALOG[name])
        elif name in ALL_TASKS:
            entries.append(ALL_TASKS[name])
        else:
            problems.append(unknown("task or domain", name, [*DOMAINS, *CATALOG, *ALL_TASKS]))
    seen, out = set(), []
    for e in entries:
        if e.key not in seen:
            seen.add(e.key)
            out.append(e)
    return out, problems


def _task(entry):
    """The loader-facing task of a catalogue entry or a target task."""
    return entry.task if hasattr(entry, "task") else entry


def sources(entry, languages: list[str] | None = None) -> tuple[list[tuple], list[str]]:
    """(hub sources to mirror, what cannot be mirrored and where its files go instead)."""
    task = _task(entry)
    if getattr(entry, "local_only", False) or getattr(entry, "access", "") == "script-only on the hub":
        return [], [f"{entry.key}: {entry.access}: {entry.notes}"]
    langs = [lg for lg in task.languages if not languages or lg in languages] or ["en"]
    srcs, raw = [], []
    for split in ("train", "dev", "test"):
        if split in task.hub:  # zero-shot: English train/dev, every language's test
            srcs += [task.hub_source(split, lang) for lang in (langs if split == "test" else ["en"])]
        elif split in task.mirror:
            raw.append(f"{entry.key} {split}: no data-files hub source; place the raw files at "
                       f"{{data_dir}}/{task.mirror[split]}")
    return list(dict.fromkeys(srcs)), raw


def mirror(names: list[str], out: str, force: bool = False, languages: list[str] | None = None,
           log=print) -> tuple[list[dict], list[str]]:
    """Mirror the hub splits of ``names`` (target tasks: ``languages``, default all); returns
    (written or kept rows, what could not be mirrored)."""
    from trainables.data import DataError, hub_dataset, parquet_path

    entries, problems = _resolve(names)
    if problems:
        raise ValueError("\n".join(problems))
    rows, failed = [], []
    for entry in entries:
        srcs, raw = sources(entry, languages)
        failed += raw
        for hub_id, config, split in srcs:
            dest = parquet_path(out, hub_id, config, split)
            if dest.is_file() and not force:
                rows.append({"task": entry.key, "source": f"{hub_id}[{config}] {split}", "path": str(dest),
                             "rows": None, "status": "kept"})
                continue
            try:
                ds = hub_dataset(hub_id, config, split)
            except DataError as e:
                failed.append(f"{entry.key}: {e}")
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
            ds.to_parquet(str(tmp))
            os.replace(tmp, dest)
            rows.append({"task": entry.key, "source": f"{hub_id}[{config}] {split}", "path": str(dest),
                         "rows": len(ds), "status": "written"})
            log(f"  {entry.key:<14} {hub_id}[{config}] {split:<11} {len(ds):>8} rows -> {dest}")
    return rows, failed


def catalogue_rows(targets: bool = False) -> list[dict]:
    """One table row per catalogue entry (``targets``: then one per target and training task too), as
    ``xlt-data list`` prints them."""
    from trainables.catalog import CATALOG
    from trainables.tasks import ALL_TASKS

    rows = [{"domain": e.domain, "key": e.key, "source": e.source, "format": e.format, "size": e.size,
             "licence": e.license, "access": e.access + (" *" if e.notes else "")} for e in CATALOG.values()]
    if targets:
        rows += [{"domain": "(target)" if t.target else "(training)", "key": t.key,
                  "source": ", ".join(dict.fromkeys(h[0] for h in t.hub.values())) or "mirror only",
                  "format": t.family, "size": f"{len(t.languages)} languages", "licence": t.source,
                  "access": "open" if t.hub else "raw files"} for t in ALL_TASKS.values()]
    return rows


def notes() -> list[str]:
    """The catalogue's notes on getting data the hub cannot serve, one line per entry that has one."""
    from trainables.catalog import CATALOG

    return [f"* {e.key}: {e.notes}" for e in CATALOG.values() if e.notes]


def print_table(rows: list[dict], out=None) -> None:
    """``rows`` as aligned columns (the keys of the first row as the header) on ``out`` (stdout)."""
    out = out or sys.stdout
    if not rows:
        return
    cols = list(rows[0])
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    out.write("  ".join(c.ljust(width[c]) for c in cols).rstrip() + "\n")
    out.write("  ".join("-" * width[c] for c in cols) + "\n")
    for r in rows:
        out.write("  ".join(str(r[c]).ljust(width[c]) for c in cols).rstrip() + "\n")


def main(argv: list[str] | None = None) -> int:
    """``xlt-data``: list the catalogue, or mirror tasks' data for offline use; returns the exit code."""
    p = argparse.ArgumentParser(prog="xlt-data", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="examples:\n" + "\n".join(__doc__.split("\n\n")[1].splitlines()))
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="print the intermediate-task catalogue")
    ls.add_argument("--targets", action="store_true", help="also list the target tasks")
    mi = sub.add_parser("mirror", help="write datasets as parquet for offline use")
    mi.add_argument("--tasks", required=True, action="append",
                    help="comma-separated task keys or domains (repeatable)")
    mi.add_argument("--out", required=True, help="mirror directory (use it as data_dir)")
    mi.add_argument("--hub-dir", default=None,
                    help="read hub datasets from local clones under this directory (<dir>/<owner>/<name>)")
    mi.add_argument("--force", action="store_true", help="rewrite splits already mirrored")
    mi.add_argument("--languages", default=None,
                    help="target tasks: only these languages (comma-separated; default: all of the task's)")
    args = p.parse_args(argv)
    if args.command == "list":
        print_table(catalogue_rows(args.targets))
        print("\n" + "\n".join(notes()))
        return 0
    if args.hub_dir:
        from trainables.data import HUB_DIR_ENV

        os.environ[HUB_DIR_ENV] = str(Path(args.hub_dir).expanduser().resolve())
    names = [n.strip() for group in args.tasks for n in group.split(",") if n.strip()]
    try:
        langs = [x.strip() for x in args.languages.split(",")] if args.languages else None
        rows, failed = mirror(names, args.out, args.force, langs)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    written = sum(r["status"] == "written" for r in rows)
    print(f"{written} split(s) written, {len(rows) - written} already there, under {args.out}/hub")
    if failed:
        print(f"{len(failed)} could not be mirrored:", file=sys.stderr)
        for f in failed:
            print(f"  - {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
