"""The Ray Train worker loop: one training stage on N workers (DDP; gloo on CPU, NCCL on GPU).

Both stages run this loop; ``config["stage"]`` only changes which data it trains on and whether
it evaluates the target languages at the end:

- ``intermediate``: English intermediate task(s), a fresh head; the checkpoint's ``encoder/``
  is what the next stage loads (the head is dropped).
- ``finetune``: English target-task training with the trial's robust method; English dev
  accuracy after every epoch (the selection signal: zero-shot means no target-language dev
  data), and after the last epoch one evaluation pass over every target language at once.

Resumption: every epoch ends with a checkpoint (rank 0) holding ``encoder/``, ``head.pt`` and
``state.pt`` (optimizer, schedule, epoch, step). A worker restarted by Ray Train, or a trial
retried by Tune under the same Train run name, starts at the epoch after the last checkpoint.
Randomness is re-seeded from (seed, epoch, rank) at each epoch start, so a resumed run draws
the same data order and noise as an uninterrupted one.

Every rank calls ``ray.train.report`` each epoch (rank 0 with the checkpoint); metrics are
computed from predictions gathered across ranks, so all ranks report the same numbers.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from trainables import data as D
from trainables.catalog import intermediate_task
from trainables.models import load_classifier, load_encoder, load_tokenizer
from trainables.robust import build_method
from trainables.tasks import target_task
from trainables.tasks.pair_classification import accuracy, collate, encode


def _world() -> tuple[int, int]:
    ctx = ray.train.get_context()
    return ctx.get_world_rank(), ctx.get_world_size()


def _training_examples(cfg: dict):
    """(examples, label names) for this stage's English training data."""
    if cfg["stage"] == "intermediate":
        keys = cfg["intermediate_tasks"]
        if len(keys) != 1:
            raise ValueError(f"mixing several intermediate tasks is not supported yet: {keys}")
        entry = intermediate_task(keys[0])
        examples = D.load_intermediate(entry, cfg["data_dir"])
        return D.cap(examples, cfg["max_examples"], cfg["seed"]), entry.labels
    task = target_task(cfg["target_task"])
    examples = D.load_target(task, "train", "en", cfg["data_dir"])
    return D.cap(examples, cfg["max_examples"], cfg["seed"]), task.labels


def _eval_sets(cfg: dict) -> dict[str, list]:
    """name -> examples: English dev every epoch; the target languages' test sets at the end."""
    if cfg["stage"] != "finetune":
        return {}
    task = target_task(cfg["target_task"])
    sets = {f"dev/{task.key}/en": D.load_target(task, "dev", "en", cfg["data_dir"])}
    for lang in cfg["languages"]:
        sets[f"{task.key}/{lang}"] = D.load_target(task, "test", lang, cfg["data_dir"])
    return sets


@torch.no_grad()
def evaluate(model, sets: dict[str, list], batch_size: int, pad_id: int, device) -> dict[str, float]:
    """Accuracy for every named set in ONE pass: all examples pooled, sorted by length,
    sharded across ranks, predictions gathered and grouped by set afterwards."""
    rank, world = _world()
    pooled = [(name, i, f) for name, feats in sets.items() for i, f in enumerate(feats)]
    order = sorted(range(len(pooled)), key=lambda j: len(pooled[j][2]["input_ids"]))[rank::world]
    model.eval()
    local = []
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = {k: v.to(device) for k, v in collate([pooled[j][2] for j in idx], pad_id).items()}
        batch.pop("labels")
        preds = model(**batch).argmax(-1).tolist()
        local.extend(zip(idx, preds))
    model.train()
    gathered = [local]
    if world > 1:
        gathered = [None] * world
        dist.all_gather_object(gathered, local)
    by_set: dict[str, tuple[list, list]] = {name: ([], []) for name in sets}
    for j, pred in (p for part in gathered for p in part):
        name, _, feat = pooled[j]
        by_set[name][0].append(pred)
        by_set[name][1].append(feat["labels"])
    return {f"{name}/accuracy": accuracy(*by_set[name]) for name in sets}


def _restore(model, optimizer, scheduler) -> tuple[int, int]:
    """Load the latest checkpoint if Ray Train has one; return (next epoch, global step)."""
    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return 0, 0
    with ckpt.as_directory() as d:
        base = model.module if hasattr(model, "module") else model
        state = torch.load(Path(d) / "state.pt", weights_only=False)
        base.head.load_state_dict(torch.load(Path(d) / "head.pt"))
        base.encoder.load_state_dict(load_encoder(str(Path(d) / "encoder")).state_dict())
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    return state["epoch"] + 1, state["global_step"]


