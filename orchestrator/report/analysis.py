"""The analysis behind ``xlt-report``: cells, domain effects, typological groups, correlations,
method x domain interaction.

Inputs: the (run, language) rows of ``collect.collect`` and optional per-example scores.

- ``cells``: mean, standard deviation and number of seeds of the metric for every
  (domain, variant, language), so a partial sweep says how much it rests on.
- ``effects``: for each reference domain present (``general``, ``none``) and every other
  domain (``none`` vs ``general`` is left out: it is ``general`` vs ``none`` negated), per
  variant and language: the paired effect (``stats.paired_effect``) with its 95%
  interval, p and Benjamini-Hochberg q over all per-language tests of the report. English, the
  source language, is reported but kept out of the typological analyses (zero-shot targets only).
- ``groups``: the mean effect over the languages of a group: tertiles of syntactic distance to
  English (near / mid / far), language family, script.
- ``correlations``: Spearman's rho between per-language effect and each distance measure.
- ``interaction``: per reference, domain and variant, the domain effect under that variant minus
  the domain effect under plain fine-tuning (``robust_method=none``), averaged over languages:
  does robust training change what the domain does?
"""

from __future__ import annotations

import numpy as np

from orchestrator.report import stats as S
from orchestrator.report.typology import DISTANCES, typology_table

REFERENCES = ("general", "none")
BASE_VARIANT = "robust_method=none"


def cells(rows):
    return (rows.groupby(["domain", "variant", "lang"])["value"]
            .agg(mean="mean", std="std", seeds="count").reset_index())


def _diff(rows, examples, cell_runs, ref_runs, seeds, lang):
    """|S| x n differences (per example where every run has them, else per seed)."""
    a = [examples.get((cell_runs[s], lang)) for s in seeds]
    b = [examples.get((ref_runs[s], lang)) for s in seeds]
    if all(x is not None for x in a + b) and len({len(x) for x in a + b}) == 1:
        return np.stack(a) - np.stack(b)
    value = rows.set_index(["run_id", "lang"])["value"]
    return np.array([[value[(cell_runs[s], lang)] - value[(ref_runs[s], lang)]] for s in seeds])


def effects(rows, examples: dict, n_boot: int = S.B_DEFAULT) -> tuple[list[dict], dict]:
    """Per-language effect rows, and {(reference, domain, variant, lang): Effect}."""
    by = {}
    for (domain, variant, lang, seed), g in rows.groupby(["domain", "variant", "lang", "seed"]):
        by.setdefault((domain, variant, lang), {})[seed] = g["run_id"].iloc[0]
    out, found = [], {}
    domains = sorted(rows["domain"].unique())
    for ref in [r for r in REFERENCES if r in domains]:
        for domain in [d for d in domains if d != ref and not (ref == "general" and d == "none")]:
            for (d, variant, lang), runs in sorted(by.items()):
                if d != domain or (ref, variant, lang) not in by:
                    continue
                ref_runs = by[(ref, variant, lang)]
                seeds = tuple(sorted(set(runs) & set(ref_runs)))
                if not seeds:
                    continue
                e = S.paired_effect(_diff(rows, examples, runs, ref_runs, seeds, lang), lang, seeds, n_boot)
                found[(ref, domain, variant, lang)] = e
                out.append({"reference": ref, "domain": domain, "variant": variant, "lang": lang,
                            "effect": e.estimate, "low": e.low, "high": e.high, "p": e.p,
                            "seeds": e.seeds, "examples": e.examples})
    for row, q in zip(out, S.bh_qvalues([r["p"] for r in out])):
        row["q"] = q
        row["significant"] = bool(q < 0.05) if not np.isnan(q) else False
    return out, found


def _group_of(typo, lang: str, grouping: str) -> str:
    row = typo.loc[lang]
    return row["tertile"] if grouping == "distance tertile" else row[grouping]


def typology_for(langs: list[str]):
    typo = typology_table(sorted(langs)).set_index("lang")
    targets = typo.drop(index="en", errors="ignore")
    if len(targets) >= 3:
        ranks = targets["dist_syntax_knn"].rank(method="first")
        cuts = np.ceil(ranks * 3 / len(targets)).astype(int).clip(1, 3)
        typo.loc[targets.index, "tertile"] = cuts.map({1: "near", 2: "mid", 3: "far"})
    else:
        typo.loc[targets.index, "tertile"] = "all"
    return typo


def groups(found: dict, typo) -> list[dict]:
    out = []
    keys = sorted({k[:3] for k in found})
    for ref, domain, variant in keys:
        langs = [k[3] for k in found if k[:3] == (ref, domain, variant) and k[3] != "en"]
        for grouping in ("distance tertile", "family", "script"):
            members: dict[str, list] = {}
            for lang in langs:
                members.setdefault(_group_of(typo, lang, grouping), []).append(lang)
            for group, ls in sorted(members.items()):
                e = S.combine([found[(ref, domain, variant, lang)] for lang in ls])
                out.append({"reference": ref, "domain": domain, "variant": variant, "grouping": grouping,
                            "group": group, "languages": ",".join(ls), "effect": e.estimate, "low": e.low,
                            "high": e.high, "p": e.p})
    return out


def correlations(found: dict, typo) -> list[dict]:
    out = []
    for ref, domain, variant in sorted({k[:3] for k in found}):
        langs = [k[3] for k in found if k[:3] == (ref, domain, variant) and k[3] != "en"]
        for measure in DISTANCES:
            res = S.spearman([found[(ref, domain, variant, lg)].estimate for lg in langs],
                             [typo.loc[lg, f"dist_{measure}"] for lg in langs])
            out.append({"reference": ref, "domain": domain, "variant": variant, "distance": measure, **res})
    return out


def interaction(found: dict) -> list[dict]:
    out = []
    for ref, domain, variant in sorted({k[:3] for k in found}):
        if variant == BASE_VARIANT:
            continue
        langs = [k[3] for k in found if k[:3] == (ref, domain, variant) and k[3] != "en"
                 and (ref, domain, BASE_VARIANT, k[3]) in found]
        if not langs:
            continue
        e = S.combine([S.difference(found[(ref, domain, variant, lg)], found[(ref, domain, BASE_VARIANT, lg)])
                       for lg in langs])
        out.append({"reference": ref, "domain": domain, "variant": variant, "languages": len(langs),
                    "interaction": e.estimate, "low": e.low, "high": e.high, "p": e.p})
    return out
