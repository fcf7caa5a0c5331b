"""The report's inference is calibrated: checked by simulation, not by reading the formulas.

The simulated world is the calibration benchmark's (``benchmarks/calibration.py``: 15
languages sharing 2000 test items, seed sd about 1 point, 0/1 correctness per item), smaller
here: a few hundred replications straight through ``stats.combine``. The benchmark runs the
same world through the real tracker and store with 200 replications.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from orchestrator.report import analysis as A
from orchestrator.report import stats as S

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from calibration import PLANTED_LOGIT, World  # noqa: E402


def _evidence(world, rng, items, seeds: int, shift: float = 0.0) -> list[S.Evidence]:
    """Per language, the evidence of cell (logit shift) vs reference over ``seeds`` seeds."""
    a = [world.run(rng, items, shift).astype(float) * 100 for _ in range(seeds)]
    b = [world.run(rng, items).astype(float) * 100 for _ in range(seeds)]
    out = []
    for j, lang in enumerate(world.langs):
        diff = {s: a[s][j] - b[s][j] for s in range(seeds)}
        out.append(S.Evidence(lang, {s: float(d.mean()) for s, d in diff.items()}, diff, "xnli"))
    return out


@pytest.mark.parametrize("seeds", [3, 5])
def test_null_tests_reject_at_the_nominal_rate(seeds):
    world, rng = World(), np.random.default_rng(seeds)
    per_language, group = [], []
    for _ in range(300):
        evs = _evidence(world, rng, world.draw_items(rng), seeds)
        per_language += [S.combine([(1.0, ev)]).p < 0.05 for ev in evs]
        targets = evs[1:]
        group.append(S.combine([(1 / len(targets), ev) for ev in targets]).p < 0.05)
    assert 0.035 <= np.mean(per_language) <= 0.065, np.mean(per_language)
    assert 0.02 <= np.mean(group) <= 0.085, np.mean(group)


def test_intervals_cover_a_planted_effect():
    world, rng = World(), np.random.default_rng(11)
    truth = world.true_effect(PLANTED_LOGIT)
    covered, widths = [], []
    for _ in range(250):
        evs = _evidence(world, rng, world.draw_items(rng), 3, PLANTED_LOGIT)
        for ev in evs[:5]:
            e = S.combine([(1.0, ev)])
            covered.append(e.low <= truth[ev.lang] <= e.high)
            widths.append(e.high - e.low)
    assert np.mean(covered) >= 0.92, np.mean(covered)
    assert 2 < np.mean(widths) < 12  # 3 seeds (t with about 2 df) of a 2-point effect


def test_one_seed_is_descriptive_only():
    ev = S.Evidence("de", {0: 2.0}, {0: np.array([100.0, 0.0, 0.0, 100.0])}, "xnli")
    e = S.combine([(1.0, ev)])
    assert e.estimate == pytest.approx(50.0) and e.seeds == 1
    assert np.isnan(e.low) and np.isnan(e.high) and np.isnan(e.p) and e.note == S.DESCRIPTIVE


def test_equal_seed_differences_are_not_a_p_of_zero():
    e = S.combine([(1.0, S.Evidence("de", {0: 2.0, 1: 2.0, 2: 2.0}))])
    assert e.estimate == 2.0 and np.isnan(e.p) and e.note == S.CONSTANT
    q = S.bh_qvalues([e.p, 0.01])
    assert np.isnan(q[0]) and q[1] == pytest.approx(0.01)


def test_seeds_are_the_unit_without_items():
    """Per-seed differences only (a metric that does not decompose): the paired t over seeds."""
    from scipy import stats as st

    x = {0: 1.0, 1: 3.0, 2: 2.5}
    e = S.combine([(1.0, S.Evidence("de", x))])
    ref = st.ttest_1samp(list(x.values()), 0.0)
    assert e.p == pytest.approx(ref.pvalue) and e.df == pytest.approx(2)
    ci = ref.confidence_interval()
    assert (e.low, e.high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_shared_items_are_combined_item_by_item():
    """14 languages with identical per-item differences: their group mean is that one
    language's effect, and so is its interval (independent resampling per language made it
    narrower, as if 14 x 2000 items had been seen)."""
    rng = np.random.default_rng(3)
    shared = rng.normal(5, 60, 2000)  # each item's own share of the effect, the same in every seed
    items = {s: shared + rng.normal(0, 10, 2000) + rng.normal(0, 0.3) for s in range(3)}
    one = S.Evidence("de", {s: float(v.mean()) for s, v in items.items()}, items, "xnli")
    codes = "ar bg de el es fr hi ru sw th tr ur vi zh".split()
    langs = [S.Evidence(lg, one.per_seed, one.items, "xnli") for lg in codes]
    single = S.combine([(1.0, one)])
    group = S.combine([(1 / 14, ev) for ev in langs])
    assert group.estimate == pytest.approx(single.estimate)
    assert group.high - group.low == pytest.approx(single.high - single.low)
    independent = S.combine([(1 / 14, S.Evidence(ev.lang, ev.per_seed, ev.items, "")) for ev in langs])
    assert independent.se < 0.5 * group.se  # what treating them apart would claim


def test_item_variance_is_added_to_the_seed_variance():
    """A per-item effect shared by every seed (some items gain, some lose) is item-sampling
    uncertainty the seeds alone cannot see."""
    rng = np.random.default_rng(4)
    item_effect = rng.normal(1.0, 40.0, 2000)
    items = {s: item_effect + rng.normal(0, 5, 2000) + rng.normal(0, 0.2) for s in range(3)}
    with_items = S.combine([(1.0, S.Evidence("de", {s: float(v.mean()) for s, v in items.items()}, items))])
    seeds_only = S.combine([(1.0, S.Evidence("de", {s: float(v.mean()) for s, v in items.items()}))])
    assert with_items.estimate == pytest.approx(seeds_only.estimate)
    assert with_items.se > 2 * seeds_only.se
    assert with_items.se == pytest.approx(np.hypot(seeds_only.se, 40.0 / np.sqrt(2000)), rel=0.1)


def test_spearman_permutation_p_is_exact_for_few_languages():
    p, exact = S.permutation_p([0.1, 0.2, 0.3, 0.4, 0.5], [1.0, 2.0, 3.0, 4.0, 5.0])
    assert exact and p == pytest.approx(1 / 60)  # 2 of the 5! pairings reach |rho| = 1
    p, exact = S.permutation_p(np.arange(12.0), np.arange(12.0), n_perm=999)
    assert not exact and p == pytest.approx(1 / 1000)  # never 0: (k + 1) / (B + 1)
    rng = np.random.default_rng(0)
    null = [S.permutation_p(rng.normal(size=6), rng.normal(size=6))[0] < 0.05 for _ in range(400)]
    assert np.mean(null) <= 0.07


def test_rho_interval_carries_the_effects_uncertainty():
    dist = np.linspace(0.1, 0.6, 6)

    def evidence(noise: float):
        rng = np.random.default_rng(5)
        return [S.Evidence(f"l{k}", {s: 10 * d + rng.normal(0, noise) for s in range(3)}) for k, d in enumerate(dist)]

    exact = S.replicate_effects(evidence(0.0), 500, np.random.default_rng(0))
    noisy = S.replicate_effects(evidence(3.0), 500, np.random.default_rng(0))
    assert S.rho_interval(exact, dist) == (pytest.approx(1.0), pytest.approx(1.0))
    low, high = S.rho_interval(noisy, dist)
    assert low < 0.5 < high <= 1.0


def test_one_family_over_every_table():
    tables = [[{"p": 0.001}, {"p": 0.04}], [{"p": 0.03}], [{"p": float("nan")}], [{"p": 0.5}]]
    assert A.adjust(*tables) == 4
    rows = [r for t in tables for r in t]
    assert [r["significant"] for r in rows] == [True, False, False, False, False]
    assert rows[0]["q"] == pytest.approx(0.004) and np.isnan(rows[3]["q"])
