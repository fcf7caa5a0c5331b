"""The fast paths of a training stage, and the switches that turn them off.

Every knob is a ``training.*`` key of the space file; the defaults are the fast path, the
other values the plain path the benchmarks and the equality test compare against
(``benchmarks/run.py``, ``tests/test_performance.py``):

=====================  ==================================================================
``group_by_length``    ``true``: training batches group examples of similar length
                       (``trainables.batching.BatchSchedule``: mega-batches of
                       ``MEGABATCH`` global batches are sorted by length, cut into
                       batches, and the batch order is shuffled; HF's
                       ``LengthGroupedSampler`` does the same), so dynamic padding pads
                       little. Evaluation is always one length-sorted pass.
``precision``          ``auto``: bf16 autocast on a CUDA device that supports it, fp32
                       elsewhere (bf16 autocast on a CPU without AMX is slower than fp32).
                       ``bf16`` forces it (on CPU too), ``fp32`` turns it off. Weights
                       and optimiser state stay fp32; bf16 needs no loss scaling.
``attention``          ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention``
                       (flash / memory-efficient kernels on GPU), ``eager``: the
                       architecture's own matmul-softmax-matmul. Architectures without
                       SDPA support fall back to eager.
``compile``            ``false`` by default: ``torch.compile`` of the encoder (in place,
                       so checkpoints keep their parameter names; ``dynamic=True`` so
                       dynamic padding does not recompile per length). It pays only
                       for long stages on GPU, where the one-off compile time (tens of
                       seconds) is amortised; on CPU it does not.
=====================  ==================================================================

On CUDA the optimiser (``trainables.optimiser``) is AdamW with ``fused=True`` (one kernel
for all parameters); on CPU it is PyTorch's default (``foreach``).
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from trainables import schema as N

MEGABATCH = 50
"""Global batches per length-sorted group (as in HF's ``LengthGroupedSampler``)."""

def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``training.precision`` on ``device`` (None: full fp32)."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Context manager: bf16 autocast on ``device``, or nothing."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def maybe_compile(encoder: torch.nn.Module, compile: bool) -> torch.nn.Module:
    """``training.compile``: ``torch.compile`` the encoder in place (names unchanged)."""
    if compile:
        encoder.compile(dynamic=True)
    return encoder


def compute_info(device: torch.device, dtype: torch.dtype | None, encoder) -> dict[str, float]:
    """Numbers for the stage's first report: which fast paths ran."""
    return {N.perf_metric("bf16"): float(dtype == torch.bfloat16),
            N.perf_metric("sdpa"): float(getattr(encoder.config, "_attn_implementation", "eager") == "sdpa"),
            N.perf_metric("cuda"): float(device.type == "cuda")}
