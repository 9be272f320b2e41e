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
    IDENTITY,
    calibration_helps,
    estimate_binary_performance,
    estimate_multiclass_performance,
    isotonic_fit,
    isotonic_predict,
)
from mlflow_observe.core.performance.labels import (
    canonical_class,
    check_same_classes,
    class_labels,
    sorted_classes,
)
from mlflow_observe.core.performance.metrics import (
    ESTIMATED_METRICS,
    HIGHER_IS_BETTER,
    UNDEFINED,
    bootstrap_intervals,
    classification_metrics,
    regression_metrics,
)
from mlflow_observe.core.performance.reference import (
    CLASSIFICATION,
    REGRESSION,
    ReferencePerformance,
)
from mlflow_observe.core.weights import check_weights, effective_size

REALISED, ESTIMATED = "realised", "estimated"
MAX_CLASSES = 50


class DegradationError(ValueError):
    """Performance cannot be compared (no labels in the baseline, nothing to estimate from)."""


def reference_performance(
    y_true,
    y_pred,
    proba=None,
    *,
    probabilities=None,
    task=None,
    features=None,
    names=("labels", "predictions"),
    random_state: int = 0,
) -> ReferencePerformance:
    """The reference's performance, its bootstrap intervals and, for classifiers
    with probabilities, the isotonic calibration of those probabilities (where it
    helps: see :func:`~mlflow_observe.core.performance.cbpe.calibration_helps`).

    Parameters
    ----------
    y_true, y_pred : array_like
    proba : array_like of shape (n, k), optional
        Class probabilities: one column per class, or one column (the positive
        class's) for binary classifiers.
    probabilities : list of str, optional
        The probability column names, remembered to find them in windows.
    task : {'classification', 'regression'}, optional
        Default: see :func:`infer_task`. For classifiers, labels and predictions
        of any dtype are normalised to one set of classes
        (:mod:`mlflow_observe.core.performance.labels`): ``0.0``, ``0``,
        ``False`` and ``"0"`` are one class.
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
    task = task or infer_task(y_true, y_pred, has_probabilities=proba is not None)
    if task == REGRESSION:
        y_true, y_pred = _as_float(y_true), _as_float(y_pred)
    else:
        y_true, y_pred = class_labels(y_true), class_labels(y_pred)
        try:
            check_same_classes(y_true, y_pred, names=names)
        except ValueError as exc:
            raise DegradationError(str(exc)) from None
    common = {"task": task, "probabilities": tuple(probabilities or ()), "n_rows": len(y_true)}
    if task == REGRESSION:
        arrays = (y_true, y_pred)
        intervals = bootstrap_intervals(regression_metrics, arrays, random_state=random_state)
        loss: dict[str, Any] = {}
        if features is not None and len(features.columns):
            from mlflow_observe.core.performance.dle import fit_loss_models

            loss["loss_features"] = tuple(str(c) for c in features.columns)
            loss["loss_models"] = fit_loss_models(
                features.to_numpy(dtype=float), *arrays, random_state=random_state
            )
        return ReferencePerformance(**common, **_split(intervals), **loss)
    classes = sorted_classes(np.concatenate([y_true, y_pred]))
    matrix = probability_matrix(proba, len(classes)) if proba is not None else None

    def metrics(t, p, *rest):
        return classification_metrics(t, p, rest[0] if rest else None, classes=classes)

    arrays = (y_true, y_pred) + ((matrix,) if matrix is not None else ())
    intervals = bootstrap_intervals(metrics, arrays, random_state=random_state)
    calibration = None
    if matrix is not None:  # binary: the positive class's; else each class's, one-vs-rest
        columns = [1] if len(classes) == 2 else range(len(classes))
        calibration = tuple(
            _calibration_curve(matrix[:, i], y_true == classes[i], random_state) for i in columns
        )
    return ReferencePerformance(
        **common,
        **_split(intervals),
        classes=tuple(classes),
        class_counts=tuple(int(np.sum(y_true == c)) for c in classes),
        calibration=calibration,
    )


def _calibration_curve(score, actual, random_state: int) -> tuple:
    """The isotonic curve of ``score`` where calibrating helps on held-out rows, else
    the identity (scores already calibrated are used as they are)."""
    knots = (
        isotonic_fit(score, actual)
        if calibration_helps(score, actual, random_state=random_state)
        else IDENTITY
    )
    return tuple(tuple(v.tolist()) for v in knots)


def _split(intervals: dict) -> dict:
    """``bootstrap_intervals``' records as the ``metrics`` and ``intervals`` fields."""
    return {
        "metrics": {name: m["value"] for name, m in intervals.items()},
        "intervals": {name: (m["ci_low"], m["ci_high"]) for name, m in intervals.items()},
    }


