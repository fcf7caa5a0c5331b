"""``xlt-score``: score prediction folders the way the official XTREME(-R) evaluator does.

    xlt-score --predictions DIR --labels DIR [--benchmark xtreme-r|xtreme] [--json FILE] [--partial]
              [--overall-with-lareqa]

Prints per-task, per-language scores, task averages and scores, group scores and the overall
score, in percent; ``--json`` also writes them as
``{"tasks": {task: {"per_language": {lang: {metric: value}}, "avg": {metric: value},
"score": value}}, "groups": {group: value}, "overall": value or null, "overall_tasks": [task]}``
(the overall score averages ``overall_tasks``: evaluate.py's, LAReQA left out, unless
``--overall-with-lareqa``).
Every MLflow trial run of a sweep carries ``predictions/`` and ``labels/`` artifacts in this
layout, so any run can be re-scored. Exit codes: 0 scored, 2 unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trainables.scoring.evaluator import BENCHMARKS, evaluate_folders
from trainables.scoring.files import ScoreError


def render(result: dict) -> str:
    """``evaluate_folders``' result as the text ``xlt-score`` prints."""
    lines = []
    for task, r in result["tasks"].items():
        lines.append(f"== {task} ==")
        metrics = list(r["avg"])
        langs = list(r["per_language"])
        lines.append("  " + "lang".ljust(8) + "".join(m.rjust(13) for m in metrics))
        for lang in langs:
            lines.append("  " + lang.ljust(8) + "".join(f"{r['per_language'][lang][m]:13.2f}" for m in metrics))
        lines.append("  " + "avg".ljust(8) + "".join(f"{r['avg'][m]:13.2f}" for m in metrics))
        lines.append(f"  score {r['score']:.2f}")
    for group, value in result["groups"].items():
        lines.append(f"group {group}: {value:.2f}")
    overall = result["overall"]
    if result.get("partial"):
        lines.append("partial: only the languages present were scored; no group or overall score")
    else:
        counted = result["overall_tasks"]
        left_out = [k for k in BENCHMARKS[result["benchmark"]] if k not in counted]
        lines.append("overall: " + (f"{overall:.2f}" if overall is not None else
                                    f"n/a (needs all of {', '.join(counted)})")
                     + (f" (mean of {len(counted)} tasks; not counted: {', '.join(left_out)})" if left_out else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``xlt-score``: score a predictions folder against a labels folder as the official evaluator does; returns the
    exit code."""
    p = argparse.ArgumentParser(prog="xlt-score", description=__doc__.split("\n\n")[0])
    p.add_argument("--predictions", required=True, help="folder with {task}/test-{lang}.{ext} predictions")
    p.add_argument("--labels", required=True, help="folder with the gold files in the same layout")
    p.add_argument("--benchmark", choices=sorted(BENCHMARKS), default="xtreme-r")
    p.add_argument("--json", help="also write the scores to this JSON file")
    p.add_argument("--partial", action="store_true",
                   help="score only the languages present in both folders (a sweep over a subset of a "
                        "task's languages); no group or overall scores")
    p.add_argument("--overall-with-lareqa", action="store_true",
                   help="the overall score as the XTREME-R paper's mean of all ten tasks (LAReQA included); "
                        "by default it is the mean of the tasks evaluate.py scores (LAReQA left out)")
    args = p.parse_args(argv)
    try:
        result = evaluate_folders(args.predictions, args.labels, args.benchmark, args.partial,
                                  args.overall_with_lareqa)
    except ScoreError as e:
        print(f"xlt-score: {e}", file=sys.stderr)
        return 2
    print(render(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(
            {k: result[k] for k in ("tasks", "groups", "overall", "overall_tasks")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
