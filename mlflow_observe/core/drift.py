"""Drift decisions: which statistic each column gets, and when it counts as drifted.

The defaults follow what users of other drift tools know:

* *small* samples (the reference or the window has at most
  ``small_sample_size`` = 1000 values in the column) get hypothesis tests at
  ``p < 0.05``: Kolmogorov-Smirnov for numeric columns, the two-proportion
  Z-test for columns with two categories, chi-square for other categorical ones;
* larger ones get distances, whose size means something whatever the sample
  size: Wasserstein-1 normalised by the reference standard deviation ``>= 0.1``
  for numeric columns, Jensen-Shannon distance ``>= 0.1`` for categorical ones.

Other tools choose by the reference size alone. A distance measured on a small
window is mostly sampling noise (a 200-row window from the reference
distribution often has a normalised Wasserstein distance above 0.1), so here the
smaller of the two sizes decides.

Every column can have its own method and threshold. The dataset drifts when the
share of drifted feature columns is at least ``drift_share`` (0.5), or, with
``dataset_method='bonferroni'`` or ``'bh'``, when a corrected test over the
columns' p-values rejects. Each column and the whole run get a three-level
status: ``ok``, ``warning`` (the statistic is at least ``warning_ratio`` = half
of its threshold, or a p-value below twice its threshold) or ``drift``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from mlflow_observe.backends import ALIBI_DETECTORS
from mlflow_observe.core._validation import InstanceOf, Interval, Options, validate_params
from mlflow_observe.core.columns import NumericColumnProfile
from mlflow_observe.core.kinds import NUMERIC
from mlflow_observe.core.naming import assign_metric_names
from mlflow_observe.core.profile import DataProfile
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
)

PVALUE_METHODS = ("ks", "chi2", "ztest")
NUMERIC_METHODS = ("ks", "wasserstein", "psi", "js")
CATEGORICAL_METHODS = ("chi2", "ztest", "js", "psi")
METHODS = ("auto", "ks", "wasserstein", "psi", "js", "chi2", "ztest")
DEFAULT_THRESHOLDS = {
    "ks": 0.05,
    "chi2": 0.05,
    "ztest": 0.05,
    "wasserstein": 0.1,
    "js": 0.1,
    "psi": 0.2,
}
# Evidently's floor for the normalising standard deviation, so that a constant
# reference column still gives a finite distance.
MIN_NORMALISING_STD = 0.001

FEATURE, PREDICTION, TARGET = "feature", "prediction", "target"
# Class-probability outputs: judged like the prediction, never counted as features.
PROBABILITY = "probability"
OK, WARNING, DRIFT, SKIPPED = "ok", "warning", "drift", "skipped"


@dataclass(frozen=True)
class DriftOptions:
    """How columns are compared and judged.

    Parameters
    ----------
    method : {'auto', 'ks', 'wasserstein', 'psi', 'js', 'chi2', 'ztest'}, default='auto'
        The method for every column where it applies; 'auto' picks by kind and
        reference size (see the module docstring).
    methods : dict of str to str, default={}
        Per-column methods, overriding ``method``.
    threshold : float, optional
        One threshold for every column (default: the method's own, see
        ``DEFAULT_THRESHOLDS``). For tests it is the p-value below which a
        column drifts; for distances the value at or above which it drifts.
    thresholds : dict of str to float, default={}
        Per-column thresholds.
    small_sample_size : int, default=1000
        When the reference or the window has at most this many values in a
        column, the column gets a hypothesis test instead of a distance.
    drift_share : float, default=0.5
        Share of drifted feature columns at which the dataset drifts.
    dataset_method : {'share', 'bonferroni', 'bh'}, default='share'
        How the dataset verdict is reached.
    alpha : float, default=0.05
        Family-wise (Bonferroni) or false-discovery (BH) level for ``dataset_method``.
    warning_ratio : float, default=0.5
        A distance at this fraction of its threshold, or a p-value below
        threshold / warning_ratio, is a warning.
    missing_rate_tolerance : float, default=0.05
        Integrity: a rise in a column's missing rate above this is a finding.
    multivariate : bool, default=False
        Also run the multivariate detectors (a domain classifier and PCA
        reconstruction error, see :mod:`mlflow_observe.core.multivariate`) on
        the baseline's and the window's row samples.
    segment_by : list of str, default=()
        Also compare each segment of the window (the rows sharing a value of
        one of these columns) with the whole baseline (see
        :mod:`mlflow_observe.core.segment_drift`).
    min_segment_size : int, default=200
        Segment values with fewer rows are pooled into one ``(other)`` segment
        per column, skipped when it is still smaller.
    max_segments : int, default=50
        Values of a segment column counted on their own (the first seen); the
        rest share ``(other)``.
    detectors : sequence of str, default=()
        Other libraries' detectors to run on the same row samples, by name:
        ``'alibi:mmd'``, ``'alibi:lsdd'``, ``'alibi:classifier'``, ``'alibi:ks'``,
        ``'alibi:cvm'``, ``'alibi:chi2'``, ``'alibi:fet'``, ``'alibi:tabular'``
        (extra ``alibi``, see :mod:`mlflow_observe.backends.alibi`). Each adds one
        record to the table and ``drift/alibi/<detector>/...`` metrics; none
        changes the columns' or the dataset's verdict.

    Examples
    --------
    >>> options = DriftOptions(methods={"age": "psi"}, drift_share=0.3)
    >>> options.method_for("age", "numeric", n_reference=50_000, n_current=9000, n_categories=0)
    'psi'
    >>> options.method_for("plan", "categorical", n_reference=50_000, n_current=200, n_categories=3)
    'chi2'
    >>> options.threshold_for("age", "psi")
    0.2
    """

    method: str = "auto"
    methods: dict = field(default_factory=dict)
    threshold: float | None = None
    thresholds: dict = field(default_factory=dict)
    small_sample_size: int = 1000
    drift_share: float = 0.5
    dataset_method: str = "share"
    alpha: float = 0.05
    warning_ratio: float = 0.5
    missing_rate_tolerance: float = 0.05
    multivariate: bool = False
    segment_by: tuple = ()
    min_segment_size: int = 200
    max_segments: int = 50
    detectors: tuple = ()

    _constraints = {
        "method": [Options(*METHODS)],
        "methods": [InstanceOf(dict)],
        "threshold": [InstanceOf(type(None)), Interval(float, 0, None)],
        "thresholds": [InstanceOf(dict)],
        "small_sample_size": [Interval(int, 0, None)],
        "drift_share": [Interval(float, 0, 1, closed="right")],
        "dataset_method": [Options("share", "bonferroni", "bh")],
        "alpha": [Interval(float, 0, 1, closed="neither")],
        "warning_ratio": [Interval(float, 0, 1, closed="right")],
        "missing_rate_tolerance": [Interval(float, 0, 1)],
        "multivariate": [InstanceOf(bool)],
        "segment_by": [InstanceOf(list, tuple, description="a list of column names")],
        "min_segment_size": [Interval(int, 1, None)],
        "max_segments": [Interval(int, 1, None)],
        "detectors": [InstanceOf(list, tuple)],
    }

    def __post_init__(self):
        if isinstance(self.segment_by, str):  # one column named on its own
            object.__setattr__(self, "segment_by", (self.segment_by,))
        validate_params(self._constraints, asdict(self), "DriftOptions")
        object.__setattr__(self, "segment_by", tuple(str(c) for c in self.segment_by))
        for column, method in self.methods.items():
            validate_params({"method": [Options(*METHODS)]}, {"method": method},
                            f"DriftOptions (methods[{column!r}])")
        for detector in self.detectors:
            validate_params({"detector": [Options(*ALIBI_DETECTORS)]}, {"detector": detector},
                            "DriftOptions (detectors)")
        # A list from a config becomes a tuple: options stay hashable and frozen.
        object.__setattr__(self, "detectors", tuple(dict.fromkeys(self.detectors)))
        for column, threshold in self.thresholds.items():
            validate_params({"threshold": [Interval(float, 0, None)]}, {"threshold": threshold},
                            f"DriftOptions (thresholds[{column!r}])")

    @classmethod
    def from_config(cls, config: dict | None) -> "DriftOptions":
        """Build options from an evaluator config, ignoring the keys that are not options."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (config or {}).items() if k in names})

    def method_for(self, column: str, kind: str, n_reference: int, n_current: int,
                   n_categories: int) -> str:
        method = self.methods.get(column, self.method)
        if method != "auto":
            allowed = NUMERIC_METHODS if kind == NUMERIC else CATEGORICAL_METHODS
            if method not in allowed:
                raise ValueError(
                    f"Method {method!r} does not apply to the {kind} column {column!r}; "
                    f"choose one of {', '.join(allowed)}."
                )
            return method
        small = min(n_reference, n_current) <= self.small_sample_size
        if kind == NUMERIC:
            return "ks" if small else "wasserstein"
        if small:
            return "ztest" if n_categories == 2 else "chi2"
        return "js"

    def threshold_for(self, column: str, method: str) -> float:
        if column in self.thresholds:
            return float(self.thresholds[column])
        if self.threshold is not None:
            return float(self.threshold)
        return DEFAULT_THRESHOLDS[method]