def infer_task(y_true, y_pred=None, *, has_probabilities: bool = False) -> str:
    """Classification or regression, from the labels (and predictions).

    Classification when there are probabilities; when the labels are text,
    booleans or categorical; when they are integers (``Int64`` too) with at most
    50 distinct values; or when they are floats holding at most two whole
    numbers and every prediction is one of them (a 0/1 column that pandas made
    float). Regression otherwise, and whenever numeric (or boolean) labels meet
    predictions that are not whole numbers: a score of a 0/1 target is a regression.

    Examples
    --------
    >>> infer_task([0.0, 1.0, 1.0], [0, 1, 0]), infer_task([0.0, 1.0], [0.2, 0.9])
    ('classification', 'regression')
    >>> infer_task([0, 1, 1], [0.1, 0.8, 1.3]), infer_task([False, True], [-0.4, 2.5])
    ('regression', 'regression')
    >>> infer_task([0.0, 1.0], [0.2, 0.9], has_probabilities=True)
    'classification'
    """
    if has_probabilities:
        return CLASSIFICATION
    series = pd.Series(y_true) if not isinstance(y_true, pd.Series) else y_true
    dtype = series.dtype
    if _continuous(y_pred) and (
        pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
    ):
        return REGRESSION
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return CLASSIFICATION
    if pd.api.types.is_integer_dtype(dtype):
        return CLASSIFICATION if series.nunique() <= MAX_CLASSES else REGRESSION
    if not pd.api.types.is_numeric_dtype(dtype):
        numbers = pd.to_numeric(series, errors="coerce")
        if numbers.notna().sum() < series.notna().sum() or pd.api.types.is_bool_dtype(
            series.infer_objects().dtype
        ):
            return CLASSIFICATION  # text (or booleans as objects)
        series = numbers
    values = pd.unique(series.dropna().to_numpy(dtype=float))
    whole = bool(len(values)) and bool(np.all(np.mod(values, 1) == 0))
    if whole and dtype.kind in "OSU" and len(values) <= MAX_CLASSES:
        return CLASSIFICATION  # integers as objects or text
    if whole and len(values) <= 2 and y_pred is not None:
        predicted = pd.to_numeric(pd.Series(np.asarray(y_pred, dtype=object)), errors="coerce")
        if predicted.notna().all() and predicted.isin(values).all():
            return CLASSIFICATION
    return REGRESSION


def _continuous(y_pred) -> bool:
    """Numeric predictions with at least one value that is not a whole number."""
    if y_pred is None:
        return False
    predicted = pd.Series(np.asarray(y_pred))
    if not pd.api.types.is_float_dtype(predicted.dtype):
        return False
    values = predicted.to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    return bool(len(values)) and bool(np.any(np.mod(values, 1) != 0))


def _as_float(values) -> np.ndarray:
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


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
    n_rows: int | None = None  # the rows this metric was computed on

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
        The window's rows.
    findings : list of str
        What was left out or looks wrong, and why.
    n_labelled : int or None
        Rows with a label: the realised metrics are computed on them, and the
        estimated ones (when the baseline allows) on the others. ``None``: not
        counted (a result built by hand).
    n_invalid_probabilities : int
        Rows whose probabilities are missing, infinite or outside [0, 1]: left
        out of ROC AUC, log loss and the estimation.
    n_represented : float or None
        The rows of traffic the window stands for: the sum of the row weights
        (``n_rows`` unweighted). ``None``: not counted.

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
    n_labelled: int | None = None
    n_invalid_probabilities: int = 0
    n_represented: float | None = None

    def metric(self, name: str, kind: str | None = None) -> MetricDegradation:
        """The metric's row (of ``kind``, default: the result's own kind, else any)."""
        rows = [m for m in self.metric_results if m.metric == name]
        return next((m for m in rows if m.kind == (kind or self.kind)), None) or next(
            m for m in rows if kind is None
        )

    def metrics(self) -> dict[str, float]:
        """``degradation/<metric>``, ``_delta``, ``_relative_change``, ``degradation/degraded``
        and, when counted, ``degradation/n_labelled``, ``n_unlabelled`` and
        ``n_invalid_probabilities``."""
        out = {"degradation/degraded": float(self.degraded)}
        if self.n_labelled is not None:
            out["degradation/n_labelled"] = self.n_labelled
            out["degradation/n_unlabelled"] = self.n_rows - self.n_labelled
            out["degradation/n_invalid_probabilities"] = self.n_invalid_probabilities
        if self.n_represented is not None:
            out["degradation/rows_represented"] = self.n_represented
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
        return [
            {name: _finite(value) for name, value in {**asdict(m), "key": m.key}.items()}
            for m in self.metric_results
        ]


