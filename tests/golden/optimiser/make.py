"""Regenerate ``no_decay.json`` and ``schedule.json`` from the benchmark's own code.

    python tests/golden/optimiser/make.py XTREME_DIR TRANSFORMERS_OPTIMIZATION_PY

XTREME_DIR: a checkout of google-research/xtreme; its ``third_party/run_classify.py`` block that
builds ``optimizer_grouped_parameters`` is executed as written on the parameter names of
BERT- and XLM-R-format task models (built from configs, no weights needed).
TRANSFORMERS_OPTIMIZATION_PY: ``transformers/optimization.py`` of the version XTREME-R pins
(its ``get_linear_schedule_with_warmup``), executed as written with torch's LambdaLR.
Only the golden data this writes is the benchmark's; this script is ours.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
MODELS = ("bert", "xlm-roberta")


def task_model(kind: str) -> torch.nn.Module:
    """A classification task model over a tiny encoder of the given architecture."""
    from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

    from trainables.tasks import family, target_task
    from trainables.tasks.base import TaskModel

    small = dict(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=32, max_position_embeddings=64)
    encoder = BertModel(BertConfig(**small)) if kind == "bert" else XLMRobertaModel(XLMRobertaConfig(**small))
    return TaskModel(encoder, family("classification").head(encoder, target_task("xnli")))


def official_grouping(source: str, model) -> dict[str, bool]:
    """Run the benchmark's parameter-grouping block on ``model``: name -> decayed."""
    block = re.search(r"^(\s*)no_decay = .*?^\1\]\n", source, re.S | re.M).group(0)
    args = type("Args", (), {"weight_decay": 0.01})()
    scope = {"model": model, "args": args}
    exec("\n".join(line[len(re.match(r"\s*", block).group(0)):] for line in block.splitlines()), scope)
    decayed = {id(p) for p in scope["optimizer_grouped_parameters"][0]["params"]}
    return {n: id(p) in decayed for n, p in model.named_parameters()}


def official_schedule(optimization_py: str) -> dict[str, list[float]]:
    """Multipliers of the pinned ``get_linear_schedule_with_warmup`` for a few (warm-up, total)."""
    scope: dict = {}
    fn = re.search(r"^def get_linear_schedule_with_warmup.*?(?=^def |\Z)", optimization_py, re.S | re.M).group(0)
    exec("from torch.optim.lr_scheduler import LambdaLR\n" + fn, scope)
    out = {}
    for warmup, total in ((0, 10), (3, 10), (5, 7), (500, 2000)):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched = scope["get_linear_schedule_with_warmup"](opt, warmup, total)
        out[f"{warmup}/{total}"] = [round(fn(s), 8) for fn in sched.lr_lambdas for s in range(total + 1)]
    return out


def main(xtreme: str, optimization_py: str) -> None:
    source = (Path(xtreme) / "third_party" / "run_classify.py").read_text()
    grouping = {kind: official_grouping(source, task_model(kind)) for kind in MODELS}
    (HERE / "no_decay.json").write_text(json.dumps(grouping, indent=1, sort_keys=True) + "\n")
    schedule = official_schedule(Path(optimization_py).read_text())
    (HERE / "schedule.json").write_text(json.dumps(schedule, indent=1) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[2]))
    main(*sys.argv[1:3])
