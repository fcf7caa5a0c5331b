"""The analysis behind ``xlt-report``: cells, domain effects, typological groups, correlations,
method x domain interaction, and one multiple-testing family over all of them.

Inputs: the units of ``selection.select`` (one per cell, seed and language) and their per-item
scores. Inference is ``stats.combine`` throughout (seeds as the unit of replication, items
added where they exist, parallel test sets combined item by item).

- ``cells``: mean, standard deviation and number of seeds of the metric for every
  (domain, variant, language), with the samples per seed behind each unit.
- ``effects``: for each reference domain present (``general``, ``none``) and every other
  domain (``none`` vs ``general`` is left out: it is ``general`` vs ``none`` negated), per
  variant and language: the paired effect over the seeds both cells completed. English, the
  source language, is reported but kept out of the typological analyses (zero-shot targets).
- ``groups``: the mean effect over the target languages of a group: all of them, tertiles of
  syntactic distance to English (near / mid / far), language family, script.
- ``correlations``: Spearman's rho between per-language effect and each distance measure,
  permutation p, an interval resampling seeds, items and languages.
- ``interaction``: per reference, domain and variant, the domain effect under that variant minus
  the domain effect under plain fine-tuning (``robust_method=none``), averaged over target
  languages: does robust training change what the domain does?
- ``adjust``: Benjamini-Hochberg over every test of the report (``q``, ``significant``).

``analyse`` runs them all on ``collect``'s rows (``seeds``: only those seeds, e.g. to see what
fewer seeds would have said; the calibration benchmark uses it).
"""

from __future__ import annotations

import math

import numpy as np

from orchestrator.report import stats as S
from orchestrator.report.collect import PARALLEL_TASKS
from orchestrator.report.typology import typology_table

REFERENCES = ("general", "none")
BASE_VARIANT = "robust_method=none"
GROUPINGS = ("all", "distance tertile", "family", "script")


def cells(units):
    """Mean, standard deviation, seeds and samples of each (domain, variant, language) cell."""
    out = (units.groupby(["domain", "variant", "lang"])
           .agg(mean=("value", "mean"), std=("value", "std"), seeds=("seed", "nunique"),
                samples=("samples", "max")).reset_index())
    return out


def _by_cell(units, items: dict) -> dict:
    """{(domain, variant, lang): {seed: (value, items or None)}}."""
    out: dict = {}
    for r in units.itertuples():
        out.setdefault((r.domain, r.variant, r.lang), {})[r.seed] = (
            r.value, items.get((r.domain, r.variant, r.seed, r.lang)))
    return out


def _evidence(a: dict, b: dict, lang: str, task: str) -> S.Evidence:
    seeds = sorted(set(a) & set(b))
    per_seed = {s: a[s][0] - b[s][0] for s in seeds}
    items = None
    if seeds and all(a[s][1] is not None and b[s][1] is not None and len(a[s][1]) == len(b[s][1]) for s in seeds):
        items = {s: a[s][1] - b[s][1] for s in seeds}
        per_seed = {s: float(np.mean(x)) for s, x in items.items()}
    return S.Evidence(lang, per_seed, items, task if task in PARALLEL_TASKS else "")


def contrasts(domains) -> list[tuple[str, str]]:
    """The (reference, domain) pairs the report compares: each domain against ``none`` and against ``general``."""
    return [(ref, d) for ref in REFERENCES if ref in domains
            for d in sorted(domains) if d != ref and not (ref == "general" and d == "none")]


def _row(e: S.Effect) -> dict:
    return {"effect": e.estimate, "low": e.low, "high": e.high, "p": e.p, "seeds": e.seeds,
            "examples": e.examples, "note": e.note}


def effects(units, items: dict, task: str) -> tuple[list[dict], dict]:
    """Per-language effect rows, and {(reference, domain, variant, lang): Evidence}."""
    by = _by_cell(units, items)
    out, found = [], {}
    for ref, domain in contrasts(set(units["domain"])):
        for (d, variant, lang), runs in sorted(by.items()):
            if d != domain or (ref, variant, lang) not in by:
                continue
            ev = _evidence(runs, by[(ref, variant, lang)], lang, task)
            if not ev.per_seed:
                continue
            found[(ref, domain, variant, lang)] = ev
            out.append({"reference": ref, "domain": domain, "variant": variant, "lang": lang,
                        **_row(S.combine([(1.0, ev)]))})
    return out, found


def _group_of(typo, lang: str, grouping: str) -> str:
    if grouping == "all":
        return "all targets"
    row = typo.loc[lang]
    return row["tertile"] if grouping == "distance tertile" else row[grouping]


def typology_for(langs: list[str]):
    """The typology table of ``langs`` (index: language; its source's facts in ``attrs``), with each target
    language's tertile of the source's primary distance to English."""
    table = typology_table(sorted(langs))
    typo = table.set_index("lang")
    typo.attrs.update(table.attrs)
    targets = typo.drop(index="en", errors="ignore")
    if len(targets) >= 3:
        ranks = targets[f"dist_{typo.attrs['primary']}"].rank(method="first")
        cuts = np.ceil(ranks * 3 / len(targets)).astype(int).clip(1, 3)
        typo.loc[targets.index, "tertile"] = cuts.map({1: "near", 2: "mid", 3: "far"})
    else:
        typo.loc[targets.index, "tertile"] = "all"
    return typo