def _finite(value):
    """JSON has no NaN nor infinity: such a float is ``None``."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def compare_performance(
    performance: ReferencePerformance | None,
    *,
    y_true=None,
    y_pred=None,
    proba=None,
    features=None,
    tolerance: float = 0.02,
    random_state: int = 0,
    sample_weight=None,
) -> DegradationResult:
    """Compare a window's performance with the baseline's.

    With ``y_true``: realised metrics. Without: estimated ones (binary
    classifiers with probabilities and a calibrated baseline; regressors whose
    baseline has loss models, from ``features``, a DataFrame of the window).
    See the module docstring for the rule.

    ``sample_weight`` (one finite number > 0 a row) weighs each row, as
    scikit-learn's metrics do: a row kept at rate 1/4 by load shedding stands
    for 4. The margin's window size is then Kish's effective sample size
    ``(sum w)^2 / sum w^2`` of the rows judged.
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
    n = len(y_pred)
    if n == 0:
        raise DegradationError("The window has no rows to judge.")
    w = None if sample_weight is None else check_weights(sample_weight, n)
    proba, invalid = _checked_probabilities(performance, proba, n, findings)
    labelled = np.zeros(n, dtype=bool) if y_true is None else _has_label(performance, y_true)
    if y_true is not None and not labelled.all():
        findings.append(unlabelled_finding(n, int(labelled.sum())))
    parts: list = []
    if labelled.any():
        values = _realised(
            performance,
            _take(y_true, labelled),
            y_pred[labelled],
            None if proba is None else proba[labelled],
            findings,
            valid=~invalid[labelled],
            weights=None if w is None else w[labelled],
        )
        parts.append((REALISED, values, {}, int(labelled.sum()), _size(w, labelled)))
    if not labelled.all():
        rows = ~labelled & ~invalid
        try:
            bands = _estimated(
                performance,
                y_pred[rows],
                None if proba is None else proba[rows],
                None if features is None else features[rows],
                random_state,
                None if w is None else w[rows],
            )
        except DegradationError as exc:
            if not labelled.any():
                raise
            bands = {}
            findings.append(
                f"the {int((~labelled).sum())} unlabelled rows are not estimated: {exc}"
            )
        if bands or not labelled.any():
            values = {name: band["value"] for name, band in bands.items()}
            parts.append((ESTIMATED, values, bands, int(rows.sum()), _size(w, rows)))
    return judge_parts(
        performance,
        parts,
        findings=findings,
        tolerance=tolerance,
        n_rows=n,
        n_labelled=int(labelled.sum()),
        n_invalid_probabilities=int(invalid.sum()),
        n_represented=n if w is None else float(w.sum()),
    )


def judge_parts(
    performance: ReferencePerformance,
    parts: list,
    *,
    findings: list[str],
    tolerance: float,
    n_rows: int,
    n_labelled: int | None,
    n_invalid_probabilities: int,
    n_represented: float | None,
) -> DegradationResult:
    """The result of a window judged in parts: each ``(kind, values, bands, rows, size)``
    (realised on the labelled rows, estimated on the others) by :func:`judge_performance`,
    then one verdict. Every engine ends with this step."""
    results = [
        judge_performance(
            performance,
            kind,
            values,
            bands,
            n_rows=rows,
            findings=findings,
            tolerance=tolerance,
            n_effective=size,
        )
        for kind, values, bands, rows, size in parts
    ]
    return DegradationResult(
        task=performance.task,
        kind=results[0].kind,
        metric_results=[m for r in results for m in r.metric_results],
        degraded=any(r.degraded for r in results),
        n_rows=n_rows,
        findings=findings,
        n_labelled=n_labelled,
        n_invalid_probabilities=n_invalid_probabilities,
        n_represented=n_represented,
    )


def unlabelled_finding(n_rows: int, n_labelled: int) -> str:
    """The finding of a window whose rows are not all labelled.

    >>> unlabelled_finding(10, 4)[:31]
    '6 of 10 rows have no label yet:'
    """
    return (
        f"{n_rows - n_labelled} of {n_rows} rows have no label yet: realised metrics are "
        f"computed on the {n_labelled} labelled rows, and estimated ones (when the baseline "
        "allows) on the others."
    )


