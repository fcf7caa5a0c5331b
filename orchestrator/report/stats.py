"""Inference for ``xlt-report``: the seed is the unit of replication; test items add theirs.

**One contrast, one language.** Cell A against reference B (same robust-method variant, paired
on the seed), with common seeds S and, where per-example results exist, the same n test items
in both. The per-seed, per-item difference in points, ``d[s, i] = A[s, i] - B[s, i]``, follows a
crossed random-effects model (seeds crossed with items, as in Clark 1973's "language as a
fixed effect" analysis)::

    d[s, i] = mu + a_s + b_i + e_si      Var(mean d) = sigma_a^2/S + sigma_b^2/n + sigma_e^2/(S n)

``a_s``: the seed's effect (training randomness), ``b_i``: the item's share of the contrast (the
test set is a sample of the items the benchmark stands for), ``e_si``: the rest. The
two-way ANOVA mean squares estimate that variance without bias::

    V = MS_seed / (S n)  +  max(0, MS_item - MS_err) / (S n)
      = var_s(mean_i d[s, i]) / S  +  sigma_b^2_hat / n

The first term is exactly the paired t's variance over the per-seed effects: the seed level is
always there and never replaced by items; the second adds the item-sampling uncertainty where
per-example results exist (accuracy tasks). The interval is ``estimate +- t(0.975, df) sqrt(V)``
and the test the matching t-test, with Satterthwaite's degrees of freedom (S - 1 for the seed
term, n - 1 for the item term). Metrics that do not decompose into items (chunk F1, EM/F1, mAP)
get the paired t over seeds alone. **One seed gives no interval and no test** (``DESCRIPTIVE``);
a variance of exactly 0 (every seed the same difference, no item spread) gives no test either
(``CONSTANT``): a t-test cannot say anything there, and p = 0 would be a false certainty.

**Combinations** (a typological group's mean over languages, the method x domain interaction,
their union) are linear combinations ``sum_k w_k d_k`` of per-language differences, with the
seeds common to every term. The seed term is computed on the combined per-seed effects, so the
languages' shared seeds (one run is evaluated on every language) keep their correlation. Items
are handled jointly: parallel test sets (XNLI, PAWS-X, XCOPA: line-aligned translations of the
same items, ``ItemSet``) are combined item by item *before* the item variance is estimated, so
one item's share of the effect counts once per item, not once per language; test sets of
different items add their item variances.

**Correlations** (``permutation_p``): Spearman's rho between per-language effects and distances,
with an exact permutation p for n <= 8 languages (all n! pairings) and a Monte Carlo one above
(``(k + 1) / (B + 1)``, never 0); ``rho_interval`` resamples seeds (deviations inflated by
sqrt(S / (S - 1)), the small-sample correction of the bootstrap variance), items (jointly across
parallel languages) and languages, so the interval carries the effects' own uncertainty.

**Multiple testing** (``bh_qvalues``): every test a report shows (per-language effects, group
means, interactions, correlations) is one family; Benjamini-Hochberg at 5 %, "significant" means
q < 0.05. BH is valid under the positive dependence these tests have (shared reference runs,
shared seeds and items); groups of one language repeat that language's test and are kept, which
only makes the family more conservative.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

B_DEFAULT = 2000
DESCRIPTIVE = "1 seed: descriptive only"
CONSTANT = "no variation across seeds: not testable"
EXACT_PERMUTATIONS = 8
"""Up to this many languages, the permutation p enumerates all n! pairings."""


@dataclass(frozen=True)
class Evidence:
    """One language's paired differences for one contrast, seed by seed.

    ``per_seed``: {seed: difference of the metric in points}; ``items``: {seed: per-item
    differences (points)} where per-example results exist, else None; ``item_set``: which test
    items these are (languages of a parallel test set share one, so their items are combined
    item by item)."""

    lang: str
    per_seed: dict
    items: dict | None = field(default=None, repr=False)
    item_set: str = ""

    def n_items(self) -> int:
        return len(next(iter(self.items.values()))) if self.items else 0


@dataclass
class Effect:
    """An effect: its estimate, interval and p-value, the seeds and examples behind it (``combine``'s result)."""
    estimate: float
    low: float
    high: float
    p: float
    seeds: int
    examples: int
    df: float = math.nan
    se: float = math.nan
    """sqrt(V): the standard error; the interval is estimate +- t(0.975, df) se."""
    note: str = ""
    """Why there is no interval or test (``DESCRIPTIVE``, ``CONSTANT``), else empty."""


def negate(ev: Evidence) -> Evidence:
    """The same evidence with the opposite sign (a contrast read the other way round)."""
    return Evidence(ev.lang, {s: -v for s, v in ev.per_seed.items()},
                    {s: -x for s, x in ev.items.items()} if ev.items else None, ev.item_set)


def _anova_item_variance(c: np.ndarray) -> float:
    """sigma_b^2 / n of an S x n matrix (two-way ANOVA without replication), clipped at 0."""
    s, n = c.shape
    if n < 2:
        return 0.0
    col = c.mean(axis=0)
    ms_item = s * col.var(ddof=1)
    resid = c - c.mean(axis=1, keepdims=True) - col[None, :] + c.mean()
    ms_err = (resid ** 2).sum() / ((s - 1) * (n - 1)) if s > 1 else 0.0
    return max(0.0, ms_item - ms_err) / (s * n)


def combine(terms: list[tuple[float, Evidence]]) -> Effect:
    """The effect ``sum_k w_k d_k`` of weighted per-language evidence, over the seeds common
    to every term (one term: a per-language effect)."""
    from scipy import stats as st

    seeds = sorted(set.intersection(*(set(ev.per_seed) for _, ev in terms)))
    s = len(seeds)
    if s == 0:
        return Effect(math.nan, math.nan, math.nan, math.nan, 0, 0, note="no common seed")
    with_items = all(ev.items is not None and all(x in ev.items for x in seeds) for _, ev in terms)
    sets: dict[str, np.ndarray] = {}
    if with_items:
        for w, ev in terms:
            m = w * np.stack([np.asarray(ev.items[x], float) for x in seeds])
            key = ev.item_set or f"lang:{ev.lang}"
            if key in sets and sets[key].shape != m.shape:  # not the same items after all
                key = f"{key}/{ev.lang}"
            sets[key] = sets[key] + m if key in sets else m
        per_seed = sum(c.mean(axis=1) for c in sets.values())
    else:
        per_seed = np.array([sum(w * ev.per_seed[x] for w, ev in terms) for x in seeds], float)
    estimate = float(np.mean(per_seed))
    examples = sum(c.shape[1] for c in sets.values())
    if s < 2:
        return Effect(estimate, math.nan, math.nan, math.nan, s, examples, note=DESCRIPTIVE)
    v_seed = float(np.var(per_seed, ddof=1)) / s
    v_items = [(_anova_item_variance(c), c.shape[1]) for c in sets.values()]
    v = v_seed + sum(x for x, _ in v_items)
    if not v > 1e-12 * max(1.0, estimate ** 2):
        return Effect(estimate, math.nan, math.nan, math.nan, s, examples, note=CONSTANT)
    df = v ** 2 / (v_seed ** 2 / (s - 1) + sum(x ** 2 / (n - 1) for x, n in v_items if x > 0))
    half = float(st.t.ppf(0.975, df)) * math.sqrt(v)
    p = float(2 * st.t.sf(abs(estimate) / math.sqrt(v), df))
    return Effect(estimate, estimate - half, estimate + half, p, s, examples, float(df), math.sqrt(v))


def bh_qvalues(pvalues: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values over one family (NaN: no test, stays NaN)."""
    from scipy.stats import false_discovery_control

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = false_discovery_control(p[ok], method="bh")
    return out.tolist()


def _rank_rows(a: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(a, axis=-1)


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((x ** 2).sum(axis=-1) * (y ** 2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (x * y).sum(axis=-1) / np.where(den > 0, den, 1), np.nan)


def spearman(x, y) -> float:
    """Spearman's rho (average ranks for ties); NaN when either side is constant."""
    return float(_pearson_rows(_rank_rows(np.asarray(x, float)), _rank_rows(np.asarray(y, float))))


def permutation_p(x, y, n_perm: int = 9999, seed: int = 0) -> tuple[float, bool]:
    """Two-sided permutation p of Spearman's rho, and whether it is exact: all n! pairings for
    n <= ``EXACT_PERMUTATIONS``, else ``n_perm`` random ones with p = (k + 1) / (n_perm + 1)."""
    rx, ry = _rank_rows(np.asarray(x, float)), _rank_rows(np.asarray(y, float))
    observed = abs(float(_pearson_rows(rx, ry)))
    n = len(rx)
    tol = 1e-9
    if n <= EXACT_PERMUTATIONS:
        perms = np.array(list(itertools.permutations(range(n))))
        rhos = np.abs(_pearson_rows(rx[None, :], ry[perms]))
        return float(np.mean(rhos >= observed - tol)), True
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((n_perm, n)), axis=1)
    rhos = np.abs(_pearson_rows(rx[None, :], ry[perms]))
    return float((np.sum(rhos >= observed - tol) + 1) / (n_perm + 1)), False


def replicate_effects(evidence: list[Evidence], n_boot: int, rng: np.random.Generator,
                      chunk: int = 250) -> np.ndarray:
    """n_boot x L bootstrap replicates of the languages' effects: the common seeds resampled
    once per replicate for every language (their deviations from the seed mean inflated by
    sqrt(S / (S - 1))), items resampled once per replicate and item set (jointly across the
    languages of a parallel test set)."""
    seeds = sorted(set.intersection(*(set(ev.per_seed) for ev in evidence)))
    s = len(seeds)
    inflate = math.sqrt(s / (s - 1)) if s > 1 else 1.0
    seed_w = rng.multinomial(s, [1 / s] * s, size=n_boot).astype(float)
    out = np.empty((n_boot, len(evidence)))
    item_w: dict[tuple, np.ndarray] = {}
    for j, ev in enumerate(evidence):
        if ev.items is not None and all(x in ev.items for x in seeds):
            m = np.stack([np.asarray(ev.items[x], float) for x in seeds])
        else:
            m = np.array([[ev.per_seed[x]] for x in seeds], float)
        m = m.mean(axis=0) + inflate * (m - m.mean(axis=0))
        n = m.shape[1]
        if n == 1:
            out[:, j] = seed_w @ m[:, 0] / s
            continue
        key = (ev.item_set or f"lang:{ev.lang}", n)
        if key not in item_w:
            item_w[key] = rng.multinomial(n, [1 / n] * n, size=n_boot).astype(np.float32)
        for b in range(0, n_boot, chunk):
            out[b:b + chunk, j] = np.einsum("bs,sn,bn->b", seed_w[b:b + chunk], m,
                                            item_w[key][b:b + chunk]) / (s * n)
    return out


def rho_interval(replicates: np.ndarray, distances, seed: int = 0) -> tuple[float, float]:
    """Percentile 95 % interval of Spearman's rho from ``replicate_effects`` (n_boot x L; seeds
    and items resampled) with the languages resampled in each replicate."""
    rng = np.random.default_rng(seed)
    dist = np.asarray(distances, float)
    idx = rng.integers(0, len(dist), size=replicates.shape)
    rhos = _pearson_rows(_rank_rows(dist[idx]), _rank_rows(np.take_along_axis(replicates, idx, axis=1)))
    rhos = rhos[~np.isnan(rhos)]
    if len(rhos) < len(replicates) / 2:
        return math.nan, math.nan
    low, high = np.percentile(rhos, [2.5, 97.5])
    return float(low), float(high)
