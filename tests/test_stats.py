"""Statistics checked against SciPy and hand-worked examples."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlflow_observe.core.profile.data_profile import build_profile
from mlflow_observe.core.stats import (
    benjamini_hochberg,
    bonferroni,
    chi_square,
    jensen_shannon,
    ks_binned,
    ks_exact,
    proportions_ztest,
    psi,
    wasserstein_binned,
    wasserstein_exact,
    welch_ttest,
)


def _binned_pair(reference, current, grid_size=1000):
    profile = build_profile(pd.DataFrame({"x": reference}), grid_size=grid_size, sample_size=0)
    window = profile.empty_like()
    window.update(pd.DataFrame({"x": current}))
    return profile.columns["x"], window.columns["x"]


def test_ks_exact_is_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=300), rng.normal(0.2, 1, size=200)
    expected = stats.ks_2samp(a, b)
    result = ks_exact(a, b)
    assert result.statistic == expected.statistic
    assert result.pvalue == expected.pvalue


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.3, 1.0])
def test_ks_binned_within_documented_bound_of_exact(shift):
    rng = np.random.default_rng(2)
    reference, current = rng.normal(size=50_000), rng.normal(shift, 1.2, size=40_000)
    ref_col, cur_col = _binned_pair(reference, current)
    binned = ks_binned(ref_col.counts, cur_col.counts)
    exact = stats.ks_2samp(reference, current).statistic
    assert binned.statistic <= exact + 1e-12
    assert exact <= binned.statistic + binned.error_bound + 1e-12
    assert binned.error_bound < 0.003  # 1000 reference quantiles


def test_ks_binned_pvalue_matches_scipy_asymptotic_on_exact_statistic():
    # With every distinct value an edge, the binned statistic is the exact one.
    rng = np.random.default_rng(3)
    reference, current = rng.integers(0, 20, 3000), rng.integers(0, 21, 2000)
    ref_col, cur_col = _binned_pair(reference.astype(float), current.astype(float))
    binned = ks_binned(ref_col.counts, cur_col.counts)
    expected = stats.ks_2samp(reference, current, method="asymp")
    assert binned.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert binned.pvalue == pytest.approx(expected.pvalue, rel=1e-9)


@given(
    seed=st.integers(0, 10_000),
    shift=st.floats(-2, 2),
    scale=st.floats(0.3, 3),
    n=st.integers(200, 5000),
)
@settings(max_examples=40, deadline=None)
def test_wasserstein_binned_within_bound_of_scipy(seed, shift, scale, n):
    rng = np.random.default_rng(seed)
    reference, current = rng.normal(size=n), rng.normal(shift, scale, size=n)
    ref_col, cur_col = _binned_pair(reference, current)
    g0, gm = ref_col.grid[0], ref_col.grid[-1]
    tails = lambda c: (c.counts[0] * g0 - c.low_sum, c.high_sum - c.counts[-1] * gm)  # noqa: E731
    binned = wasserstein_binned(
        ref_col.grid,
        ref_col.counts,
        cur_col.counts,
        reference_tails=tails(ref_col),
        current_tails=tails(cur_col),
    )
    exact = stats.wasserstein_distance(reference, current)
    assert abs(binned.statistic - exact) <= binned.error_bound + 1e-9


def test_wasserstein_exact_is_scipy():
    a, b = [0.0, 1.0, 3.0], [5.0, 6.0, 8.0]
    assert wasserstein_exact(a, b).statistic == stats.wasserstein_distance(a, b) == 5.0


def _moments(values):
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=0)), len(values)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_reference=st.integers(2, 3000),
    n_current=st.integers(2, 3000),
    shift=st.floats(-1.0, 1.0),
    tail=st.sampled_from(["normal", "lognormal2", "zero_inflated"]),
)
def test_welch_ttest_from_moments_is_scipy(seed, n_reference, n_current, shift, tail):
    rng = np.random.default_rng(seed)

    def draw(n):
        if tail == "normal":
            return rng.normal(0.0, 1.0, n)
        if tail == "lognormal2":
            return np.exp(rng.normal(0.0, 2.0, n))
        return np.where(rng.random(n) < 0.6, 0.0, rng.exponential(10.0, n))

    reference, current = draw(n_reference), draw(n_current) + shift
    assume(np.ptp(reference) > 0 and np.ptp(current) > 0)  # constant sides: the next test
    expected = stats.ttest_ind(current, reference, equal_var=False)
    got = welch_ttest(_moments(reference), _moments(current))
    assert got.statistic == pytest.approx(expected.statistic, rel=1e-7, abs=1e-9)
    assert got.pvalue == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-12)


def test_welch_ttest_on_constant_sides_and_bad_sizes():
    assert welch_ttest((1.0, 0.0, 10), (1.0, 0.0, 20)).pvalue == 1.0
    assert welch_ttest((1.0, 0.0, 10), (2.0, 0.0, 20)).pvalue == 0.0
    # one constant side: the other's variance alone, as scipy
    current = np.array([0.0, 1.0, 2.0, 4.0])
    with warnings.catch_warnings():  # scipy warns of the constant side
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = stats.ttest_ind(current, np.ones(5), equal_var=False)
    got = welch_ttest((1.0, 0.0, 5), _moments(current))
    assert got.pvalue == pytest.approx(expected.pvalue, rel=1e-9)
    with pytest.raises(ValueError, match="at least 2 values a side"):
        welch_ttest((0.0, 1.0, 1), (0.0, 1.0, 10))
    with pytest.raises(ValueError, match="finite and > 0"):
        welch_ttest((0.0, 1.0, np.nan), (0.0, 1.0, 10))


def test_psi_worked_example():
    # Two bins, 50/50 against 60/40: (0.6-0.5) ln(0.6/0.5) + (0.4-0.5) ln(0.4/0.5)
    expected = 0.1 * np.log(1.2) - 0.1 * np.log(0.8)
    assert psi([50, 50], [60, 40], smoothing=0.0).statistic == pytest.approx(expected)
    assert psi([50, 50], [60, 40]).statistic == pytest.approx(expected, rel=1e-3)


def test_psi_empty_bin_is_finite():
    value = psi([100, 0], [50, 50]).statistic
    assert np.isfinite(value) and value > 1.0


def test_psi_identical_is_zero():
    assert psi([10, 20, 30], [20, 40, 60]).statistic == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize(
    "reference,current",
    [([50, 50], [60, 40]), ([10, 0, 5], [0, 7, 1]), ([1, 2, 3, 4], [4, 3, 2, 1])],
)
def test_jensen_shannon_is_scipy(reference, current):
    expected = jensenshannon(np.array(reference) / sum(reference), np.array(current) / sum(current))
    assert jensen_shannon(reference, current).statistic == pytest.approx(expected, abs=1e-12)


def test_chi_square_is_scipy_contingency():
    reference, current = [30, 50, 20, 0], [45, 30, 20, 5]
    statistic, pvalue, _, _ = stats.chi2_contingency([reference[:4], current[:4]], correction=False)
    result = chi_square(reference, current)
    assert result.statistic == pytest.approx(statistic)
    assert result.pvalue == pytest.approx(pvalue)


def test_ztest_squared_is_two_by_two_chi_square():
    reference, current = [30, 70], [50, 50]
    z = proportions_ztest(reference, current)
    statistic, pvalue, _, _ = stats.chi2_contingency([reference, current], correction=False)
    assert z.statistic**2 == pytest.approx(statistic)
    assert z.pvalue == pytest.approx(pvalue)
    assert z.statistic > 0  # current has more of the first category


def test_bonferroni_worked_example():
    result = bonferroni([0.01, 0.02, 0.04, 0.3], alpha=0.05)
    assert result.reject.tolist() == [True, False, False, False]
    assert result.pvalues_adjusted.tolist() == pytest.approx([0.04, 0.08, 0.16, 1.0])


@given(st.lists(st.floats(0, 1), min_size=1, max_size=40))
@settings(max_examples=60, deadline=None)
def test_benjamini_hochberg_adjusted_is_scipy(pvalues):
    result = benjamini_hochberg(pvalues, alpha=0.05)
    expected = stats.false_discovery_control(pvalues, method="bh")
    assert result.pvalues_adjusted == pytest.approx(expected, abs=1e-12)
    assert (result.reject == (expected <= 0.05)).all()


def test_benjamini_hochberg_rejects_a_pvalue_equal_to_its_threshold():
    # p_(3) = 0.05 = 3 * 0.05 / 3: rejected, as SciPy's adjusted p-value (0.05 <= alpha) says.
    assert benjamini_hochberg([0.0, 0.0, 0.05], alpha=0.05).reject.tolist() == [True] * 3


def test_benjamini_hochberg_worked_example():
    # m=5: thresholds 0.01, 0.02, 0.03, 0.04, 0.05; the largest k with p_(k) <= k*0.05/5 is 3.
    result = benjamini_hochberg([0.005, 0.011, 0.029, 0.2, 0.5], alpha=0.05)
    assert result.reject.tolist() == [True, True, True, False, False]


@pytest.mark.parametrize("func", [psi, jensen_shannon, chi_square, ks_binned])
def test_count_statistics_reject_bad_counts(func):
    with pytest.raises(ValueError, match="same bins"):
        func([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="non-negative"):
        func([1, -2], [1, 2])
    with pytest.raises(ValueError, match="at least one value"):
        func([0, 0], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        func([np.nan, 1], [1, 2])


def test_exact_statistics_need_finite_values():
    with pytest.raises(ValueError, match="finite value"):
        ks_exact([np.nan, np.inf], [1.0])


def _heavy_tailed(kind, n, rng, shift):
    if kind == "lognormal":  # sigma 2
        return np.exp(rng.normal(shift, 2.0, n))
    if kind == "pareto":  # tail index 1.5: infinite variance
        return (rng.pareto(1.5, n) + 1.0) * (1.0 + shift)
    if kind == "delay":  # a spike at 0 and a long, rounded tail, like flight delays
        return np.where(rng.random(n) < 0.5, 0.0, rng.lognormal(2.5 + shift, 1.2, n)).round()
    return rng.normal(shift, 1.0, n)


def _binned_statistics(reference, current):
    ref_col, cur_col = _binned_pair(reference, current)
    ks = ks_binned(ref_col.counts, cur_col.counts)
    w = wasserstein_binned(
        ref_col.grid,
        ref_col.counts,
        cur_col.counts,
        reference_sums=ref_col.sums,
        current_sums=cur_col.sums,
    )
    return ks, w, ref_col.std


@given(
    kind=st.sampled_from(["lognormal", "pareto", "delay", "normal"]),
    seed=st.integers(0, 10_000),
    shift=st.sampled_from([0.0, 0.05, 0.1, 0.3, 1.0]),
    n_reference=st.integers(20_000, 50_000),
    n_current=st.integers(20_000, 50_000),
)
@settings(max_examples=40, deadline=None)
def test_binned_ks_and_wasserstein_are_exact_enough_on_any_tail(
    kind, seed, shift, n_reference, n_current
):
    """The documented bound: within 1% of SciPy's value, or 0.002 (of the reference std)."""
    rng = np.random.default_rng(seed)
    reference = _heavy_tailed(kind, n_reference, rng, 0.0)
    current = _heavy_tailed(kind, n_current, rng, shift)
    ks, w, std = _binned_statistics(reference, current)
    exact_ks = stats.ks_2samp(reference, current).statistic
    exact_w = stats.wasserstein_distance(reference, current)
    assert abs(ks.statistic - exact_ks) <= max(0.01 * exact_ks, 0.002)
    assert abs(w.statistic - exact_w) <= max(0.01 * exact_w, 0.002 * std)
    assert abs(w.statistic - exact_w) <= w.error_bound + 1e-9


def test_the_uniform_cells_of_old_profiles_miss_heavy_tails():
    # What the per-cell sums fix: without them, the wide last cells err by far more.
    rng = np.random.default_rng(1)
    reference, current = (
        _heavy_tailed("pareto", 50_000, rng, 0.0),
        _heavy_tailed("pareto", 20_000, rng, 0.1),
    )
    ref_col, cur_col = _binned_pair(reference, current)
    g0, gm = ref_col.grid[0], ref_col.grid[-1]
    uniform = wasserstein_binned(
        ref_col.grid,
        ref_col.counts,
        cur_col.counts,
        current_tails=(
            cur_col.counts[0] * g0 - cur_col.low_sum,
            cur_col.high_sum - cur_col.counts[-1] * gm,
        ),
    )
    _, at_means, _ = _binned_statistics(reference, current)
    exact = stats.wasserstein_distance(reference, current)
    assert abs(at_means.statistic - exact) < abs(uniform.statistic - exact)
