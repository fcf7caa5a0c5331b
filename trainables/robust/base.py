"""The robust-method interface and plain fine-tuning (``none``).

A method turns one batch into a loss. It receives the (possibly DDP-wrapped) model, which it
must call for the forward pass so gradient synchronisation still happens, the input
embedding module, so that methods which perturb embeddings compute ``inputs_embeds`` once
and call the model with them, and the task family's loss ``loss_fn(outputs, batch)``, so a
method never needs to know whether the head classifies, tags, extracts spans or embeds. It
returns the loss and a dict of diagnostics (plain floats) that the loop averages over the
epoch and reports as ``robust/<name>``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

from trainables.tasks.base import MODEL_INPUTS

LossFn = Callable[[torch.Tensor, dict[str, torch.Tensor]], torch.Tensor]


class RobustMethod(Protocol):
    key: str

    def loss(
        self, model: nn.Module, embed: nn.Embedding, batch: dict[str, torch.Tensor], loss_fn: LossFn
    ) -> tuple[torch.Tensor, dict[str, float]]: ...


def forward(model: nn.Module, batch: dict[str, torch.Tensor], **override) -> torch.Tensor:
    """Call the model with the batch's model inputs (targets excluded), overriding some."""
    inputs = {k: v for k, v in batch.items() if k in MODEL_INPUTS}
    inputs.update(override)
    if "inputs_embeds" in inputs:
        inputs.pop("input_ids", None)
    return model(**inputs)


class PlainFineTuning:
    key = "none"

    def loss(self, model, embed, batch, loss_fn):
        return loss_fn(forward(model, batch), batch), {}




def vector_norms(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """Norm of each embedding vector of a [B, L, H] perturbation: [B, L]."""
    return delta.abs().amax(-1) if norm == "linf" else delta.norm(dim=-1)


def forward_variants(model: nn.Module, batch: dict[str, torch.Tensor], embeds: list[torch.Tensor]):
    """One forward pass over several ``inputs_embeds`` variants of the same batch, stacked along
    the batch axis (one DDP forward, one backward); returns the outputs split per variant."""
    n = len(embeds)
    inputs = {k: torch.cat([v] * n) for k, v in batch.items() if k in ("attention_mask", "token_type_ids")}
    out = model(inputs_embeds=torch.cat(embeds), **inputs)
    return list(out.chunk(n))


def build(key: str, magnitude: float, options: dict) -> RobustMethod:
    from trainables.robust.options import parse_options

    parse_options("none", options)
    return PlainFineTuning()
