"""Sessions: how the worker loop talks to the runtime its executor gave it.

``trainables.loop.run_stage`` reaches its runtime only through a ``Session``: its rank and
world size, its device, how the model is wrapped, the checkpoint to resume from, and where each
epoch's metrics and checkpoint go. Which session a stage gets is its executor's choice
(``trainables.executors``).

- ``RaySession`` (what every sweep uses): Ray Train's context; ``prepare_model`` wraps the model
  in DDP when there are several workers; reports go to Ray Train (and from there to Tune).
- ``TrialSession`` (``resources.executor: trial``, the default for one worker): rank 0 of 1 in
  the Tune trial's own process, which Tune placed with the worker's CPUs/GPUs. No Train
  controller, no worker group, no process group: it saves a TorchTrainer's fixed start cost
  per stage (``benchmarks/run.py``, trial_overhead_train). Reports go straight to Tune; the
  checkpoint is kept as in ``LocalSession`` (a ``CheckpointDir``), so a retried trial
  (``search.max_failures``: its node died, its process was killed) resumes the stage from its
  last epoch as a restarted Train worker group would.
- ``LocalSession``: rank 0 of 1 in the calling process, no Ray. It runs the *same* loop, so the
  benchmarks can measure what a sweep adds around a stage (``trial_overhead``) and tests can
  compare the fast and plain paths of one stage without starting a cluster. Reports are kept
  in ``reports``; the last checkpoint is copied to ``checkpoint_dir`` when one is given (so a
  following stage can load ``checkpoint_dir/encoder``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Protocol

import torch

METRICS = "metrics.json"  # the report that came with a checkpoint (LocalSession, TrialSession)
OLD = ".old"  # suffix of the checkpoint being replaced


class RaySession:
    """A Ray Train worker's view of its worker group."""

    def world(self) -> tuple[int, int]:
        import ray.train

        ctx = ray.train.get_context()
        return ctx.get_world_rank(), ctx.get_world_size()

    def device(self) -> torch.device:
        import ray.train.torch

        return ray.train.torch.get_device()

    def prepare(self, model, **ddp_kwargs):
        import ray.train.torch

        if ddp_kwargs:
            return ray.train.torch.prepare_model(model, parallel_strategy_kwargs=ddp_kwargs)
        return ray.train.torch.prepare_model(model)  # moves to device, wraps in DDP if world > 1

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def restored(self):
        """Context manager: the directory of the checkpoint to resume from, or None."""
        import ray.train

        ckpt = ray.train.get_checkpoint()
        return nullcontext(None) if ckpt is None else ckpt.as_directory()

    def report(self, metrics: dict, directory: str | None = None) -> None:
        import ray.train

        ckpt = ray.train.Checkpoint.from_directory(directory) if directory is not None else None
        ray.train.report(metrics, checkpoint=ckpt)


class Session(Protocol):
    """What the worker loop needs from its runtime."""

    def world(self) -> tuple[int, int]:
        """(rank, world size)."""
        ...

    def device(self) -> torch.device: ...

    def prepare(self, model, **ddp_kwargs):
        """The model on this worker's device (wrapped in DDP where the world is larger than one)."""
        ...

    def node(self) -> str:
        """The Ray node (or ``local``) this worker runs on."""
        ...

    def restored(self):
        """Context manager: the directory of the checkpoint to resume from, or None."""
        ...

    def report(self, metrics: dict, directory: str | None = None) -> None:
        """One epoch's metrics, with its checkpoint directory on rank 0."""
        ...


class CheckpointDir:
    """A stage's one checkpoint in a local folder, replaced by renames (never half written)."""

    def __init__(self, path: str | None):
        self.path = path

    @contextmanager
    def restored(self):
        """The checkpoint; if the process died while replacing it, the previous one (put back)."""
        d = self.path
        if d is not None and not Path(d).exists() and (Path(d + OLD) / "state.pt").is_file():
            Path(d + OLD).rename(d)
        yield d if d is not None and (Path(d) / "state.pt").is_file() else None

    def save(self, metrics: dict, directory: str) -> None:
        """Copy ``directory`` (with ``metrics``) in as the checkpoint."""
        if self.path is None:
            return
        tmp = tempfile.mkdtemp(dir=Path(self.path).parent)
        try:
            shutil.copytree(directory, tmp, dirs_exist_ok=True)
            (Path(tmp) / METRICS).write_text(json.dumps(metrics, default=float))
        except BaseException:  # a full disk: give back what the partial copy took
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        # Replace by renames, so a process killed at any point leaves a whole checkpoint
        # (``restored`` falls back to the previous one): current -> old, new -> current.
        current, old = Path(self.path), Path(self.path + OLD)
        if current.exists():
            shutil.rmtree(old, ignore_errors=True)
            current.rename(old)
        Path(tmp).rename(current)
        shutil.rmtree(old, ignore_errors=True)

    def saved_metrics(self) -> dict:
        """The report saved with the checkpoint ({} without one)."""
        saved = Path(self.path or "", METRICS)
        return json.loads(saved.read_text()) if self.path and saved.is_file() else {}


class LocalSession:
    """One worker in this process; no Ray, no DDP."""

    def __init__(self, device: str | torch.device = "cpu", checkpoint_dir: str | None = None):
        self._device = torch.device(device)
        self.checkpoint_dir = checkpoint_dir
        self.checkpoints = CheckpointDir(checkpoint_dir)
        self.reports: list[dict] = []

    def world(self) -> tuple[int, int]:
        return 0, 1

    def device(self) -> torch.device:
        return self._device

    def prepare(self, model, **ddp_kwargs):
        return model.to(self._device)

    def node(self) -> str:
        return "local"

    def restored(self):
        return self.checkpoints.restored()

    def report(self, metrics: dict, directory: str | None = None) -> None:
        self.reports.append(dict(metrics))
        if directory is not None:
            self.checkpoints.save(metrics, directory)

    def last_metrics(self) -> dict:
        """The last report; after a resume that found every epoch done (so nothing was
        reported), the report saved with the last checkpoint."""
        return self.reports[-1] if self.reports else self.checkpoints.saved_metrics()


class TrialSession:
    """One worker in the Tune trial's process: a ``LocalSession`` (its checkpoint, its
    reports) whose reports also go to Tune (``to_tune``: the stage whose epochs ASHA and
    MLflow see), on the Ray node the trial runs on."""

    def __init__(self, device: str | torch.device, checkpoint_dir: str, to_tune: bool):
        self.local = LocalSession(device, checkpoint_dir)
        self.to_tune = to_tune

    @property
    def reports(self) -> list[dict]:
        return self.local.reports

    def world(self) -> tuple[int, int]:
        return self.local.world()

    def device(self) -> torch.device:
        return self.local.device()

    def prepare(self, model, **ddp_kwargs):
        return self.local.prepare(model)

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def restored(self):
        return self.local.restored()

    def report(self, metrics: dict, directory: str | None = None) -> None:
        self.local.report(metrics, directory)  # the checkpoint first: what Tune sees is resumable
        if self.to_tune:
            import ray.tune

            ray.tune.report(metrics)

    def last_metrics(self) -> dict:
        return self.local.last_metrics()
