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
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from robust_cost import method_step_times  # noqa: E402

from trainables import performance as perf  # noqa: E402
from trainables.batching import BatchSchedule, collate  # noqa: E402
from trainables.evaluation import run_eval  # noqa: E402
from trainables.loop import train_step  # noqa: E402
from trainables.mixing import Part  # noqa: E402
from trainables.models import load_encoder, train_wordpiece  # noqa: E402
from trainables.robust import build_method  # noqa: E402
from trainables.stage_data import EvalSet  # noqa: E402
from trainables.tasks import family, target_task  # noqa: E402
from trainables.tasks.base import Encoding, TaskModel, feature_lengths  # noqa: E402
from trainables.tasks.classification import PairExample  # noqa: E402

LANGS = ["en", "ar", "de", "el", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"]
MAX_LENGTH = 128
SENTENCE = re.compile(r"(?<=[.!?。।؟])\s*")


def fixtures() -> Path:
    return ROOT / "tests" / "fixtures" / "xquad"


def xquad_pairs(lang: str, every_sentence: bool = False) -> list[PairExample]:
    """(sentence of a paragraph, question) pairs: each question with one sentence of its own
    paragraph, or (``every_sentence``) with every sentence of every paragraph."""
    data = json.loads((fixtures() / f"xquad.{lang}.json").read_text(encoding="utf-8"))
    paragraphs = [p for a in data["data"] for p in a["paragraphs"]]
    sentences = [[s for s in SENTENCE.split(p["context"]) if s.strip()] or [p["context"]] for p in paragraphs]
    every = [s for ss in sentences for s in ss]
    out = []
    for k, p in enumerate(paragraphs):
        for i, qa in enumerate(p["qas"]):
            picks = every if every_sentence else [sentences[k][i % len(sentences[k])]]
            out += [PairExample(s, qa["question"], (i + j) % 3) for j, s in enumerate(picks)]
    return out


class Setup:
    """Tokenizer, model checkpoint, features: built once, shared by the benchmarks."""

    def __init__(self, device: str, quick: bool, work: Path):
        self.device, self.quick, self.work = torch.device(device), quick, work
        texts = [t for lang in LANGS for e in xquad_pairs(lang) for t in (e.premise, e.hypothesis)]
        self.tokenizer = train_wordpiece(texts, 12000, 512)
        from transformers import BertConfig, BertModel

        size = (dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)
                if self.device.type == "cpu" else dict(hidden_size=768, num_hidden_layers=12,
                                                      num_attention_heads=12, intermediate_size=3072))
        torch.manual_seed(0)
        self.model_dir = str(work / "model")
        BertModel(BertConfig(vocab_size=len(self.tokenizer), max_position_embeddings=512, **size),
                  add_pooling_layer=False).save_pretrained(self.model_dir)
        self.tokenizer.save_pretrained(self.model_dir)
        self.size = size
        self.fam, self.task = family("classification"), target_task("xnli")
        enc = Encoding(MAX_LENGTH, 128, 64)
        train = xquad_pairs("en", every_sentence=True)
        self.train = self.fam.encode(self.tokenizer, train, enc, True)
        self.eval_sets = []
        for lang in LANGS:
            ex = xquad_pairs(lang)
            self.eval_sets.append(EvalSet(f"xquad-pairs/{lang}", self.task, lang, ex,
                                          self.fam.encode(self.tokenizer, ex, enc, False)))
        self.batch_size = 32

    def model(self, attention: str = "sdpa") -> TaskModel:
        torch.manual_seed(0)
        encoder = load_encoder(self.model_dir, attention=attention)
        return TaskModel(encoder, self.fam.head(encoder.config.hidden_size, self.task)).to(self.device)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def median_of(fn, repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    values = [fn() for _ in range(repeats)]
    return statistics.median(values), values


def row(ours, baseline, ratio, unit: str, note: str, goal: str, meets: bool | None) -> dict:
    """One result. ``ratio`` is the figure the goal is stated on: ours / baseline for rates and
    step-time multiples, baseline / ours (a speed-up) for "cheaper" and "faster" goals."""
    return {"ours": ours, "baseline": baseline, "ratio": ratio, "unit": unit, "note": note, "goal": goal,
            "meets_goal": meets}


# ---- train_step_throughput ------------------------------------------------------------------

def ours_throughput(s: Setup, steps: int) -> float:
    """Examples/s of our training steps: the loop's schedule, collate and ``train_step``."""
    model = s.model()
    amp = perf.autocast_dtype("auto", s.device)
    part = Part("xnli", s.task, s.fam, s.train)
    method = build_method("none", 0.0)
    s.sync()
    t0 = time.perf_counter()
    optimizer = perf.optimizer(model.parameters(), 2e-5, 0.01, s.device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 1.0)
    schedule = BatchSchedule([len(s.train)], s.batch_size, 1, 0, 0, "proportional", [feature_lengths(s.train)])
    done, epoch = 0, 0
    while done < steps:
        for _, idx in schedule.epoch(epoch)[:steps - done]:
            batch = {k: v.to(s.device, non_blocking=True) for k, v in collate(part, idx, 0).items()}
            train_step(model, model, method, part, batch, optimizer, scheduler, 1.0, 1, amp)
            done += 1
        epoch += 1
    s.sync()
    return steps * s.batch_size / (time.perf_counter() - t0)


class _LossModel(torch.nn.Module):
    """Our model with the family's loss, in the shape ``Trainer`` trains (returns a loss)."""

    def __init__(self, model, fam):
        super().__init__()
        self.model, self.fam = model, fam

    def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None):
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return {"loss": self.fam.loss(logits, {"labels": labels}), "logits": logits}