def invalid_probabilities_finding(n_invalid: int, n_rows: int) -> str:
    """The finding of a window with unusable probabilities (an integrity problem).

    >>> invalid_probabilities_finding(2, 10)[:60]
    '2 of 10 rows have probabilities that are missing, infinite o'
    """
    return (
        f"{n_invalid} of {n_rows} rows have probabilities that are missing, infinite or "
        "outside [0, 1] (an integrity problem in the prediction log): they are left out of "
        "ROC AUC, log loss and the estimation."
    )


def _size(weights, rows) -> float | None:
    """Kish's effective size of the chosen rows, or None unweighted (their count is)."""
    return None if weights is None else effective_size(weights[rows])


def _take(values, rows):
    """The ``rows`` (a boolean mask) of labels of any container, keeping their dtype."""
    if isinstance(values, (pd.Series, pd.Index, pd.api.extensions.ExtensionArray, np.ndarray)):
        return values[rows]
    return np.asarray(values, dtype=object)[rows]


def _has_label(performance, y_true) -> np.ndarray:
    """Rows with a label (missing values: not arrived yet)."""
    if performance.task == REGRESSION:
        return ~np.isnan(_as_float(y_true))
    return pd.Series(class_labels(y_true), dtype=object).notna().to_numpy()


def _checked_probabilities(performance, proba, n, findings):
    """The window's probabilities as an (n, k) matrix and the rows whose probabilities are
    missing, infinite or outside [0, 1] (an integrity finding: they are left out of every
    metric that reads probabilities, and counted)."""
    if proba is None or performance.task == REGRESSION:
        return None, np.zeros(n, dtype=bool)
    matrix = probability_matrix(proba, len(performance.classes))
    invalid = invalid_probability_rows(matrix)
    if invalid.any():
        findings.append(invalid_probabilities_finding(int(invalid.sum()), n))
    return matrix, invalid


def invalid_probability_rows(matrix) -> np.ndarray:
    """Rows of an (n, k) probability matrix with a value missing, infinite or outside [0, 1].

    Examples
    --------
    >>> invalid_probability_rows(np.array([[0.2, 0.8], [np.nan, 1.0], [-4.0, 5.0]])).tolist()
    [False, True, True]
    """
    matrix = np.asarray(matrix, dtype=float)
    with np.errstate(invalid="ignore"):
        inside = (matrix >= -1e-9) & (matrix <= 1 + 1e-9)
    return ~np.all(inside, axis=1)


def judge_performance(
    performance: ReferencePerformance,
    kind: str,
    values: dict,
    bands: dict,
    *,
    n_rows: int,
    findings: list,
    tolerance: float = 0.02,
    n_effective: float | None = None,
) -> DegradationResult:
    """Each metric of a window (``values``, and ``bands`` when estimated) against the
    baseline's, by the rule of the module docstring; the step every engine shares.
    ``n_effective`` is the window's size in the margin when its rows are weighted
    (Kish's effective sample size; default ``n_rows``)."""
    baseline = performance.metrics
    results = []
    for name, value in values.items():
        if name not in baseline:
            continue
        reference = baseline[name]
        low, high = performance.interval(name)
        better = HIGHER_IS_BETTER[name]
        spread = (reference - low) if better else (high - reference)
        size = n_rows if n_effective is None else n_effective
        widen = np.sqrt(1 + performance.n_rows / max(size, 1))
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
                n_rows=n_rows,
            )
        )
    for name in baseline:
        if name not in values and (kind == REALISED or name in ESTIMATED_METRICS):
            label = name if kind == REALISED else f"estimated {name}"
            reason = UNDEFINED.get(name) if n_rows else "no rows"
            findings.append(
                f"{label}: left out, undefined on this window ({reason})."
                if reason
                else f"{label}: not computed on this window (see the other findings)."
            )
    return DegradationResult(
        task=performance.task,
        kind=kind,
        metric_results=results,
        degraded=any(r.degraded for r in results),
        n_rows=n_rows,
        findings=findings,
    )


