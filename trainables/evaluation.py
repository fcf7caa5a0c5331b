"""Evaluation: every set of a family in one pooled, length-sorted pass, decoded and scored.

``run_eval`` pools the sets, runs identical inputs once (LAReQA's candidates and Mewsli-X's
entity descriptions are the same for every language), sorts by length, shards across ranks,
and gathers the raw outputs (in fp32) on rank 0, which decodes and scores them (Ray Train
reports rank 0's metrics). ``final_evaluation`` is the fine-tuning stage's last step: every
target language with the *target's* family (for Tatoeba: the retrieval family on the
QA-trained encoder), metrics named ``{task}/{lang}/{metric}``, ``{task}/avg/{metric}`` and
``{task}/score`` (``trainables.scoring.summary``), and predictions and gold written in the
official evaluator's layout under ``predictions_dir``. A method that ``smooths_predictions``
(RS-RP with ``smoothed_eval``) predicts classes by its vote.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist

from trainables import performance as perf
from trainables import schema as N
from trainables.config import StageConfig
from trainables.robust.base import RobustMethod, Smoother
from trainables.scoring.evaluator import task_summary
from trainables.stage_data import EvalSet, StageData
from trainables.tasks import family
from trainables.tasks.base import TaskModel, feature_lengths


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
            metrics[N.set_metric(s.name, m)] = v
    return metrics, predictions


def smoother(method: RobustMethod, fam) -> Smoother | None:
    """The method, when it asks for smoothed predictions and the family predicts classes."""
    if not method.smooths_predictions:
        return None
    if fam.name not in ("classification", "multiple_choice"):
        raise ValueError(f"rs_rp smoothed_eval votes over classes; the {fam.name} family has none "
                         f"(use it with classification or multiple-choice targets)")
    return method


def generalized_metrics(task: str, final: list, pairs: list, metrics: dict[str, float]) -> dict[str, float]:
    """Generalized cross-lingual transfer scored as Robust-XLT's ``eval_generalized_{pawsx,xnli}.sh``
    score it: every ordered pair (l1, l2) of the evaluated languages, the same-language pairs
    included (those are the test sets themselves: 49 pairs for PAWS-X, 225 for XNLI), pooled as
    total correct over total examples; per first language, the same over its row. ``final``: the
    per-language test sets, ``pairs``: the cross-language ones, ``metrics``: their accuracies."""
    cells = {s.lang: (metrics[N.set_metric(s.name, "accuracy")], len(s.examples)) for s in pairs}
    cells.update({f"{s.lang}-{s.lang}": (metrics[N.set_metric(s.name, "accuracy")], len(s.examples)) for s in final})
    out = {N.set_metric(N.pair_set(task, s.lang, s.lang), "accuracy"): cells[f"{s.lang}-{s.lang}"][0] for s in final}

    def pooled(keys: list[str]) -> float:
        return sum(cells[k][0] * cells[k][1] for k in keys) / sum(cells[k][1] for k in keys)

    out[N.generalized_metric(task, "avg", "accuracy")] = pooled(list(cells))
    for l1 in sorted({p.split("-")[0] for p in cells}):
        out[N.generalized_metric(task, l1, "accuracy")] = pooled([p for p in cells if p.split("-")[0] == l1])
    return out


TATOEBA_LAYERS = {12: 8, 24: 14}
"""run_tatoeba.sh's ``--specific_layer`` (7 base, 13 large, counted after the embeddings) as a
hidden-state index (0 = embeddings), by encoder depth."""


def retrieval_layer(task: str, setting: int | None, n_layers: int) -> int | None:
    """The hidden-state index a retrieval target pools (None: the last layer). Only Tatoeba, which
    is never trained as a retriever, reads an inner layer: ``target.retrieval_layer``, else the
    benchmark's for a 12- or 24-layer encoder, else the last. LAReQA and Mewsli-X encode with the
    layer their dual encoder was trained on: the last."""
    if task != "tatoeba":
        return None
    return setting if setting is not None else TATOEBA_LAYERS.get(n_layers)


def final_evaluation(cfg: StageConfig, data: StageData, base, pad_id: int, device, method: RobustMethod,
                     rank_world: tuple[int, int] = (0, 1), amp=None) -> dict[str, float]:
    """Every target language with the target's family; predictions written on rank 0."""
    target, fam = data.target, family(data.target.family)
    if target.family != "retrieval":
        model = base
    else:  # pooled embeddings of the chosen layer (Tatoeba: of the encoder the QA stage trained)
        n_layers = base.encoder.config.num_hidden_layers
        layer = retrieval_layer(target.key, cfg.retrieval_layer, n_layers)
        if layer is not None and not 0 <= layer <= n_layers:
            raise ValueError(f"target.retrieval_layer {layer} is not a hidden-state index of this "
                             f"encoder (0 = embeddings .. {n_layers} = last layer)")
        model = TaskModel(base.encoder, fam.head(base.encoder, target), layer=layer)
    raws = run_eval(model, fam, data.final + data.pairs, cfg.training.eval_batch_size, pad_id, device,
                    smoother=smoother(method, fam) if model is base else None, rank_world=rank_world, amp=amp)
    if raws is None:
        return {}
    metrics, predictions = score_sets(fam, data.final, raws)
    if data.pairs:  # generalized cross-lingual transfer: every pair, its mean, and per first language
        pair_metrics, _ = score_sets(fam, data.pairs, raws)
        metrics.update(pair_metrics)
        metrics.update(generalized_metrics(target.key, data.final, data.pairs, metrics))
    per_language = {s.lang: {m.rsplit("/", 1)[1]: v for m, v in metrics.items() if m.startswith(s.name + "/")}
                    for s in data.final}
    avg, score = task_summary(per_language, qa=target.family == "qa")
    metrics.update({N.avg_metric(target.key, m): v for m, v in avg.items()})
    metrics[N.task_score(target.key)] = score
    if cfg.predictions_dir:
        out = Path(cfg.predictions_dir)
        for s in data.final:
            fam.write(target, s.lang, s.examples, predictions[s.name], out / "predictions", out / "labels")
    return metrics
