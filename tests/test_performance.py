"""The fast paths give the plain paths' results (trainables.performance, benchmarks/run.py).

A fine-tuning stage is trained once with every fast path on (length-grouped batches, SDPA, the
Arrow feature cache, one sorted evaluation pass of every language) through the same worker loop
a sweep runs (``LocalSession``). Its model is then evaluated again the plain way: one language
at a time, in file order, one example per batch (no padding at all), eager attention, and the
logits and predictions must match. Speed is measured by ``benchmarks/run.py``, never here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from configs import finetune

from trainables import performance as perf
from trainables.batching import BatchSchedule
from trainables.evaluation import run_eval, score_sets
from trainables.loop import run_stage
from trainables.models import load_encoder, load_tokenizer
from trainables.robust import build_method
from trainables.sessions import LocalSession
from trainables.stage_data import StageData
from trainables.tasks import family, target_task
from trainables.tasks.base import ArrowFeatures, TaskModel, feature_lengths

ROOT = Path(__file__).resolve().parents[1]
LANGS = ["en", "de", "ru", "ar", "hi", "zh"]


@pytest.fixture(scope="module")
def trained(tiny_model, demo_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fast")
    cfg = finetune(tiny_model, demo_dir, tmp, {
        "target": {"task": "xnli", "languages": LANGS},
        "training": {"max_length": 64, "batch_size": 16, "eval_batch_size": 64, "epochs": 2, "max_examples": 400},
        "resources": {"cpus_per_worker": 1}}, learning_rate=2e-3, seed=0)
    session = LocalSession("cpu", checkpoint_dir=str(tmp / "ckpt"))
    run_stage(cfg, session)
    return cfg, session, tmp / "ckpt"


def _model(ckpt: Path, attention: str) -> TaskModel:
    encoder = load_encoder(str(ckpt / "encoder"), attention=attention)
    model = TaskModel(encoder, family("classification").head(encoder, target_task("xnli")))
    model.head.load_state_dict(torch.load(ckpt / "head.pt", weights_only=True))
    return model.eval()


def _logits(model, fam, features, pad_id, batch_size: int, amp=None, order=None) -> torch.Tensor:
    """Head outputs of every feature (in feature order), batched in ``order``."""
    order = list(range(len(features))) if order is None else order
    out = [None] * len(features)
    with torch.no_grad():
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            batch = fam.collate([features[i] for i in idx], pad_id)
            inputs = {n: batch[n] for n in ("input_ids", "attention_mask", "token_type_ids") if n in batch}
            with perf.autocast(torch.device("cpu"), amp):
                logits = model(**inputs).float()
            for i, row in zip(idx, logits):
                out[i] = row
    return torch.stack(out)


def test_fast_path_predictions_equal_the_plain_path(trained):
    cfg, session, ckpt = trained
    final = session.reports[-1]
    assert final["perf/sdpa"] == 1.0 and final["perf/bf16"] == 0.0  # CPU, auto precision: fp32
    assert 0 <= final["train/padding_fraction"] < 0.25
    tok = load_tokenizer(str(ckpt / "encoder"))
    data = StageData(cfg, tok)
    assert all(isinstance(s.features, ArrowFeatures) for s in data.final)  # the memory-mapped cache
    fam, cpu = family("classification"), torch.device("cpu")
    fast_model, plain_model = _model(ckpt, "sdpa"), _model(ckpt, "eager")
    fast = run_eval(fast_model, fam, data.final, 64, tok.pad_token_id, cpu)  # every language, one sorted pass
    plain = {}
    for s in data.final:  # one language at a time, in order, no padding
        plain.update(run_eval(plain_model, fam, [s], 1, tok.pad_token_id, cpu, sort=False))
    fast_metrics, fast_pred = score_sets(fam, data.final, fast)
    plain_metrics, plain_pred = score_sets(fam, data.final, plain)
    assert fast_pred == plain_pred and fast_metrics == plain_metrics
    for s in data.final:  # what the stage itself reported
        assert final[f"{s.name}/accuracy"] == pytest.approx(fast_metrics[f"{s.name}/accuracy"])
        lengths = feature_lengths(s.features)
        by_length = sorted(range(len(lengths)), key=lengths.__getitem__)
        a = _logits(fast_model, fam, s.features, tok.pad_token_id, 64, order=by_length)
        b = _logits(plain_model, fam, s.features, tok.pad_token_id, 1)
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4), (s.name, (a - b).abs().max())


def test_bf16_autocast_stays_within_tolerance_of_fp32(trained):
    cfg, _, ckpt = trained
    tok = load_tokenizer(str(ckpt / "encoder"))
    data = StageData(cfg, tok)
    fam, model = family("classification"), _model(ckpt, "sdpa")
    feats = [f for s in data.final for f in s.features]
    a = _logits(model, fam, feats, tok.pad_token_id, 64)
    b = _logits(model, fam, feats, tok.pad_token_id, 64, amp=torch.bfloat16)
    assert (a - b).abs().max() < 0.1
    agree = (a.argmax(-1) == b.argmax(-1)).float().mean()
    assert agree >= 0.95, f"bf16 and fp32 agree on {agree:.2%} of predictions"
    raws = run_eval(model, fam, data.final, 64, tok.pad_token_id, torch.device("cpu"), amp=torch.bfloat16)
    assert sum(len(r) for r in raws.values()) == len(feats)


def test_a_training_step_is_the_same_with_dynamic_and_full_padding(tiny_model, demo_dir):
    """Dynamic padding and SDPA change no gradient: the same batch padded to its longest
    example (SDPA) or to max length (eager) gives the same loss and gradients."""
    tok = load_tokenizer(tiny_model)
    fam, task = family("classification"), target_task("xnli")
    feats = fam.encode(tok, fam.load(task, "train", "en", str(demo_dir))[:16], perf_enc(), True)
    grads = []
    for attention, width in (("sdpa", None), ("eager", 64)):
        torch.manual_seed(0)
        enc = load_encoder(tiny_model, attention=attention)
        model = TaskModel(enc, fam.head(enc, task)).eval()
        batch = fam.collate(feats, tok.pad_token_id)
        if width:
            pad = width - batch["input_ids"].shape[1]
            batch = {k: torch.nn.functional.pad(v, (0, pad), value=tok.pad_token_id if k == "input_ids" else 0)
                     if v.dim() == 2 else v for k, v in batch.items()}
        loss, _ = build_method("none", 0.0).loss(model, enc.get_input_embeddings(), batch, fam.loss)
        loss.backward()
        grads.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (l1, g1), (l2, g2) = grads
    assert l1 == pytest.approx(l2, rel=1e-5)
    for n in g1:
        assert torch.allclose(g1[n], g2[n], atol=1e-5, rtol=1e-4), n


def perf_enc():
    from trainables.tasks.base import Encoding

    return Encoding(64, 128, 64)


@pytest.mark.parametrize("world", [1, 2])
def test_length_grouped_schedule_sees_every_example_once_and_pads_less(world):
    lengths = [(i * 37) % 120 + 5 for i in range(1000)]
    grouped = [BatchSchedule([1000], 16, world, r, 3, "proportional", [lengths]) for r in range(world)]
    plain = [BatchSchedule([1000], 16, world, r, 3, "proportional") for r in range(world)]

    def waste(schedules):
        real = total = 0
        for s in schedules:
            for _, idx in s.epoch(0):
                real += sum(lengths[i] for i in idx)
                total += max(lengths[i] for i in idx) * len(idx)
        return 1 - real / total

    for epoch in (0, 1):
        seen = sorted(i for s in grouped for _, idx in s.epoch(epoch) for i in idx)
        assert seen == sorted(i for s in plain for _, idx in s.epoch(epoch) for i in idx)
        assert all(len(s.epoch(epoch)) == s.steps_per_epoch() for s in grouped)
        steps = [s.epoch(epoch) for s in grouped]
        assert all(len({len(st[k][1]) for st in steps}) == 1 for k in range(len(steps[0])))  # ranks in step
    assert grouped[0].epoch(0) != grouped[0].epoch(1)  # reshuffled every epoch
    assert waste(grouped) < 0.05 < 0.3 < waste(plain)


def test_an_in_process_stage_resumes_from_its_checkpoint(trained, tmp_path):
    """What a retried trial does with ``executor: trial`` (the checkpoint a ``LocalSession`` /
    ``TrialSession`` keeps): a resumed stage first reports again the report saved with its
    checkpoint (a process killed after saving it may never have delivered it; MLflow logs each
    epoch once), then trains what is left: nothing when every epoch is done, else the epochs
    after the last one."""
    cfg, session, ckpt = trained
    again = LocalSession("cpu", checkpoint_dir=str(tmp_path / "ckpt"))
    shutil.copytree(ckpt, again.checkpoint_dir)
    run_stage(cfg, again)
    last = json.loads(json.dumps(session.reports[-1]))
    assert again.reports == [{**last, "train/replayed": 1.0}] and again.last_metrics()["epoch"] == last["epoch"]
    Path(again.checkpoint_dir).rename(again.checkpoint_dir + ".old")  # killed while replacing it
    again.reports.clear()
    run_stage(cfg.with_schedule(epochs=3), again)
    assert [(r["epoch"], r["train/resumed_at_epoch"], r.get("train/replayed")) for r in again.reports] == [
        (2, 0, 1.0), (3, 2, None)]
    assert again.last_metrics()["global_step"] > session.reports[-1]["global_step"]
    assert not Path(again.checkpoint_dir + ".old").exists()


def test_feature_lengths_of_every_feature_shape():
    assert feature_lengths([{"input_ids": [1, 2, 3]}, {"input_ids": [[1, 2], [1, 2, 3, 4]]},
                            {"query": {"input_ids": [1]}, "positive": {"input_ids": [1, 2]}}]) == [3, 4, 2]


def test_benchmark_report_shape(tmp_path):
    """``benchmarks/run.py`` writes {name: {ours, baseline, ratio, unit, note, ...}} (the cheap
    benchmark only; CI runs --quick in full and keeps its output as a log)."""
    out = tmp_path / "bench.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--only", "padding_waste",
                    "--json", str(out)], check=True, capture_output=True, text=True, timeout=600)
    got = json.loads(out.read_text())
    assert set(got) == {"padding_waste", "gpu_mfu"} or set(got) == {"padding_waste"}
    r = got["padding_waste"]
    assert {"ours", "baseline", "ratio", "unit", "note"} <= set(r)
    assert 0 <= r["ours"] < r["baseline"] < 1 and r["ratio"] == pytest.approx(r["ours"] / r["baseline"])


def test_gpu_mfu_arithmetic_on_a_small_cpu_model():
    """The GPU benchmark's code path (bf16, fused-or-not AdamW, FLOP count), on a small CPU model."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import run as bench

    small = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                 vocab_size=1000, max_position_embeddings=64)
    achieved, peak, note = bench.gpu_mfu(torch.device("cpu"), size=small, batch=4, seq=16, steps=2, matmul_n=256)
    assert achieved > 0 and peak > 0 and "bf16 autocast" in note
    from transformers import XLMRobertaConfig

    base = XLMRobertaConfig()  # XLM-R base: 12 x (4 h^2 + 2 h f) = 85M weights in linear layers
    assert bench.train_flops_per_step(base, 1, 1) == pytest.approx(6 * 12 * (4 * 768 ** 2 + 2 * 768 * 3072)
                                                                   + 3 * 12 * 4 * 768)
