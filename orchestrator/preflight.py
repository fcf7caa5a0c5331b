"""Preflight: what a sweep will read and write, checked before it costs anything.

Two checks run by ``xlt-sweep`` after the space file validates:

``check_data(spec)``, before Ray starts. For data in a local directory (a mirror or raw
files; ``builtin`` is written by the project and ``hub`` is not local), every file any trial
of the sweep will read: the target's test split in every language, the fine-tuning task's
English train (and dev) split, the benchmark-recipe stages' training data, every domain's
intermediate tasks, and the RS-DA synonym table. Each must exist and its first lines must
parse with the very loader the trial uses: line-oriented files (tsv, jsonl, CoNLL-U,
PAN-X, Tatoeba) are cut to their first ``HEAD_LINES`` lines into a scratch copy of the
mirror's layout (with the other files of their folders, which some loaders pair with them)
and loaded from there (so a line number in a problem is the real file's);
JSON documents (SQuAD-style QA) and parquet copies are read whole (one parse). Problems
name the file and, where the loader knows it, the line; all are listed at once. The
loaders live with the task families and import torch, so the driver imports torch here, and
only for local data (the built-in demo sweep never does).

``estimate_storage(spec, concurrent)`` and ``check_space``: the bytes the sweep needs on
``--storage`` at its peak, against the free bytes there (refused with the numbers when it
does not fit; ``--dry-run`` prints the estimate). The terms, with ``W`` the encoder's weights
(fp32; from the built-in config, a local checkpoint's weight files, or the known hub
encoders' parameter counts):

- training: every running stage holds a checkpoint of weights + AdamW's two moments (3W,
  4W with ``training.select: best``'s copy) and, while replacing it at an epoch's end, the
  previous one: 2 x that per concurrent trial;
- the stage cache: one encoder (W) per distinct intermediate model (domain x seed);
- kept weights (``storage.keep_weights``): W per trial for ``last`` or ``best``, 0 for
  ``none``; a finished stage keeps no optimizer state (``trainables.trial``);
- predictions: each trial writes its predictions and the gold labels once in the official
  layout and once more as MLflow artifacts (4 x the target's test files, about 1 MB per
  language where the size is not known);
- the tokenised-feature cache: about 2 x the local data files read.

The sum gets 20 % headroom. What is not counted: Ray's own logs and object spilling
(``/tmp/ray`` by default, not ``--storage``) and the MLflow database.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator.spec import SweepSpec
from trainables.catalog import intermediate_task
from trainables.data import DataError
from trainables.failures import free_bytes
from trainables.known_models import BUILTIN_MODELS, HUB_MODELS, model_config
from trainables.robust.options import BUILTIN_TABLES
from trainables.tasks import TASKS, target_task

HEAD_LINES = 50
LINE_FORMATS = (".tsv", ".jsonl", ".conllu", ".txt")
HEADROOM = 1.2
MB = 1 << 20


@dataclass(frozen=True)
class Read:
    """One (task, split, language) a trial reads, and why."""

    task: object
    split: str
    lang: str
    data_dir: str
    why: str


def planned_reads(spec: SweepSpec) -> list[Read]:
    """Every (task, split, language) some trial of ``spec`` reads from a local directory."""
    reads: list[Read] = []
    if _local(spec.target.data_dir):
        reads += [Read(task, split, lang, spec.target.data_dir, why) for task, split, lang, why in
                  TASKS[spec.target.task].reads(spec.languages, spec.target.recipe.enabled)]
    if _local(spec.intermediate_data_dir):
        seen = set()
        for domain in spec.intermediate.domains:
            for key in spec.intermediate.tasks_of(domain):
                if key not in seen:
                    seen.add(key)
                    reads.append(Read(intermediate_task(key).task, "train", "en", spec.intermediate_data_dir,
                                      f"intermediate task {key} (domain {domain})"))
    return reads


def data_notes(spec: SweepSpec) -> list[str]:
    """One line per task whose hub copy departs from the benchmark's files (PAWS-X, UD-POS) and
    that the sweep reads from the hub or a mirror's parquet copy: which source is used, and how
    it departs."""
    if spec.target.data_dir == "builtin":
        return []
    used: dict[str, list[str]] = {}
    for task, split, lang, _ in TASKS[spec.target.task].reads(spec.languages, spec.target.recipe.enabled):
        if task.raw_first and task.source_kind(spec.target.data_dir, split, lang) in ("hub", "parquet"):
            used.setdefault(task.key, []).append(f"{split} {lang}")
    return [f"{key} reads the hub's copy for {', '.join(which)}: {target_task(key).raw_first}"
            for key, which in used.items()]


def _local(data_dir: str) -> bool:
    return data_dir not in ("builtin", "hub")


def _head_copy(path: Path, root: Path, scratch: Path) -> None:
    """The first ``HEAD_LINES`` lines of ``path`` (under ``root``) at the same place under
    ``scratch``; a JSON document or parquet file is linked whole."""
    out = scratch / path.relative_to(root)
    out.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".json", ".parquet") or path.suffix not in LINE_FORMATS and _is_json(path):
        out.symlink_to(path.resolve())
        return
    with path.open(encoding="utf-8", errors="strict", newline="") as src, out.open("w", encoding="utf-8",
                                                                                   newline="") as dst:
        for i, line in enumerate(src):
            if i >= HEAD_LINES:
                break
            dst.write(line)


def _siblings(files: list[Path]) -> list[Path]:
    """The other files in the folders of ``files``: a loader may read a file's partner (the
    English side of a Tatoeba pair, SocialIQA's ``*-labels.lst``) next to it."""
    wanted = set(files)
    return sorted({p for f in files for p in f.parent.iterdir() if p.is_file() and p not in wanted})