def _targets(found: dict, key: tuple) -> list[str]:
    return sorted(k[3] for k in found if k[:3] == key and k[3] != "en")


def groups(found: dict, typo) -> list[dict]:
    """The effect of each contrast and variant averaged over the target languages of each typological group."""
    out = []
    for key in sorted({k[:3] for k in found}):
        langs = _targets(found, key)
        for grouping in GROUPINGS:
            members: dict[str, list] = {}
            for lang in langs:
                members.setdefault(_group_of(typo, lang, grouping), []).append(lang)
            for group, ls in sorted(members.items()):
                e = S.combine([(1 / len(ls), found[(*key, lang)]) for lang in ls])
                out.append({"reference": key[0], "domain": key[1], "variant": key[2], "grouping": grouping,
                            "group": group, "languages": ",".join(ls), **_row(e)})
    return out


def correlations(found: dict, typo, n_boot: int = S.B_DEFAULT) -> list[dict]:
    """Spearman correlation of each contrast's per-language effect with each distance to English: exact permutation
    p and an interval resampling seeds, items and languages."""
    out = []
    for key in sorted({k[:3] for k in found}):
        langs = _targets(found, key)
        evidence = [found[(*key, lang)] for lang in langs]
        estimates = np.array([S.combine([(1.0, ev)]).estimate for ev in evidence])
        seeds = len(set.intersection(*(set(ev.per_seed) for ev in evidence))) if evidence else 0
        reps = S.replicate_effects(evidence, n_boot, np.random.default_rng(0)) if seeds >= 2 and n_boot else None
        for measure in typo.attrs["measures"]:
            dist = np.array([typo.loc[lg, f"dist_{measure}"] for lg in langs], float)
            ok = ~np.isnan(dist)
            row = {"reference": key[0], "domain": key[1], "variant": key[2], "distance": measure,
                   "rho": math.nan, "low": math.nan, "high": math.nan, "p": math.nan, "exact": False,
                   "languages": int(ok.sum()), "seeds": seeds, "note": ""}
            if ok.sum() < 4 or np.ptp(dist[ok]) == 0:
                row["note"] = "fewer than 4 languages with this distance" if ok.sum() < 4 else "constant distance"
            else:
                row["rho"] = S.spearman(dist[ok], estimates[ok])
                if seeds < 2:
                    row["note"] = S.DESCRIPTIVE
                elif not math.isnan(row["rho"]):
                    row["p"], row["exact"] = S.permutation_p(dist[ok], estimates[ok])
                    if reps is not None:
                        row["low"], row["high"] = S.rho_interval(reps[:, ok], dist[ok], seed=1)
            out.append(row)
    return out


def interaction(found: dict) -> list[dict]:
    """Per contrast: how much a robust variant changes the domain effect against plain fine-tuning, over the
    languages both have."""
    out = []
    for ref, domain, variant in sorted({k[:3] for k in found}):
        if variant == BASE_VARIANT:
            continue
        langs = [lg for lg in _targets(found, (ref, domain, variant)) if (ref, domain, BASE_VARIANT, lg) in found]
        if not langs:
            continue
        w = 1 / len(langs)
        e = S.combine([t for lg in langs for t in ((w, found[(ref, domain, variant, lg)]),
                                                    (-w, found[(ref, domain, BASE_VARIANT, lg)]))])
        out.append({"reference": ref, "domain": domain, "variant": variant, "languages": len(langs),
                    "interaction": e.estimate, **{k: v for k, v in _row(e).items() if k != "effect"}})
    return out


def adjust(*tables: list[dict]) -> int:
    """Benjamini-Hochberg over every row with a p in ``tables`` (one family); sets ``q`` and
    ``significant`` on each row. Returns the family's size (tests with a p)."""
    rows = [r for t in tables for r in t]
    for r, q in zip(rows, S.bh_qvalues([r["p"] for r in rows])):
        r["q"] = q
        r["significant"] = bool(q < 0.05) if not np.isnan(q) else False
    return sum(not np.isnan(r["p"]) for r in rows)


def analyse(rows, examples: dict, info: dict, select: str = "best", n_boot: int = S.B_DEFAULT,
            seeds=None, correlate: bool = True) -> dict:
    """Every table of the report from ``collect``'s rows and per-example scores; ``n_boot`` = 0
    skips the correlation intervals, ``correlate=False`` the correlations."""
    from orchestrator.report.selection import describe
    from orchestrator.report.selection import select as select_units

    if seeds is not None:
        rows = rows[rows["seed"].isin(list(seeds))]
    units, items = select_units(rows, examples, select)
    info = {**info, "bootstrap": n_boot, "per_example_runs": len({k[0] for k in examples}), "select": select,
            "protocol": describe(select), "seeds": int(units["seed"].nunique()),
            "samples": int(units["samples"].max())}
    typo = typology_for(sorted(rows["lang"].unique()))
    found_rows, found = effects(units, items, info["task"])
    out = {"typology": typo, "cells": cells(units), "effects": found_rows, "groups": groups(found, typo),
           "correlations": correlations(found, typo, n_boot) if correlate else [], "interaction": interaction(found)}
    info["tests"] = adjust(out["effects"], out["groups"], out["interaction"], out["correlations"])
    info.update(typology=typo.attrs["source"], distance=typo.attrs["primary"],
                distance_label=typo.attrs["primary_label"])
    return {"info": info, **out}
