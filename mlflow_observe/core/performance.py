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
    "accuracy": True, "precision": True, "recall": True, "f1": True, "roc_auc": True,
    "log_loss": False, "mae": False, "rmse": False, "r2": True, "mape": False,
}
_LOG_LOSS_EPS = 1e-15
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy 2 renamed it


# -- realised metrics ---------------------------------------------------------------------------


def classification_metrics(y_true, y_pred, proba=None, *, classes) -> dict:
    """Accuracy, precision, recall, F1, ROC AUC and log loss (the last two need ``proba``).

    Binary (two classes): precision, recall and F1 of ``classes[1]``, ROC AUC of
    ``proba[:, 1]``. Multiclass: macro averages, one-vs-rest ROC AUC. A metric that
    is undefined on the data (ROC AUC with one class present) is left out.

    Parameters
    ----------
    y_true, y_pred : array_like
    proba : array_like of shape (n, n_classes), optional
        Class probabilities in the order of ``classes``.
    classes : sequence
        Every class, sorted as the probability columns are.

    Examples
    --------
    >>> metrics = classification_metrics([0, 1, 1, 0], [0, 1, 0, 0],
    ...                                  [[.9, .1], [.2, .8], [.6, .4], [.7, .3]], classes=[0, 1])
    >>> metrics["accuracy"], metrics["recall"], metrics["roc_auc"]
    (0.75, 0.5, 1.0)
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = list(classes)
    metrics = {"accuracy": float(np.mean(y_true == y_pred))}
    per_class = [_precision_recall_f1(y_true == c, y_pred == c) for c in classes]
    if len(classes) == 2:
        metrics["precision"], metrics["recall"], metrics["f1"] = per_class[1]
    else:
        metrics["precision"], metrics["recall"], metrics["f1"] = (
            float(np.mean([p[i] for p in per_class])) for i in range(3))
    if proba is not None:
        proba = np.asarray(proba, dtype=float).reshape(len(y_true), len(classes))
        aucs = [binary_roc_auc(y_true == c, proba[:, i]) for i, c in enumerate(classes)]
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
            metrics["log_loss"] = float(-np.mean(np.log(chosen)))
    return metrics


def _precision_recall_f1(actual: np.ndarray, predicted: np.ndarray):
    tp = float(np.sum(actual & predicted))
    fp = float(np.sum(~actual & predicted))
    fn = float(np.sum(actual & ~predicted))
    return _prf(tp, fp, fn)


def _prf(tp: float, fp: float, fn: float):
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0
    return precision, recall, f1


def binary_roc_auc(actual, score) -> float | None:
    """ROC AUC as the Mann-Whitney statistic (ties count half); None with one class present."""
    actual = np.asarray(actual, dtype=bool)
    n_pos = int(actual.sum())
    n_neg = len(actual) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(score)
    return float((ranks[actual].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def regression_metrics(y_true, y_pred) -> dict:
    """MAE, RMSE, R2 and MAPE. MAPE leaves out zero targets (it is undefined there).

    Examples
    --------
    >>> metrics = regression_metrics([1.0, 2.0, 0.0], [1.5, 2.0, 1.0])
    >>> metrics["mae"], metrics["mape"]
    (0.5, 0.25)
    """
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    error = y_pred - y_true
    metrics = {"mae": float(np.mean(np.abs(error))), "rmse": float(np.sqrt(np.mean(error**2)))}
    spread = float(np.sum((y_true - y_true.mean()) ** 2))
    if spread > 0:
        metrics["r2"] = float(1 - np.sum(error**2) / spread)
    nonzero = y_true != 0
    if nonzero.any():
        metrics["mape"] = float(np.mean(np.abs(error[nonzero] / y_true[nonzero])))
    return metrics


# -- calibration and estimation -----------------------------------------------------------------


def isotonic_fit(score, actual):
    """Fit a non-decreasing step function ``score -> P(actual)`` (pool adjacent violators).

    Returns the knots ``(x, y)``; :func:`isotonic_predict` interpolates between them.

    Examples
    --------
    >>> x, y = isotonic_fit([0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1])
    >>> x.tolist(), y.tolist()
    ([0.1, 0.2, 0.3, 0.4], [0.0, 0.5, 0.5, 1.0])
    """
    order = np.argsort(score, kind="mergesort")
    score = np.asarray(score, dtype=float)[order]
    target = np.asarray(actual, dtype=float)[order]
    # Blocks: (sum of targets, count, min score, max score), merged while decreasing.
    sums, counts, lows, highs = [], [], [], []
    for s, t in zip(score, target):
        sums.append(t)
        counts.append(1.0)
        lows.append(s)
        highs.append(s)
        while len(sums) > 1 and sums[-2] / counts[-2] >= sums[-1] / counts[-1]:
            block_sum, block_count, block_high = sums.pop(), counts.pop(), highs.pop()
            lows.pop()
            sums[-1] += block_sum
            counts[-1] += block_count
            highs[-1] = block_high
    means = np.array(sums) / np.array(counts)
    # Knots at each block's first and last score, as scikit-learn's IsotonicRegression.
    x = np.column_stack([lows, highs]).ravel()
    y = np.repeat(means, 2)
    keep = np.concatenate([[True], np.diff(x) > 0])
    return x[keep], y[keep]


def isotonic_predict(knots, score) -> np.ndarray:
    x, y = knots
    return np.interp(np.asarray(score, dtype=float), x, y)


def estimate_binary_performance(calibrated, predicted_positive, *, n_simulations: int = 100,
                                random_state: int = 0) -> dict:
    """Expected metrics of a binary classifier from calibrated probabilities (CBPE).

    Each row counts as positive with its calibrated probability ``p``: the
    expected confusion matrix is ``TP = sum(p [pred])``, ``FP = sum((1-p) [pred])``,
    ``FN = sum(p [not pred])``, ``TN = sum((1-p) [not pred])``. The expected ROC AUC
    ranks the scores with each row fractionally positive. The band: 2.5% and 97.5%
    quantiles of the metrics over labels simulated from ``p``.

    Returns
    -------
    dict of metric name to ``{"value", "band_low", "band_high"}``

    References
    ----------
    .. [1] NannyML, "Confidence-based Performance Estimation", 2022.
    """
    p = np.clip(np.asarray(calibrated, dtype=float), 0.0, 1.0)
    positive = np.asarray(predicted_positive, dtype=bool)
    point = _expected_metrics(p, positive)
    rng = np.random.default_rng(random_state)
    ranks = rankdata(p)  # the scores do not change between simulations: rank them once
    n_positive_predicted = int(positive.sum())
    draws = {name: [] for name in point}
    for _ in range(n_simulations):
        labels = rng.random(len(p)) < p
        n_pos = int(labels.sum())
        tp = float(np.count_nonzero(labels & positive))
        fp, fn = n_positive_predicted - tp, n_pos - tp
        precision, recall, f1 = _prf(tp, fp, fn)
        values = {"accuracy": (len(p) - fp - fn) / len(p), "precision": precision,
                  "recall": recall, "f1": f1}
        n_neg = len(p) - n_pos
        if n_pos and n_neg:
            values["roc_auc"] = float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2)
                                      / (n_pos * n_neg))
        for name, value in values.items():
            if name in draws:
                draws[name].append(value)
    return _bands(point, draws)


def _bands(point: dict, draws: dict) -> dict:
    """Each estimate with the 2.5% and 97.5% quantiles of its simulated values."""
    return {
        name: {"value": value,
               "band_low": float(np.quantile(draws[name], 0.025)) if draws[name] else value,
               "band_high": float(np.quantile(draws[name], 0.975)) if draws[name] else value}
        for name, value in point.items()
    }


def _expected_metrics(p: np.ndarray, positive: np.ndarray) -> dict:
    tp = float(np.sum(p[positive]))
    fp = float(np.sum(1 - p[positive]))
    fn = float(np.sum(p[~positive]))
    tn = float(np.sum(1 - p[~positive]))
    precision, recall, f1 = _prf(tp, fp, fn)
    metrics = {"accuracy": (tp + tn) / len(p), "precision": precision, "recall": recall,
               "f1": f1}
    auc = _expected_auc(p)
    if auc is not None:
        metrics["roc_auc"] = auc
    return metrics


def _expected_auc(p: np.ndarray) -> float | None:
    """AUC of the scores ``p`` when each row is positive with probability ``p``."""
    order = np.argsort(-p, kind="mergesort")
    weights_pos, weights_neg = p[order], 1 - p[order]
    total_pos, total_neg = weights_pos.sum(), weights_neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        return None
    tpr = np.concatenate([[0.0], np.cumsum(weights_pos) / total_pos])
    fpr = np.concatenate([[0.0], np.cumsum(weights_neg) / total_neg])
    return float(_trapezoid(tpr, fpr))


# -- the reference's uncertainty ----------------------------------------------------------------


def bootstrap_intervals(metric_fn, arrays, *, n_boot: int = 200, max_rows: int = 20_000,
                        confidence: float = 0.95, random_state: int = 0) -> dict:
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
        intervals[name] = {"value": value,
                           "ci_low": float(value - (centre - low) * scale),
                           "ci_high": float(value + (high - centre) * scale)}
    return intervals


def estimate_multiclass_performance(calibrated, predicted, *, n_simulations: int = 100,
                                    random_state: int = 0) -> dict:
    """Expected macro metrics of a multiclass classifier from calibrated probabilities.

    ``calibrated`` is (n, k), rows summing to one; ``predicted`` the predicted class
    index per row. Class ``c`` is each row's label with probability ``p[:, c]``:
    ``TP_c = sum(p_c [pred = c])``, ``FP_c = sum((1 - p_c) [pred = c])``,
    ``FN_c = sum(p_c [pred != c])``; accuracy is the mean probability of the
    predicted class; ROC AUC the macro one-vs-rest expected AUC. The band comes
    from labels simulated from ``p``.
    """
    p = np.asarray(calibrated, dtype=float)
    predicted = np.asarray(predicted, dtype=np.int64)
    n, k = p.shape
    onehot = np.zeros((n, k), dtype=bool)
    onehot[np.arange(n), predicted] = True
    point = {"accuracy": float(np.mean(p[np.arange(n), predicted]))}
    scores = [_prf(float(p[onehot[:, c], c].sum()), float((1 - p[onehot[:, c], c]).sum()),
                   float(p[~onehot[:, c], c].sum())) for c in range(k)]
    point.update({name: float(np.mean([s[i] for s in scores]))
                  for i, name in enumerate(("precision", "recall", "f1"))})
    aucs = [_expected_auc(p[:, c]) for c in range(k)]
    if all(a is not None for a in aucs):
        point["roc_auc"] = float(np.mean(aucs))
    rng = np.random.default_rng(random_state)
    cumulative = np.cumsum(p, axis=1)
    ranks = [rankdata(p[:, c]) for c in range(k)]
    draws = {name: [] for name in point}
    for _ in range(n_simulations):
        labels = (rng.random((n, 1)) > cumulative).sum(axis=1).clip(0, k - 1)
        values = {"accuracy": float(np.mean(labels == predicted))}
        per_class, class_aucs = [], []
        for c in range(k):
            actual, chosen = labels == c, predicted == c
            tp = float(np.count_nonzero(actual & chosen))
            per_class.append(_prf(tp, float(chosen.sum()) - tp, float(actual.sum()) - tp))
            n_pos = int(actual.sum())
            if 0 < n_pos < n:
                class_aucs.append((ranks[c][actual].sum() - n_pos * (n_pos + 1) / 2)
                                  / (n_pos * (n - n_pos)))
        values.update({name: float(np.mean([s[i] for s in per_class]))
                       for i, name in enumerate(("precision", "recall", "f1"))})
        if len(class_aucs) == k:
            values["roc_auc"] = float(np.mean(class_aucs))
        for name, value in values.items():
            if name in draws:
                draws[name].append(value)
    return _bands(point, draws)
