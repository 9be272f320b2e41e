"""Univariate drift: each column's statistic against its threshold, and the dataset verdict.

Every compared column gets its kind's distance (Wasserstein or Jensen-Shannon)
and its kind's test (Kolmogorov-Smirnov, Z-test or chi-square) in every window,
so each logs the same metric keys whatever the window size; the decision rule
(:class:`~mlflow_observe.core.drift.options.DriftOptions`) picks which of them
decides. The test p-values of all compared columns are corrected together
before any column is judged, so the column flags, the share of drifted columns
and the dataset verdict all rest on the same corrected decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mlflow_observe.core.drift.column import ColumnDrift
from mlflow_observe.core.drift.options import (
    DESCRIPTOR,
    DRIFT,
    FEATURE,
    MIN_NORMALISING_STD,
    OK,
    PREDICTION,
    PROBABILITY,
    PVALUE_METHODS,
    SKIPPED,
    TARGET,
    UNSTRUCTURED_METHODS,
    WARNING,
    DriftOptions,
    test_for,
)
from mlflow_observe.core.naming import assign_metric_names
from mlflow_observe.core.profile.columns import NumericColumnProfile
from mlflow_observe.core.profile.data_profile import DataProfile
from mlflow_observe.core.profile.kinds import NUMERIC
from mlflow_observe.core.stats import (
    StatisticResult,
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


@dataclass(frozen=True)
class DriftResult:
    """The comparison of a window with its baseline.

    Attributes
    ----------
    columns : list of ColumnDrift
    n_evaluated : int
        Feature columns compared (skipped ones excluded).
    n_drifted : int
    share_drifted : float
    dataset_drift : bool
    status : {'ok', 'warning', 'drift'}
    prediction_drift, target_drift : bool or None
        None when the column was not there to compare.
    n_reference, n_current : int or float
        The rows of each side; for a window counted with weights (load shed by
        sampling), the rows they stand for (the sum of the weights).
    n_current_logged : int or None
        The window's rows as logged, each once (None: not counted).
    """

    columns: list
    n_evaluated: int
    n_drifted: int
    share_drifted: float
    dataset_drift: bool
    status: str
    dataset_method: str
    prediction_drift: bool | None
    target_drift: bool | None
    n_reference: int
    n_current: int
    n_current_logged: int | None = None

    def column(self, name: str) -> ColumnDrift:
        for result in self.columns:
            if result.column == name:
                return result
        raise KeyError(name)

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.role == FEATURE and c.drifted]

    def metrics(self) -> dict[str, float]:
        """Summary metrics and one primary statistic per compared column (never NaN)."""
        metrics = {
            "drift/share_drifted_columns": float(self.share_drifted),
            "drift/n_drifted_columns": float(self.n_drifted),
            "drift/n_evaluated_columns": float(self.n_evaluated),
            "drift/dataset_drift": float(self.dataset_drift),
        }
        if self.n_current_logged is not None:
            # Rows logged, and the traffic they stand for (equal unless load was shed).
            metrics["drift/rows_logged"] = float(self.n_current_logged)
            metrics["drift/rows_represented"] = float(self.n_current)
        if self.prediction_drift is not None:
            metrics["drift/prediction_drift"] = float(self.prediction_drift)
        if self.target_drift is not None:
            metrics["drift/target_drift"] = float(self.target_drift)
        for result in self.columns:
            metrics.update(result.metrics())
        return metrics

    def to_records(self) -> list[dict]:
        return [c.to_record() for c in self.columns]


def compare_profiles(
    baseline: DataProfile,
    current: DataProfile,
    options: DriftOptions | None = None,
    *,
    present_columns=None,
) -> DriftResult:
    """Compare a window's profile with the baseline's, column by column.

    Parameters
    ----------
    baseline : DataProfile
        The reference profile.
    current : DataProfile
        The window, counted with ``baseline.empty_like()``.
    options : DriftOptions, optional
    present_columns : collection of str, optional
        The columns the window actually had (a column it lacked is skipped).

    Returns
    -------
    DriftResult

    Examples
    --------
    >>> import pandas as pd
    >>> from mlflow_observe.core.profile.data_profile import build_profile
    >>> baseline = build_profile(pd.DataFrame({"plan": ["a"] * 900 + ["b"] * 100}))
    >>> window = baseline.empty_like()
    >>> window.update(pd.DataFrame({"plan": ["a"] * 250 + ["b"] * 250}))
    >>> result = compare_profiles(baseline, window)
    >>> result.column("plan").method, result.column("plan").drifted
    ('ztest', True)
    """
    options = options or DriftOptions()
    present = set(current.columns) if present_columns is None else set(present_columns)
    present = set(baseline.present_columns(present))
    names = assign_metric_names([*baseline.columns, *baseline.unstructured])
    results = []
    for name, reference in baseline.columns.items():
        role = _role(baseline, name)
        results.append(
            _compare_column(
                name,
                names[name],
                role,
                reference,
                current.columns[name],
                baseline,
                current,
                options,
                name in present,
            )
        )
    if baseline.unstructured:
        # Imported here: the text and embedding detectors (and scikit-learn) load only
        # for a baseline that has such columns.
        from mlflow_observe.core.drift.unstructured.compare import unstructured_rows

        results += unstructured_rows(
            baseline,
            current,
            names,
            present,
            random_state=baseline.settings.get("random_state", 0),
        )
    return replace(
        _summarise(results, options, baseline.n_rows, current.n_rows),
        n_current_logged=current.n_logged,
    )


def _role(profile: DataProfile, name: str) -> str:
    if name == profile.predictions:
        return PREDICTION
    if name == profile.targets:
        return TARGET
    if profile.performance is not None and name in profile.performance.probabilities:
        return PROBABILITY
    if name in profile.descriptor_columns:
        return DESCRIPTOR
    return FEATURE


def _skipped(name, metric_name, role, kind, reference, current, note) -> ColumnDrift:
    return ColumnDrift.skipped(
        note,
        column=name,
        metric_name=metric_name,
        role=role,
        kind=kind,
        n_reference=reference.count,
        n_current=_whole(current.count),
    )


def _compare_column(
    name, metric_name, role, reference, current, baseline, window, options, present
) -> ColumnDrift:
    kind = reference.kind
    if not present:
        note = (
            "no labels in this window"
            if role == TARGET
            else "no predictions in this window"
            if role == PREDICTION
            else "column missing from the window"
        )
        return _skipped(name, metric_name, role, kind, reference, current, note)
    if reference.count == 0 or not reference.has_layout:
        return _skipped(
            name,
            metric_name,
            role,
            kind,
            reference,
            current,
            "no values in the reference: nothing to compare with",
        )
    if current.count == 0:
        return _skipped(
            name,
            metric_name,
            role,
            kind,
            reference,
            current,
            "no values in the window (all missing or invalid)",
        )
    n_categories = len(getattr(reference, "categories", ()))
    # A weighted window holds as much information as its effective sample size (Kish).
    method = options.method_for(name, kind, reference.count, current.n_effective, n_categories)
    statistics = (
        _numeric_statistics(name, reference, current, baseline, window)
        if kind == NUMERIC
        else _categorical_statistics(reference, current)
    )
    if method not in statistics:  # ztest asked for on a column that is not binary
        return _skipped(
            name,
            metric_name,
            role,
            kind,
            reference,
            current,
            f"method {method!r} needs two categories and no unseen values",
        )
    chosen: StatisticResult = statistics[method]
    threshold = options.threshold_for(name, method)
    test = method if method in PVALUE_METHODS else test_for(kind, n_categories)
    if test not in statistics:  # a two-category column with unseen values: no Z-test
        test = "chi2"
    # Judged in _summarise, once every column's p-value is known and corrected.
    return ColumnDrift(
        column=name,
        metric_name=metric_name,
        role=role,
        kind=kind,
        method=method,
        statistic=chosen.statistic,
        pvalue=statistics[test].pvalue,
        threshold=threshold,
        drifted=False,
        status=OK,
        exact=chosen.exact,
        n_reference=reference.count,
        n_current=_whole(current.count),
        statistics={key: _statistic_record(value) for key, value in statistics.items()},
        test=test,
    )


def _whole(count):
    """A weighted count that is a whole number (weights 1 / rate are) as an int."""
    return int(count) if float(count).is_integer() else float(count)


def _statistic_record(result: StatisticResult) -> dict:
    return {
        "statistic": result.statistic,
        "pvalue": result.pvalue,
        "exact": result.exact,
        "error_bound": result.error_bound,
    }


def _judge(result: ColumnDrift, adjusted: float | None, options: DriftOptions) -> ColumnDrift:
    """A column's verdict from its statistic and its adjusted p-value."""
    ratio = options.warning_ratio
    value, threshold = result.statistic, result.threshold
    assert value is not None and threshold is not None  # a skipped column is never judged
    decided_by: str = str(result.method)
    if result.method in PVALUE_METHODS:
        assert adjusted is not None  # a test always has its p-value
        drifted = adjusted < threshold
        warning = adjusted < threshold * options.pvalue_warning_ratio
    else:
        rejects = adjusted is not None and adjusted < options.alpha
        bulk = None
        if options.guards(str(result.method)):
            significant = rejects
            decided_by = f"{result.method}+{result.test}"
        elif result.method == "wasserstein" and options.require_significance == "auto":
            # The distance decides, once past its sampling noise (see _moves_the_bulk).
            bulk = _moves_the_bulk(result, options.alpha)
            significant = bulk is not False
        else:
            significant = True
        # A warning at half the threshold is within a distance's calm-data noise on
        # windows of about 1000 rows: it needs the test too, unless no guard is wanted.
        suggestive = rejects if options.require_significance is not False else True
        drifted = value >= threshold and significant
        warning = value >= threshold * ratio and suggestive
        if value >= threshold and bulk is False:
            note = (
                f"{result.method} {value:.3g} is past its threshold {threshold:g}, but neither "
                f"the {result.test} test (p-value {_pvalue(result, 'ks')}) nor Welch's "
                f"t-test on the means (p-value {_pvalue(result, 'welch')}) rejects at "
                f"{options.alpha:g}: the distance rests on a few values far from the rest "
                "(out-of-range values are integrity findings)"
            )
            result = replace(result, note=note)
        elif value >= threshold and not significant:
            note = (
                f"{result.method} {value:.3g} is past its threshold {threshold:g}, but the "
                f"{result.test} test does not reject (adjusted p-value {adjusted:.3g} >= "
                f"{options.alpha:g}): the change touches too few values to be told from chance"
            )
            result = replace(result, note=note)
        elif value >= threshold and not rejects and adjusted is not None:
            note = (
                f"{result.method} {value:.3g} is past its threshold {threshold:g} and decides "
                f"alone; the {result.test} test does not reject (adjusted p-value "
                f"{adjusted:.3g} >= {options.alpha:g}): the change is in few values or in a "
                "long tail (out-of-range values are integrity findings)"
            )
            if bulk:
                note += (
                    f"; Welch's t-test on the means rejects (p-value {_pvalue(result, 'welch')})"
                )
            result = replace(result, note=note)
    status = DRIFT if drifted else WARNING if warning else OK
    return replace(
        result,
        drifted=bool(drifted),
        status=status,
        pvalue_adjusted=None if adjusted is None else float(adjusted),
        decided_by=decided_by,
    )


