"""A sweep's runs from MLflow -> one row per (trial run, language), plus per-example scores.

Reads what ``orchestrator.tracking`` writes: the parent run (``xlt.role = sweep``, its
``plan.json``: samples per cell, the knobs Optuna samples, whether ASHA is on), its trial runs
(``xlt.role = trial``) with params ``domain``, ``robust_method``, ``noise_magnitude``,
``learning_rate``, ``seed``, ``target_task`` and the cell name tag, and metrics
``{task}/{lang}/{metric}`` and ``objective`` (English dev: what the selection protocol of
``report.selection`` ranks by; ``select/best_objective`` where the run kept its best epoch). The
robust-method *variant* of a run is its cell without the domain (``robust_method=rs_rp,
noise_magnitude=0.01``), so a contrast between domains compares like with like.

Only *completed* trials are analysed: status FINISHED and not stopped early by ASHA (tag
``xlt.stopped_early``); failed, running, killed and stopped trials are counted, by reason, in
``info["excluded"]``. (A trial only evaluates the target languages after its last epoch, so a
stopped trial has no per-language metric; the tag makes the rule explicit.)

Per-example scores (0/1 correctness) come from the run's ``predictions/`` and ``labels/``
artifacts for accuracy metrics (XNLI, PAWS-X, XCOPA, Tatoeba), so intervals carry the test
items' uncertainty; other metrics (chunk F1, EM/F1, mAP) do not decompose, and only seeds are
analysed. ``PARALLEL_TASKS`` are line-aligned translations of one item set: item i is the same
item in every language.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from trainables import schema as N

DEFAULT_METRICS = ("accuracy", "f1", "map_at_20")
ACCURACY_TASKS = ("xnli", "pawsx", "xcopa", "tatoeba")
PARALLEL_TASKS = ("xnli", "pawsx", "xcopa")


class ReportError(ValueError):
    """The experiment or metric does not exist, or nothing can be analysed."""


def _variant(cell_name: str) -> str:
    parts = [p for p in cell_name.split(",") if not p.startswith("domain=")]
    return ",".join(parts) or "robust_method=none"


def collect(client, experiment: str, metric: str | None = None):
    """(rows DataFrame, info dict) for the experiment's sweep; raises ReportError clearly."""
    import pandas as pd

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # else a bar per downloaded run

    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ReportError(f"no MLflow experiment '{experiment}'; experiments: {', '.join(names) or '(none)'}")
    runs = client.search_runs([exp.experiment_id], max_results=50000)
    parents = [r for r in runs if r.data.tags.get(N.TAG_ROLE) == N.ROLE_SWEEP]
    trials = [r for r in runs if r.data.tags.get(N.TAG_ROLE) == N.ROLE_TRIAL]
    if not trials:
        raise ReportError(f"experiment '{experiment}' has no trial runs (tag xlt.role = trial): is it an xlt sweep?")
    tasks = sorted({r.data.params.get("target_task", "?") for r in trials})
    if len(tasks) != 1:
        raise ReportError(f"experiment '{experiment}' mixes target tasks {tasks}; report one task at a time")
    task = tasks[0]
    parsed = [N.parse_lang_metric(k) for r in trials for k in r.data.metrics]
    per_lang = {p.metric for p in parsed if p is not None and p.task == task}
    if metric is None:
        metric = next((m for m in DEFAULT_METRICS if m in per_lang), None)
    if metric is None or metric not in per_lang:
        raise ReportError(f"metric '{metric}' is not logged per language for {task} in '{experiment}'; "
                          f"logged: {', '.join(sorted(per_lang)) or '(none yet: no trial has finished)'}")
    rows, excluded = [], {}
    for r in trials:
        p, m = r.data.params, r.data.metrics
        why = _excluded(r, task, metric)
        if why:
            excluded[why] = excluded.get(why, 0) + 1
            continue
        cell = r.data.tags.get(N.TAG_CELL_NAME, f"domain={p.get('domain')},robust_method={p.get('robust_method')}")
        objective = m.get(N.BEST_OBJECTIVE, m.get(N.OBJECTIVE, math.nan))
        for key, value in m.items():
            name = N.parse_lang_metric(key)
            if name is not None and name.task == task and name.metric == metric:
                rows.append({"run_id": r.info.run_id, "status": r.info.status, "domain": p.get("domain"),
                             "robust_method": p.get("robust_method"), "variant": _variant(cell),
                             "noise_magnitude": float(p.get("noise_magnitude", 0) or 0),
                             "learning_rate": float(p.get("learning_rate", "nan")), "seed": int(p.get("seed", 0)),
                             "objective": float(objective), "start_time": r.info.start_time or 0,
                             "cell": cell, "lang": name.lang, "value": float(value)})
    plan = _plan(client, parents[0].info.run_id) if parents else {}
    info = {"experiment": experiment, "task": task, "metric": metric, "trials": len(trials),
            "analysed_runs": len({r["run_id"] for r in rows}), "excluded": excluded,
            "status": {s: sum(r.info.status == s for r in trials) for s in {r.info.status for r in trials}},
            "parent_run_id": parents[0].info.run_id if parents else None,
            "asha": bool(plan.get("asha", False)), "samples_per_cell": int(plan.get("samples_per_cell", 1)),
            "sampled_by_optuna": sorted(plan.get("sampled_by_optuna", {})),
            "stopped_early": excluded.get("stopped early by ASHA", 0)}
    if not rows:
        raise ReportError(f"no completed trial of '{experiment}' has logged {task}/<lang>/{metric} yet"
                          + (f" (excluded: {_counts(excluded)})" if excluded else ""))
    return pd.DataFrame(rows), info