def _realised(performance, y_true, y_pred, matrix, findings, *, valid=None, weights=None) -> dict:
    """Realised metrics of labelled rows; ``matrix`` (already checked) is read on the
    ``valid`` rows only."""
    if performance.task == REGRESSION:
        return regression_metrics(_as_float(y_true), _as_float(y_pred), sample_weight=weights)
    classes = performance.classes
    y_true, y_pred = class_labels(y_true), class_labels(y_pred)
    new = sorted_classes(y_true[~pd.Series(y_true, dtype=object).isin(classes).to_numpy()])
    if new:
        findings.append(f"labels contain classes the baseline never saw: {new[:10]}")
    valid = np.ones(len(y_true), dtype=bool) if valid is None else valid
    if matrix is not None:
        off = np.abs(matrix[valid].sum(axis=1) - 1) > 1e-3
        if off.any():
            findings.append(f"{int(off.sum())} rows' probabilities do not sum to one.")
    if len(pd.unique(y_true)) < 2:
        findings.append("only one class in the window's labels: ROC AUC is undefined.")
    _check_label_shift(performance, y_true, classes, findings, weights)
    metrics = classification_metrics(y_true, y_pred, None, classes=classes, sample_weight=weights)
    if matrix is not None and valid.any():
        scored = classification_metrics(
            y_true[valid],
            y_pred[valid],
            matrix[valid],
            classes=classes,
            sample_weight=None if weights is None else weights[valid],
        )
        metrics.update({k: v for k, v in scored.items() if k in ("roc_auc", "log_loss")})
    return metrics


# Below this p-value the window's label distribution differs from the reference's.
LABEL_SHIFT_PVALUE = 0.01


def _check_label_shift(performance, y_true, classes, findings, weights=None) -> None:
    """Say so when the labels' class shares moved: estimates without labels assume they did not."""
    if not len(y_true):
        return
    if weights is None:
        label_shift_finding(performance, [int(np.sum(y_true == c)) for c in classes], findings)
        return
    counts = [float(weights[y_true == c].sum()) for c in classes]
    present = np.isin(y_true, classes)
    if present.any():
        n_effective = effective_size(weights[present])
        label_shift_finding(performance, counts, findings, n_current=n_effective)


def label_shift_finding(performance, current, findings, *, n_current=None) -> None:
    """The label-shift finding from the window's count of each baseline class (weighted
    counts with ``n_current``, their Kish effective sample size)."""
    from mlflow_observe.core.stats import chi_square

    reference, classes = performance.class_counts, performance.classes
    if not reference or sum(current) == 0:
        return
    test = chi_square(reference, current, n_current=n_current)
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


def _estimated(performance, y_pred, proba, features, random_state, weights=None) -> dict:
    if performance.task == REGRESSION:
        return _estimated_regression(performance, y_pred, features, random_state, weights)
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
    if len(y_pred) == 0:
        return {}
    classes = performance.classes
    calibrated = calibrated_probabilities(performance, proba)
    predicted = class_index(y_pred, classes)
    scores = probability_matrix(proba, len(classes))  # the realised ROC AUC ranks these
    if len(classes) == 2:
        return estimate_binary_performance(
            calibrated,
            predicted == 1,
            scores=scores[:, 1],
            random_state=random_state,
            sample_weight=weights,
        )
    return estimate_multiclass_performance(
        calibrated, predicted, scores=scores, random_state=random_state, sample_weight=weights
    )


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
    """Each value's position in ``classes``, both normalised (-1 when unknown or missing).

    Examples
    --------
    >>> class_index([1.0, "0", True, None, 7], (0, 1)).tolist()
    [1, 0, 1, -1, -1]
    """
    lookup = {canonical_class(c): i for i, c in enumerate(classes)}
    labels = pd.Series(class_labels(values), dtype=object)
    return labels.map(lookup).fillna(-1).to_numpy(dtype=np.int64)


def _estimated_regression(performance, y_pred, features, random_state, weights=None) -> dict:
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
    if len(y_pred) == 0:
        return {}
    matrix = features[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    return estimate_regression_performance(
        performance.loss_models, matrix, y_pred, random_state=random_state, sample_weight=weights
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
    sample_weight=None,
) -> list:
    """:func:`compare_performance` on each segment value of each column of ``segments``.

    Values with fewer than ``min_size`` rows are pooled into one ``(other)``
    segment per column, which is skipped when it is still smaller than that.
    Every segment is compared with the whole baseline; its margin widens with
    its smaller size. Returns the segments, worst first. ``sample_weight``
    weighs each row, as in :func:`compare_performance` (``min_size`` counts rows).
    """
    y_pred = np.asarray(y_pred)
    weights = None if sample_weight is None else check_weights(sample_weight, len(y_pred))
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
                sample_weight=None if weights is None else weights[rows],
            )
            found.append(SegmentDegradation(str(column), str(value), int(rows.sum()), result))
    return sorted(found, key=lambda s: (-s.result.degraded, -s.worst_change()))
