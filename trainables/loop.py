"""The worker loop: one training stage on N workers (DDP; gloo on CPU, NCCL on GPU).

The loop reaches its runtime only through a session (``trainables.session``): Ray Train's in a
sweep with several workers per stage, ``TrialSession`` for a one-worker stage in the Tune
trial's own process, or ``LocalSession`` to run the same stage in this process (benchmarks,
tests). The fast
paths (length-grouped batches, bf16 autocast, SDPA, fused AdamW, optional ``torch.compile``)
and their switches are in ``trainables.performance``; each epoch reports
``train/padding_fraction`` (pad tokens / batch tokens) and ``perf/*`` (which fast paths ran).

Every stage runs this loop; ``config["stage"]`` decides what it trains and evaluates:

- ``intermediate``: the English intermediate tasks of the sweep's domain, each a part with its
  own family and fresh head, batches mixed across them (``trainables.mixing``); only the
  checkpoint's ``encoder/`` goes on to the next stage.
- ``recipe``: a benchmark-recipe stage (``recipe_task``, e.g. SocialIQA before XCOPA), plain
  training, fresh head; only the encoder goes on.
- ``finetune``: the target's English training data (``TargetTask.trainer``: the task itself,
  or SQuAD for XQuAD/MLQA/Tatoeba) with the trial's robust method. The English dev score of
  that data is computed after every epoch and is the ``objective`` (zero-shot: no target-
  language dev data is used). After the last epoch every target language is evaluated with
  the *target's* family (for Tatoeba: the retrieval family on the QA-trained encoder), the
  metrics are logged as ``{task}/{lang}/{metric}``, ``{task}/avg/{metric}`` and
  ``{task}/score``, and rank 0 writes predictions and gold in the official evaluator's layout
  under ``predictions_dir`` (logged to MLflow by the driver; ``xlt-score`` reads it).

Evaluation: all sets of a family are pooled, sorted by length, sharded across ranks, run in
one pass, and the raw outputs are gathered; rank 0 decodes and scores (Ray Train reports
rank 0's metrics). Tokenised features come from the Arrow feature cache
(``trainables.tasks.base.cached_features``) shared by all trials of a storage root.

Model selection (``training.select``): ``last`` evaluates the last epoch's weights; ``best``
evaluates the weights of the epoch with the best English dev objective (``BestDev``; the
released code of Huang et al. 2021 keeps the best-dev checkpoint), and logs
``select/best_epoch`` and ``select/best_objective``. The stage's checkpoint (what a later
stage or a resume reads) is always the last epoch's.

Resumption: every epoch ends with a checkpoint (rank 0) holding ``encoder/``, ``head.pt`` and
``state.pt`` (optimizer, schedule, epoch, step). A restarted worker group, or a trial retried
under the same Train run name, starts at the epoch after the last checkpoint. Randomness is
re-seeded from (seed, epoch, rank) at each epoch start, so a resumed run draws the same data
order and noise as an uninterrupted one. Every report carries ``train/resumed_at_epoch`` (0 for
a fresh start) and ``train/nodes`` (distinct Ray nodes the worker group spans). Checkpoints are
read back with ``torch.load(weights_only=True)``: tensors and plain containers only, never
arbitrary pickles from shared storage.

Divergence: the step's gradient norm is taken after DDP's all-reduce, so it is the same on
every rank; when it (or, on one worker, the loss) is not finite, every rank stops together,
reports ``train/diverged`` = 1 with the step and loss (rank 0 with a marker checkpoint holding
only ``diverged.json``, as the driver reads a Train run's final metrics from its last checkpoint
report) and returns. The driver (``trainables.trial``) turns that into a trial failure with the
reason and never retrains it: retrying a deterministic divergence only burns GPU hours.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist

from trainables import data as D
from trainables import performance as perf
from trainables.catalog import intermediate_task
from trainables.failures import deterministic
from trainables.mixing import BatchSchedule, MultiTaskModel, Part, collate, split_cap
from trainables.models import load_encoder, load_tokenizer
from trainables.robust import build_method
from trainables.robust.base import unwrap
from trainables.scoring.benchmark import task_summary
from trainables.session import RaySession
from trainables.tasks import family, target_task
from trainables.tasks.base import (
    EncodeConfig,
    TaskModel,
    cached_features,
    feature_lengths,
    source_stamp,
    tokenizer_fingerprint,
)


class EvalSet:
    """One named evaluation set: which task/language, its examples and features."""

    def __init__(self, name: str, task, lang: str, examples, features):
        self.name, self.task, self.lang, self.examples, self.features = name, task, lang, examples, features


class StageData:
    """What a stage trains on (task entry, family, features) and evaluates."""

    def __init__(self, cfg: dict, tokenizer, method=None):
        self.cfg, self.tokenizer = cfg, tokenizer
        self.diagnostics: dict[str, float] = {}
        self.pairs: list[EvalSet] = []  # generalized cross-lingual pairs (finetune, if asked)
        self.enc = EncodeConfig(cfg["max_length"], cfg.get("doc_stride", 128), cfg.get("max_query_length", 64))
        self.fingerprint = tokenizer_fingerprint(tokenizer)
        stage = cfg["stage"]
        if stage == "intermediate":  # the domain's tasks, each its own part (family, head)
            tasks = [D.resolve_labels(intermediate_task(k).task, cfg["data_dir"]) for k in cfg["intermediate_tasks"]]
            loaded = [family(t.family).load(t, "train", "en", cfg["data_dir"]) for t in tasks]
            mixing = cfg.get("mixing", "proportional")
            caps = split_cap([len(x) for x in loaded], cfg["max_examples"], mixing)
            self.parts = [Part(t.key, t, family(t.family), self._features(
                D.cap(x, c, cfg["seed"]), "train", "en", True, t, family(t.family),
                source=[self._source(t, "train", "en"), c])) for t, x, c in zip(tasks, loaded, caps)]
            self.task, self.family, self.train = self.parts[0].task, self.parts[0].family, self.parts[0].features
            self.dev: list[EvalSet] = []
            self.final: list[EvalSet] = []
            return
        self.target = target_task(cfg["target_task"])
        self.task = target_task(cfg["recipe_task"]) if stage.startswith("recipe") else self.target.trainer
        self.family = family(self.task.family)
        examples = D.cap(self.family.load(self.task, "train", "en", cfg["data_dir"]),
                         cfg["max_examples"], cfg["seed"])
        augment = None
        if stage == "finetune" and hasattr(method, "augment"):  # RS-DA rewrites the English training set
            examples, self.diagnostics = method.augment(examples, self.family, cfg["seed"])
            table = hashlib.sha1(json.dumps(method.table, sort_keys=True).encode()).hexdigest()
            augment = [method.key, method.p, method.options.model_dump(), table]
        self.train = self._features(examples, "train", "en", train=True, augment=augment)
        self.parts = [Part(self.task.key, self.task, self.family, self.train)]
        self.dev, self.final = [], []
        if stage == "finetune":
            has_dev = "dev" in self.task.hub if cfg["data_dir"] == "hub" else (
                "dev" in self.task.mirror or self.task.from_hub(cfg["data_dir"], "dev", "en"))
            if has_dev:
                self.dev.append(self._eval_set(f"dev/{self.task.key}/en", self.task, "dev", "en"))
            for lang in cfg["languages"]:
                self.final.append(self._eval_set(f"{self.target.key}/{lang}", self.target, "test", lang))
            if cfg.get("generalized"):
                self.pairs = self._generalized_sets()

    def _generalized_sets(self) -> list[EvalSet]:
        """Every (l1, l2), l1 != l2: premise of line i in l1, hypothesis of line i in l2. The
        test sets must be parallel: same length, same label on every line."""
        by_lang = {s.lang: s for s in self.final}
        out = []
        for l1, s1 in by_lang.items():
            for l2, s2 in by_lang.items():
                if l1 == l2:
                    continue
                if len(s1.examples) != len(s2.examples) or any(
                        a.label != b.label for a, b in zip(s1.examples, s2.examples)):
                    raise D.DataError(f"{self.target.key} test sets of {l1} and {l2} are not parallel "
                                      f"(different lengths or labels); generalized evaluation needs parallel sets")
                examples = [replace(a, hypothesis=b.hypothesis) for a, b in zip(s1.examples, s2.examples)]
                feats = self._features(examples, "test", f"{l1}-{l2}", False, self.target, self.family,
                                       source=[self._source(self.target, "test", l1),
                                               self._source(self.target, "test", l2)])
                out.append(EvalSet(f"{self.target.key}/{l1}-{l2}", self.target, f"{l1}-{l2}", examples, feats))
        return out

    def _source(self, task, split: str, lang: str) -> list:
        if self.cfg["data_dir"] == "hub":
            return ["hub", *task.hub_source(split, lang)]
        return source_stamp(task.files_read(self.cfg["data_dir"], split, lang))

    def _features(self, examples, split: str, lang: str, train: bool, task=None, fam=None, source=None,
                  augment=None):
        task, fam = task or self.task, fam or self.family
        key = {"v": 1, "augment": augment, "tokenizer": self.fingerprint, "family": fam.name, "task": task.key,
               "split": split, "lang": lang, "train": train, "encode": vars(self.enc),
               "source": source if source is not None else self._source(task, split, lang),
               "n": len(examples), "cap": [self.cfg.get("max_examples"), self.cfg["seed"]] if train else None}
        return cached_features(self.cfg.get("cache_dir"), key,
                               lambda: fam.encode(self.tokenizer, examples, self.enc, train))

    def _eval_set(self, name: str, task, split: str, lang: str) -> EvalSet:
        fam = family(task.family)
        examples = fam.load(task, split, lang, self.cfg["data_dir"])
        return EvalSet(name, task, lang, examples, self._features(examples, split, lang, False, task, fam))


def _input_key(f: dict):
    """Identity of a feature's model input (lists of lists for multiple choice)."""
    ids, types = f["input_ids"], f.get("token_type_ids")
    if ids and isinstance(ids[0], list):
        return tuple(map(tuple, ids)), tuple(map(tuple, types)) if types else None
    return tuple(ids), tuple(types) if types else None


