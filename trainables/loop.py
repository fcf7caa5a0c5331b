"""The worker loop: one training stage on N workers (DDP; gloo on CPU, NCCL on GPU).

The loop reads one ``trainables.config.StageConfig`` and reaches its runtime only through a
session (``trainables.sessions``): Ray Train's in a sweep with several workers per stage,
``TrialSession`` for a one-worker stage in the Tune trial's own process, or ``LocalSession`` to
run the same stage in this process (benchmarks, tests); which one is the executor's choice
(``trainables.executors``). The fast paths (length-grouped batches, bf16 autocast, SDPA,
fused AdamW, optional ``torch.compile``) and their switches are in ``trainables.performance``;
each epoch reports
``train/padding_fraction`` (pad tokens / batch tokens) and ``perf/*`` (which fast paths ran).

Every stage runs this loop; ``StageData`` (``trainables.stage_data``) decides from
``cfg.stage`` what it trains and evaluates. The English dev score is computed after every epoch
and is the ``objective`` (zero-shot: no target-language dev data is used); after the last
epoch of ``finetune`` every target language is evaluated (``trainables.evaluation``).
Batches come from ``trainables.batching``; checkpoints from ``trainables.checkpoints``.

Model selection (``training.select``): ``last`` evaluates the last epoch's weights; ``best``
evaluates the weights of the epoch with the best English dev objective (``BestDev``; the
released code of Huang et al. 2021 keeps the best-dev checkpoint), and logs
``select/best_epoch`` and ``select/best_objective``. The stage's checkpoint (what a later
stage or a resume reads) is always the last epoch's.

Resumption: every epoch ends with a checkpoint (rank 0). A restarted worker group, or a
trial retried under the same Train run name, starts at the epoch after the last checkpoint.
Randomness is re-seeded from (seed, epoch, rank) at each epoch start, so a resumed run draws
the same data order and noise as an uninterrupted one. Every report carries
``train/resumed_at_epoch`` (0 for a fresh start) and ``train/nodes`` (distinct Ray nodes the
worker group spans).

Divergence: the step's gradient norm is taken after DDP's all-reduce, so it is the same on
every rank; when it (or, on one worker, the loss) is not finite, every rank stops together,
reports ``train/diverged`` = 1 with the step and loss (rank 0 with a marker checkpoint holding
only ``diverged.json``, as the driver reads a Train run's final metrics from its last checkpoint
report) and returns. The driver (``trainables.trial``) turns that into a trial failure with the
reason and never retrains it: retrying a deterministic divergence only burns GPU hours.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist

from trainables import performance as perf
from trainables import schema as N
from trainables.batching import BatchSchedule, collate
from trainables.checkpoints import BestDev, restore, save
from trainables.config import StageConfig
from trainables.evaluation import final_evaluation, run_eval, score_sets, smoother
from trainables.failures import deterministic
from trainables.mixing import MultiTaskModel, Part
from trainables.models import load_encoder, load_tokenizer
from trainables.optimiser import build_optimizer, linear_schedule
from trainables.robust import build_method
from trainables.robust.base import unwrap
from trainables.scoring.evaluator import task_summary
from trainables.sessions import RaySession, Session
from trainables.stage_data import StageData
from trainables.tasks.base import TaskModel, feature_lengths


def _nodes(session, world: int) -> int:
    """Distinct Ray nodes this worker group spans (placement: PACK, SPREAD, STRICT_SPREAD)."""
    node = session.node()
    if world == 1:
        return 1
    every = [None] * world
    dist.all_gather_object(every, node)
    return len(set(every))


def train_step(model, base, method, part: Part, batch: dict, optimizer, scheduler, max_grad_norm: float,
               world: int, amp: torch.dtype | None) -> tuple[float, float, dict, bool]:
    """One optimiser step (loss under autocast, backward, clip, step); returns (loss, gradient
    norm, the method's diagnostics, finite). A non-finite step is not applied."""
    optimizer.zero_grad(set_to_none=True)
    with perf.autocast(batch["input_ids"].device, amp):
        loss, d = method.loss(model, base.encoder.get_input_embeddings(), batch, part.family.loss)
    if not method.backpropagates:  # FreeLB ran its own backward passes
        loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    value, gnorm = torch.stack([loss.detach().float().to(norm.device), norm.float()]).tolist()  # one sync
    finite = math.isfinite(gnorm) and (world > 1 or math.isfinite(value))
    if finite:
        optimizer.step()
        scheduler.step()
    return value, gnorm, d, finite


def train_loop_per_worker(config: dict) -> None:
    """Ray Train's entry point (``trainables.executors.TrainExecutor``): the stage
    ``config["stage"]`` on this worker of the group."""
    run_stage(config["stage"], RaySession())


def run_stage(cfg: StageConfig, session: Session) -> None:
    """One stage on this worker. ``session``: Ray Train's, a ``TrialSession`` (in the Tune
    trial's process) or a ``LocalSession`` (the stage in this process, no Ray).

    In a Ray Train worker group (``cfg.fatal_file`` set by the executor), a deterministic
    failure (``trainables.failures``: bad data, a configuration refused at run time, a full
    storage) ends the worker normally with its reason written to that file by rank 0: raised,
    it would make Ray Train restart the worker group only to fail the same way. The driver
    raises it from the file (``TrainExecutor.fit``). Such failures happen while the stage
    loads its data and model, before any collective, identically on every rank."""
    if not cfg.fatal_file:
        return _train_loop(cfg, session)
    try:
        return _train_loop(cfg, session)
    except Exception as e:
        reason = deterministic(e, str(Path(cfg.fatal_file).parent))
        if reason is None:
            raise
        if session.world()[0] == 0:
            Path(cfg.fatal_file).parent.mkdir(parents=True, exist_ok=True)
            import traceback

            Path(cfg.fatal_file).write_text(json.dumps({"reason": reason, "traceback": traceback.format_exc()}))
        return None


def _train_loop(cfg: StageConfig, session: Session) -> None:
    rank, world = session.world()
    nodes = _nodes(session, world)
    device = session.device()
    speed, sched, opt = cfg.training.speed, cfg.schedule, cfg.training.optimiser
    torch.set_num_threads(max(1, int(cfg.cpus_per_worker)))
    tokenizer = load_tokenizer(cfg.tokenizer, cfg.trust_remote_code)
    pad_id = tokenizer.pad_token_id
    method = build_method(cfg.robust.method, cfg.robust.magnitude, cfg.robust.options)
    data = StageData(cfg, tokenizer, method)
    fam, parts = data.family, data.parts
    voter = smoother(method, fam) if data.dev or data.final else None  # fails now, not after an epoch

    torch.manual_seed(cfg.seed)  # same head init on every rank (DDP also broadcasts it)
    encoder = load_encoder(cfg.encoder, cfg.trust_remote_code, speed.attention)
    amp = perf.autocast_dtype(speed.precision, device)
    info = perf.compute_info(device, amp, encoder)
    perf.maybe_compile(encoder, speed.compile)
    if len(parts) == 1:
        model = session.prepare(TaskModel(encoder, fam.head(encoder, data.task)))
    else:  # one head per task; a step leaves the other heads without gradients
        model = MultiTaskModel(encoder, {p.key: p.family.head(encoder, p.task) for p in parts})
        model = session.prepare(model, find_unused_parameters=True)
    base = unwrap(model)
    per_worker = max(1, cfg.training.batch_size // world)  # batch_size is the global batch
    grouped = [feature_lengths(p.features) for p in parts] if speed.group_by_length else None
    schedule = BatchSchedule([len(p.features) for p in parts], per_worker, world, rank, cfg.seed,
                             cfg.mixing, grouped)
    per_epoch = schedule.steps_per_epoch()
    steps = sched.max_steps or sched.epochs * per_epoch
    epochs = math.ceil(steps / per_epoch)  # a step budget sets the number of (last partial) epochs
    optimizer = build_optimizer(model, sched.learning_rate, opt.weight_decay, device)
    scheduler = linear_schedule(optimizer, steps, opt.warmup_ratio, opt.warmup_steps)
    select_best = cfg.select == "best"
    best = BestDev() if (select_best or cfg.keep_weights == "best") and data.dev else None
    start_epoch, step, saved = restore(session, model, optimizer, scheduler, best)
    if saved is not None:  # the checkpoint's report: a process killed after saving it may not have delivered it
        session.report({**saved, N.REPLAYED: 1.0})
    diverged = None

    for epoch in range(start_epoch, epochs):
        torch.manual_seed(cfg.seed * 100_003 + epoch * 1009 + rank)
        t0, total, n, diag, seen, tokens, padded = time.perf_counter(), 0.0, 0, {}, 0, 0, 0
        part_loss = {p.key: [0.0, 0] for p in parts}
        for p_index, indices in schedule.epoch(epoch)[:steps - step if epoch == epochs - 1 else None]:
            part = parts[p_index]
            if len(parts) > 1:
                base.active = part.key
            cpu_batch = collate(part, indices, pad_id)
            mask = cpu_batch["attention_mask"] if "attention_mask" in cpu_batch else cpu_batch["input_ids"] != pad_id
            tokens, padded = tokens + int(mask.sum()), padded + mask.numel()
            batch = {k: v.to(device, non_blocking=True) for k, v in cpu_batch.items()}
            value, gnorm, d, finite = train_step(model, base, method, part, batch, optimizer, scheduler,
                                                 opt.max_grad_norm, world, amp)
            if not finite:
                diverged = {N.DIVERGED: 1.0, N.DIVERGED_STEP: float(step + 1),
                            N.DIVERGED_LOSS: value, N.DIVERGED_GRAD_NORM: gnorm}
                break
            step, total, n, seen = step + 1, total + value, n + 1, seen + len(indices) * world
            part_loss[part.key][0] += value
            part_loss[part.key][1] += 1
            for k, v in d.items():  # *_max: the epoch's maximum; anything else: the epoch's mean
                diag[k] = max(diag.get(k, v), v) if k.endswith("_max") else diag.get(k, 0.0) + v
        wall = time.perf_counter() - t0
        if diverged is not None:  # every rank got here at the same step: stop together
            # Tune requires the search metric in every result: NaN (MLflow skips non-finite values).
            # Rank 0 attaches a marker checkpoint: the driver reads a Train run's final metrics
            # from its last checkpoint's report.
            metrics = {N.EPOCH: epoch + 1, N.GLOBAL_STEP: step, N.TRAIN_NODES: nodes,
                       N.RESUMED_AT_EPOCH: start_epoch, N.OBJECTIVE: math.nan, N.TRAIN_LOSS: math.nan, **diverged}
            if rank == 0:
                with tempfile.TemporaryDirectory() as d:
                    (Path(d) / "diverged.json").write_text(json.dumps(diverged))
                    session.report(metrics, d)
            else:
                session.report(metrics)
            return
        metrics = {N.EPOCH: epoch + 1, N.GLOBAL_STEP: step, N.TRAIN_LOSS: total / max(1, n),
                   N.TRAIN_NODES: nodes, N.RESUMED_AT_EPOCH: start_epoch,
                   N.EPOCH_S: wall, N.EXAMPLES_PER_S: seen / max(wall, 1e-9),
                   N.PADDING_FRACTION: 1 - tokens / max(1, padded), **info,
                   **({N.part_loss(k): v / max(1, c) for k, (v, c) in part_loss.items() if c}
                      if len(parts) > 1 else {}),
                   **{N.robust_metric(k): v if k.endswith("_max") else v / max(1, n) for k, v in diag.items()},
                   **{N.robust_metric(k): v for k, v in data.diagnostics.items()},
                   **cfg.report_extra}
        if data.dev:
            raws = run_eval(base, fam, data.dev, cfg.training.eval_batch_size, pad_id, device, smoother=voter,
                            rank_world=(rank, world), amp=amp)
            if raws is not None:
                dev_metrics, _ = score_sets(fam, data.dev, raws)
                metrics.update(dev_metrics)
                per_lang = {"en": {m.rsplit("/", 1)[1]: v for m, v in dev_metrics.items()}}
                metrics[N.OBJECTIVE] = task_summary(per_lang, qa=fam.name == "qa")[1]
        if best is not None:
            best.update(base, metrics.get(N.OBJECTIVE), epoch + 1, world)  # None: not rank 0
        if epoch + 1 == epochs and data.final:
            if best is not None and select_best:  # the selected epoch's weights (the checkpoint keeps the last)
                last = {k: v.detach().to("cpu", copy=True) for k, v in base.state_dict().items()}
                best.restore_into(base)
                metrics.update({N.BEST_EPOCH: best.epoch, N.BEST_OBJECTIVE: best.objective})
            metrics.update(final_evaluation(cfg, data, base, pad_id, device, method, (rank, world), amp))
            if best is not None and select_best:
                base.load_state_dict(last)
        if rank == 0:
            with tempfile.TemporaryDirectory() as d:
                save(model, tokenizer, optimizer, scheduler, epoch, step, d, best, metrics)
                session.report(metrics, d)
        else:
            session.report(metrics)
    if start_epoch >= epochs and rank == 0:  # resumed after the last epoch: nothing left
        print(f"[{cfg.stage}] all {epochs} epochs already checkpointed (pid {os.getpid()})")