def _save(model, tokenizer, optimizer, scheduler, epoch: int, step: int, d: str) -> None:
    base = model.module if hasattr(model, "module") else model
    base.encoder.save_pretrained(Path(d) / "encoder")
    tokenizer.save_pretrained(Path(d) / "encoder")
    torch.save(base.head.state_dict(), Path(d) / "head.pt")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch": epoch, "global_step": step}, Path(d) / "state.pt")


def train_loop_per_worker(cfg: dict) -> None:
    rank, world = _world()
    device = ray.train.torch.get_device()
    torch.set_num_threads(max(1, int(cfg.get("cpus_per_worker", 1))))
    tokenizer = load_tokenizer(cfg["tokenizer"], cfg.get("trust_remote_code", False))
    pad_id = tokenizer.pad_token_id
    examples, labels = _training_examples(cfg)
    train = encode(tokenizer, examples, cfg["max_length"])
    evals = {k: encode(tokenizer, v, cfg["max_length"]) for k, v in _eval_sets(cfg).items()}
    final_sets = {k: v for k, v in evals.items() if not k.startswith("dev/")}
    dev_sets = {k: v for k, v in evals.items() if k.startswith("dev/")}

    torch.manual_seed(cfg["seed"])  # same head init on every rank (DDP also broadcasts it)
    model = load_classifier(cfg["encoder"], len(labels), cfg.get("trust_remote_code", False))
    model = ray.train.torch.prepare_model(model)  # moves to device, wraps in DDP if world > 1
    base = model.module if hasattr(model, "module") else model
    method = build_method(cfg["robust_method"], cfg["noise_magnitude"], cfg.get("robust_options"))
    sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True,
                                 seed=cfg["seed"], drop_last=False)
    per_worker = max(1, cfg["batch_size"] // world)  # batch_size is the global batch
    loader = DataLoader(train, batch_size=per_worker, sampler=sampler,
                        collate_fn=lambda f: collate(f, pad_id))
    steps = cfg["epochs"] * len(loader)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["learning_rate"],
                                  weight_decay=cfg.get("weight_decay", 0.01))
    warmup = int(cfg.get("warmup_ratio", 0.1) * steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / max(1, warmup), max(0.0, (steps - s) / max(1, steps - warmup))))
    loss_fn = torch.nn.CrossEntropyLoss()
    start_epoch, step = _restore(model, optimizer, scheduler)

    for epoch in range(start_epoch, cfg["epochs"]):
        torch.manual_seed(cfg["seed"] * 100_003 + epoch * 1009 + rank)
        sampler.set_epoch(epoch)
        t0, total, n, diag = time.perf_counter(), 0.0, 0, {}
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            loss, d = method.loss(model, base.encoder.get_input_embeddings(), batch, loss_fn)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"non-finite training loss {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.get("max_grad_norm", 1.0))
            optimizer.step()
            scheduler.step()
            step, total, n = step + 1, total + loss.item(), n + 1
            for k, v in d.items():
                diag[k] = diag.get(k, 0.0) + v
        wall = time.perf_counter() - t0
        metrics = {"epoch": epoch + 1, "global_step": step, "train/loss": total / max(1, n),
                   "train/epoch_s": wall, "train/examples_per_s": len(train) / max(wall, 1e-9),
                   **{f"robust/{k}": v / max(1, n) for k, v in diag.items()},
                   **cfg.get("report_extra", {})}
        last = epoch + 1 == cfg["epochs"]
        metrics.update(evaluate(model, {**dev_sets, **(final_sets if last else {})},
                                cfg["eval_batch_size"], pad_id, device))
        if dev_sets:
            metrics["objective"] = metrics[f"{next(iter(dev_sets))}/accuracy"]
        if last and final_sets:
            task = cfg["target_task"]
            metrics[f"{task}/avg/accuracy"] = sum(
                metrics[f"{k}/accuracy"] for k in final_sets) / len(final_sets)
        if rank == 0:
            with tempfile.TemporaryDirectory() as d:
                _save(model, tokenizer, optimizer, scheduler, epoch, step, d)
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))
        else:
            ray.train.report(metrics)
    if start_epoch >= cfg["epochs"] and rank == 0:  # resumed after the last epoch: nothing left
        print(f"[{cfg['stage']}] all {cfg['epochs']} epochs already checkpointed (pid {os.getpid()})")
