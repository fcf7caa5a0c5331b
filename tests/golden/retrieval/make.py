"""Regenerate ``tatoeba_layers.json``: the layer run_tatoeba.sh pools, per encoder depth.

    python tests/golden/retrieval/make.py XTREME_DIR

From ``scripts/run_tatoeba.sh`` (``LAYER`` / ``NLAYER``, base and large) and
``third_party/evaluate_retrieval.py``, which pools ``all_layer_outputs[-num_layers:][specific_layer]``:
the hidden states without the embedding output, so ``specific_layer`` k is hidden-state index
k + 1. This script is ours; the values are the benchmark's.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    root = Path(sys.argv[1])
    script = (root / "scripts" / "run_tatoeba.sh").read_text()
    retrieval = (root / "third_party" / "evaluate_retrieval.py").read_text()
    assert "all_layer_outputs[-args.num_layers:]" in retrieval  # the embeddings are dropped before indexing
    layer = [int(x) for x in re.findall(r"^\s*LAYER=(\d+)", script, re.M)]
    depth = [int(x) for x in re.findall(r"^\s*NLAYER=(\d+)", script, re.M)]
    out = {"specific_layer_by_depth": dict(zip(map(str, depth), layer)), "drops_embedding_output": True}
    (HERE / "tatoeba_layers.json").write_text(json.dumps(out, indent=1) + "\n")
