"""Why a trial failed, in one line, and whether trying again could help.

A *deterministic* failure is a property of the inputs, not of the machine: bad data
(``DataError``, whose message names the file and line), a configuration the code refuses at
run time (``ConfigError``), a stage whose training diverged (``TrainingDiverged``), or a full
storage (``StorageFull``: retrying into a full disk fails again; the sweep goes on with the
other trials and ``--resume`` runs it after space is freed). Retrying such a trial only burns
GPU-hours, so ``trainables.trial.run_trial`` hands Tune a last result carrying
``FATAL_KEY`` (the one-line reason) before it re-raises, and the sweep's Tune callback then
sets that trial's retry budget to zero: Tune marks it ERROR at once, and ``--resume`` still
re-runs it (Tune resumes errored trials). Anything else (a dead node, an out-of-memory kill,
a lost connection) keeps its ``search.max_failures`` retries.

``one_line(text)`` turns a traceback (Tune's ``error.txt``, a Ray Train error) into the
exception line that says what went wrong: the MLflow tag ``xlt.error`` holds that line, and
the whole traceback is an artifact of the run.

No torch, no Ray: the sweep driver imports this module.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

from trainables import schema as N
from trainables.data import DataError

FATAL_KEY = N.FATAL
"""Result key of the last report of a trial that failed deterministically (its reason)."""


class ConfigError(ValueError):
    """A configuration the code refuses at run time (validation could not know it: e.g. a
    layer index beyond a checkpoint's depth, read only when the checkpoint loads)."""


class TrainingDiverged(RuntimeError):
    """A stage's loss or gradients became non-finite. A property of the configuration (a huge
    noise radius, a learning rate too high), not a fault: a retry fails again at once."""


class StageFailed(RuntimeError):
    """A deterministic failure of a Ray Train stage, raised again in the trial's process from
    the reason its rank 0 recorded (``trainables.loop.train_loop_per_worker``)."""


class StorageFull(OSError):
    """No space left where the trial writes (its message: where, and how much is free)."""

    def __str__(self) -> str:
        return str(self.strerror)


FULL = {errno.ENOSPC, errno.EDQUOT}
NEARLY_FULL = 16 * 1024 * 1024
"""Free bytes below which a write error without an errno is taken for a full storage."""


def free_bytes(path: str | os.PathLike) -> int | None:
    """Free bytes on the file system holding ``path`` (or its nearest existing parent), or
    None where that cannot be read."""
    p = Path(path).resolve()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def storage_full(e: OSError, fallback: str | None = None) -> StorageFull:
    """``StorageFull`` for an ENOSPC/EDQUOT error: ``storage full at PATH (N bytes free)``."""
    where = e.filename or fallback or "?"
    free = free_bytes(where) if where != "?" else None
    return StorageFull(e.errno, f"storage full at {where} ({'?' if free is None else free} bytes free)")


def _causes(e: BaseException, depth: int = 0):
    """``e`` and what it wraps: chained exceptions, Ray task errors' causes, Ray Train's
    per-worker failures."""
    if e is None or depth > 8:
        return
    yield e
    wrapped = [e.__cause__, e.__context__, getattr(e, "cause", None), getattr(e, "controller_failure", None),
               *(getattr(e, "worker_failures", None) or {}).values()]
    for w in wrapped:
        if isinstance(w, BaseException) and w is not e:
            yield from _causes(w, depth + 1)


def deterministic(e: BaseException, storage: str | None = None) -> str | None:
    """The one-line reason when ``e`` (or what it wraps) is a deterministic failure, else None."""
    for c in _causes(e):
        if isinstance(c, StorageFull | StageFailed):
            return str(c)
        if isinstance(c, OSError) and c.errno in FULL:
            return str(storage_full(c, storage))
        if storage and _looks_full(c, storage):  # torch.save, safetensors: no errno survives
            return str(storage_full(OSError(errno.ENOSPC, "write failed"), storage))
        if isinstance(c, DataError | ConfigError | TrainingDiverged):
            return f"{type(c).__name__}: {one_line(str(c))}"
    return None


def _looks_full(e: BaseException, storage: str) -> bool:
    """A writer's error without an errno (torch's "file write failed", a safetensors error)
    while the storage has (almost) nothing free."""
    text = str(e)
    if "No space left on device" in text:
        return True
    if "write failed" not in text and "failed writing" not in text:
        return False
    free = free_bytes(storage)
    return free is not None and free < NEARLY_FULL


_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Diverged|Full|Interrupt|Exit)\b.*|[A-Za-z_][\w.]*: .+)$")


def one_line(text: str, limit: int = 500) -> str:
    """The line of ``text`` that names the error: the last ``SomeError: message`` line of a
    traceback (Ray nests tracebacks, so the last one is the innermost cause); else the last
    non-empty line."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    if not lines:
        return "trial failed (no error message)"
    named = [ln for ln in lines if _EXC_LINE.match(ln) and not ln.startswith(("File ", "Traceback", "Failure #"))]
    line = named[-1] if named else lines[-1]
    return line if len(line) <= limit else line[:limit - 3] + "..."
