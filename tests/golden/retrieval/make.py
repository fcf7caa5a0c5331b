"""Regenerate ``tatoeba_layers.json`` and ``batches.json`` from the benchmark's scripts.

    python tests/golden/retrieval/make.py XTREME_DIR

- ``tatoeba_layers.json``: the layer run_tatoeba.sh pools, per encoder depth. From
  ``scripts/run_tatoeba.sh`` (``LAYER`` / ``NLAYER``, base and large) and
  ``third_party/evaluate_retrieval.py``, which pools
  ``all_layer_outputs[-num_layers:][specific_layer]``: the hidden states without the embedding
  output, so ``specific_layer`` k is hidden-state index k + 1.
- ``batches.json``: per training script of the dual-encoder tasks (``train_lareqa.sh``,
  ``train_mewslix.sh``) and per model it configures, ``PER_GPU_BATCH_SIZE`` and
  ``GRAD_ACC_STEPS`` (a model branch's assignment over the script's top-level one). The
  training code (``run_retrieval_qa.py`` / ``run_retrieval_el.py``) computes the in-batch loss
  per forward pass of ``per_gpu_train_batch_size`` pairs and steps after ``GRAD_ACC_STEPS``
  of them, which is also checked here in its source.

This script is ours; the values are the benchmark's.
"""

from __future__ import annotations

import importlib.util
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

    def assignments(text: str, names: tuple[str, ...]) -> dict[str, int]:
        return {k: int(v) for k, v in re.findall(rf"^\s*({'|'.join(names)})=(\d+)", text, re.M)}

    spec = importlib.util.spec_from_file_location("mewslix_make_ids", HERE.parent / "mewslix" / "make_ids.py")
    mewslix = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mewslix)  # its model-branch parser (stdlib only)
    names = ("PER_GPU_BATCH_SIZE", "GRAD_ACC_STEPS")
    batches = {}
    for task, trainer in (("lareqa", "run_retrieval_qa.py"), ("mewslix", "run_retrieval_el.py")):
        text = (root / "scripts" / f"train_{task}.sh").read_text()
        top = assignments(re.sub(mewslix.MODEL_BRANCH, "", text, flags=re.S), names)
        batches[task] = {model: {**top, **assignments(body, names)}
                         for model, body in mewslix.model_branches(text).items()}
        code = (root / "third_party" / trainer).read_text()
        assert "args.train_batch_size = args.per_gpu_train_batch_size * max(1, args.n_gpu)" in code
        assert "loss = loss / args.gradient_accumulation_steps" in code
        assert "(step + 1) % args.gradient_accumulation_steps == 0" in code
    (HERE / "batches.json").write_text(json.dumps(batches, indent=1, sort_keys=True) + "\n")