def _excluded(run, task: str, metric: str) -> str | None:
    """Why a trial run is not analysed, or None for a completed one."""
    if run.info.status != "FINISHED":
        return run.info.status.lower()
    if run.data.tags.get(N.TAG_STOPPED_EARLY) == "true":
        return "stopped early by ASHA"
    if not any((n := N.parse_lang_metric(k)) is not None and n.task == task and n.metric == metric
               for k in run.data.metrics):
        return f"finished without {task}/<lang>/{metric}"
    return None


def _counts(excluded: dict) -> str:
    return ", ".join(f"{n} {why}" for why, n in sorted(excluded.items()))


def _plan(client, parent_id: str) -> dict:
    """The sweep's ``plan.json`` ({} when the parent run has none: a sweep logged by hand)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return json.loads(Path(client.download_artifacts(parent_id, "plan.json", tmp)).read_text())
        except Exception:  # no such artifact
            return {}


def example_scores(client, run_ids: list[str], task: str, metric: str) -> dict[tuple[str, str], np.ndarray]:
    """{(run id, lang): 0/1 per test example} from the runs' prediction artifacts (accuracy
    tasks only; {} otherwise or where the artifacts are missing)."""
    from trainables.scoring.evaluator import BENCHMARKS

    if metric != "accuracy" or task not in ACCURACY_TASKS:
        return {}
    bench = BENCHMARKS["xtreme-r"].get(task) or BENCHMARKS["xtreme"][task]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run_id in run_ids:
            try:
                local = Path(client.download_artifacts(run_id, "", str(Path(tmp) / run_id)))
            except Exception:  # no artifacts (a run logged by hand, or still running)
                continue
            for pred in sorted((local / "predictions" / task).glob(f"test-*.{bench.suffix}")):
                lang = pred.stem.split("-", 1)[1]
                gold = local / "labels" / task / pred.name
                if not gold.is_file():
                    continue
                p, g = bench.reader(pred), bench.reader(gold)
                if len(p) == len(g):
                    out[(run_id, lang)] = np.array([a == b for a, b in zip(p, g)], dtype=float) * 100.0
    return out