@dataclass(frozen=True)
class ColumnDrift:
    """The comparison of one column. ``statistic`` is None when it was skipped (see ``note``)."""

    column: str
    metric_name: str
    role: str
    kind: str
    method: str | None
    statistic: float | None
    p_value: float | None
    threshold: float | None
    drifted: bool
    status: str
    exact: bool | None
    n_reference: int
    n_current: int
    statistics: dict
    note: str | None = None
    p_value_adjusted: float | None = None

    @property
    def decision_value(self) -> float | None:
        """The number compared with the threshold: the p-value for tests, else the statistic."""
        return self.p_value if self.method in PVALUE_METHODS else self.statistic

    @property
    def severity(self) -> float:
        """How far past its threshold the column is (larger is worse; 0 when skipped)."""
        value = self.decision_value
        if value is None or self.threshold is None:
            return 0.0
        if self.method in PVALUE_METHODS:
            return self.threshold / max(value, 1e-300)
        return value / max(self.threshold, 1e-12)

    @property
    def metric_key(self) -> str:
        suffix = f"{self.method}_pvalue" if self.method in PVALUE_METHODS else self.method
        return f"drift/{self.metric_name}/{suffix}"

    def to_record(self) -> dict:
        record = asdict(self)
        record["metric_key"] = self.metric_key if self.statistic is not None else None
        return record


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
        if self.prediction_drift is not None:
            metrics["drift/prediction_drift"] = float(self.prediction_drift)
        if self.target_drift is not None:
            metrics["drift/target_drift"] = float(self.target_drift)
        for result in self.columns:
            value = result.decision_value
            if value is not None and np.isfinite(value):
                metrics[result.metric_key] = float(value)
        return metrics

    def to_records(self) -> list[dict]:
        return [c.to_record() for c in self.columns]