def _moves_the_bulk(result: ColumnDrift, alpha: float) -> bool | None:
    """Whether the Kolmogorov-Smirnov test or Welch's t-test on the means rejects at ``alpha``.

    Each on its own, uncorrected: the threshold, not the tests, bounds how often a
    calm column's distance reaches it. On a long tail a few values far out can
    carry the distance past it (one value at ``x`` moves it by ``x / n``), and
    neither test then rejects: the KS statistic moves by ``1 / n``, Welch's ``t``
    by about 1 whatever ``x``. None when neither p-value is known.
    """
    pvalues = [
        result.statistics[name]["pvalue"]
        for name in ("ks", "welch")
        if result.statistics.get(name, {}).get("pvalue") is not None
        and np.isfinite(result.statistics[name]["pvalue"])
    ]
    if not pvalues:
        return None
    return bool(min(pvalues) < alpha)


def _pvalue(result: ColumnDrift, name: str) -> str:
    value = result.statistics.get(name, {}).get("pvalue")
    return "unknown" if value is None else f"{value:.3g}"


def _sample_values(profile: DataProfile, name: str) -> np.ndarray:
    import pandas as pd

    values = pd.to_numeric(pd.Series(profile.sample.values(name)), errors="coerce")
    values = values.to_numpy(dtype=float, na_value=np.nan)
    return values[np.isfinite(values)]