@torch.no_grad()
def run_eval(model, fam, sets: list[EvalSet], batch_size: int, pad_id: int, device,
             smoother=None, rank_world: tuple[int, int] = (0, 1), amp: torch.dtype | None = None,
             sort: bool = True) -> dict[str, list] | None:
    """Raw outputs of every set in ONE pooled, length-sorted pass sharded across ranks;
    returns {set name: raw outputs in feature order} on rank 0, None elsewhere.

    Identical inputs run once: LAReQA's candidate pool and Mewsli-X's entity descriptions
    are the same for every language, so they are encoded once, not once per language.
    ``amp``: the autocast dtype (``trainables.performance``); ``sort=False`` keeps feature
    order (the plain path the equality test compares with)."""
    rank, world = rank_world
    rows = [list(s.features) for s in sets]  # Arrow views: each row converted once, here
    pooled, unique, first_of = [], [], {}
    for k, features in enumerate(rows):
        for i, f in enumerate(features):
            key = _input_key(f)
            if key not in first_of:
                first_of[key] = len(unique)
                unique.append((k, i))
            pooled.append((k, i, first_of[key]))
    order = list(range(len(unique)))
    if sort:
        lengths = [feature_lengths(s.features) for s in sets]
        order.sort(key=lambda j: lengths[unique[j][0]][unique[j][1]])
    order = order[rank::world]
    was_training = model.training
    model.eval()
    local = []
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        feats = [rows[unique[j][0]][unique[j][1]] for j in idx]
        batch = {k: v.to(device) for k, v in fam.collate(feats, pad_id).items()}
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
        with perf.autocast(device, amp):
            if smoother is None:
                outputs = model(**inputs)
            else:  # RS-RP smoothed prediction: majority vote over noisy passes
                choices = (batch["input_ids"].shape[0] // batch["labels"].shape[0]
                           if fam.name == "multiple_choice" else None)
                outputs = smoother.vote_outputs(model, model.encoder.get_input_embeddings(), inputs, choices)
        outputs = _to_float(outputs)
        local.extend(zip(idx, fam.raw(outputs, batch)))
    model.train(was_training)
    gathered = [local]
    if world > 1:
        gathered = [None] * world
        dist.all_gather_object(gathered, local)
    if rank != 0:
        return None
    by_unique = dict(p for part in gathered for p in part)
    out = {s.name: [None] * len(s.features) for s in sets}
    for k, i, u in pooled:
        out[sets[k].name][i] = by_unique[u]
    return out


