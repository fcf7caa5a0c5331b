"""The GPU benchmark: model FLOPs utilisation of fine-tuning against the device's measured
dense bf16 matmul rate (see ``run.py``)."""

from __future__ import annotations

import platform
import statistics
import time

import torch
from harness import Setup, row

from trainables import performance as perf
from trainables.loop import train_step
from trainables.mixing import Part
from trainables.optimiser import build_optimizer
from trainables.robust import build_method
from trainables.tasks import family, target_task
from trainables.tasks.base import TaskModel

# ---- gpu_mfu ------------------------------------------------------------------------------------

def matmul_rate(device: torch.device, n: int = 8192, reps: int = 20) -> float:
    """Dense bf16 matmul FLOP/s of the device, measured."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n ** 3 * reps / (time.perf_counter() - t0)


def train_flops_per_step(config, batch: int, seq: int) -> float:
    """Matmul FLOPs of one training step (forward + backward = 3x forward) of a BERT-like
    encoder: the linear layers (2 FLOPs per weight per token) and attention scores and mixing
    (2 x 2 x seq^2 x hidden per sequence and layer); embeddings are lookups."""
    h, f, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    linear = layers * (4 * h * h + 2 * h * f)
    forward = 2 * batch * seq * linear + layers * batch * 4 * seq * seq * h
    return 3 * forward


def gpu_mfu(device: torch.device, compile_: bool = False, size: dict | None = None, batch: int = 32,
            seq: int = 128, steps: int = 20, matmul_n: int = 8192) -> tuple[float, float, str]:
    """(achieved FLOP/s, measured peak FLOP/s, note) of fine-tuning an XLM-R-base-shaped encoder."""
    from transformers import XLMRobertaConfig, XLMRobertaModel

    size = size or {}
    config = XLMRobertaConfig(attn_implementation="sdpa", **size)
    torch.manual_seed(0)
    encoder = XLMRobertaModel(config, add_pooling_layer=False)
    fam, task = family("classification"), target_task("xnli")
    model = TaskModel(encoder, fam.head(encoder, task)).to(device)
    if compile_:
        encoder.compile(dynamic=False)
    amp = perf.autocast_dtype("bf16", device)
    opt = build_optimizer(model, 2e-5, 0.01, device)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0)
    part, method = Part("xnli", task, fam, []), build_method("none", 0.0)
    data = {"input_ids": torch.randint(5, config.vocab_size, (batch, seq), device=device),
            "attention_mask": torch.ones(batch, seq, dtype=torch.long, device=device),
            "labels": torch.randint(0, 3, (batch,), device=device)}

    def run(n):
        for _ in range(n):
            train_step(model, model, method, part, data, opt, sched, 1.0, 1, amp)

    run(3 if not compile_ else 6)  # warm-up (and compilation)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    run(steps)
    if device.type == "cuda":
        torch.cuda.synchronize()
    achieved = train_flops_per_step(config, batch, seq) * steps / (time.perf_counter() - t0)
    peak = matmul_rate(device, matmul_n)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    note = (f"{name}; XLM-R-base shape ({config.num_hidden_layers} layers, hidden {config.hidden_size}), "
            f"batch {batch} x {seq}, bf16 autocast, SDPA, fused AdamW{', torch.compile' if compile_ else ''}; "
            f"{achieved / 1e12:.1f} of {peak / 1e12:.1f} TFLOP/s (measured {matmul_n}^2 bf16 matmul)")
    return achieved, peak, note


def bench_gpu_mfu(s: Setup, repeats: int) -> dict[str, dict]:
    out = {}
    for name, comp in (("gpu_mfu", False), ("gpu_mfu_compile", True)):
        runs = [gpu_mfu(s.device, comp, steps=10 if s.quick else 30) for _ in range(repeats)]
        achieved = statistics.median(r[0] for r in runs)
        peak = statistics.median(r[1] for r in runs)
        out[name] = row(achieved / 1e12, peak / 1e12, achieved / peak, "TFLOP/s", runs[0][2],
                        "ratio = ours / baseline >= 0.35", achieved / peak >= 0.35)
    return out
