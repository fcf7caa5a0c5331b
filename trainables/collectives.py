"""Collectives a loss needs across the Train workers of a stage (DDP ranks).

``gather_across_ranks``: every rank's rows of a tensor, with gradients, for losses whose
negatives are the whole global batch (the retrieval family's in-batch negatives). Outside a
process group (one worker, the in-trial executor) it is the identity.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


class _GatherWithGrad(torch.autograd.Function):
    """``all_gather`` of equal-shaped tensors whose backward hands each rank the gradient of
    its own slice summed over every rank's loss (all_reduce, then the rank's slice): public
    collectives only, and gloo has no reduce_scatter."""

    @staticmethod
    def forward(ctx, x):
        world, rank = dist.get_world_size(), dist.get_rank()
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.rows = rank, x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


def gather_across_ranks(x: torch.Tensor) -> tuple[torch.Tensor, int, torch.Tensor | None]:
    """Every rank's rows of ``x`` (with gradients), the offset of this rank's first row, and a
    mask of real rows when the ranks' row counts differ (None when every row is real). On one
    process: ``x`` itself. DDP averages the gradients of the ranks' losses, which equals the
    gradient of the global mean loss, since each gathered row's gradient is summed back."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, 0, None
    counts = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, torch.tensor([x.shape[0]], device=x.device))
    counts = [int(c) for c in counts]
    most, rank = max(counts), dist.get_rank()
    padded = nn.functional.pad(x, (0, 0, 0, most - x.shape[0]))
    rows = _GatherWithGrad.apply(padded)
    real = torch.tensor([i < c for c in counts for i in range(most)], device=x.device)
    offset = rank * most
    return rows, offset, (None if min(counts) == most else real.unsqueeze(0))
