"""Model performance from labels, and its estimation without them.

Plain numpy implementations of the usual metrics (checked against
scikit-learn in the tests), a seeded bootstrap for the reference's
uncertainty, isotonic calibration (pool-adjacent-violators), and
confidence-based performance estimation (CBPE) for binary classifiers.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
HIGHER_IS_BETTER = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "roc_auc": True,
    "log_loss": False,
    "mae": False,
    "rmse": False,
    "r2": True,
    "mape": False,
}
_LOG_LOSS_EPS = 1e-15
# numpy 2 renamed it; np.trapz is only reached on numpy 1, whose name the numpy 2 stubs lack.
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # type: ignore[attr-defined]


# -- realised metrics ---------------------------------------------------------------------------


def classification_metrics(y_true, y_pred, proba=None, *, classes, sample_weight=None) -> dict:
    """Accuracy, precision, recall, F1, ROC AUC and log loss (the last two need ``proba``).

    Binary (two classes): precision, recall and F1 of ``classes[1]``, ROC AUC of
    ``proba[:, 1]``. Multiclass: macro averages (over the classes where each is
    defined), one-vs-rest ROC AUC. A metric that is undefined on the data is left
    out, never counted as 0: precision with no row predicted positive, recall
    with no row actually positive, F1 with neither, ROC AUC with one class
    present (see :data:`UNDEFINED`).

    Parameters
    ----------
    y_true, y_pred : array_like
    proba : array_like of shape (n, n_classes), optional
        Class probabilities in the order of ``classes``.
    classes : sequence
        Every class, sorted as the probability columns are.
    sample_weight : array_like, optional
        Each row's weight (finite, > 0), as scikit-learn's ``sample_weight``: a
        row kept with probability 1/4 by load shedding weighs 4.

    Examples
    --------
    >>> metrics = classification_metrics([0, 1, 1, 0], [0, 1, 0, 0],
    ...                                  [[.9, .1], [.2, .8], [.6, .4], [.7, .3]], classes=[0, 1])
    >>> metrics["accuracy"], metrics["recall"], metrics["roc_auc"]
    (0.75, 0.5, 1.0)
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = list(classes)
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    metrics = {"accuracy": float(np.average(y_true == y_pred, weights=w))}
    per_class = [_precision_recall_f1(y_true == c, y_pred == c, w) for c in classes]
    metrics.update(average_prf(per_class))
    if proba is not None:
        proba = np.asarray(proba, dtype=float).reshape(len(y_true), len(classes))
        aucs = [binary_roc_auc(y_true == c, proba[:, i], w) for i, c in enumerate(classes)]
        if len(classes) == 2:
            auc = aucs[1]
        else:
            defined = [a for a in aucs if a is not None]
            auc = float(np.mean(defined)) if len(defined) == len(aucs) else None
        if auc is not None:
            metrics["roc_auc"] = auc
        index = {c: i for i, c in enumerate(classes)}
        rows = np.array([index.get(v, -1) for v in y_true])
        if np.all(rows >= 0):
            chosen = np.clip(proba[np.arange(len(rows)), rows], _LOG_LOSS_EPS, 1.0)
            metrics["log_loss"] = float(-np.average(np.log(chosen), weights=w))
    return metrics


def _precision_recall_f1(actual: np.ndarray, predicted: np.ndarray, weights=None):
    if weights is None:
        tp = float(np.sum(actual & predicted))
        fp = float(np.sum(~actual & predicted))
        fn = float(np.sum(actual & ~predicted))
    else:
        tp = float(weights[actual & predicted].sum())
        fp = float(weights[~actual & predicted].sum())
        fn = float(weights[actual & ~predicted].sum())
    return _prf(tp, fp, fn)


def _prf(tp: float, fp: float, fn: float):
    """Precision, recall and F1 from the counts; ``None`` where undefined (0 / 0)."""
    precision = tp / (tp + fp) if tp + fp > 0 else None
    recall = tp / (tp + fn) if tp + fn > 0 else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else None
    return precision, recall, f1


# Why a metric can be undefined on a window: it is then left out, with this reason.
UNDEFINED = {
    "precision": "no row is predicted positive",
    "recall": "no row is actually positive",
    "f1": "no row is positive, predicted or actual",
    "roc_auc": "the labels hold one class only",
    "r2": "the labels do not vary",
    "mape": "every label is zero",
}


def average_prf(per_class) -> dict:
    """Precision, recall and F1 from each class's ``(precision, recall, f1)``: binary (two
    classes) the second class's, multiclass the mean over the classes where each is
    defined. Undefined metrics are left out.

    Examples
    --------
    >>> average_prf([(1.0, 1.0, 1.0), (None, None, None)])
    {}
    >>> average_prf([(0.5, 1.0, 0.6), (None, 0.0, 0.0), (1.0, None, None)])
    {'precision': 0.75, 'recall': 0.5, 'f1': 0.3}
    """
    out = {}
    for i, name in enumerate(("precision", "recall", "f1")):
        values = [p[i] if p else None for p in per_class]
        if len(per_class) == 2:
            value = values[1]
        else:
            defined = [v for v in values if v is not None]
            value = float(np.mean(defined)) if defined else None
        if value is not None:
            out[name] = float(value)
    return out