def trainer_throughput(s: Setup, steps: int) -> float:
    """Examples/s of ``transformers.Trainer.train`` with its defaults on the same model and
    data, inputs padded to max length and collated by ``default_data_collator``."""
    import datasets
    from transformers import Trainer, TrainingArguments, default_data_collator

    pad = s.tokenizer.pad_token_id
    fill = {"input_ids": pad, "token_type_ids": 0, "attention_mask": 0}
    rows = [{**{k: f[k] + [v] * (MAX_LENGTH - len(f[k])) for k, v in fill.items() if k in f},
             "labels": f["labels"]} for f in s.train]
    args = TrainingArguments(output_dir=str(s.work / "trainer"), per_device_train_batch_size=s.batch_size,
                             max_steps=steps, learning_rate=2e-5, report_to="none", save_strategy="no",
                             logging_strategy="no", disable_tqdm=True, use_cpu=s.device.type == "cpu", seed=0)
    trainer = Trainer(model=_LossModel(s.model(), s.fam), args=args, train_dataset=datasets.Dataset.from_list(rows),
                      data_collator=default_data_collator)
    s.sync()
    t0 = time.perf_counter()
    trainer.train()
    s.sync()
    return steps * s.batch_size / (time.perf_counter() - t0)


def bench_train_step_throughput(s: Setup, repeats: int) -> dict:
    steps = 12 if s.quick else 40
    ours, baseline = [], []
    for i in range(repeats + 1):  # the first of each is the warm-up
        o, b = ours_throughput(s, steps), trainer_throughput(s, steps)
        if i:
            ours.append(o)
            baseline.append(b)
    o, b = statistics.median(ours), statistics.median(baseline)
    lengths = feature_lengths(s.train)
    note = (f"{steps} steps x batch {s.batch_size}, max length {MAX_LENGTH}, {len(s.train)} English pairs "
            f"(mean {statistics.mean(lengths):.0f} tokens); model {s.size}; Trainer defaults "
            f"(fp32, pad to max length)")
    return row(o, b, o / b, "examples/s", note, "ratio = ours / baseline >= 1.3", o / b >= 1.3)


