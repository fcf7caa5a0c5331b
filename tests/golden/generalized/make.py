"""Regenerate ``pairs.json``: the language pairs Robust-XLT averages in the generalized setting.

    python tests/golden/generalized/make.py ROBUST_XLT_DIR

ROBUST_XLT_DIR: a checkout of uclanlp/Robust-XLT; the ``LANGS=`` line of
``scripts/eval_generalized_{pawsx,xnli}.sh`` is what its ``run_classify.py --predict_languages``
evaluates, pooling ``total_correct / total`` over all of them (``run_classify.py``, the
``total=`` lines). This script is ours; the pair lists are the benchmark's.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    scripts = Path(sys.argv[1]) / "scripts"
    pairs = {task: re.search(r"^LANGS='([^']*)'", (scripts / f"eval_generalized_{task}.sh").read_text(),
                             re.M).group(1).split(",") for task in ("pawsx", "xnli")}
    (HERE / "pairs.json").write_text(json.dumps(pairs, indent=0) + "\n")
