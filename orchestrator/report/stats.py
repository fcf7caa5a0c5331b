"""Effects with uncertainty: a paired, two-level bootstrap over seeds and test examples.

A *contrast* compares two cells that differ only in the domain (e.g. legal vs general, with the
same robust-method variant), language by language, paired on the seed (trials with the same
seed share everything but the domain) and on the test example (every cell is evaluated on the
same test set). For language l with common seeds S and, where per-example results exist, the
per-example score matrices A (cell) and B (reference), |S| x n:

    effect_l = mean_s mean_i (A[s, i] - B[s, i])            (points: percentage points)

With per-example results, one bootstrap replicate resamples the seeds with replacement and,
independently, the test examples with replacement (the same example indices for both cells:
the pairing), and recomputes the effect. The replicates give a percentile 95% interval and a
two-sided bootstrap p-value, ``2 * min(P(effect* <= 0), P(effect* >= 0))`` (the paired
bootstrap test of Koehn 2004, extended to seeds). Without per-example results (metrics that
do not decompose into examples, like chunk F1, or runs without prediction artifacts) the
analysis is over seeds only, and a percentile bootstrap over a handful of seeds is far too
optimistic; there the interval and test are the paired t over the seeds' differences (t with
|S| - 1 degrees of freedom), and a single seed gives no interval.

Seed draws come from a generator seeded by the seed set, example draws from one seeded by
(language, seed set), so every contrast of a language sees the same draws and every language
of a group the same seed draws: group means (mean over a group's languages of
the per-language replicates) and the method x domain interaction (difference of two contrasts'
replicates) keep the pairing.

Multiple comparisons: the per-language tests of a report are one family; Benjamini-Hochberg
controls the false discovery rate at 5% (``q`` values), and "significant" means q < 0.05.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

B_DEFAULT = 2000


@dataclass
class Effect:
    estimate: float
    low: float
    high: float
    p: float
    seeds: int
    examples: int
    replicates: np.ndarray | None = field(repr=False, default=None)
    """Bootstrap replicates (per-example results); None for the seed-level t analysis."""
    seed_values: dict | None = field(repr=False, default=None)
    """{seed: that seed's mean difference}, for combining effects seed by seed."""


def _rng(lang: str, seeds: tuple, base: int) -> np.random.Generator:
    digest = hashlib.sha1(f"{base}/{lang}/{seeds}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def t_effect(values: dict) -> Effect:
    """Seed-level analysis: paired t interval and one-sample t-test over the seeds' differences
    (the percentile bootstrap over a handful of seeds is far too optimistic)."""
    from scipy import stats as st

    x = np.array(list(values.values()), dtype=float)
    est = float(x.mean())
    if len(x) < 2 or np.all(x == x[0]):
        p = np.nan if len(x) < 2 else (0.0 if x[0] != 0 else 1.0)
        return Effect(est, np.nan if len(x) < 2 else est, np.nan if len(x) < 2 else est, p, len(x), 0,
                      None, values)
    se = x.std(ddof=1) / np.sqrt(len(x))
    half = st.t.ppf(0.975, len(x) - 1) * se
    return Effect(est, est - half, est + half, float(st.ttest_1samp(x, 0.0).pvalue), len(x), 0, None, values)


def paired_effect(diff: np.ndarray, lang: str, seeds: tuple, n_boot: int = B_DEFAULT, base_seed: int = 0) -> Effect:
    """``diff``: |S| x n per-example differences (two-level bootstrap over seeds and examples),
    or |S| x 1 per-seed differences (paired t over seeds), in points."""
    diff = np.asarray(diff, dtype=float)
    if diff.ndim == 1:
        diff = diff[:, None]
    s, n = diff.shape
    per_seed = dict(zip(seeds, diff.mean(axis=1).tolist()))
    if n == 1:
        return t_effect(per_seed)
    # the seed draws depend on the seed set only: every language of a group resamples the same
    # seeds in a replicate (their seed effects are shared); examples are drawn per language
    seed_w = _rng("", seeds, base_seed).multinomial(s, [1 / s] * s, size=n_boot) if s > 1 else np.ones((n_boot, 1))
    ex_w = _rng(lang, seeds, base_seed).multinomial(n, [1 / n] * n, size=n_boot)
    reps = np.einsum("bs,sn,bn->b", seed_w, diff, ex_w) / (s * n)
    return Effect(float(diff.mean()), *summarize(reps), s, n, reps, per_seed)


def summarize(reps: np.ndarray) -> tuple[float, float, float]:
    """(low, high, p) of bootstrap replicates: percentile 95% interval, two-sided p."""
    low, high = np.percentile(reps, [2.5, 97.5])
    p = 2 * min(np.mean(reps <= 0), np.mean(reps >= 0))
    return float(low), float(high), float(min(1.0, p))


def _by_seed(effects: list[Effect], sign: list[float]) -> dict:
    common = set.intersection(*(set(e.seed_values) for e in effects))
    return {s: sum(w * e.seed_values[s] for w, e in zip(sign, effects)) / max(1, sum(w > 0 for w in sign))
            for s in sorted(common)}


def combine(effects: list[Effect]) -> Effect:
    """Mean of several languages' effects (a typological group): replicate by replicate, or
    seed by seed (the languages share the seeds, so their seed effects are not independent)."""
    if all(e.replicates is not None for e in effects):
        reps = np.mean([e.replicates for e in effects], axis=0)
        estimate = float(np.mean([e.estimate for e in effects]))
        return Effect(estimate, *summarize(reps), min(e.seeds for e in effects),
                      sum(e.examples for e in effects), reps, _by_seed(effects, [1.0] * len(effects)))
    return t_effect(_by_seed(effects, [1.0] * len(effects)))


def difference(a: Effect, b: Effect) -> Effect:
    """a - b (the interaction of two contrasts): replicate by replicate, or seed by seed."""
    if a.replicates is not None and b.replicates is not None:
        reps = a.replicates - b.replicates
        return Effect(a.estimate - b.estimate, *summarize(reps), min(a.seeds, b.seeds),
                      min(a.examples, b.examples), reps, _by_seed([a, b], [1.0, -1.0]))
    common = sorted(set(a.seed_values) & set(b.seed_values))
    return t_effect({s: a.seed_values[s] - b.seed_values[s] for s in common})


def bh_qvalues(pvalues: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (NaN stays NaN)."""
    from scipy.stats import false_discovery_control

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = false_discovery_control(p[ok], method="bh")
    return out.tolist()


def spearman(effects: list[float], distances: list[float], n_boot: int = B_DEFAULT, seed: int = 0) -> dict:
    """Spearman's rho between per-language effects and distances to English, its p-value and a
    95% interval from resampling languages."""
    from scipy.stats import spearmanr

    x, y = np.asarray(distances, float), np.asarray(effects, float)
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    if len(x) < 4 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"rho": np.nan, "low": np.nan, "high": np.nan, "p": np.nan, "languages": int(len(x))}
    res = spearmanr(x, y)
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(x), len(x))
        if np.ptp(x[idx]) > 0 and np.ptp(y[idx]) > 0:
            reps.append(spearmanr(x[idx], y[idx]).statistic)
    low, high = np.percentile(reps, [2.5, 97.5]) if reps else (np.nan, np.nan)
    return {"rho": float(res.statistic), "low": float(low), "high": float(high), "p": float(res.pvalue),
            "languages": int(len(x))}
