"""The optimiser and learning-rate schedule of every stage, built as XTREME-R's scripts build them.

``third_party/run_classify.py``, ``run_tag.py``, ``run_squad.py`` and ``run_retrieval_qa.py``
(google-research/xtreme) all do the same: AdamW (eps 1e-8) over two parameter groups, where
biases and LayerNorm weights get no weight decay and every other weight gets
``training.weight_decay``; then ``get_linear_schedule_with_warmup``: the rate rises linearly
from 0 over the warm-up steps and falls linearly to 0 at the last step. The schedule here *is*
that function (``transformers.get_linear_schedule_with_warmup``), so it cannot drift from it.

The benchmark picks the no-decay parameters by name (``"bias"`` or ``"LayerNorm.weight"`` in
the name). On BERT and XLM-R that is exactly the biases and the weights of ``nn.LayerNorm``
modules; an architecture that names its norms otherwise (DistilBERT's ``sa_layer_norm``) would
have its norms decayed by the name rule, so the rule here is by module type as well as by name:
a parameter is undecayed when its name says bias or LayerNorm weight, or it is the weight of a
normalisation module. ``tests/test_golden_protocol.py`` checks the grouping against the
benchmark's own lines on BERT- and XLM-R-format models.

On CUDA AdamW runs ``fused=True`` (one kernel for all parameters; ``trainables.performance``);
on CPU PyTorch's default (``foreach``).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup

NO_DECAY_NAMES = ("bias", "LayerNorm.weight")
"""The benchmark's name rule for parameters trained without weight decay."""
NORM_TYPES = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)


def undecayed(model: nn.Module) -> set[str]:
    """Names of the parameters AdamW trains without weight decay: biases and normalisation weights."""
    names = {n for n, _ in model.named_parameters() if any(k in n for k in NO_DECAY_NAMES)}
    for prefix, module in model.named_modules():
        if isinstance(module, NORM_TYPES):
            names.update(f"{prefix}.{n}" if prefix else n for n, _ in module.named_parameters(recurse=False))
    return names


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """The two AdamW groups: decayed weights, then biases and normalisation weights (decay 0)."""
    skip = undecayed(model)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [{"params": [p for n, p in named if n not in skip], "weight_decay": weight_decay},
            {"params": [p for n, p in named if n in skip], "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.Optimizer:
    """AdamW over ``param_groups``; fused (one kernel for all parameters) on CUDA."""
    kwargs = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, eps=1e-8, **kwargs)


def linear_schedule(optimizer: torch.optim.Optimizer, steps: int, warmup_ratio: float,
                    warmup_steps: int | None = None):
    """Linear warm-up from 0 over ``warmup_steps`` (else ``int(warmup_ratio * steps)``) steps, then
    linear decay to 0 at ``steps``."""
    warmup = warmup_steps if warmup_steps is not None else int(warmup_ratio * steps)
    return get_linear_schedule_with_warmup(optimizer, warmup, steps)