def _numeric_statistics(
    name,
    reference: NumericColumnProfile,
    current: NumericColumnProfile,
    baseline: DataProfile,
    window: DataProfile,
) -> dict:
    norm = max(reference.std, MIN_NORMALISING_STD)
    # The row sample holds logged rows, not weighted ones: a weighted window is read from counts.
    exact = baseline.sample.is_complete and window.sample.is_complete and not current.weighted
    if exact:
        ref_values = _sample_values(baseline, name)
        cur_values = _sample_values(window, name)
        ks = ks_exact(ref_values, cur_values)
        raw = wasserstein_exact(ref_values, cur_values)
    else:
        ks = ks_binned(reference.counts, current.counts, **_effective_sizes(current))
        g0, gm = reference.grid[0], reference.grid[-1]
        raw = wasserstein_binned(
            reference.grid,
            reference.counts,
            current.counts,
            reference_tails=_tails(reference, g0, gm),
            current_tails=_tails(current, g0, gm),
            reference_sums=reference.sums,
            current_sums=current.sums,
        )
    wasserstein = StatisticResult(
        statistic=float(raw.statistic / norm),
        exact=raw.exact,
        error_bound=float(raw.error_bound / norm),
    )
    coarse_ref, coarse_cur = reference.coarse_counts(), current.coarse_counts()
    statistics = {
        "ks": ks,
        "wasserstein": wasserstein,
        "psi": psi(coarse_ref, coarse_cur),
        "js": jensen_shannon(coarse_ref, coarse_cur),
    }
    if reference.n_effective >= 2 and current.n_effective >= 2:
        # Whether the distance rests on the bulk or on a few far values (see _judge).
        statistics["welch"] = welch_ttest(
            (reference.mean, reference.std, reference.n_effective),
            (current.mean, current.std, current.n_effective),
        )
    return statistics


