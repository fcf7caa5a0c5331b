"""The stage cache: each intermediate model is trained once, then shared by every trial.

Why: the intermediate stage depends only on the model, the intermediate task set, its own
training settings and the seed, never on the robust method, the noise or the fine-tuning
learning rate. A sweep of 3 domains x 4 methods x 5 magnitudes needs 3 intermediate models per
seed, not 60.

Key: ``intermediate_key(inputs)`` hashes exactly those inputs (canonical JSON, SHA-256, 20 hex
digits): model and tokenizer, the sorted task keys and how they are mixed, epochs, learning
rate, example cap, step budget, batch size, max length, optimiser settings, the seed, where the
data comes from (for a local directory: the size and mtime of every file of the tasks, so an
edited file is a new key) and ``CACHE_VERSION`` (bumped when the training code changes what a
stage produces). It excludes hardware (workers, GPUs): a key names a recipe, not a machine.

Storage: ``{root}/{key}/encoder/`` (``save_pretrained`` files) and ``{root}/{key}/entry.json``
(the inputs, the stage's final metrics, who built it, when), written last: an entry without
``entry.json`` is unfinished and is rebuilt. ``root`` is ``<--storage>/stage_cache``, so
entries outlive a sweep: ``--resume`` and later sweeps on the same storage hit them. All file
access goes through ``pyarrow.fs``: a local path, an NFS mount or an object store URI
(``s3://``, ``gs://``); a consumer on an object store gets a local copy of the encoder.

Exactly one builder: claims go through one named, detached Ray actor per cache root
(``StageCacheCoordinator``, namespace ``xlt``, created by the sweep driver, outside any
placement group), so every trial on every node of the cluster sees the same claims whatever
the storage is. A coordinator that stops answering fails the waiting trial with a message
after two minutes instead of leaving it hanging. ``get_or_build``:

1. ``entry.json`` exists: a hit.
2. else ask the coordinator for the claim. Granted: build (the caller's function trains the
   stage), copy the encoder into the entry, write ``entry.json``, release the claim. A daemon
   thread renews the claim's lease every ``lease_s / 4`` seconds while the build runs.
3. else wait: poll every ``poll_s`` for ``entry.json`` or a free claim. A builder that crashes
   (its process killed, its node gone) stops renewing; after ``lease_s`` without renewal the
   claim is free and the next waiter builds. A builder whose training raises releases the
   claim at once. A retried trial (same owner id) may take its own claim back.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.fs as pafs

from trainables.config import RunConfig

CACHE_VERSION = 4
"""1: before the XTREME-R protocol fixes; 2: AdamW spares biases and LayerNorm weights, warm-up
starts at 0 (``trainables.optimiser``); 3: the benchmark's heads, the pooler kept through stages
(``trainables.tasks.heads``); 4: a tagging intermediate (finer139) on an XLM-R-format model ends
its inputs with ``</s></s>`` (``run_tag.py``'s ``sep_token_extra``)."""
NAMESPACE = "xlt"


def intermediate_key(inputs: dict) -> str:
    """The cache key of an intermediate model: a hash of its inputs (``intermediate_inputs``) and the cache version."""
    blob = json.dumps({"version": CACHE_VERSION, **inputs}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _task_files(data_dir: str, key: str) -> list[Path]:
    """The files an intermediate task's training split is read from: its parquet copy in an
    ``xlt-data`` mirror if there is one, else its raw files (as the family loaders choose)."""
    from trainables.catalog import intermediate_task
    from trainables.data import parquet_path

    task = intermediate_task(key).task
    if "train" in task.hub:
        mirrored = parquet_path(data_dir, *task.hub_source("train", "en"))
        if mirrored.is_file():
            return [mirrored]
    if "train" in task.mirror:
        try:
            return task.mirror_paths(data_dir, "train", "en")
        except ValueError:  # no file matches: the stage itself reports it
            return []
    return []


def data_identity(data_dir: str, tasks: list[str]) -> object:
    """What the intermediate data is, for the key: ``builtin`` and hub sources by name, a
    local directory by the path, size and mtime of each file the tasks read."""
    if data_dir in ("builtin", "hub") or "://" in data_dir:
        return data_dir
    stamps = []
    for task in sorted(tasks):
        for path in _task_files(data_dir, task):
            if not path.is_file():
                continue
            try:
                st = path.stat()
                stamps.append([str(path), st.st_size, st.st_mtime_ns])
            except OSError:
                stamps.append([str(path), None, None])
    return {"dir": str(Path(data_dir).resolve()), "files": stamps}


def intermediate_inputs(run: RunConfig, tasks: list[str], seed: int) -> dict:
    """Everything the intermediate stage's result depends on (the key's inputs), from the
    sweep's ``RunConfig``; the trial trains with exactly these settings
    (``trainables.trial.stage_configs``)."""
    inter, t = run.intermediate, run.training
    return {"model": run.model.name, "tokenizer": run.model.tokenizer, "tasks": sorted(tasks),
            "epochs": inter.schedule.epochs, "learning_rate": inter.schedule.learning_rate,
            "max_examples": inter.schedule.max_examples, "batch_size": t.batch_size,
            "max_length": t.encoding.max_length, "doc_stride": t.encoding.doc_stride,
            "max_query_length": t.encoding.max_query_length, "weight_decay": t.optimiser.weight_decay,
            "warmup_ratio": t.optimiser.warmup_ratio, "mixing": inter.mixing,
            "max_steps": inter.schedule.max_steps, "seed": int(seed),
            "group_by_length": t.speed.group_by_length, "precision": t.speed.precision,
            "data": data_identity(inter.data_dir, tasks),
            # added later: in the key only where it differs from what every earlier model was
            # trained with, so the entries already in a cache keep their keys
            **({"max_grad_norm": t.optimiser.max_grad_norm} if t.optimiser.max_grad_norm != 1.0 else {}),
            **({"warmup_steps": t.optimiser.warmup_steps} if t.optimiser.warmup_steps is not None else {})}


def _filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    if "://" in root:
        return pafs.FileSystem.from_uri(root)
    return pafs.LocalFileSystem(), str(Path(root).resolve())


def coordinator_name(root: str) -> str:
    """The Ray actor name of the coordinator of the cache at ``root``."""
    return "xlt-stage-cache-" + hashlib.sha1(root.encode()).hexdigest()[:12]


def _coordinator_class():
    import ray

    @ray.remote(num_cpus=0, max_restarts=-1)
    class StageCacheCoordinator:
        """Claims on cache keys with leases; the only shared state of the cache besides files."""

        def __init__(self):
            self.claims: dict[str, tuple[str, float, float]] = {}  # key -> (owner, renewed, lease_s)

        def claim(self, key: str, owner: str, lease_s: float) -> bool:
            now = time.monotonic()
            held = self.claims.get(key)
            if held is None or held[0] == owner or now - held[1] > held[2]:
                self.claims[key] = (owner, now, lease_s)
                return True
            return False

        def renew(self, key: str, owner: str) -> bool:
            held = self.claims.get(key)
            if held is None or held[0] != owner:
                return False
            self.claims[key] = (owner, time.monotonic(), held[2])
            return True

        def release(self, key: str, owner: str) -> None:
            if self.claims.get(key, ("",))[0] == owner:
                del self.claims[key]

        def holder(self, key: str) -> str | None:
            held = self.claims.get(key)
            return held[0] if held else None

    return StageCacheCoordinator


def coordinator(root: str, resources: dict | None = None):
    """The cluster's coordinator for ``root`` (created on first use, then shared).

    Created outside any placement group: a trial runs inside Tune's placement group, which
    would otherwise capture the actor and take it down when that trial ends. Detached, so it
    outlives the trial (or driver) that happened to create it. ``resources`` pins it (the
    driver passes a sliver of the head's ``driver_slot``, so a spot node going away does not
    take the claims with it; if its node dies anyway it restarts elsewhere, and builders whose
    claims were lost notice it at their next renewal)."""
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    return _coordinator_class().options(
        name=coordinator_name(root), namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
        resources=resources or {},
        scheduling_strategy=PlacementGroupSchedulingStrategy(placement_group=None)).remote()


def _call(method, *args, timeout: float = 120.0):
    """A coordinator call that fails the trial with a clear message instead of hanging."""
    import ray

    try:
        return ray.get(method.remote(*args), timeout=timeout)
    except (ray.exceptions.GetTimeoutError, ray.exceptions.RayActorError) as e:
        raise RuntimeError(f"stage cache: the claim coordinator did not answer within {timeout:.0f} s "
                           f"({type(e).__name__}); the trial fails rather than wait forever") from e


class StageCache:
    """The intermediate models of a storage: each key trained once, by the trial that claims it, and read by the
    others."""
    def __init__(self, root: str, lease_s: float = 60.0, poll_s: float = 2.0, local_dir: str | None = None):
        self.root = root
        self.fs, self.base = _filesystem(root)
        self.lease_s, self.poll_s = lease_s, poll_s
        self.local_dir = local_dir

    def _entry(self, key: str) -> str:
        return f"{self.base}/{key}"

    def lookup(self, key: str) -> dict | None:
        """The finished entry's record, or None."""
        path = f"{self._entry(key)}/entry.json"
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as f:
            return json.loads(f.read().decode())

    def encoder_path(self, key: str) -> str:
        """A local directory holding the entry's encoder (a download for object stores)."""
        remote = f"{self._entry(key)}/encoder"
        if isinstance(self.fs, pafs.LocalFileSystem):
            return remote
        local = Path(self.local_dir or tempfile.gettempdir()) / "stage_cache" / key / "encoder"
        if not (local / "config.json").is_file():
            import shutil

            tmp = local.with_name(f"encoder.tmp{os.getpid()}")
            tmp.mkdir(parents=True, exist_ok=True)
            pafs.copy_files(remote, str(tmp), source_filesystem=self.fs,
                            destination_filesystem=pafs.LocalFileSystem())
            try:
                os.replace(tmp, local)
            except OSError:  # another trial on this node finished the same download first
                shutil.rmtree(tmp, ignore_errors=True)
                if not (local / "config.json").is_file():
                    raise
        return str(local)

    def store(self, key: str, encoder_dir: str, record: dict) -> None:
        entry = self._entry(key)
        self.fs.delete_dir_contents(entry, missing_dir_ok=True)  # leftovers of a crashed builder
        self.fs.create_dir(f"{entry}/encoder")
        pafs.copy_files(str(Path(encoder_dir).resolve()), f"{entry}/encoder",
                        source_filesystem=pafs.LocalFileSystem(), destination_filesystem=self.fs)
        with self.fs.open_output_stream(f"{entry}/entry.json.tmp") as f:
            f.write(json.dumps(record, indent=2, default=str).encode())
        self.fs.move(f"{entry}/entry.json.tmp", f"{entry}/entry.json")  # the completion marker

    def get_or_build(self, key: str, inputs: dict, owner: str,
                     build: Callable[[], tuple[str, dict]]) -> tuple[str, bool, dict]:
        """(local encoder dir, hit, the entry's record). ``build()`` trains the stage and returns
        (encoder dir, final metrics); it runs in at most one trial at a time per key."""
        coord = coordinator(self.root)
        while True:
            record = self.lookup(key)
            if record is not None:
                return self.encoder_path(key), True, record
            if _call(coord.claim, key, owner, self.lease_s):
                break
            time.sleep(self.poll_s)
        stop, lost = threading.Event(), threading.Event()

        def renew():
            while not stop.wait(self.lease_s / 4):
                try:
                    held = _call(coord.renew, key, owner)
                except RuntimeError:
                    held = False
                if not held:  # the lease ran out (or the coordinator is gone): another trial may build
                    lost.set()
                    return

        beat = threading.Thread(target=renew, daemon=True, name=f"stage-cache-lease-{key}")
        beat.start()
        try:
            record = self.lookup(key)  # finished between our last look and the claim
            if record is not None:
                return self.encoder_path(key), True, record
            t0 = time.time()
            encoder_dir, metrics = build()
            if self.lookup(key) is not None:  # lost the claim and another builder finished: use theirs
                return self.encoder_path(key), True, self.lookup(key)
            if lost.is_set():
                raise RuntimeError(f"stage cache: lost the claim on {key} while building (lease not renewed); "
                                   f"another trial builds it, this one fails rather than overwrite it")
            record = {"key": key, "inputs": inputs, "metrics": metrics, "built_by": owner,
                      "build_s": round(time.time() - t0, 1), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            self.store(key, encoder_dir, record)
            return self.encoder_path(key), False, record
        finally:
            stop.set()
            _call(coord.release, key, owner)

