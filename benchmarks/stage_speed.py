"""Benchmarks inside a stage: training-step throughput, padding waste, evaluation of every
language in one pass, and the adversarial step's cost (see ``run.py`` for the table of goals)."""

from __future__ import annotations

import statistics
import time

import torch
from harness import LANGS, MAX_LENGTH, Setup, row
from robust_cost import method_step_times

from trainables import performance as perf
from trainables.batching import BatchSchedule, collate
from trainables.evaluation import run_eval
from trainables.loop import train_step
from trainables.mixing import Part
from trainables.optimiser import build_optimizer
from trainables.robust import build_method
from trainables.tasks.base import feature_lengths

# ---- train_step_throughput ------------------------------------------------------------------

def ours_throughput(s: Setup, steps: int) -> float:
    """Examples/s of our training steps: the loop's schedule, collate and ``train_step``."""
    model = s.model()
    amp = perf.autocast_dtype("auto", s.device)
    part = Part("xnli", s.task, s.fam, s.train)
    method = build_method("none", 0.0)
    s.sync()
    t0 = time.perf_counter()
    optimizer = build_optimizer(model, 2e-5, 0.01, s.device)
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
