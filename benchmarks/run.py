"""Performance benchmarks: every fast path against its baseline, measured in one process.

    python benchmarks/run.py [--quick] [--json FILE] [--only NAME,...] [--device cpu|cuda]

Each benchmark times ours and its baseline in the same run, alternating them, and reports the
median of several repeats after a warm-up. The JSON is ``{name: {"ours", "baseline", "ratio",
"unit", "note", "goal", "meets_goal"}}``; the table printed at the end says the same. No test
asserts a timing: CI runs ``--quick`` and keeps the output as a log (``.ci/run``).

==========================  ============================================  =====================
name                        ours vs baseline                              goal
==========================  ============================================  =====================
``train_step_throughput``   examples/s of our training steps (length-     ratio >= 1.3
                            grouped batches, dynamic padding, SDPA; bf16
                            and fused AdamW on GPU) vs HF ``Trainer``
                            with its defaults on the same model, data,
                            batch size and max length (inputs padded to
                            max length, as ``run_glue.py`` does)
``padding_waste``           pad tokens / batch tokens of our training     ours <= 0.10
                            and evaluation batches vs pad-to-max-length
``eval_all_languages``      one length-sorted pass over every language    ratio >= 1.0; note:
                            vs one evaluation per language                cost per token
``trial_overhead``          a one-trial ``xlt-sweep`` (subprocess: Ray,   ours - baseline
                            Tune, MLflow; one worker, so the stage        <= 15 s on CPU
                            trains in the trial's process) vs the same
                            stages in this process (``LocalExecutor``);
                            ``trial_overhead_train``: the same with
                            ``resources.executor: train`` (TorchTrainer)
``trial_reuse``             a 6-trial sweep (2 at a time) with trial      speed-up >= 1.2
                            processes reused (``resources.reuse_
                            processes``) vs a fresh process per trial
``tracking_cost_sqlite``    one trial's metrics logged as the sweep       ratio >= 10
``tracking_cost_server``    does (``log_batch``) vs one ``log_metric``
                            call per metric; sqlite store / a real
                            ``mlflow server`` on 127.0.0.1
``adversarial_overhead_K*`` step time of ``adversarial`` with K PGD       ratio <= 1.1 (K+1)
                            steps vs ``none``
``gpu_mfu`` (GPU only)      model FLOPs utilisation of fine-tuning an     ratio >= 0.35
                            XLM-R-base-shaped encoder (bf16, length 128)
                            vs the device's measured dense bf16 matmul
                            rate; ``gpu_mfu_compile`` with torch.compile
==========================  ============================================  =====================

Data: realistic lengths without a download. Sentence pairs are built from the XQuAD fixture
(``tests/fixtures/xquad`` in the repository): a Wikipedia sentence of a paragraph
as premise, a question as hypothesis (MNLI-like lengths, about 45 tokens, a long tail), in
the 12 XQuAD languages for evaluation and in English for training. The tokenizer is a
WordPiece trained on those texts on the spot; the model is a BERT built from a config and
saved, then loaded with ``from_pretrained`` as a real checkpoint is (on CPU 4 layers, hidden
256; on GPU BERT-base size).
"""


from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu import bench_gpu_mfu, gpu_mfu, train_flops_per_step  # noqa: E402,F401  (tests read the last two here)
from harness import Setup, row  # noqa: E402
from stage_speed import (  # noqa: E402
    bench_adversarial,
    bench_eval_all_languages,
    bench_padding_waste,
    bench_train_step_throughput,
)
from sweep_cost import bench_tracking, bench_trial_overhead, bench_trial_reuse, mlflow_server  # noqa: E402

# ---- driver -------------------------------------------------------------------------------------

def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.platform()}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
            f"{gpu}; python {platform.python_version()}, torch {torch.__version__}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="CI size: under 5 minutes on 2 CPU cores")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--only", help="comma-separated benchmark names (prefixes: tracking_cost, adversarial)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=None)
    args = p.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    only = set(args.only.split(",")) if args.only else None

    def wanted(name: str) -> bool:
        return only is None or any(name.startswith(o) for o in only)

    torch.set_num_threads(max(1, min(os.cpu_count() or 1, 2 if args.device == "cpu" else 16)))
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="xlt-bench-"))
    results: dict[str, dict] = {}
    print(f"machine: {machine()}", flush=True)
    try:
        s = Setup(args.device, args.quick, work)
        plan = [("padding_waste", bench_padding_waste), ("train_step_throughput", bench_train_step_throughput),
                ("eval_all_languages", bench_eval_all_languages), ("adversarial_overhead", bench_adversarial),
                ("tracking_cost_sqlite", lambda s, r: bench_tracking(s, r, f"sqlite:///{work}/bench.db", "sqlite")),
                ("tracking_cost_server", None), ("trial_overhead", bench_trial_overhead),
                ("trial_reuse", bench_trial_reuse)]
        if s.device.type == "cuda":
            plan.append(("gpu_mfu", bench_gpu_mfu))
        for name, fn in plan:
            if not wanted(name):
                continue
            t0 = time.perf_counter()
            print(f"== {name}", flush=True)
            try:
                if name == "tracking_cost_server":
                    proc, uri = mlflow_server(work)
                    try:
                        got = bench_tracking(s, repeats, uri, "mlflow server (HTTP, sqlite backend)")
                    finally:
                        proc.terminate()
                        proc.wait(30)
                else:
                    got = fn(s, repeats)
            except Exception as e:  # one broken benchmark must not hide the others
                got = row(None, None, None, "", f"failed: {type(e).__name__}: {e}"[:2000], "", False)
            results.update(got if "ours" not in got else {name: got})
            print(f"   {time.perf_counter() - t0:.1f} s", flush=True)
        if not any(k.startswith("gpu_mfu") for k in results) and wanted("gpu_mfu"):
            results["gpu_mfu"] = row(None, None, None, "TFLOP/s", "skipped: no GPU on this machine",
                                     "ratio = ours / baseline >= 0.35", None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table(results))
    print(f"machine: {machine()}\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def table(results: dict) -> str:
    lines = ["| benchmark | ours | baseline | ratio | unit | goal | met |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        met = {True: "yes", False: "no", None: "-"}[r["meets_goal"]]
        lines.append(f"| {name} | {_fmt(r['ours'])} | {_fmt(r['baseline'])} | {_fmt(r['ratio'])} | {r['unit']} "
                     f"| {r['goal']} | {met} |")
    lines += ["", *(f"- {name}: {r['note']}" for name, r in results.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
