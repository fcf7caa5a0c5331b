"""``xlt-report``: turn a sweep into the answer to the research question.

    xlt-report --experiment smoke --tracking-uri sqlite:///xlt_runs/mlflow.db --out report/
    xlt-report --experiment domains --metric accuracy --select mean --bootstrap 5000

Reads the sweep's completed runs from MLflow (``collect``), resolves sampled knobs to one unit
per (cell, seed) by the selection protocol (``selection``: ``--select best``, the best English
dev objective, by default), computes cells, domain effects against ``general`` and ``none``
(seeds as the unit of replication, items added: ``stats``), typological groups, Spearman
correlations with distance to English and the method x domain interaction, with one
Benjamini-Hochberg family over every test (``analysis``), and writes to ``--out``:
``report.html`` (self-contained), ``heatmap.png``, ``effect_vs_distance.png``, ``groups.png``,
the tables as CSV, ``runs_by_language.parquet``
(one row per run x language with params and typology, for your own analysis) and
``report.json``. The same files are logged as artifacts (``report/``) of the sweep's parent
run. Works on partial and running sweeps (unfinished runs are counted, not analysed).
The page leads with the answer: per contrast and robust method, the effect by language group.

Exit codes: 0 written; 2 the experiment or metric does not exist, or nothing can be analysed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def build(client, experiment: str, out: Path, metric: str | None = None, n_boot: int = 2000,
          log_to_mlflow: bool = True, select: str = "best") -> dict:
    """Collect the sweep ``experiment`` from MLflow, analyse it and write the report to ``out`` (and,
    ``log_to_mlflow``, under the sweep's parent run); returns the report's JSON."""
    import pandas as pd

    from orchestrator.report import analysis as A
    from orchestrator.report import render as R
    from orchestrator.report.collect import collect, example_scores

    rows, info = collect(client, experiment, metric)
    examples = example_scores(client, sorted(rows["run_id"].unique()), info["task"], info["metric"])
    a = A.analyse(rows, examples, info, select, n_boot)
    info, typo, cells, effects, groups, correlations, interaction = (
        a["info"], a["typology"], a["cells"], a["effects"], a["groups"], a["correlations"], a["interaction"])
    out.mkdir(parents=True, exist_ok=True)
    images = {"heatmap": out / "heatmap.png", "effect_vs_distance": out / "effect_vs_distance.png",
              "groups": out / "groups.png"}
    if effects:
        R.heatmap(effects, typo, images["heatmap"])
        R.scatter(effects, correlations, typo, images["effect_vs_distance"])
        R.bars(groups, images["groups"])
    else:  # one domain only: nothing to contrast, the page still shows the cells
        for path in images.values():
            R._plt().figure(figsize=(4, 1)).savefig(path)
    sentences = R.summary_sentences(info, effects, groups, correlations, interaction)
    if not effects:
        sentences.append("Only one domain (or no reference domain, general or none) is present: no effects to "
                         "estimate.")
    (out / "report.html").write_text(R.page(info, sentences, cells, effects, groups, correlations, interaction,
                                            typo, images), encoding="utf-8")
    joined = rows.merge(typo.reset_index(), on="lang", how="left")
    joined.to_parquet(out / "runs_by_language.parquet", index=False)
    cells.to_csv(out / "cells.csv", index=False)
    for name, table in (("effects", effects), ("groups", groups), ("correlations", correlations),
                        ("interaction", interaction)):
        pd.DataFrame(table).to_csv(out / f"{name}.csv", index=False)
    result = {"info": info, "summary": sentences, "cells": cells.to_dict("records"), "effects": effects,
              "groups": groups, "correlations": correlations, "interaction": interaction}
    (out / "report.json").write_text(json.dumps(result, indent=2, default=float), encoding="utf-8")
    if log_to_mlflow and info["parent_run_id"]:
        client.log_artifacts(info["parent_run_id"], str(out), "report")
    return result


def main(argv: list[str] | None = None) -> int:
    """``xlt-report``: a sweep's report from its MLflow runs; returns the exit code."""
    p = argparse.ArgumentParser(prog="xlt-report", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="examples:\n" + "\n".join(__doc__.split("\n\n")[1].splitlines()))
    p.add_argument("--experiment", required=True, help="the sweep's MLflow experiment (its name)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///xlt_runs/mlflow.db)")
    p.add_argument("--out", default=None, help="output folder (default: ./report-<experiment>)")
    p.add_argument("--metric", default=None, help="per-language metric (default: accuracy, f1 or map_at_20)")
    p.add_argument("--select", choices=("best", "mean", "refuse"), default="best",
                   help="several runs per (cell, seed) (search.samples_per_cell > 1): keep the one with the best "
                        "English dev objective (default), average them, or refuse")
    p.add_argument("--bootstrap", type=int, default=2000,
                   help="bootstrap replicates of the correlation intervals (default 2000)")
    p.add_argument("--no-log", action="store_true", help="do not log the report to the sweep's parent run")
    args = p.parse_args(argv)
    from orchestrator.report.collect import ReportError
    from orchestrator.tracking import open_client, resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri, "xlt_runs")
    out = Path(args.out or f"report-{args.experiment}")
    try:
        result = build(open_client(uri), args.experiment, out, args.metric, args.bootstrap, not args.no_log,
                       args.select)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join(result["summary"]))
    print(f"\nwrote {out / 'report.html'} (+ PNGs, CSVs, runs_by_language.parquet)"
          + ("" if args.no_log else "; logged to the sweep's parent run under report/"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