# ---- padding_waste ---------------------------------------------------------------------------

def _pad_fraction(widths_and_lengths: list[tuple[int, list[int]]]) -> float:
    real = sum(sum(ls) for _, ls in widths_and_lengths)
    total = sum(w * len(ls) for w, ls in widths_and_lengths)
    return 1 - real / total


def bench_padding_waste(s: Setup, repeats: int) -> dict:
    lengths = feature_lengths(s.train)
    schedule = BatchSchedule([len(s.train)], s.batch_size, 1, 0, 0, "proportional", [lengths])
    train = [(max(lengths[i] for i in idx), [lengths[i] for i in idx]) for _, idx in schedule.epoch(0)]
    ev = sorted(n for es in s.eval_sets for n in feature_lengths(es.features))
    evb = [(max(ev[i:i + 128]), ev[i:i + 128]) for i in range(0, len(ev), 128)]
    ours = _pad_fraction(train + evb)
    base = _pad_fraction([(MAX_LENGTH, ls) for _, ls in train + evb])
    plain = BatchSchedule([len(s.train)], s.batch_size, 1, 0, 0, "proportional")
    dyn = _pad_fraction([(max(lengths[i] for i in idx), [lengths[i] for i in idx]) for _, idx in plain.epoch(0)])
    note = (f"train (length-grouped, batch {s.batch_size}) {_pad_fraction(train):.3f}, eval (sorted, "
            f"batch 128) {_pad_fraction(evb):.3f}; dynamic padding without grouping: {dyn:.3f}")
    return row(ours, base, ours / base, "pad fraction", note, "ours <= 0.10", ours <= 0.10)


# ---- eval_all_languages -------------------------------------------------------------------------

def bench_eval_all_languages(s: Setup, repeats: int) -> dict:
    model = s.model()
    amp = perf.autocast_dtype("auto", s.device)

    def one_pass(sets):
        s.sync()
        t0 = time.perf_counter()
        run_eval(model, s.fam, sets, 128, s.tokenizer.pad_token_id, s.device, amp=amp)
        s.sync()
        return time.perf_counter() - t0

    sets = s.eval_sets * (1 if s.quick else 4)
    ours, per_lang, single = [], [], []
    one_pass(sets)
    for _ in range(repeats):
        ours.append(one_pass(sets))
        per_lang.append(sum(one_pass([x]) for x in sets))
        single.append(one_pass(sets[:1]))
    o, b, one = statistics.median(ours), statistics.median(per_lang), statistics.median(single)
    tokens = sum(sum(feature_lengths(x.features)) for x in sets)
    one_tokens = sum(feature_lengths(sets[0].features))
    per_token = (o / tokens) / (one / one_tokens)
    note = (f"{len(sets)} sets ({len(LANGS)} languages), {tokens} tokens; cost per token of the one pass "
            f"/ cost per token of one language alone = {per_token:.2f} (1.0: no fixed cost per language)")
    return row(o, b, b / o, "s", note, "ratio = baseline / ours >= 1.0", b / o >= 1.0)


# ---- trial_overhead ----------------------------------------------------------------------------

ONE_TRIAL = """\
name: bench-one
model: {name: "builtin:tiny-bert"}
target: {task: xnli, languages: [en, de, ru, ar, hi, zh], data_dir: builtin}
intermediate: {domains: [none]}
robust: {methods: [none]}
training: {learning_rate: 2.0e-3, epochs: 2, batch_size: 32, eval_batch_size: 256, max_length: 64}
seeds: [0]
resources: {workers: 1, cpus_per_worker: 1}
"""