def binary_roc_auc(actual, score, sample_weight=None) -> float | None:
    """ROC AUC as the Mann-Whitney statistic (ties count half); None with one class present.

    With ``sample_weight``, each pair of a positive and a negative counts the
    product of their weights (the area under the weighted ROC curve, as
    ``sklearn.metrics.roc_auc_score(..., sample_weight=w)``).

    >>> binary_roc_auc([0, 1, 1, 0], [0.1, 0.4, 0.35, 0.8])
    0.5
    >>> binary_roc_auc([0, 1, 1, 0], [0.1, 0.4, 0.35, 0.8], [1.0, 1.0, 1.0, 3.0])
    0.25
    """
    if sample_weight is not None:
        return _weighted_roc_auc(actual, score, sample_weight)
    actual = np.asarray(actual, dtype=bool)
    n_pos = int(actual.sum())
    n_neg = len(actual) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(score)
    return float((ranks[actual].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _weighted_roc_auc(actual, score, weights) -> float | None:
    actual = np.asarray(actual, dtype=bool)
    weights = np.asarray(weights, dtype=float)
    _, level = np.unique(np.asarray(score, dtype=float), return_inverse=True)
    positive = np.bincount(level, weights=np.where(actual, weights, 0.0))
    negative = np.bincount(level, weights=np.where(actual, 0.0, weights))
    total_pos, total_neg = float(positive.sum()), float(negative.sum())
    if total_pos <= 0 or total_neg <= 0:
        return None
    below = np.cumsum(negative) - negative  # the negatives' weight at lower scores
    return float(np.sum(positive * (below + negative / 2)) / (total_pos * total_neg))


def regression_metrics(y_true, y_pred, *, sample_weight=None) -> dict:
    """MAE, RMSE, R2 and MAPE. MAPE leaves out zero targets (it is undefined there).

    ``sample_weight`` weighs each row, as scikit-learn's metrics do (R2 about
    the weighted mean of the labels).

    Examples
    --------
    >>> metrics = regression_metrics([1.0, 2.0, 0.0], [1.5, 2.0, 1.0])
    >>> metrics["mae"], metrics["mape"]
    (0.5, 0.25)
    """
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if sample_weight is not None:
        return _weighted_regression_metrics(y_true, y_pred, np.asarray(sample_weight, dtype=float))
    error = y_pred - y_true
    metrics = {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error**2)))}
    spread = float(np.sum((y_true - y_true.mean()) ** 2))
    if spread > 0:
        metrics["r2"] = float(1 - np.sum(error**2) / spread)
    nonzero = y_true != 0
    if nonzero.any():
        metrics["mape"] = float(np.mean(np.abs(error[nonzero] / y_true[nonzero])))
    return metrics


def _weighted_regression_metrics(y_true, y_pred, w) -> dict:
    error = y_pred - y_true
    metrics = {
        "mae": float(np.average(np.abs(error), weights=w)),
        "rmse": float(np.sqrt(np.average(error**2, weights=w))),
    }
    spread = float(np.sum(w * (y_true - np.average(y_true, weights=w)) ** 2))
    if spread > 0:
        metrics["r2"] = float(1 - np.sum(w * error**2) / spread)
    nonzero = y_true != 0
    if nonzero.any():
        ratio = np.abs(error[nonzero] / y_true[nonzero])
        metrics["mape"] = float(np.average(ratio, weights=w[nonzero]))
    return metrics


# -- the reference's uncertainty ----------------------------------------------------------------


def bootstrap_intervals(
    metric_fn,
    arrays,
    *,
    n_boot: int = 200,
    max_rows: int = 20_000,
    confidence: float = 0.95,
    random_state: int = 0,
) -> dict:
    """Percentile bootstrap intervals of every metric ``metric_fn(*arrays)`` returns.

    On more than ``max_rows`` rows the resamples are drawn from a random subset of
    that size and the intervals narrowed by ``sqrt(max_rows / n)`` around the
    full-data value (the standard error shrinks as one over the square root of n).
    """
    n = len(arrays[0])
    rng = np.random.default_rng(random_state)
    full = metric_fn(*arrays)
    subset = rng.choice(n, max_rows, replace=False) if n > max_rows else np.arange(n)
    scale = np.sqrt(len(subset) / n)
    draws: dict = {name: [] for name in full}
    for _ in range(n_boot):
        rows = subset[rng.integers(0, len(subset), len(subset))]
        values = metric_fn(*(a[rows] for a in arrays))
        for name, value in values.items():
            if name in draws:
                draws[name].append(value)
    tail = (1 - confidence) / 2
    intervals = {}
    for name, value in full.items():
        if not draws[name]:
            intervals[name] = {"value": value, "ci_low": value, "ci_high": value}
            continue
        low, high = np.quantile(draws[name], [tail, 1 - tail])
        centre = np.mean(draws[name])
        intervals[name] = {
            "value": value,
            "ci_low": float(value - (centre - low) * scale),
            "ci_high": float(value + (high - centre) * scale),
        }
    return intervals