def _effective_sizes(current) -> dict:
    """The window's ``n`` for a test's p-value: Kish's effective size when weighted."""
    return {"n_current": current.n_effective} if current.weighted else {}


def _tails(profile: NumericColumnProfile, low_edge: float, high_edge: float):
    n_low, n_high = profile.counts[0], profile.counts[-1]
    return (n_low * low_edge - profile.low_sum, profile.high_sum - n_high * high_edge)


def _categorical_statistics(reference, current) -> dict:
    ref_counts = np.append(reference.counts, reference.n_unseen)
    cur_counts = np.append(current.counts, current.n_unseen)
    sizes = _effective_sizes(current)
    statistics = {
        "chi2": chi_square(ref_counts, cur_counts, **sizes),
        "js": jensen_shannon(ref_counts, cur_counts),
        "psi": psi(ref_counts, cur_counts),
    }
    if len(reference.categories) == 2 and reference.n_unseen == 0 and current.n_unseen == 0:
        statistics["ztest"] = proportions_ztest(reference.counts, current.counts, **sizes)
    return statistics


def _summarise(results, options: DriftOptions, n_reference: float, n_current: float) -> DriftResult:
    results = _corrected(results, options)
    features = [r for r in results if r.role == FEATURE and r.status != SKIPPED]
    n_drifted = sum(r.drifted for r in features)
    share = n_drifted / len(features) if features else 0.0
    if options.dataset_method == "share":
        dataset_drift = bool(features) and share >= options.drift_share
    else:
        dataset_drift = n_drifted > 0
    by_role = {r.role: r for r in results if r.role != FEATURE}
    prediction = by_role.get(PREDICTION)
    target = by_role.get(TARGET)
    any_alarm = any(r.status in (WARNING, DRIFT) for r in results)
    return DriftResult(
        columns=results,
        n_evaluated=len(features),
        n_drifted=n_drifted,
        share_drifted=share,
        dataset_drift=dataset_drift,
        status=DRIFT if dataset_drift else WARNING if any_alarm else OK,
        dataset_method=options.dataset_method,
        prediction_drift=None
        if prediction is None or prediction.status == SKIPPED
        else prediction.drifted,
        target_drift=None if target is None or target.status == SKIPPED else target.drifted,
        n_reference=_whole(n_reference),
        n_current=_whole(n_current),
    )


def _corrected(results, options: DriftOptions) -> list:
    """Correct the p-values of every compared column together, then judge each column."""
    tested = [r for r in results if r.status != SKIPPED and r.pvalue is not None]
    pvalues = np.clip([r.pvalue for r in tested], 0.0, 1.0)
    correction = options.effective_correction
    if correction == "none" or not tested:
        adjusted = pvalues
    else:
        correct = bonferroni if correction == "bonferroni" else benjamini_hochberg
        adjusted = correct(pvalues, alpha=options.alpha).pvalues_adjusted
    by_column = dict(zip([r.column for r in tested], adjusted, strict=False))
    return [
        r
        if r.status == SKIPPED or r.method in UNSTRUCTURED_METHODS
        else _judge(r, by_column.get(r.column), options)
        for r in results
    ]