def bench_trial_overhead(s: Setup, repeats: int) -> dict:
    """``trial_overhead``: the default executor for one worker (the stage trains in the trial's
    process); ``trial_overhead_train``: the same sweep with ``resources.executor: train`` (a
    TorchTrainer per stage, what several workers need), for the record (once in --quick)."""
    from orchestrator.space import Cell, run_config, trial_choices
    from orchestrator.spec import load_spec
    from trainables.executors import LocalExecutor
    from trainables.trial import run_stages

    space = s.work / "one_trial.yaml"
    space.write_text(ONE_TRIAL)
    on_train = s.work / "one_trial_train.yaml"
    on_train.write_text(ONE_TRIAL.replace("cpus_per_worker: 1}", "cpus_per_worker: 1, executor: train}"))
    spec = load_spec(space)
    assert spec.resources.in_trial and not load_spec(on_train).resources.in_trial
    exe = Path(sys.executable).with_name("xlt-sweep")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "orchestrator.cli"]
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}

    def sweep(path: Path) -> float:
        storage = Path(tempfile.mkdtemp(dir=s.work))
        t0 = time.perf_counter()
        out = subprocess.run([*cmd, "--space", str(path), "--storage", str(storage)], cwd=ROOT, env=env,
                             capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if out.returncode != 0:
            raise RuntimeError(f"xlt-sweep failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        shutil.rmtree(storage, ignore_errors=True)
        return wall

    def direct() -> float:
        storage = Path(tempfile.mkdtemp(dir=s.work))
        t0 = time.perf_counter()
        run = run_config(spec, str(storage))
        choices = trial_choices(run, "none", "none", 0.0, 2e-3, 0, [], Cell("none", "none", None, None))
        run_stages(run, choices, "direct", LocalExecutor())
        wall = time.perf_counter() - t0
        shutil.rmtree(storage, ignore_errors=True)
        return wall

    ours, base, train = [], [], []
    for i in range(min(repeats, 2) + 1 if s.quick else repeats + 1):  # the first round warms up
        o, b = sweep(space), direct()
        if i:
            ours.append(o)
            base.append(b)
            if not s.quick or i == 1:  # a TorchTrainer sweep is ~30 s on 2 cores
                train.append(sweep(on_train))
    o, b, t = statistics.median(ours), statistics.median(base), statistics.median(train)
    what = (f"the one-trial sweep: tiny BERT, XNLI-style 6 languages, 2 epochs (each run on fresh "
            f"storage: the model, data and features are built in both); {os.cpu_count()} CPUs")
    return {
        "trial_overhead": row(o, b, o / b, "s", f"fixed overhead {o - b:.1f} s: process start and imports, local "
                              f"Ray start, Tune, the trial's process (imports torch and transformers), MLflow; "
                              f"one worker, so the stage trains in the trial's process (resources.executor "
                              f"auto); {what}", "ours - baseline <= 15 s (CPU)", (o - b) <= 15),
        "trial_overhead_train": row(t, b, t / b, "s", f"fixed overhead {t - b:.1f} s with resources.executor: "
                                    f"train (a Train controller and worker group per stage: multi-worker "
                                    f"trials; {len(train)} run(s)); {what}", "- (for the record)", None),
    }


# ---- tracking_cost ----------------------------------------------------------------------------

def trial_reports(languages: int = 15, epochs: int = 3) -> list[dict]:
    """What an XNLI trial with generalized evaluation reports to Tune, epoch by epoch."""
    langs = [f"l{i:02d}" for i in range(languages)]
    reports = []
    for e in range(1, epochs + 1):
        r = {"epoch": e, "global_step": 100 * e, "train/loss": 1.0 / e, "train/epoch_s": 10.0,
             "train/examples_per_s": 300.0, "train/padding_fraction": 0.05, "train/nodes": 1,
             "train/resumed_at_epoch": 0, "perf/bf16": 1.0, "perf/sdpa": 1.0, "perf/cuda": 1.0,
             "objective": 50.0 + e, "dev/xnli/en/accuracy": 50.0 + e,
             **{f"robust/{k}": 0.1 for k in ("adv_loss", "delta_norm", "delta_norm_max", "clean_loss")}}
        if e == epochs:
            r.update({f"xnli/{x}/accuracy": 40.0 for x in langs})
            r.update({f"xnli/{a}-{b}/accuracy": 35.0 for a in langs for b in langs if a != b})
            r.update({f"xnli/generalized/{a}/accuracy": 35.0 for a in langs})
            r.update({"xnli/avg/accuracy": 40.0, "xnli/score": 40.0, "xnli/generalized/avg/accuracy": 35.0})
        reports.append(r)
    return reports


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mlflow_server(work: Path) -> tuple[subprocess.Popen, str]:
    import urllib.request

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--backend-store-uri", f"sqlite:///{work}/server.db",
                             "--default-artifact-root", str(work / "server-artifacts"), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # as cluster.yaml
    uri = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(uri + "/health", timeout=1)
            return proc, uri
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("mlflow server exited")
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("mlflow server did not answer in 120 s")


def bench_tracking(s: Setup, repeats: int, uri: str, label: str) -> dict:
    from orchestrator.tracking import SweepTracker, loggable_metrics

    reports = trial_reports(15)
    tracker = SweepTracker(uri, f"bench-{label}-{os.getpid()}", "bench")
    client = tracker.client
    exp = tracker.experiment_id()

    def ours() -> float:
        run = client.create_run(exp).info.run_id
        t0 = time.perf_counter()
        for r in reports:
            tracker.log_result(run, r)
        return time.perf_counter() - t0

    def per_metric() -> float:
        run = client.create_run(exp).info.run_id
        t0 = time.perf_counter()
        for r in reports:
            m = loggable_metrics(r)
            for k, v in m.items():
                client.log_metric(run, k, v, step=int(m["global_step"]))
        return time.perf_counter() - t0

    o, _ = median_of(ours, repeats)
    b, _ = median_of(per_metric, repeats)
    n = sum(len(loggable_metrics(r)) for r in reports)
    note = f"{n} metric values in {len(reports)} reports (an XNLI trial, generalized evaluation); {label}"
    return row(o, b, b / o, "s", note, "ratio = baseline / ours >= 10", b / o >= 10)


# ---- adversarial_overhead ---------------------------------------------------------------------

def bench_adversarial(s: Setup, repeats: int) -> dict[str, dict]:
    model = s.model()
    lengths = feature_lengths(s.train)
    idx = sorted(range(len(s.train)), key=lambda i: lengths[i])[len(lengths) // 2:][:16]  # a median-length batch
    batch = {k: v.to(s.device) for k, v in s.fam.collate([s.train[i] for i in idx], 0).items()}
    cases = [("none", 0.0, {})] + [("adversarial", 0.05, {"steps": k}) for k in (1, 2, 3)]
    steps = 5 if s.quick else 20
    times = {k: [] for k in ("none", 1, 2, 3)}
    for _ in range(repeats):
        got = method_step_times(model, model.encoder, batch, s.fam, cases, steps, s.device)
        times["none"].append(got[0])
        for k, t in zip((1, 2, 3), got[1:]):
            times[k].append(t)
    none = statistics.median(times["none"])
    out = {}
    for k in (1, 2, 3):
        t = statistics.median(times[k])
        out[f"adversarial_overhead_K{k}"] = row(
            t, none, t / none, "s/step", f"PGD K={k} (L2, embedding layer), batch 16 x {batch['input_ids'].shape[1]}; "
            f"median of {repeats} x {steps} steps", f"ratio <= {1.1 * (k + 1):.1f}", t / none <= 1.1 * (k + 1))
    return out


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
    model = TaskModel(encoder, fam.head(config.hidden_size, task)).to(device)
    if compile_:
        encoder.compile(dynamic=False)
    amp = perf.autocast_dtype("bf16", device)
    opt = perf.optimizer(model.parameters(), 2e-5, 0.01, device)
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
                ("tracking_cost_server", None), ("trial_overhead", bench_trial_overhead)]
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
