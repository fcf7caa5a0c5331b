"""The robust-method interface and plain fine-tuning (``none``).

A method turns one batch into a loss. It receives the (possibly DDP-wrapped) model, which it
must call for the forward pass so gradient synchronisation still happens, the input
embedding module, so that methods which perturb embeddings compute ``inputs_embeds`` once
and call the model with them, and the task family's loss ``loss_fn(outputs, batch)``, so a
method never needs to know whether the head classifies, tags, extracts spans or embeds. It
returns the loss and a dict of diagnostics (plain floats) that the loop averages over the
epoch and reports as ``robust/<name>``.

Capabilities are declared, not probed: every method says whether it ``backpropagates`` (runs
its own backward passes and returns the loss detached, FreeLB: the loop then skips its own),
whether it ``augments`` (rewrites the English training set before features are made: RS-DA,
an ``Augmenter``) and whether it ``smooths_predictions`` (predicts by a vote over noisy
passes: RS-RP with ``smoothed_eval``, a ``Smoother``).

Perturbation sites: methods that perturb embeddings take ``layer`` (0 = input word
embeddings, k = output of transformer layer k) and go through ``perturbed_forward``, which
adds any number of perturbations to one stacked forward pass at that site.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from trainables.tasks.base import MODEL_INPUTS

LossFn = Callable[[torch.Tensor, dict[str, torch.Tensor]], torch.Tensor]


@runtime_checkable
class RobustMethod(Protocol):
    """A robust training method: the loss of a batch, and what it does besides (capabilities)."""
    key: str
    backpropagates: bool
    augments: bool
    smooths_predictions: bool

    def loss(
        self, model: nn.Module, embed: nn.Embedding, batch: dict[str, torch.Tensor], loss_fn: LossFn
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The batch's training loss and diagnostics (``robust/<name>``)."""
        ...


@runtime_checkable
class Augmenter(RobustMethod, Protocol):
    """A method that rewrites the training set (``augments`` is true)."""

    def augment(self, examples: list, family, seed: int) -> tuple[list, dict[str, float]]:
        """The augmented training examples and diagnostics."""
        ...

    def identity(self) -> list:
        """What decides the augmented data (the feature cache's key holds it)."""
        ...


@runtime_checkable
class Smoother(RobustMethod, Protocol):
    """A method that predicts by a vote over noisy passes (``smooths_predictions`` is true)."""

    def vote_outputs(self, model: nn.Module, embed: nn.Embedding, inputs: dict, choices: int | None) -> torch.Tensor:
        """Vote counts in the shape of the model's outputs."""
        ...


def forward(model: nn.Module, batch: dict[str, torch.Tensor], **override) -> torch.Tensor:
    """Call the model with the batch's model inputs (targets excluded), overriding some."""
    inputs = {k: v for k, v in batch.items() if k in MODEL_INPUTS}
    inputs.update(override)
    if "inputs_embeds" in inputs:
        inputs.pop("input_ids", None)
    return model(**inputs)


class PlainFineTuning:
    """Plain training: the family's loss on the clean batch."""

    key = "none"
    backpropagates = augments = smooths_predictions = False

    def loss(self, model, embed, batch, loss_fn):
        return loss_fn(forward(model, batch), batch), {}


def vector_norms(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """Norm of each embedding vector of a [B, L, H] perturbation: [B, L]."""
    return delta.abs().amax(-1) if norm == "linf" else delta.norm(dim=-1)


def sample_ball(shape, like: torch.Tensor, radius: float, ball: str) -> torch.Tensor:
    """Uniform draws from the ``ball`` (linf or l2) of ``radius``, one per vector of the last
    axis (L2: a uniform direction times ``radius * U^(1/d)``); torch's global generator."""
    if ball == "linf":
        return (torch.rand(shape, dtype=like.dtype, device=like.device) * 2 - 1) * radius
    direction = torch.randn(shape, dtype=like.dtype, device=like.device)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    scale = torch.rand(tuple(shape[:-1]) + (1,), dtype=like.dtype, device=like.device) ** (1.0 / shape[-1])
    return direction * scale * radius


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper, or the model itself."""
    return model.module if hasattr(model, "module") else model


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The encoder's transformer blocks, in order: the first ``nn.ModuleList`` with exactly
    ``config.num_hidden_layers`` entries (BERT/XLM-R ``encoder.layer``, DistilBERT
    ``transformer.layer``, ...)."""
    encoder = unwrap(model).encoder
    n = encoder.config.num_hidden_layers
    for _, module in encoder.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise ValueError(f"cannot find the {n} transformer layers of {type(encoder).__name__}")


def check_layer(model: nn.Module, layer: int) -> None:
    """A perturbation site must exist: 0 (input word embeddings) .. the encoder's depth."""
    n = unwrap(model).encoder.config.num_hidden_layers
    if not 0 <= layer <= n:
        raise ValueError(f"robust option layer={layer} is not a perturbation site of this encoder: 0 = input "
                         f"word embeddings, 1..{n} = output of that transformer layer")


def site_shape(model: nn.Module, batch: dict[str, torch.Tensor], layer: int, embeds: torch.Tensor | None):
    """Shape of a perturbation at ``layer``: one vector per token, [B, L, H]."""
    if layer == 0:
        return embeds.shape
    return (*batch["input_ids"].shape, unwrap(model).encoder.config.hidden_size)


def perturbed_forward(model: nn.Module, batch: dict[str, torch.Tensor], deltas: list[torch.Tensor],
                      layer: int = 0, embeds: torch.Tensor | None = None) -> list[torch.Tensor]:
    """One forward pass over ``len(deltas)`` perturbed copies of the batch, stacked along the
    batch axis (one DDP forward, one backward); returns the outputs split per copy.

    ``layer`` is the perturbation site: 0 adds ``delta`` to the input word embeddings
    ``embeds`` (then position/type embeddings and LayerNorm follow, as for any input);
    ``k >= 1`` adds it to the output of transformer layer k (the "contextual embeddings"), by a
    forward hook on that block, so every layer below runs on the clean input."""
    n = len(deltas)
    rest = {k: torch.cat([batch[k]] * n) for k in ("attention_mask", "token_type_ids") if k in batch}
    if layer == 0:
        out = model(inputs_embeds=torch.cat([embeds + d for d in deltas]), **rest)
        return list(out.chunk(n))
    added = torch.cat(deltas)

    def add(module, args, output):
        if isinstance(output, tuple):  # older transformers return (hidden, attentions, ...)
            return (output[0] + added.to(output[0].dtype), *output[1:])
        return output + added.to(output.dtype)

    handle = encoder_layers(model)[layer - 1].register_forward_hook(add)
    try:
        out = model(input_ids=torch.cat([batch["input_ids"]] * n), **rest)
    finally:
        handle.remove()
    return list(out.chunk(n))


def build(key: str, magnitude: float, options: dict) -> RobustMethod:
    """The ``none`` method: plain fine-tuning (it takes no options)."""
    from trainables.robust.options import parse_options

    parse_options("none", options)
    return PlainFineTuning()
