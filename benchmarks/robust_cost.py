"""Cost of robust training per optimisation step, as a ratio to plain fine-tuning.

    python benchmarks/robust_cost.py [--quick] [--device cpu|cuda] [--json FILE]

Same model, same batch, same optimiser; each method's training step (loss, backward,
optimiser step) is timed over ``--steps`` steps after warm-up, and the median is divided by
the median of ``none`` measured in the same run. Budget for adversarial training with K PGD
steps: at most K + 1 plain steps. It spends K attack passes (forward, and backward to the
perturbation only: no parameter gradients, no optimiser work) plus one forward/backward over
the clean and perturbed batch stacked (2x the rows). FreeLB spends K forward/backward passes
into the parameters, the first over the clean and perturbed batch stacked; perturbing the
output of layer k skips the attack passes' work below k. With delta_0 = 0 and adv_weight < 1
(the default), the first attack pass is the clean pass (K - 1 attack passes and two plain
passes). Measured on 2 CPU cores by ``benchmarks/run.py --quick`` (a median-length real batch):
K=1 1.9x, K=2 2.5x, K=3 3.1x. This script, --quick, two runs on 2 CPU cores, with the
clean-first pass: K=1 1.5x, K=2 2.1-2.2x, K=3 2.4-2.8x (layer 1: 2.1-2.6x), FreeLB K=2
2.1-2.2x, FreeLB K=3 2.7-2.8x, RS-RP with one copy 1.0x; before it: K=1 2.1x, K=2 2.5x,
K=3 3.0x, FreeLB K=2 2.4x, FreeLB K=3 3.3x, RS-RP 1.1x.

The model is a BERT encoder built from a config (no download): ``--quick`` a 2-layer,
hidden-128 model on a 16 x 64 batch (seconds on a CPU), otherwise BERT-base size on 32 x 128.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import BertConfig, BertModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainables.robust import build_method  # noqa: E402
from trainables.tasks import family, target_task  # noqa: E402
from trainables.tasks.base import TaskModel  # noqa: E402

CASES = [("none", 0.0, {}), ("rs_rp", 0.05, {"copies": 1}), ("adversarial", 0.05, {"steps": 1}),
         ("adversarial", 0.05, {"steps": 2}), ("adversarial", 0.05, {"steps": 3}),
         ("adversarial", 0.05, {"steps": 3, "layer": 1}), ("adversarial", 0.05, {"steps": 2, "freelb": True}),
         ("adversarial", 0.05, {"steps": 3, "freelb": True})]


def case_name(key: str, options: dict) -> str:
    if key != "adversarial":
        return key
    return f"adversarial_K{options['steps']}" + ("_freelb" if options.get("freelb") else "") + \
        (f"_layer{options['layer']}" if options.get("layer") else "")


def method_step_times(model, encoder, batch: dict, fam, cases, steps: int, device) -> list[float]:
    """Median seconds per training step (loss, backward, optimiser step) of each
    ``(method, magnitude, options)`` case, after 2 warm-up steps, on the same model and batch."""
    device = torch.device(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    out = []
    for key, magnitude, options in cases:
        method = build_method(key, magnitude, options)
        times = []
        for i in range(steps + 2):  # 2 warm-up steps
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss, _ = method.loss(model, encoder.get_input_embeddings(), batch, fam.loss)
            if not getattr(method, "backpropagates", False):
                loss.backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 2:
                times.append(time.perf_counter() - t0)
        out.append(statistics.median(times))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--json")
    args = p.parse_args(argv)
    size = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256) if args.quick \
        else dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    batch_size, length = (16, 64) if args.quick else (32, 128)
    steps = args.steps or (5 if args.quick else 20)
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=30000, **size), add_pooling_layer=False)
    fam = family("classification")
    model = TaskModel(encoder, fam.head(encoder, target_task("xnli"))).to(args.device)
    batch = {"input_ids": torch.randint(5, 30000, (batch_size, length)),
             "attention_mask": torch.ones(batch_size, length, dtype=torch.long),
             "token_type_ids": torch.zeros(batch_size, length, dtype=torch.long),
             "labels": torch.randint(0, 3, (batch_size,))}
    batch = {k: v.to(args.device) for k, v in batch.items()}
    times = method_step_times(model, encoder, batch, fam, CASES, steps, args.device)
    results = {case_name(k, o): t for (k, _, o), t in zip(CASES, times)}
    base = results["none"]
    report = {"device": args.device, "model": size, "batch": [batch_size, length], "steps": steps,
              "seconds_per_step": results,
              "ratio_to_none": {k: v / base for k, v in results.items()},
              "budget_ratio": {case_name(k, o): o["steps"] + 1 for k, _, o in CASES if k == "adversarial"}}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