def _to_float(outputs):
    """Head outputs in fp32 (autocast leaves them bf16) before they are decoded or gathered."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float() if outputs.is_floating_point() else outputs
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(_to_float(o) for o in outputs)
    if isinstance(outputs, dict):
        return {k: _to_float(v) for k, v in outputs.items()}
    return outputs


def score_sets(fam, sets: list[EvalSet], raws: dict) -> tuple[dict[str, float], dict]:
    """Decode and score each set: ({name/metric: value}, {name: predictions})."""
    metrics, predictions = {}, {}
    for s in sets:
        preds = fam.decode(s.task, s.examples, s.features, raws[s.name])
        predictions[s.name] = preds
        for m, v in fam.score(s.task, s.lang, s.examples, preds).items():
            metrics[f"{s.name}/{m}"] = v
    return metrics, predictions


class BestDev:
    """``training.select: best``: the weights of the epoch with the best English dev objective
    (a CPU copy; the decision is rank 0's, broadcast so every rank keeps the same copy), put
    back before the final zero-shot evaluation, as the paper's protocol selects on English dev.
    The copy is checkpointed with the epoch, so a resumed stage still selects among all epochs."""

    def __init__(self):
        self.objective, self.epoch, self.state = -math.inf, None, None

    def update(self, base, objective: float | None, epoch: int, world: int) -> None:
        improved = [objective is not None and objective > self.objective]
        if world > 1:
            dist.broadcast_object_list(improved, src=0)
        if improved[0]:
            self.objective = float(objective) if objective is not None else self.objective  # weights-only loadable
            self.epoch = epoch
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in base.state_dict().items()}

    def restore_into(self, base) -> None:
        if self.state is not None:
            base.load_state_dict(self.state)

    def save(self, d: str) -> None:
        if self.state is not None:
            torch.save({"objective": self.objective, "epoch": self.epoch, "state": self.state}, Path(d) / "best.pt")

    def load(self, d: str) -> None:
        path = Path(d) / "best.pt"
        if path.is_file():
            saved = torch.load(path, weights_only=True)
            self.objective, self.epoch, self.state = saved["objective"], saved["epoch"], saved["state"]


def _restore(session, model, optimizer, scheduler, best: BestDev | None = None) -> tuple[int, int, dict | None]:
    """Load the latest checkpoint if the session has one; return (next epoch, global step,
    the report saved with it or None)."""
    with session.restored() as d:
        if d is None:
            return 0, 0, None
        if (Path(d) / "diverged.json").is_file():  # only if the driver died before recording it
            raise FloatingPointError(f"this stage diverged before: {(Path(d) / 'diverged.json').read_text()}")
        base = unwrap(model)
        state = torch.load(Path(d) / "state.pt", weights_only=True)
        base.head.load_state_dict(torch.load(Path(d) / "head.pt", weights_only=True))
        base.encoder.load_state_dict(load_encoder(str(Path(d) / "encoder")).state_dict())
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if best is not None:
            best.load(d)
        report = Path(d) / REPORT
        saved = json.loads(report.read_text()) if report.is_file() else None
    return state["epoch"] + 1, state["global_step"], saved


REPORT = "report.json"
"""The epoch's report, saved in its checkpoint: a resumed stage reports it again first, so a
report whose checkpoint was saved is never lost (the MLflow callback logs each epoch once)."""


def _save(model, tokenizer, optimizer, scheduler, epoch: int, step: int, d: str, best: BestDev | None,
          metrics: dict | None = None) -> None:
    base = unwrap(model)
    if metrics is not None:
        (Path(d) / REPORT).write_text(json.dumps(metrics, default=float))
    base.encoder.save_pretrained(Path(d) / "encoder")
    tokenizer.save_pretrained(Path(d) / "encoder")
    torch.save(base.head.state_dict(), Path(d) / "head.pt")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch": epoch, "global_step": step}, Path(d) / "state.pt")
    if best is not None:
        best.save(d)


def _smoother(method, fam):
    """The method, when it asks for smoothed predictions and the family predicts classes."""
    if not getattr(method, "smooths_predictions", False):
        return None
    if fam.name not in ("classification", "multiple_choice"):
        raise ValueError(f"rs_rp smoothed_eval votes over classes; the {fam.name} family has none "
                         f"(use it with classification or multiple-choice targets)")
    return method


def _final_evaluation(cfg, data: StageData, base, pad_id, device, method=None, rank_world=(0, 1),
                      amp=None) -> dict[str, float]:
    """Every target language with the target's family; predictions written on rank 0."""
    target, fam = data.target, family(data.target.family)
    if target.family != "retrieval":
        model = base
    else:  # pooled embeddings of the chosen layer (Tatoeba: of the encoder the QA stage trained)
        layer = cfg.get("retrieval_layer")
        n_layers = base.encoder.config.num_hidden_layers
        if layer is not None and not 0 <= layer <= n_layers:
            raise ValueError(f"target.retrieval_layer {layer} is not a hidden-state index of this "
                             f"encoder (0 = embeddings .. {n_layers} = last layer)")
        model = TaskModel(base.encoder, fam.head(base.encoder.config.hidden_size, target), layer=layer)
    raws = run_eval(model, fam, data.final + data.pairs, cfg["eval_batch_size"], pad_id, device,
                    smoother=_smoother(method, fam) if model is base else None, rank_world=rank_world, amp=amp)
    if raws is None:
        return {}
    metrics, predictions = score_sets(fam, data.final, raws)
    if data.pairs:  # generalized cross-lingual transfer: every pair, its mean, and per first language
        pair_metrics, _ = score_sets(fam, data.pairs, raws)
        metrics.update(pair_metrics)
        accs = {s.lang: pair_metrics[f"{s.name}/accuracy"] for s in data.pairs}
        metrics[f"{target.key}/generalized/avg/accuracy"] = sum(accs.values()) / len(accs)
        for l1 in {p.split("-")[0] for p in accs}:
            row = [v for p, v in accs.items() if p.split("-")[0] == l1]
            metrics[f"{target.key}/generalized/{l1}/accuracy"] = sum(row) / len(row)
    per_language = {s.lang: {m.rsplit("/", 1)[1]: v for m, v in metrics.items() if m.startswith(s.name + "/")}
                    for s in data.final}
    avg, score = task_summary(per_language, qa=target.family == "qa")
    metrics.update({f"{target.key}/avg/{m}": v for m, v in avg.items()})
    metrics[f"{target.key}/score"] = score
    if cfg.get("predictions_dir"):
        out = Path(cfg["predictions_dir"])
        for s in data.final:
            fam.write(target, s.lang, s.examples, predictions[s.name], out / "predictions", out / "labels")
    return metrics


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
    if not getattr(method, "backpropagates", False):  # FreeLB ran its own backward passes
        loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    value, gnorm = torch.stack([loss.detach().float().to(norm.device), norm.float()]).tolist()  # one sync
    finite = math.isfinite(gnorm) and (world > 1 or math.isfinite(value))
    if finite:
        optimizer.step()
        scheduler.step()
    return value, gnorm, d, finite


def train_loop_per_worker(cfg: dict, session=None) -> None:
    """One stage on this worker. ``session``: Ray Train's (default), a
    ``trainables.session.TrialSession`` (in the Tune trial's process) or a ``LocalSession``
    (the stage in this process, no Ray).

    In a Ray Train worker group (``cfg["fatal_file"]`` set by the driver), a deterministic
    failure (``trainables.failures``: bad data, a configuration refused at run time, a full
    storage) ends the worker normally with its reason written to that file by rank 0: raised,
    it would make Ray Train restart the worker group only to fail the same way. The driver
    raises it from the file (``trainables.trial._fit``). Such failures happen while the stage
    loads its data and model, before any collective, identically on every rank."""
    if not cfg.get("fatal_file"):
        return _train_loop(cfg, session)
    try:
        return _train_loop(cfg, session)
    except Exception as e:
        reason = deterministic(e, str(Path(cfg["fatal_file"]).parent))
        if reason is None:
            raise
        if (session or RaySession()).world()[0] == 0:
            Path(cfg["fatal_file"]).parent.mkdir(parents=True, exist_ok=True)
            import traceback

            Path(cfg["fatal_file"]).write_text(json.dumps({"reason": reason, "traceback": traceback.format_exc()}))
        return None


def _train_loop(cfg: dict, session=None) -> None:
    session = session or RaySession()
    rank, world = session.world()
    nodes = _nodes(session, world)
    device = session.device()
    torch.set_num_threads(max(1, int(cfg.get("cpus_per_worker", 1))))
    tokenizer = load_tokenizer(cfg["tokenizer"], cfg.get("trust_remote_code", False))
    pad_id = tokenizer.pad_token_id
    method = build_method(cfg["robust_method"], cfg["noise_magnitude"], cfg.get("robust_options"))
    data = StageData(cfg, tokenizer, method)
    fam, parts = data.family, data.parts
    smoother = _smoother(method, fam) if data.dev or data.final else None  # fails now, not after an epoch

    torch.manual_seed(cfg["seed"])  # same head init on every rank (DDP also broadcasts it)
    encoder = load_encoder(cfg["encoder"], cfg.get("trust_remote_code", False), perf.knob(cfg, "attention"))
    amp = perf.autocast_dtype(cfg, device)
    info = perf.compute_info(device, amp, encoder)
    perf.maybe_compile(encoder, cfg)
    hidden = encoder.config.hidden_size
    if len(parts) == 1:
        model = session.prepare(TaskModel(encoder, fam.head(hidden, data.task)))
    else:  # one head per task; a step leaves the other heads without gradients
        model = MultiTaskModel(encoder, {p.key: p.family.head(hidden, p.task) for p in parts})
        model = session.prepare(model, find_unused_parameters=True)
    base = unwrap(model)
    per_worker = max(1, cfg["batch_size"] // world)  # batch_size is the global batch
    grouped = [feature_lengths(p.features) for p in parts] if perf.knob(cfg, "group_by_length") else None
    schedule = BatchSchedule([len(p.features) for p in parts], per_worker, world, rank, cfg["seed"],
                             cfg.get("mixing", "proportional"), grouped)
    per_epoch = schedule.steps_per_epoch()
    steps = cfg.get("max_steps") or cfg["epochs"] * per_epoch
    epochs = math.ceil(steps / per_epoch)  # a step budget sets the number of (last partial) epochs
    optimizer = perf.optimizer(model.parameters(), cfg, cfg["learning_rate"], device)
    warmup = int(cfg.get("warmup_ratio", 0.1) * steps)  # linear warm-up, then linear decay to 0
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / max(1, warmup), max(0.0, (steps - s) / max(1, steps - warmup))))
    select_best = cfg.get("select", "last") == "best"
    best = BestDev() if (select_best or cfg.get("keep_weights") == "best") and data.dev else None
    start_epoch, step, saved = _restore(session, model, optimizer, scheduler, best)
    if saved is not None:  # the checkpoint's report: a process killed after saving it may not have delivered it
        session.report({**saved, "train/replayed": 1.0})
    diverged = None

    for epoch in range(start_epoch, epochs):
        torch.manual_seed(cfg["seed"] * 100_003 + epoch * 1009 + rank)
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
                                                 cfg.get("max_grad_norm", 1.0), world, amp)
            if not finite:
                diverged = {"train/diverged": 1.0, "train/diverged_step": float(step + 1),
                            "train/diverged_loss": value, "train/diverged_grad_norm": gnorm}
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
            metrics = {"epoch": epoch + 1, "global_step": step, "train/nodes": nodes,
                       "train/resumed_at_epoch": start_epoch, "objective": math.nan, "train/loss": math.nan,
                       **diverged}
            if rank == 0:
                with tempfile.TemporaryDirectory() as d:
                    (Path(d) / "diverged.json").write_text(json.dumps(diverged))
                    session.report(metrics, d)
            else:
                session.report(metrics)
            return
        metrics = {"epoch": epoch + 1, "global_step": step, "train/loss": total / max(1, n),
                   "train/nodes": nodes, "train/resumed_at_epoch": start_epoch,
                   "train/epoch_s": wall, "train/examples_per_s": seen / max(wall, 1e-9),
                   "train/padding_fraction": 1 - tokens / max(1, padded), **info,
                   **({f"train/{k}/loss": v / max(1, c) for k, (v, c) in part_loss.items() if c}
                      if len(parts) > 1 else {}),
                   **{f"robust/{k}": v if k.endswith("_max") else v / max(1, n) for k, v in diag.items()},
                   **{f"robust/{k}": v for k, v in data.diagnostics.items()},
                   **cfg.get("report_extra", {})}
        if data.dev:
            raws = run_eval(base, fam, data.dev, cfg["eval_batch_size"], pad_id, device, smoother=smoother,
                            rank_world=(rank, world), amp=amp)
            if raws is not None:
                dev_metrics, _ = score_sets(fam, data.dev, raws)
                metrics.update(dev_metrics)
                per_lang = {"en": {m.rsplit("/", 1)[1]: v for m, v in dev_metrics.items()}}
                metrics["objective"] = task_summary(per_lang, qa=fam.name == "qa")[1]
        if best is not None:
            best.update(base, metrics.get("objective"), epoch + 1, world)
        if epoch + 1 == epochs and data.final:
            if best is not None and select_best:  # the selected epoch's weights (the checkpoint keeps the last)
                last = {k: v.detach().to("cpu", copy=True) for k, v in base.state_dict().items()}
                best.restore_into(base)
                metrics.update({"select/best_epoch": best.epoch, "select/best_objective": best.objective})
            metrics.update(_final_evaluation(cfg, data, base, pad_id, device, method, (rank, world), amp))
            if best is not None and select_best:
                base.load_state_dict(last)
        if rank == 0:
            with tempfile.TemporaryDirectory() as d:
                _save(model, tokenizer, optimizer, scheduler, epoch, step, d, best, metrics)
                session.report(metrics, d)
        else:
            session.report(metrics)
    if start_epoch >= epochs and rank == 0:  # resumed after the last epoch: nothing left
        print(f"[{cfg['stage']}] all {epochs} epochs already checkpointed (pid {os.getpid()})")
