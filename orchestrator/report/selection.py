"""The selection protocol: one unit per (cell, seed), so contrasts pair like with like.

A *cell* is a domain and a robust-method variant (the categorical choices); the seed
replicates it. Knobs sampled from a range (a ``training.learning_rate: {low, high}``, a
continuous ``noise_magnitude``) are not part of the cell: with ``search.samples_per_cell > 1``
a (cell, seed) has several completed runs at different sampled values, and a contrast must not
pair them arbitrarily (nor count them as seeds). They are resolved per (cell, seed):

- ``best`` (default): the run with the best English dev objective (``select/best_objective``,
  else ``objective``; ties: the earlier run). This is the zero-shot protocol: every condition's
  hyper-parameters are chosen on English dev, never on the target languages.
- ``mean``: the mean over the samples, metric and per-item scores alike (the effect averaged
  over the sampled knob's distribution).
- ``refuse``: stop with an error naming the (cell, seed)s that have more than one run.

With one sample per cell a sampled knob still differs between the two sides of a contrast
(each drew its own value): the page says so, as part of the protocol.
"""

from __future__ import annotations

import numpy as np

from orchestrator.report.collect import ReportError

PROTOCOLS = ("best", "mean", "refuse")
UNIT = ["domain", "variant", "seed"]


def describe(how: str) -> str:
    """The selection protocol ``how`` in words, for the report."""
    return {"best": "per (cell, seed), the sample with the best English dev objective (the zero-shot protocol)",
            "mean": "per (cell, seed), the mean over the samples",
            "refuse": "one run per (cell, seed) required"}[how]


def select(rows, examples: dict, how: str = "best"):
    """(units, items): one row per (domain, variant, seed, lang) with ``value`` and ``samples``
    (runs behind it), and {(domain, variant, seed, lang): per-item scores} where every run
    behind the unit has them."""
    if how not in PROTOCOLS:
        raise ReportError(f"--select {how!r}: choose one of {', '.join(PROTOCOLS)}")
    runs = rows.drop_duplicates("run_id")
    counts = runs.groupby(UNIT)["run_id"].nunique()
    several = counts[counts > 1]
    if how == "refuse" and len(several):
        cells = "; ".join(f"{d} [{v}] seed {s}: {n} runs" for (d, v, s), n in several.head(5).items())
        raise ReportError(f"{len(several)} (cell, seed)s have more than one completed run ({cells}"
                          f"{', ...' if len(several) > 5 else ''}): choose --select best or --select mean")
    if how == "best":
        order = runs.assign(_obj=runs["objective"].fillna(-np.inf)).sort_values(
            ["_obj", "start_time"], ascending=[False, True])
        chosen = set(order.groupby(UNIT)["run_id"].first())
        picked = rows[rows["run_id"].isin(chosen)]
        units = picked.assign(samples=picked.set_index(UNIT).index.map(counts).to_numpy())
        items = {(r.domain, r.variant, r.seed, r.lang): examples[(r.run_id, r.lang)]
                 for r in units.itertuples() if (r.run_id, r.lang) in examples}
        return units.reset_index(drop=True), items
    keys = UNIT + ["lang"]
    units = rows.groupby(keys).agg(value=("value", "mean"), samples=("run_id", "nunique"),
                                   run_id=("run_id", "first"), objective=("objective", "mean"),
                                   learning_rate=("learning_rate", "mean")).reset_index()
    items = {}
    for key, g in rows.groupby(keys):
        arrays = [examples.get((run, key[3])) for run in g["run_id"]]
        if all(a is not None for a in arrays) and len({len(a) for a in arrays}) == 1:
            items[key] = np.mean(arrays, axis=0)
    return units, items
