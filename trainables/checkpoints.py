"""A stage's checkpoints: what an epoch saves, what a resumed stage restores, best-dev weights.

Every epoch ends with a checkpoint (rank 0) holding ``encoder/``, ``head.pt``, ``state.pt``
(optimizer, schedule, epoch, step) and ``report.json`` (the epoch's report: a resumed stage
reports it again first, so a report whose checkpoint was saved is never lost). Checkpoints are
read back with ``torch.load(weights_only=True)``: tensors and plain containers only, never
arbitrary pickles from shared storage. ``BestDev`` keeps the weights of the epoch with the best
English dev objective (``training.select: best``) and is checkpointed with the epoch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.distributed as dist

from trainables.models import load_encoder
from trainables.robust.base import unwrap


class BestDev:
    """``training.select: best``: the weights of the epoch with the best English dev objective
    (a CPU copy; the decision is rank 0's, broadcast so every rank keeps the same copy), put
    back before the final zero-shot evaluation, as the paper's protocol selects on English dev.
    The copy is checkpointed with the epoch, so a resumed stage still selects among all epochs."""

    def __init__(self):
        self.objective, self.epoch, self.state = -math.inf, None, None

    def update(self, base, objective: float | None, epoch: int, world: int) -> None:
        improved = [objective is not None and objective > self.objective]
        if world > 1:
            dist.broadcast_object_list(improved, src=0)
        if improved[0]:
            self.objective = float(objective) if objective is not None else self.objective  # weights-only loadable
            self.epoch = epoch
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in base.state_dict().items()}

    def restore_into(self, base) -> None:
        if self.state is not None:
            base.load_state_dict(self.state)

    def save(self, d: str) -> None:
        if self.state is not None:
            torch.save({"objective": self.objective, "epoch": self.epoch, "state": self.state}, Path(d) / "best.pt")

    def load(self, d: str) -> None:
        path = Path(d) / "best.pt"
        if path.is_file():
            saved = torch.load(path, weights_only=True)
            self.objective, self.epoch, self.state = saved["objective"], saved["epoch"], saved["state"]


def restore(session, model, optimizer, scheduler, best: BestDev | None = None) -> tuple[int, int, dict | None]:
    """Load the latest checkpoint if the session has one; return (next epoch, global step,
    the report saved with it or None)."""
    with session.restored() as d:
        if d is None:
            return 0, 0, None
        if (Path(d) / "diverged.json").is_file():  # only if the driver died before recording it
            raise FloatingPointError(f"this stage diverged before: {(Path(d) / 'diverged.json').read_text()}")
        base = unwrap(model)
        state = torch.load(Path(d) / "state.pt", weights_only=True)
        base.head.load_state_dict(torch.load(Path(d) / "head.pt", weights_only=True))
        base.encoder.load_state_dict(load_encoder(str(Path(d) / "encoder")).state_dict())
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if best is not None:
            best.load(d)
        report = Path(d) / REPORT
        saved = json.loads(report.read_text()) if report.is_file() else None
    return state["epoch"] + 1, state["global_step"], saved


REPORT = "report.json"
"""The epoch's report, saved in its checkpoint: a resumed stage reports it again first, so a
report whose checkpoint was saved is never lost (the MLflow callback logs each epoch once)."""


def save(model, tokenizer, optimizer, scheduler, epoch: int, step: int, d: str, best: BestDev | None,
          metrics: dict | None = None) -> None:
    """Write a stage's checkpoint to ``d``: encoder, head, optimiser and scheduler state, epoch and step, the best
    dev epoch and the report it carries."""
    base = unwrap(model)
    if metrics is not None:
        (Path(d) / REPORT).write_text(json.dumps(metrics, default=float))
    base.encoder.save_pretrained(Path(d) / "encoder")
    tokenizer.save_pretrained(Path(d) / "encoder")
    torch.save(base.head.state_dict(), Path(d) / "head.pt")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch": epoch, "global_step": step}, Path(d) / "state.pt")
    if best is not None:
        best.save(d)
