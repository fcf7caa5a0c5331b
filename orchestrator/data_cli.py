"""``xlt-data``: the intermediate-task catalogue, and an offline mirror of the datasets a sweep reads.

    xlt-data list                                   # the catalogue: domain, key, source, format, size, licence
    xlt-data list --targets                         # the target tasks too
    xlt-data mirror --tasks general,legal,xnli --out /mnt/shared/xlt_data
    xlt-data mirror --tasks mnli --out DIR --hub-dir ~/hf-clones   # from local clones of hub repos
    xlt-data mirror --tasks xnli --languages en,de,sw --out DIR    # a target, some languages
    xlt-data sources --tasks pawsx,udpos --data-dir DIR           # what a sweep reads from DIR

``mirror`` takes task keys and domain names (a domain means all its tasks), loads every hub
split a sweep on each task reads (``planned``: an intermediate task's train split; a target's
``TargetTask.reads``: the English train and dev of what fine-tunes it, SQuAD for XQuAD, its
recipe stages' data, SocialIQA for XCOPA, and every language's test) with
``datasets.load_dataset`` and writes it with ``Dataset.to_parquet`` to
``{out}/hub/{dataset id}/{config}/{split}.parquet``; the
parquet files keep the ``datasets`` features (so ClassLabel names survive) in their metadata.
A sweep then reads them with ``data_dir: {out}`` (``target.data_dir`` or
``intermediate.data_dir``) through the same row adapters as the hub itself
(``trainables.data.hub_rows``), so a cluster without internet runs from the mirror. What
cannot be mirrored is said, not skipped silently: a task without a data-files hub source
(script-only repos, which ``datasets`` >= 4 cannot load; Tatoeba, Mewsli-X ...) names the raw
files to place instead, and credentialed data (MedNLI) is never mirrored. It ends with
``read_sources``' table: for each task, split and language, what a sweep with that data directory
reads (``TargetTask.source_kind``: the parquet copy, raw files present or missing, or nothing),
which ``sources`` prints for any data directory.

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


def planned(entry, languages: list[str] | None = None) -> list[tuple]:
    """(task, split, language) for every split a sweep on ``entry`` reads: an intermediate (or
    recipe) task's English train split; for a target (``languages``, default all of the task's), the
    fine-tuning task's English train and dev (SQuAD for XQuAD, MLQA and Tatoeba), the recipe
    stages' training data (SocialIQA for XCOPA) and every language's test split."""
    task = _task(entry)
    if not task.target:  # an intermediate stage trains on the English train split
        return [(task, "train", "en")]
    langs = [lg for lg in task.languages if not languages or lg in languages]
    return [(t, split, lang) for t, split, lang, _ in task.reads(langs)]


def sources(entry, languages: list[str] | None = None) -> tuple[list[tuple], list[str]]:
    """(hub sources to mirror, what cannot be mirrored and where its files go instead)."""
    from trainables.catalog import SCRIPT_ONLY

    if getattr(entry, "local_only", False) or getattr(entry, "access", "") == SCRIPT_ONLY:
        return [], [f"{entry.key}: {entry.access}: {entry.notes}"]
    srcs, raw = [], []
    for task, split, lang in planned(entry, languages):
        if task.hub_serves(split, lang):
            srcs.append((task.key, task.hub_source(split, lang)))
        elif split in task.hub:  # a language the hub's source does not have (UD-POS's UD 2.7 ones)
            raw.append(f"{task.key} {split} {lang}: {task.hub_gap}")
        else:
            raw.append(f"{task.key} {split}: no data-files hub source; place the raw files at "
                       f"{{data_dir}}/{task._fill(task.mirror[split], lang)}")
    return list(dict.fromkeys(srcs)), list(dict.fromkeys(raw))


def mirror(names: list[str], out: str, force: bool = False, languages: list[str] | None = None,
           log=print) -> tuple[list[dict], list[str]]:
    """Mirror every hub split that a sweep on ``names`` reads (target tasks: ``languages``,
    default all); returns (written or kept rows, what could not be mirrored)."""
    from trainables.data import DataError, hub_dataset, parquet_path

    entries, problems = _resolve(names)
    if problems:
        raise ValueError("\n".join(problems))
    import datasets

    datasets.disable_progress_bars()  # one line per split is logged instead
    rows, failed, seen = [], [], set()
    for entry in entries:
        srcs, raw = sources(entry, languages)
        failed += [r for r in raw if r not in failed]
        for key, (hub_id, config, split) in srcs:
            dest = parquet_path(out, hub_id, config, split)
            row = {"task": key, "source": f"{hub_id}[{config or 'default'}] {split}", "path": str(dest)}
            if dest in seen:  # another task of ``names`` reads the same split (SQuAD for XQuAD and MLQA)
                continue
            seen.add(dest)
            if dest.is_file() and not force:
                rows.append({**row, "rows": None, "status": "kept"})
                continue
            try:
                ds = hub_dataset(hub_id, config, split)
            except DataError as e:
                failed.append(f"{key}: {e}")
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
            ds.to_parquet(str(tmp))
            os.replace(tmp, dest)
            rows.append({**row, "rows": len(ds), "status": "written"})
            log(f"  {key:<14} {hub_id}[{config or 'default'}] {split:<11} {len(ds):>8} rows -> {dest}")
    return rows, failed


def read_sources(names: list[str], data_dir: str, languages: list[str] | None = None) -> list[dict]:
    """For each task and split of ``names``: what a sweep with ``data_dir`` reads (hub id,
    parquet copy, raw files or nothing yet), languages with the same kind of source on one row."""
    entries, problems = _resolve(names)
    if problems:
        raise ValueError("\n".join(problems))
    groups: dict[tuple, tuple] = {}  # (entry, task, split, kind) -> (task, languages)
    for entry in entries:
        for task, split, lang in planned(entry, languages):
            key = (entry.key, task.key, split, task.source_kind(data_dir, split, lang))
            groups.setdefault(key, (task, []))[1].append(lang)
    return [{"for": key, "task": task.key, "split": split, "languages": ",".join(langs),
             "reads": task.describe_source(kind, split, langs[0] if len(langs) == 1 else "{lang}")}
            for (key, _, split, kind), (task, langs) in groups.items()]


def catalogue_rows(targets: bool = False) -> list[dict]:
    """One table row per catalogue entry (``targets``: then one per target and training task too), as
    ``xlt-data list`` prints them."""
    from trainables.catalog import CATALOG
    from trainables.tasks import ALL_TASKS

    rows = [{"domain": e.domain, "key": e.key, "source": e.source, "format": e.format, "size": e.size,
             "licence": e.license, "access": e.access + (" *" if e.notes else "")} for e in CATALOG.values()]
    if targets:
        for t in ALL_TASKS.values():
            served = [lg for lg in t.languages if t.hub_serves("test" if t.target else "train", lg)]
            source = ", ".join(dict.fromkeys(h[0] for h in t.hub.values())) or "mirror only"
            if t.hub and len(served) < len(t.languages):
                source += f" ({len(served)} of {len(t.languages)} languages)"
            size = f"{len(t.languages)} languages" if len(t.languages) > 1 else "English"
            rows.append({"domain": "(target)" if t.target else "(training)", "key": t.key, "source": source,
                         "format": t.family, "size": size, "licence": t.source,
                         "access": ("open" if t.hub else "raw files") + (" *" if t.hub_gap or t.raw_first else "")})
    return rows


def notes(targets: bool = False) -> list[str]:
    """The notes on getting data the hub cannot serve or serves differently from the benchmark's
    files, one line per entry that has one (``targets``: the target and training tasks' too)."""
    from trainables.catalog import CATALOG
    from trainables.tasks import ALL_TASKS

    out = [f"* {e.key}: {e.notes}" for e in CATALOG.values() if e.notes]
    if targets:
        out += [f"* {t.key}: " + "; ".join(x for x in (t.hub_gap, t.raw_first) if x)
                for t in ALL_TASKS.values() if t.hub_gap or t.raw_first]
    return out


def print_sources(rows: list[dict], out=None) -> None:
    """``read_sources``' table, then the note of every task marked ``*`` in it."""
    from trainables.tasks import ALL_TASKS

    out = out or sys.stdout
    print_table(rows, out)
    marked = dict.fromkeys(r["task"] for r in rows if r["reads"].endswith("*)"))
    for key in marked:
        out.write(f"* {key}: {ALL_TASKS[key].raw_first}\n")


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


def _names(groups: list[str]) -> list[str]:
    return [n.strip() for group in groups for n in group.split(",") if n.strip()]


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
    so = sub.add_parser("sources", help="say what a sweep reads for each task and split: hub id, parquet copy "
                                        "or raw files")
    so.add_argument("--tasks", required=True, action="append", help="comma-separated task keys or domains")
    so.add_argument("--data-dir", required=True, help="'hub', or a mirror directory")
    so.add_argument("--languages", default=None, help="target tasks: only these languages")
    args = p.parse_args(argv)
    if args.command == "list":
        print_table(catalogue_rows(args.targets))
        print("\n" + "\n".join(notes(args.targets)))
        return 0
    if args.command == "sources":
        try:
            print_sources(read_sources(_names(args.tasks), args.data_dir,
                                       [x.strip() for x in args.languages.split(",")] if args.languages else None))
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    if args.hub_dir:
        from trainables.data import HUB_DIR_ENV

        os.environ[HUB_DIR_ENV] = str(Path(args.hub_dir).expanduser().resolve())
    names = _names(args.tasks)
    try:
        langs = [x.strip() for x in args.languages.split(",")] if args.languages else None
        rows, failed = mirror(names, args.out, args.force, langs)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    written = sum(r["status"] == "written" for r in rows)
    print(f"{written} split(s) written, {len(rows) - written} already there, under {args.out}/hub")
    print(f"\nwhat a sweep with data_dir: {args.out} reads:")
    print_sources(read_sources(names, args.out, langs))
    if failed:
        print(f"{len(failed)} could not be mirrored:", file=sys.stderr)
        for f in failed:
            print(f"  - {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
