"""Has the model got worse? Realised performance with labels, estimated without.

The baseline's performance (recorded by :func:`reference_performance` when the
reference has labels and predictions) carries a 95% bootstrap interval per
metric. A metric is *degraded* when the window's value is worse than the
baseline's by more than the margin::

    margin = h * sqrt(1 + n_reference / n_window) + tolerance * |baseline|

where ``h`` is the half-width of the baseline's interval on the worse side. The
square root widens the baseline's own uncertainty by the window's sampling
noise (a metric's standard error shrinks as one over the square root of the
rows), so that a small window drawn from the reference distribution does not
alarm; ``tolerance`` (default 2%) is the change too small to matter.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlflow_observe.core.performance.cbpe import (
    estimate_binary_performance,
    estimate_multiclass_performance,
    isotonic_fit,
    isotonic_predict,
)
from mlflow_observe.core.performance.metrics import (
    ESTIMATED_METRICS,
    HIGHER_IS_BETTER,
    bootstrap_intervals,
    classification_metrics,
    regression_metrics,
)
from mlflow_observe.core.performance.reference import (
    CLASSIFICATION,
    REGRESSION,
    ReferencePerformance,
)

REALISED, ESTIMATED = "realised", "estimated"
MAX_CLASSES = 50


class DegradationError(ValueError):
    """Performance cannot be compared (no labels in the baseline, nothing to estimate from)."""


def _scalar(value):
    return value.item() if isinstance(value, np.generic) else value


def reference_performance(
    y_true,
    y_pred,
    proba=None,
    *,
    probabilities=None,
    task=None,
    features=None,
    random_state: int = 0,
) -> ReferencePerformance:
    """The reference's performance, its bootstrap intervals and, for classifiers
    with probabilities, the isotonic calibration of those probabilities.

    Parameters
    ----------
    y_true, y_pred : array_like
    proba : array_like of shape (n, k), optional
        Class probabilities: one column per class, or one column (the positive
        class's) for binary classifiers.
    probabilities : list of str, optional
        The probability column names, remembered to find them in windows.
    task : {'classification', 'regression'}, optional
        Default: classification when the labels are text, booleans, or integers
        with at most 50 distinct values.
    features : pandas.DataFrame, optional
        Numeric features of the same rows: for regressors, the direct loss
        estimation models learn the error from them and the prediction.

    Returns
    -------
    ReferencePerformance
        ``task``, ``classes``, ``probabilities``, ``metrics`` and their
        ``intervals``, ``calibration`` or the loss models, and ``n_rows``.

    Examples
    --------
    >>> performance = reference_performance([0, 1, 1, 0, 1], [0, 1, 0, 0, 1])
    >>> performance.task, performance.n_rows, performance.metrics["accuracy"]
    ('classification', 5, 0.8)
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    task = task or _infer_task(y_true)
    common = {"task": task, "probabilities": tuple(probabilities or ()), "n_rows": len(y_true)}
    if task == REGRESSION:
        arrays = (y_true.astype(float), y_pred.astype(float))
        intervals = bootstrap_intervals(regression_metrics, arrays, random_state=random_state)
        loss: dict[str, Any] = {}
        if features is not None and len(features.columns):
            from mlflow_observe.core.performance.dle import fit_loss_models

            loss["loss_features"] = tuple(str(c) for c in features.columns)
            loss["loss_models"] = fit_loss_models(
                features.to_numpy(dtype=float), *arrays, random_state=random_state
            )
        return ReferencePerformance(**common, **_split(intervals), **loss)
    classes = sorted({_scalar(v) for v in np.concatenate([y_true, y_pred])}, key=str)
    matrix = probability_matrix(proba, len(classes)) if proba is not None else None

    def metrics(t, p, *rest):
        return classification_metrics(t, p, rest[0] if rest else None, classes=classes)

    arrays = (y_true, y_pred) + ((matrix,) if matrix is not None else ())
    intervals = bootstrap_intervals(metrics, arrays, random_state=random_state)
    calibration = None
    if matrix is not None:  # binary: the positive class's; else each class's, one-vs-rest
        columns = [1] if len(classes) == 2 else range(len(classes))
        calibration = tuple(
            tuple(tuple(v.tolist()) for v in isotonic_fit(matrix[:, i], y_true == classes[i]))
            for i in columns
        )
    return ReferencePerformance(
        **common,
        **_split(intervals),
        classes=tuple(classes),
        class_counts=tuple(int(np.sum(y_true == c)) for c in classes),
        calibration=calibration,
    )


def _split(intervals: dict) -> dict:
    """``bootstrap_intervals``' records as the ``metrics`` and ``intervals`` fields."""
    return {
        "metrics": {name: m["value"] for name, m in intervals.items()},
        "intervals": {name: (m["ci_low"], m["ci_high"]) for name, m in intervals.items()},
    }


def _infer_task(y_true: np.ndarray) -> str:
    if y_true.dtype.kind in "biuOSU" or y_true.dtype == bool:
        values = pd.unique(y_true)
        if y_true.dtype.kind in "OSUb" or len(values) <= MAX_CLASSES:
            return CLASSIFICATION
    return REGRESSION


def probability_matrix(proba, n_classes: int) -> np.ndarray:
    """Probabilities as an (n, n_classes) array; one column is the positive class's."""
    matrix = np.asarray(proba, dtype=float)
    if matrix.ndim == 1 or matrix.shape[1] == 1:
        positive = matrix.reshape(-1)
        matrix = np.column_stack([1 - positive, positive])
    if matrix.shape[1] != n_classes:
        raise DegradationError(
            f"Got probabilities for {matrix.shape[1]} classes; the baseline has {n_classes}."
        )
    return matrix


@dataclass(frozen=True)
class MetricDegradation:
    """One metric of the window against the baseline."""

    metric: str
    kind: str  # realised or estimated
    baseline: float
    baseline_low: float
    baseline_high: float
    value: float
    band_low: float | None
    band_high: float | None
    delta: float
    relative_change: float | None
    margin: float
    degraded: bool

    @property
    def key(self) -> str:
        return f"degradation/{'estimated_' if self.kind == ESTIMATED else ''}{self.metric}"


@dataclass(frozen=True)
class DegradationResult:
    """Realised or estimated performance of a window against the baseline.

    Attributes
    ----------
    task : {'classification', 'regression'}
    kind : {'realised', 'estimated'}
    metric_results : list of MetricDegradation
        Each metric of the window against the baseline's.
    degraded : bool
        Whether any metric is degraded.
    n_rows : int
    findings : list of str
        What was left out or looks wrong, and why.

    Examples
    --------
    >>> row = MetricDegradation("accuracy", "realised", 0.9, 0.88, 0.92, 0.8, None, None,
    ...                         -0.1, -0.11, 0.03, True)
    >>> result = DegradationResult("classification", "realised", [row], True, 100, [])
    >>> result.metrics()["degradation/accuracy_delta"]
    -0.1
    >>> [record["key"] for record in result.to_records()]
    ['degradation/accuracy']
    """

    task: str
    kind: str
    metric_results: list
    degraded: bool
    n_rows: int
    findings: list

    def metric(self, name: str) -> MetricDegradation:
        return next(m for m in self.metric_results if m.metric == name)

    def metrics(self) -> dict[str, float]:
        """``degradation/<metric>``, its ``_delta`` and ``_relative_change``; ``.../degraded``."""
        out = {"degradation/degraded": float(self.degraded)}
        for m in self.metric_results:
            out[m.key] = m.value
            out[f"{m.key}_delta"] = m.delta
            if m.relative_change is not None:
                out[f"{m.key}_relative_change"] = m.relative_change
        return {k: float(v) for k, v in out.items() if np.isfinite(v)}

    def mlflow_metrics(self) -> dict[str, float]:
        """Deprecated: use :meth:`metrics` (this alias goes in the next release)."""
        warnings.warn(
            "DegradationResult.mlflow_metrics() is deprecated and will be removed in the next "
            "release; use DegradationResult.metrics().",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.metrics()

    def to_records(self) -> list[dict]:
        """One record per metric: the :class:`MetricDegradation` fields and its metric ``key``."""
        return [{**asdict(m), "key": m.key} for m in self.metric_results]


def compare_performance(
    performance: ReferencePerformance | None,
    *,
    y_true=None,
    y_pred=None,
    proba=None,
    features=None,
    tolerance: float = 0.02,
    random_state: int = 0,
) -> DegradationResult:
    """Compare a window's performance with the baseline's.

    With ``y_true``: realised metrics. Without: estimated ones (binary
    classifiers with probabilities and a calibrated baseline; regressors whose
    baseline has loss models, from ``features``, a DataFrame of the window).
    See the module docstring for the rule.
    """
    if performance is None:
        raise DegradationError(
            "The baseline was recorded without labels and predictions, so there is no "
            "performance to compare with. Record it with log_baseline(df, targets='label', "
            "predictions='prediction', probabilities=['p_1']) at training time."
        )
    if y_pred is None:
        raise DegradationError("The window has no predictions to judge.")
    findings: list[str] = []
    y_pred = np.asarray(y_pred)
    if y_true is not None:
        kind, bands = REALISED, {}
        values = _realised(performance, np.asarray(y_true), y_pred, proba, findings)
    else:
        kind = ESTIMATED
        bands = _estimated(performance, y_pred, proba, features, random_state)
        values = {name: band["value"] for name, band in bands.items()}
    return judge_performance(
        performance, kind, values, bands, n_rows=len(y_pred), findings=findings, tolerance=tolerance
    )


def judge_performance(
    performance: ReferencePerformance,
    kind: str,
    values: dict,
    bands: dict,
    *,
    n_rows: int,
    findings: list,
    tolerance: float = 0.02,
) -> DegradationResult:
    """Each metric of a window (``values``, and ``bands`` when estimated) against the
    baseline's, by the rule of the module docstring; the step every engine shares."""
    baseline = performance.metrics
    results = []
    for name, value in values.items():
        if name not in baseline:
            continue
        reference = baseline[name]
        low, high = performance.interval(name)
        better = HIGHER_IS_BETTER[name]
        spread = (reference - low) if better else (high - reference)
        widen = np.sqrt(1 + performance.n_rows / max(n_rows, 1))
        margin = max(spread, 0.0) * widen + tolerance * abs(reference)
        delta = value - reference
        worse_by = -delta if better else delta
        band = bands.get(name)
        results.append(
            MetricDegradation(
                metric=name,
                kind=kind,
                baseline=reference,
                baseline_low=low,
                baseline_high=high,
                value=value,
                band_low=band["band_low"] if band else None,
                band_high=band["band_high"] if band else None,
                delta=delta,
                relative_change=delta / abs(reference) if reference else None,
                margin=margin,
                degraded=bool(worse_by > margin),
            )
        )
    for name in baseline:
        if name not in values and (kind == REALISED or name in ESTIMATED_METRICS):
            findings.append(f"{name}: not computed on this window (see the other findings).")
    return DegradationResult(
        task=performance.task,
        kind=kind,
        metric_results=results,
        degraded=any(r.degraded for r in results),
        n_rows=n_rows,
        findings=findings,
    )


def _realised(performance, y_true, y_pred, proba, findings) -> dict:
    if performance.task == REGRESSION:
        return regression_metrics(y_true.astype(float), y_pred.astype(float))
    classes = performance.classes
    known = {str(c) for c in classes}
    new = sorted({str(v) for v in pd.unique(y_true)} - known)
    if new:
        findings.append(f"labels contain classes the baseline never saw: {new[:10]}")
    y_true, y_pred = (
        _as_classes(y_true, classes, findings, "labels"),
        _as_classes(y_pred, classes, findings, "predictions"),
    )
    matrix = None
    if proba is not None:
        matrix = probability_matrix(proba, len(classes))
        off = np.abs(matrix.sum(axis=1) - 1) > 1e-3
        if off.any():
            findings.append(f"{int(off.sum())} rows' probabilities do not sum to one.")
    if len(pd.unique(y_true)) < 2:
        findings.append("only one class in the window's labels: ROC AUC is undefined.")
    _check_label_shift(performance, y_true, classes, findings)
    return classification_metrics(y_true, y_pred, matrix, classes=classes)


# Below this p-value the window's label distribution differs from the reference's.
LABEL_SHIFT_PVALUE = 0.01


def _check_label_shift(performance, y_true, classes, findings) -> None:
    """Say so when the labels' class shares moved: estimates without labels assume they did not."""
    if len(y_true):
        label_shift_finding(performance, [int(np.sum(y_true == c)) for c in classes], findings)


def label_shift_finding(performance, current, findings) -> None:
    """The label-shift finding from the window's count of each baseline class."""
    from mlflow_observe.core.stats import chi_square

    reference, classes = performance.class_counts, performance.classes
    if not reference or sum(current) == 0:
        return
    test = chi_square(reference, current)
    assert test.pvalue is not None  # a test has a p-value
    if test.pvalue < LABEL_SHIFT_PVALUE:
        shares = ", ".join(
            f"{c}: {r / sum(reference):.0%} -> {k / sum(current):.0%}"
            for c, r, k in zip(classes, reference, current, strict=True)
        )
        findings.append(
            f"the label distribution moved ({shares}; chi-square p = {test.pvalue:.2g}): "
            "performance estimated without labels assumes the relation between features and "
            "labels is unchanged, so estimates for such windows may be off."
        )


def _value_kind(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "number"
    return "text" if isinstance(value, str) else type(value).__name__


def _as_classes(values: np.ndarray, classes, findings, what: str) -> np.ndarray:
    """Values as the baseline's class objects when they arrive as another type (``"1"``
    for ``1``): matched by their text, with a finding."""
    if len(values) == 0 or {_value_kind(v) for v in values[:100]} == {_value_kind(classes[0])}:
        return values
    lookup = {str(c): c for c in classes}
    findings.append(
        f"{what} arrive as {type(values[0]).__name__} where the baseline had "
        f"{type(classes[0]).__name__}: matched by their text."
    )
    text = pd.Series(values).astype(str)
    return text.map(lookup).where(text.isin(lookup.keys()), text).to_numpy(dtype=object)


def _estimated(performance, y_pred, proba, features, random_state) -> dict:
    if performance.task == REGRESSION:
        return _estimated_regression(performance, y_pred, features, random_state)
    if performance.calibration is None:
        raise DegradationError(
            "The baseline has no calibration: record it with the probability column, "
            "log_baseline(df, targets=..., predictions=..., probabilities=['p_1'])."
        )
    if proba is None:
        raise DegradationError(
            f"The window has no probability columns {list(performance.probabilities)}: "
            "they are needed to estimate performance without labels."
        )
    classes = performance.classes
    calibrated = calibrated_probabilities(performance, proba)
    predicted = class_index(y_pred, classes)
    if len(classes) == 2:
        return estimate_binary_performance(calibrated, predicted == 1, random_state=random_state)
    return estimate_multiclass_performance(calibrated, predicted, random_state=random_state)


def calibrated_probabilities(performance: ReferencePerformance, proba) -> np.ndarray:
    """The window's probabilities through the baseline's calibration: the positive
    class's (binary, shape (n,)) or every class's, rows summing to one (shape (n, k))."""
    classes, calibration = performance.classes, performance.calibration
    assert classes is not None and calibration is not None  # a classifier's, with probabilities
    matrix = probability_matrix(proba, len(classes))
    curves = [(np.asarray(x), np.asarray(y)) for x, y in calibration]
    if len(classes) == 2:
        return isotonic_predict(curves[0], matrix[:, 1])
    calibrated = np.column_stack(
        [isotonic_predict(curve, matrix[:, i]) for i, curve in enumerate(curves)]
    )
    totals = calibrated.sum(axis=1, keepdims=True)
    return np.where(totals > 0, calibrated / np.where(totals > 0, totals, 1), 1 / len(classes))


def class_index(values, classes) -> np.ndarray:
    """Each value's position in ``classes``, matched by text (-1 when unknown)."""
    lookup = {str(c): i for i, c in enumerate(classes)}
    return pd.Series(np.asarray(values)).astype(str).map(lookup).fillna(-1).to_numpy(dtype=np.int64)


def _estimated_regression(performance, y_pred, features, random_state) -> dict:
    from mlflow_observe.core.performance.dle import estimate_regression_performance

    if performance.loss_models is None:
        raise DegradationError(
            "The baseline has no loss models: record it with the numeric features, the "
            "labels and the predictions, log_baseline(df, targets=..., predictions=...)."
        )
    names = list(performance.loss_features)
    missing = [c for c in names if features is None or c not in features.columns]
    if missing:
        raise DegradationError(f"The window lacks the features the loss models need: {missing}.")
    matrix = features[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    return estimate_regression_performance(
        performance.loss_models, matrix, y_pred, random_state=random_state
    )


OTHER_SEGMENT = "(other)"


@dataclass(frozen=True)
class SegmentDegradation:
    """The comparison of one segment (rows sharing a value of a segment column).

    Its :meth:`metrics` are the segment's own, under the keys a whole window's
    comparison uses (for a segment logged on a run of its own); a window's run
    logs only ``degradation/n_segments`` and ``degradation/n_degraded_segments``.
    """

    column: str
    value: str
    n_rows: int
    result: DegradationResult

    def metrics(self) -> dict[str, float]:
        """The segment's :meth:`DegradationResult.metrics`."""
        return self.result.metrics()

    def to_records(self) -> list[dict]:
        """One record: the segment, its verdict, its worst change and its metrics' records."""
        return [
            {
                "column": self.column,
                "value": self.value,
                "n_rows": self.n_rows,
                "degraded": self.result.degraded,
                "worst_relative_change": self.worst_change(),
                "metrics": self.result.to_records(),
            }
        ]

    def worst_change(self) -> float:
        """The largest relative worsening over the metrics (0 when none got worse)."""
        changes = [
            -(m.relative_change or 0.0)
            if HIGHER_IS_BETTER[m.metric]
            else (m.relative_change or 0.0)
            for m in self.result.metric_results
        ]
        return max([0.0, *changes])


def compare_segments(
    performance: ReferencePerformance,
    segments: pd.DataFrame,
    *,
    y_true=None,
    y_pred,
    proba=None,
    features=None,
    min_size: int = 200,
    tolerance: float = 0.02,
    random_state: int = 0,
) -> list:
    """:func:`compare_performance` on each segment value of each column of ``segments``.

    Values with fewer than ``min_size`` rows are pooled into one ``(other)``
    segment per column, which is skipped when it is still smaller than that.
    Every segment is compared with the whole baseline; its margin widens with
    its smaller size. Returns the segments, worst first.
    """
    y_pred = np.asarray(y_pred)
    y_true = None if y_true is None else np.asarray(y_true)
    proba = None if proba is None else np.asarray(proba)
    features = None if features is None else features.reset_index(drop=True)
    found = []
    for column in segments.columns:
        labels = segments[column].astype(str).where(segments[column].notna(), "(missing)")
        counts = labels.value_counts()
        small = counts.index[counts < min_size]
        labels = labels.where(~labels.isin(small), OTHER_SEGMENT).to_numpy()
        for value in pd.unique(labels):
            rows = labels == value
            if rows.sum() < min_size:
                continue
            result = compare_performance(
                performance,
                y_true=None if y_true is None else y_true[rows],
                y_pred=y_pred[rows],
                proba=None if proba is None else proba[rows],
                features=None if features is None else features[rows],
                tolerance=tolerance,
                random_state=random_state,
            )
            found.append(SegmentDegradation(str(column), str(value), int(rows.sum()), result))
    return sorted(found, key=lambda s: (-s.result.degraded, -s.worst_change()))