def compare_profiles(
    baseline: DataProfile, current: DataProfile, options: DriftOptions | None = None,
    *, present_columns=None,
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
    >>> from mlflow_observe.core.profile import build_profile
    >>> baseline = build_profile(pd.DataFrame({"plan": ["a"] * 900 + ["b"] * 100}))
    >>> window = baseline.empty_like()
    >>> window.update(pd.DataFrame({"plan": ["a"] * 500 + ["b"] * 500}))
    >>> result = compare_profiles(baseline, window)
    >>> result.column("plan").method, result.column("plan").drifted
    ('ztest', True)
    """
    options = options or DriftOptions()
    present = set(current.columns) if present_columns is None else set(present_columns)
    names = assign_metric_names(baseline.columns)
    results = []
    for name, reference in baseline.columns.items():
        role = _role(baseline, name)
        results.append(
            _compare_column(
                name, names[name], role, reference, current.columns[name],
                baseline, current, options, name in present,
            )
        )
    return _summarise(results, options, baseline.n_rows, current.n_rows)


def _role(profile: DataProfile, name: str) -> str:
    if name == profile.predictions:
        return PREDICTION
    if name == profile.targets:
        return TARGET
    if name in ((profile.performance or {}).get("probabilities") or ()):
        return PROBABILITY
    return FEATURE


def _skipped(name, metric_name, role, kind, reference, current, note) -> ColumnDrift:
    return ColumnDrift(
        column=name, metric_name=metric_name, role=role, kind=kind, method=None,
        statistic=None, p_value=None, threshold=None, drifted=False, status=SKIPPED,
        exact=None, n_reference=reference.count, n_current=current.count, statistics={},
        note=note,
    )


def _compare_column(name, metric_name, role, reference, current, baseline, window, options,
                    present) -> ColumnDrift:
    kind = reference.kind
    if not present:
        note = ("no labels in this window" if role == TARGET
                else "no predictions in this window" if role == PREDICTION
                else "column missing from the window")
        return _skipped(name, metric_name, role, kind, reference, current, note)
    if reference.count == 0 or not reference.has_layout:
        return _skipped(name, metric_name, role, kind, reference, current,
                        "no values in the reference: nothing to compare with")
    if current.count == 0:
        return _skipped(name, metric_name, role, kind, reference, current,
                        "no values in the window (all missing or invalid)")
    n_categories = len(getattr(reference, "categories", ()))
    method = options.method_for(name, kind, reference.count, current.count, n_categories)
    statistics = (
        _numeric_statistics(name, reference, current, baseline, window)
        if kind == NUMERIC
        else _categorical_statistics(reference, current)
    )
    if method not in statistics:  # ztest asked for on a column that is not binary
        return _skipped(name, metric_name, role, kind, reference, current,
                        f"method {method!r} needs two categories and no unseen values")
    chosen: StatisticResult = statistics[method]
    threshold = options.threshold_for(name, method)
    drifted, status = _judge(method, chosen, threshold, options.warning_ratio)
    return ColumnDrift(
        column=name, metric_name=metric_name, role=role, kind=kind, method=method,
        statistic=chosen.statistic, p_value=chosen.pvalue, threshold=threshold,
        drifted=drifted, status=status, exact=chosen.exact,
        n_reference=reference.count, n_current=current.count,
        statistics={key: _statistic_record(value) for key, value in statistics.items()},
    )


def _statistic_record(result: StatisticResult) -> dict:
    return {
        "statistic": result.statistic,
        "p_value": result.pvalue,
        "exact": result.exact,
        "error_bound": result.error_bound,
    }


def _judge(method: str, result: StatisticResult, threshold: float, warning_ratio: float):
    if method in PVALUE_METHODS:
        drifted = result.pvalue < threshold
        warning = result.pvalue < threshold / warning_ratio
    else:
        drifted = result.statistic >= threshold
        warning = result.statistic >= threshold * warning_ratio
    return bool(drifted), DRIFT if drifted else WARNING if warning else OK


def _sample_values(profile: DataProfile, name: str) -> np.ndarray:
    import pandas as pd

    values = pd.to_numeric(pd.Series(profile.sample.values(name)), errors="coerce")
    values = values.to_numpy(dtype=float, na_value=np.nan)
    return values[np.isfinite(values)]


def _numeric_statistics(name, reference: NumericColumnProfile, current: NumericColumnProfile,
                        baseline: DataProfile, window: DataProfile) -> dict:
    norm = max(reference.std, MIN_NORMALISING_STD)
    exact = baseline.sample.is_complete and window.sample.is_complete
    if exact:
        ref_values = _sample_values(baseline, name)
        cur_values = _sample_values(window, name)
        ks = ks_exact(ref_values, cur_values)
        raw = wasserstein_exact(ref_values, cur_values)
    else:
        ks = ks_binned(reference.counts, current.counts)
        g0, gm = reference.grid[0], reference.grid[-1]
        raw = wasserstein_binned(
            reference.grid, reference.counts, current.counts,
            reference_tails=_tails(reference, g0, gm), current_tails=_tails(current, g0, gm),
        )
    wasserstein = StatisticResult(
        statistic=float(raw.statistic / norm), exact=raw.exact,
        error_bound=float(raw.error_bound / norm),
    )
    coarse_ref, coarse_cur = reference.coarse_counts(), current.coarse_counts()
    return {
        "ks": ks,
        "wasserstein": wasserstein,
        "psi": psi(coarse_ref, coarse_cur),
        "js": jensen_shannon(coarse_ref, coarse_cur),
    }


def _tails(profile: NumericColumnProfile, low_edge: float, high_edge: float):
    n_low, n_high = profile.counts[0], profile.counts[-1]
    return (n_low * low_edge - profile.low_sum, profile.high_sum - n_high * high_edge)


def _categorical_statistics(reference, current) -> dict:
    ref_counts = np.append(reference.counts, reference.n_unseen)
    cur_counts = np.append(current.counts, current.n_unseen)
    statistics = {
        "chi2": chi_square(ref_counts, cur_counts),
        "js": jensen_shannon(ref_counts, cur_counts),
        "psi": psi(ref_counts, cur_counts),
    }
    if len(reference.categories) == 2 and reference.n_unseen == 0 and current.n_unseen == 0:
        statistics["ztest"] = proportions_ztest(reference.counts, current.counts)
    return statistics


def _summarise(results, options: DriftOptions, n_reference: int, n_current: int) -> DriftResult:
    features = [r for r in results if r.role == FEATURE and r.status != SKIPPED]
    n_drifted = sum(r.drifted for r in features)
    share = n_drifted / len(features) if features else 0.0
    if options.dataset_method == "share":
        dataset_drift = bool(features) and share >= options.drift_share
    else:
        results, dataset_drift = _corrected(results, features, options)
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
        prediction_drift=None if prediction is None or prediction.status == SKIPPED
        else prediction.drifted,
        target_drift=None if target is None or target.status == SKIPPED else target.drifted,
        n_reference=n_reference,
        n_current=n_current,
    )


def _corrected(results, features, options):
    """Apply Bonferroni or BH over one p-value per feature (its test, or KS / chi-square)."""
    if not features:
        return results, False
    pvalues = []
    for r in features:
        if r.p_value is not None:
            pvalues.append(r.p_value)
        else:
            backup = "ks" if r.kind == NUMERIC else "chi2"
            pvalues.append(r.statistics[backup]["p_value"])
    correct = bonferroni if options.dataset_method == "bonferroni" else benjamini_hochberg
    correction = correct(pvalues, alpha=options.alpha)
    adjusted = dict(zip([r.column for r in features], correction.pvalues_adjusted))
    updated = [
        _with_adjusted(r, adjusted[r.column]) if r.column in adjusted else r for r in results
    ]
    return updated, bool(np.any(correction.reject))


def _with_adjusted(result: ColumnDrift, value: float) -> ColumnDrift:
    return replace(result, p_value_adjusted=float(value))