def _is_json(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(1) in (b"{", b"[")


def check_data(spec: SweepSpec) -> list[str]:
    """Every problem with the local files the sweep's trials will read (empty: all good)."""
    problems: list[str] = []
    synonyms = spec.robust.options.get("rs_da", {}).get("synonyms", "builtin") if "rs_da" in spec.robust.methods \
        else "builtin"
    if synonyms not in BUILTIN_TABLES:
        problems += _check_synonyms(Path(synonyms).expanduser())
    reads = planned_reads(spec)
    if not reads:
        return problems
    from trainables.tasks import family  # the loaders (and torch): only for local data

    with tempfile.TemporaryDirectory(prefix="xlt-preflight-") as tmp:
        for n, r in enumerate(reads):
            root = Path(r.data_dir).expanduser()
            if not root.is_dir():
                problem = f"{r.data_dir}: data directory not found (target.data_dir / intermediate.data_dir)"
                if problem not in problems:
                    problems.append(problem)
                continue
            try:
                files = r.task.files_read(str(root), r.split, r.lang)
            except DataError as e:
                problems.append(f"{e} [{r.why}]")
                continue
            missing = [p for p in files if not p.is_file()]
            if missing:
                problems += [f"{p}: file not found ({r.task.key} {r.split}, {r.why}; layout: "
                             f"{r.task.mirror.get(r.split, '?')} under {root})" for p in missing]
                continue
            scratch = Path(tmp) / str(n)
            try:
                for p in files:
                    _head_copy(p, root, scratch)
                for sibling in _siblings(files):  # loaders that pair files (Tatoeba, SocialIQA labels)
                    try:
                        _head_copy(sibling, root, scratch)
                    except (UnicodeDecodeError, OSError):
                        (scratch / sibling.relative_to(root)).unlink(missing_ok=True)
                examples = family(r.task.family).load(r.task, r.split, r.lang, str(scratch))
            except UnicodeDecodeError as e:
                problems.append(f"{files[0]}: not UTF-8 text ({e.reason} at byte {e.start}) [{r.why}]")
                continue
            except (DataError, ValueError, KeyError, IndexError, TypeError) as e:
                problems.append(f"{str(e).replace(str(scratch), str(root))} [{r.why}]")
                continue
            if not examples:
                problems.append(f"{files[0]}: no examples in its first {HEAD_LINES} lines [{r.why}]")
    return problems


def _check_synonyms(path: Path) -> list[str]:
    where = "robust.options.rs_da.synonyms"
    if not path.is_file():
        return [f"{path}: synonym table not found ({where}: a JSON file {{word: [neighbours]}}, or 'builtin')"]
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        return [f"{path}: synonym table is not valid JSON ({e}) ({where})"]
    if not isinstance(table, dict) or not all(isinstance(v, list) for v in list(table.values())[:1000]):
        return [f"{path}: synonym table must be a JSON object {{word: [neighbours]}} ({where})"]
    return []


# ---------------------------------------------------------------------------------------------
# Storage


def encoder_bytes(name: str) -> int | None:
    """fp32 bytes of the encoder's weights, or None where not known."""
    path = Path(name).expanduser()
    if path.is_dir():
        files = [p for p in path.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file()]
        if files:
            return sum(p.stat().st_size for p in files)
    if name in HUB_MODELS:
        return 4 * HUB_MODELS[name]["parameters"]
    if name in BUILTIN_MODELS:
        return 4 * bert_parameters(model_config(name) or {})
    return None


def bert_parameters(cfg: dict) -> int:
    """Parameters of a BERT-shaped encoder from its config (embeddings, layers, pooler)."""
    h, n, i = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    vocab, pos = cfg.get("vocab_size", 8000), cfg["max_position_embeddings"]
    embeddings = (vocab + pos + cfg.get("type_vocab_size", 2)) * h + 2 * h
    layer = 4 * h * h + 4 * h + 2 * h * i + i + h + 4 * h
    return embeddings + n * layer + h * h + h


def estimate_storage(spec: SweepSpec, trials: int, concurrent: int) -> dict:
    """Peak bytes the sweep needs on its storage, term by term (see the module docstring)."""
    w = encoder_bytes(spec.model.name)
    known = w is not None
    w = w or 4 * 125_000_000  # an unknown model: counted as a base-sized (125M-parameter) encoder
    per_checkpoint = (4 if spec.training.select == "best" else 3) * w
    inter = sum(d != "none" for d in spec.intermediate.domains) * len(spec.seeds)
    files = [(r, _files_or_empty(r)) for r in planned_reads(spec)]
    test_files = [p for r, paths in files if r.split == "test" for p in paths]
    per_language = 64 * 1024 if spec.target.data_dir == "builtin" else MB  # sizes not known before download
    test_bytes = sum(_size(p) for p in test_files) if test_files else len(spec.languages) * per_language
    terms = {
        "training": 2 * per_checkpoint * max(1, min(concurrent, trials)),
        "stage_cache": inter * w,
        "kept_weights": 0 if spec.storage.keep_weights == "none" else trials * w,
        "predictions": 4 * test_bytes * trials,
        "features": 2 * sum(_size(p) for _, paths in files for p in paths),
    }
    total = int(HEADROOM * sum(terms.values()))
    return {"bytes": total, "terms": terms, "encoder_bytes": w, "encoder_known": known,
            "concurrent": concurrent, "trials": trials, "checkpoint_bytes": per_checkpoint}


def _files_or_empty(r: Read) -> list[Path]:
    try:
        return r.task.files_read(str(Path(r.data_dir).expanduser()), r.split, r.lang)
    except DataError:
        return []


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (symbolic links not followed)."""
    if not path.is_dir():
        return 0
    return sum(_size(p) for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def human(n: float) -> str:
    """``n`` bytes in B, KB, MB, GB or TB (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def describe(estimate: dict) -> str:
    """The storage estimate (``estimate``) as the sentence ``xlt-sweep --dry-run`` prints."""
    t = estimate["terms"]
    enc = human(estimate["encoder_bytes"]) + ("" if estimate["encoder_known"] else " (model size unknown: assumed)")
    return (f"storage needed at peak: about {human(estimate['bytes'])} (encoder {enc}; training "
            f"{human(t['training'])} for {estimate['concurrent']} concurrent trial(s), stage cache "
            f"{human(t['stage_cache'])}, kept weights {human(t['kept_weights'])}, predictions "
            f"{human(t['predictions'])}, features {human(t['features'])}; +{round(100 * (HEADROOM - 1))} %)")


def check_space(storage: Path, estimate: dict) -> str | None:
    """Why the sweep cannot fit on ``storage``, with the numbers; None if it fits."""
    free = free_bytes(storage)
    if free is None or free >= estimate["bytes"]:  # unreadable: the writes themselves will say
        return None
    return (f"{storage}: {human(free)} free ({free} bytes), but the sweep needs about "
            f"{human(estimate['bytes'])} ({estimate['bytes']} bytes) at its peak: "
            f"{describe(estimate)}. Free space, use another --storage, lower "
            f"--max-concurrent-trials or set storage.keep_weights: none")
