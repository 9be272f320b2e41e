"""Confidence-based performance estimation (CBPE): classifier metrics without labels,
from calibrated probabilities (isotonic, pool-adjacent-violators, where it helps)."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from mlflow_observe.core.performance.metrics import (
    _prf,
    _trapezoid,
    _weighted_roc_auc,
    average_prf,
)

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
    for s, t in zip(score, target, strict=True):
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


# The identity curve: scores that are already calibrated stay as they are (clipped to [0, 1]).
IDENTITY = (np.array([0.0, 1.0]), np.array([0.0, 1.0]))
# Rows the calibration check looks at (a seeded sample beyond it), and held out in all
# over its repeated cross-fittings (at most MAX_REPEATS): a bound on its cost.
MAX_CHECK_ROWS = 20_000
MAX_REPEATS = 10


def calibration_helps(
    score, actual, *, n_folds: int = 10, n_bins: int = 10, random_state: int = 0
) -> bool:
    """Whether isotonic calibration makes ``score`` a better probability of ``actual``.

    Cross-fitting: the rows are cut into ``n_folds`` stratified folds, and each
    fold's scores go through an isotonic curve fitted on the other folds. The
    expected calibration error (equal-count bins) of these held-out calibrated
    scores is compared with the raw scores' on the same rows, and calibration
    helps when it lowers the error, on average over repeated random folds (as
    many as hold out about 20,000 rows in all, at most ten: on small references
    one cut of the folds decides by chance). An isotonic curve fitted on few rows is a coarse
    staircase: on scores that are already calibrated (a logistic regression's,
    say) it adds noise rather than removing bias, and they are better used as
    they are.

    NannyML's CBPE makes the same comparison before calibrating [1]_, on ten
    random 10% samples; cross-fitting holds every row out exactly once, which
    and repeating the cut make the answer depend less on the random split.

    Parameters
    ----------
    score : array_like of shape (n,)
        The model's score (probability) for the class.
    actual : array_like of bool of shape (n,)
        Whether each row is of the class.
    n_folds : int, default=10
    n_bins : int, default=10
        Equal-count bins of the expected calibration error.
    random_state : int, default=0
        Seeds the folds (and the sample of at most 20,000 rows the check uses).

    Returns
    -------
    bool
        False too when either outcome has fewer than ``n_folds`` rows.

    See Also
    --------
    expected_calibration_error

    References
    ----------
    .. [1] NannyML, "Confidence-based Performance Estimation: calibration", 2022.

    Examples
    --------
    Scores that understate the positives' probability (the cube of a calibrated
    one) are worth calibrating; with a single row of a class there is nothing to learn:

    >>> rng = np.random.default_rng(0)
    >>> p = rng.random(2000)
    >>> positive = rng.random(2000) < p
    >>> calibration_helps(p**3, positive), calibration_helps(p, p > 0.9995)
    (True, False)

    On scores that are already calibrated, either answer is right: the isotonic
    curve then stays close to the identity on many rows, and is noise on few.
    """
    score = np.asarray(score, dtype=float)
    actual = np.asarray(actual, dtype=bool)
    rng = np.random.default_rng(random_state)
    if len(score) > MAX_CHECK_ROWS:
        keep = rng.choice(len(score), MAX_CHECK_ROWS, replace=False)
        score, actual = score[keep], actual[keep]
    groups = [np.flatnonzero(actual), np.flatnonzero(~actual)]
    if min(len(g) for g in groups) < n_folds:
        return False
    before = expected_calibration_error(score, actual, n_bins=n_bins)
    gains = []
    for _ in range(min(MAX_REPEATS, max(1, MAX_CHECK_ROWS // len(score)))):
        fold = np.empty(len(score), dtype=np.int64)
        for rows in groups:  # each class spread evenly over the folds
            fold[rng.permutation(rows)] = np.arange(len(rows)) % n_folds
        calibrated = np.empty(len(score))
        for k in range(n_folds):
            held_out = fold == k
            knots = isotonic_fit(score[~held_out], actual[~held_out])
            calibrated[held_out] = isotonic_predict(knots, score[held_out])
        gains.append(before - expected_calibration_error(calibrated, actual, n_bins=n_bins))
    return float(np.mean(gains)) > 0


def expected_calibration_error(probability, actual, *, n_bins: int = 10) -> float:
    """Mean gap between predicted and observed frequency over equal-count bins.

    The rows, sorted by ``probability``, are cut into ``n_bins`` bins of (nearly)
    equal size; each bin adds its share of rows times ``|mean probability -
    share of actual|``.

    Examples
    --------
    >>> round(expected_calibration_error([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], n_bins=2), 6)
    0.15
    """
    probability = np.asarray(probability, dtype=float)
    actual = np.asarray(actual, dtype=float)
    order = np.argsort(probability, kind="mergesort")
    total = 0.0
    for rows in np.array_split(order, min(n_bins, len(order))):
        total += len(rows) * abs(probability[rows].mean() - actual[rows].mean())
    return float(total / len(order))


def estimate_binary_performance(
    calibrated,
    predicted_positive,
    *,
    scores=None,
    n_simulations: int = 100,
    random_state: int = 0,
    sample_weight=None,
) -> dict:
    """Expected metrics of a binary classifier from calibrated probabilities (CBPE).

    Each row counts as positive with its calibrated probability ``p``: the
    expected confusion matrix is ``TP = sum(p [pred])``, ``FP = sum((1-p) [pred])``,
    ``FN = sum(p [not pred])``, ``TN = sum((1-p) [not pred])``. The expected ROC AUC
    ranks the rows by the model's own ``scores`` (those the realised ROC AUC ranks;
    default ``calibrated``), each row fractionally positive. The band: 2.5% and
    97.5% quantiles of the metrics over labels simulated from ``p``. With
    ``sample_weight`` every sum weighs each row (a row kept at rate 1/4 counts 4).

    Parameters
    ----------
    calibrated : array_like of shape (n,)
        Each row's calibrated probability of the positive class.
    predicted_positive : array_like of bool of shape (n,)
    scores : array_like of shape (n,), optional
        The model's scores before calibration: the ranking of the realised ROC
        AUC. (A non-decreasing calibration only ties rows, and the order within
        a tie of equal probabilities does not change the expectation; in
        multiclass, renormalised probabilities can reorder rows, and it does.)
    n_simulations : int, default=100
    random_state : int, default=0
    sample_weight : array_like of shape (n,), optional
        Each row's weight (the traffic a logged row stands for).

    Returns
    -------
    dict of metric name to ``{"value", "band_low", "band_high"}``

    References
    ----------
    .. [1] NannyML, "Confidence-based Performance Estimation", 2022.
    """
    p = np.clip(np.asarray(calibrated, dtype=float), 0.0, 1.0)
    positive = np.asarray(predicted_positive, dtype=bool)
    scores = p if scores is None else np.asarray(scores, dtype=float)
    if sample_weight is not None:
        return _estimate_binary_weighted(
            p, positive, np.asarray(sample_weight, dtype=float), scores, n_simulations, random_state
        )
    point = _expected_metrics(p, positive, scores)
    rng = np.random.default_rng(random_state)
    ranks = rankdata(scores)  # the scores do not change between simulations: rank them once
    n_positive_predicted = int(positive.sum())
    draws: dict[str, list[float]] = {name: [] for name in point}
    for _ in range(n_simulations):
        labels = rng.random(len(p)) < p
        n_pos = int(labels.sum())
        tp = float(np.count_nonzero(labels & positive))
        fp, fn = n_positive_predicted - tp, n_pos - tp
        values = {"accuracy": (len(p) - fp - fn) / len(p), **average_prf([(), _prf(tp, fp, fn)])}
        n_neg = len(p) - n_pos
        if n_pos and n_neg:
            values["roc_auc"] = float(
                (ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
            )
        for name, value in values.items():
            if name in draws:
                draws[name].append(value)
    return _bands(point, draws)


def _estimate_binary_weighted(p, positive, w, scores, n_simulations, random_state) -> dict:
    """:func:`estimate_binary_performance` with row weights ``w``."""
    point = _expected_metrics(p, positive, scores, w)
    rng = np.random.default_rng(random_state)
    total, predicted_weight = float(w.sum()), float(w[positive].sum())
    draws: dict[str, list[float]] = {name: [] for name in point}
    for _ in range(n_simulations):
        labels = rng.random(len(p)) < p
        tp = float(w[labels & positive].sum())
        fp, fn = predicted_weight - tp, float(w[labels].sum()) - tp
        values = {"accuracy": (total - fp - fn) / total, **average_prf([(), _prf(tp, fp, fn)])}
        auc = _weighted_roc_auc(labels, scores, w)
        if auc is not None:
            values["roc_auc"] = auc
        for name, value in values.items():
            if name in draws:
                draws[name].append(value)
    return _bands(point, draws)


def _bands(point: dict, draws: dict) -> dict:
    """Each estimate with the 2.5% and 97.5% quantiles of its simulated values."""
    return {
        name: {
            "value": value,
            "band_low": float(np.quantile(draws[name], 0.025)) if draws[name] else value,
            "band_high": float(np.quantile(draws[name], 0.975)) if draws[name] else value,
        }
        for name, value in point.items()
    }


def _expected_metrics(p: np.ndarray, positive: np.ndarray, scores: np.ndarray, w=None) -> dict:
    if w is None:
        tp = float(np.sum(p[positive]))
        fp = float(np.sum(1 - p[positive]))
        fn = float(np.sum(p[~positive]))
        tn = float(np.sum(1 - p[~positive]))
        total = float(len(p))
    else:
        tp = float(np.sum(w[positive] * p[positive]))
        fp = float(np.sum(w[positive] * (1 - p[positive])))
        fn = float(np.sum(w[~positive] * p[~positive]))
        tn = float(np.sum(w[~positive] * (1 - p[~positive])))
        total = float(w.sum())
    metrics = {"accuracy": (tp + tn) / total, **average_prf([(), _prf(tp, fp, fn)])}
    auc = _expected_auc(p, scores, w)
    if auc is not None:
        metrics["roc_auc"] = auc
    return metrics


def _expected_auc(p: np.ndarray, scores: np.ndarray, w=None) -> float | None:
    """AUC of ``scores`` when each row is positive with probability ``p`` (and weighs ``w``)."""
    order = np.argsort(-scores, kind="mergesort")
    weights_pos, weights_neg = p[order], 1 - p[order]
    if w is not None:
        weights_pos, weights_neg = weights_pos * w[order], weights_neg * w[order]
    total_pos, total_neg = weights_pos.sum(), weights_neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        return None
    # Rows with equal scores are one step of the curve (a tie counts half, as in the
    # realised ROC AUC), whatever their order.
    last = np.append(np.diff(scores[order]) != 0, True)
    tpr = np.concatenate([[0.0], (np.cumsum(weights_pos) / total_pos)[last]])
    fpr = np.concatenate([[0.0], (np.cumsum(weights_neg) / total_neg)[last]])
    return float(_trapezoid(tpr, fpr))


def estimate_multiclass_performance(
    calibrated,
    predicted,
    *,
    scores=None,
    n_simulations: int = 100,
    random_state: int = 0,
    sample_weight=None,
) -> dict:
    """Expected macro metrics of a multiclass classifier from calibrated probabilities.

    ``calibrated`` is (n, k), rows summing to one; ``predicted`` the predicted class
    index per row. Class ``c`` is each row's label with probability ``p[:, c]``:
    ``TP_c = sum(p_c [pred = c])``, ``FP_c = sum((1 - p_c) [pred = c])``,
    ``FN_c = sum(p_c [pred != c])``; accuracy is the mean probability of the
    predicted class; ROC AUC the macro one-vs-rest expected AUC, class ``c``'s
    rows ranked by ``scores[:, c]`` (the model's scores before calibration,
    those the realised ROC AUC ranks; default ``calibrated``). The band comes
    from labels simulated from ``p``. With ``sample_weight`` every sum and mean
    weighs each row.
    """
    p = np.asarray(calibrated, dtype=float)
    predicted = np.asarray(predicted, dtype=np.int64)
    scores = p if scores is None else np.asarray(scores, dtype=float)
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=float)
        return _estimate_multiclass_weighted(p, predicted, w, scores, n_simulations, random_state)
    n, k = p.shape
    onehot = np.zeros((n, k), dtype=bool)
    onehot[np.arange(n), predicted] = True
    point = {"accuracy": float(np.mean(p[np.arange(n), predicted]))}
    per_class_prf = [
        _prf(
            float(p[onehot[:, c], c].sum()),
            float((1 - p[onehot[:, c], c]).sum()),
            float(p[~onehot[:, c], c].sum()),
        )
        for c in range(k)
    ]
    point.update(average_prf(per_class_prf))
    aucs = [_expected_auc(p[:, c], scores[:, c]) for c in range(k)]
    defined = [a for a in aucs if a is not None]
    if len(defined) == len(aucs):
        point["roc_auc"] = float(np.mean(defined))
    rng = np.random.default_rng(random_state)
    cumulative = np.cumsum(p, axis=1)
    ranks = [rankdata(scores[:, c]) for c in range(k)]
    draws: dict[str, list[float]] = {name: [] for name in point}
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
                class_aucs.append(
                    (ranks[c][actual].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (n - n_pos))
                )
        values.update(average_prf(per_class))
        if len(class_aucs) == k:
            values["roc_auc"] = float(np.mean(class_aucs))
        for name, value in values.items():
            if name in draws:
                draws[name].append(value)
    return _bands(point, draws)


def _estimate_multiclass_weighted(p, predicted, w, ranked_by, n_simulations, random_state) -> dict:
    """:func:`estimate_multiclass_performance` with row weights ``w``."""
    n, k = p.shape
    chosen = [predicted == c for c in range(k)]
    point = {"accuracy": float(np.average(p[np.arange(n), predicted], weights=w))}
    scores = [
        _prf(
            float(np.sum(w[chosen[c]] * p[chosen[c], c])),
            float(np.sum(w[chosen[c]] * (1 - p[chosen[c], c]))),
            float(np.sum(w[~chosen[c]] * p[~chosen[c], c])),
        )
        for c in range(k)
    ]
    point.update(average_prf(scores))
    aucs = [_expected_auc(p[:, c], ranked_by[:, c], w) for c in range(k)]
    defined = [a for a in aucs if a is not None]
    if len(defined) == len(aucs):
        point["roc_auc"] = float(np.mean(defined))
    rng = np.random.default_rng(random_state)
    cumulative = np.cumsum(p, axis=1)
    draws: dict[str, list[float]] = {name: [] for name in point}
    for _ in range(n_simulations):
        labels = (rng.random((n, 1)) > cumulative).sum(axis=1).clip(0, k - 1)
        values = {"accuracy": float(np.average(labels == predicted, weights=w))}
        per_class, class_aucs = [], []
        for c in range(k):
            actual = labels == c
            tp = float(w[actual & chosen[c]].sum())
            per_class.append(_prf(tp, float(w[chosen[c]].sum()) - tp, float(w[actual].sum()) - tp))
            auc = _weighted_roc_auc(actual, ranked_by[:, c], w)
            if auc is not None:
                class_aucs.append(auc)
        values.update(average_prf(per_class))
        if len(class_aucs) == k:
            values["roc_auc"] = float(np.mean(class_aucs))
        for name, value in values.items():
            if name in draws:
                draws[name].append(value)
    return _bands(point, draws)
