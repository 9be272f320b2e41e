"""Direct loss estimation for regressors: predict each row's error where labels are missing.

At baseline time two gradient-boosted models learn, on the reference, the
absolute error and the squared error of the model's predictions from the
features and the prediction. On a window without labels, the mean predicted
absolute error estimates MAE and the root of the mean predicted squared error
estimates RMSE. The boosted trees are stored as plain arrays (JSON, not pickle)
and evaluated with numpy.

The loss models are scikit-learn's histogram gradient boosting with the
defaults LightGBM also uses (the library NannyML's DLE fits): 100 trees grown
leaf by leaf to at most 31 leaves of at least 20 rows, learning rate 0.1, 255
bins, no early stopping. A row's error is a noisy target whose mean moves with
the inputs in ways a shallow tree misses: with trees of depth 3 (8 leaves) the
estimate barely left the reference's error on a real shift where these follow
it (``benchmarks/README.md``). Stopping on a held-out tenth stopped too early
on such noisy targets (on that shift its MAE and RMSE errors were 1.8 and 2.7
times as large), so the number of trees is fixed.

Assumption, as for every estimate without labels: the relation between the
inputs and the error does not change (no concept drift). Trees do not
extrapolate: inputs far outside the reference's range get the error of its
edge. On the tests' data, whose error grows with ``|x2|``, the estimate is
within 3.5% of the realised MAE and RMSE while ``x2`` grows up to 80% wider
(trees of depth 3 were 19% and 34% over there); it falls 6% and 10% short when
``x2`` is 2.5 times wider, and 12% and 18% at three times.

References
----------
.. [1] NannyML, "Direct Loss Estimation", 2023.
.. [2] G. Ke et al., "LightGBM: A Highly Efficient Gradient Boosting Decision
   Tree", NeurIPS 2017.
"""

from __future__ import annotations

import numpy as np

MAX_TRAINING_ROWS = 50_000
# LightGBM's defaults (n_estimators, num_leaves, min_child_samples, learning_rate, max_bin).
LOSS_MODEL = {
    "max_iter": 100,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 20,
    "learning_rate": 0.1,
    "max_bins": 255,
    "early_stopping": False,
}


def fit_loss_models(features: np.ndarray, y_true, y_pred, *, random_state: int = 0) -> dict:
    """Fit the absolute- and squared-error models; return them as JSON-safe arrays.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 1))
    >>> y_pred = np.zeros(500)
    >>> y_true = rng.normal(scale=np.where(x[:, 0] > 0, 2.0, 0.5))  # larger errors for x > 0
    >>> models = fit_loss_models(x, y_true, y_pred)
    >>> wide = estimate_regression_performance(models, np.full((100, 1), 1.0), np.zeros(100))
    >>> narrow = estimate_regression_performance(models, np.full((100, 1), -1.0), np.zeros(100))
    >>> bool(wide["mae"]["value"] > 2 * narrow["mae"]["value"])
    True
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    inputs = _inputs(features, y_pred)
    error = np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float)
    rng = np.random.default_rng(random_state)
    rows = rng.choice(len(error), min(len(error), MAX_TRAINING_ROWS), replace=False)
    models = {}
    # At most 50,000 rows: one thread, as OpenMP threads on a busy machine cost far more
    # than they save (1.6 s against 37 s for 7,500 rows on two loaded cores).
    with threadpool_limits(limits=1, user_api="openmp"):
        for name, target in (("absolute", np.abs(error)), ("squared", error**2)):
            model = HistGradientBoostingRegressor(**LOSS_MODEL, random_state=random_state)
            model.fit(inputs[rows], target[rows])
            models[name] = _export(model, inputs[rows])
    return models


def estimate_regression_performance(
    models: dict,
    features: np.ndarray,
    y_pred,
    *,
    n_boot: int = 100,
    random_state: int = 0,
    sample_weight=None,
) -> dict:
    """Estimated MAE and RMSE with a bootstrap band over the window's rows (each
    weighing ``sample_weight``, when given)."""
    inputs = _inputs(features, y_pred)
    absolute = np.clip(_predict(models["absolute"], inputs), 0, None)
    squared = np.clip(_predict(models["squared"], inputs), 0, None)
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    point = {
        "mae": float(np.average(absolute, weights=w)),
        "rmse": float(np.sqrt(np.average(squared, weights=w))),
    }
    rng = np.random.default_rng(random_state)
    draws: dict[str, list[float]] = {"mae": [], "rmse": []}
    for _ in range(n_boot):
        rows = rng.integers(0, len(absolute), len(absolute))
        drawn = None if w is None else w[rows]
        draws["mae"].append(np.average(absolute[rows], weights=drawn))
        draws["rmse"].append(np.sqrt(np.average(squared[rows], weights=drawn)))
    return {
        name: {
            "value": value,
            "band_low": float(np.quantile(draws[name], 0.025)),
            "band_high": float(np.quantile(draws[name], 0.975)),
        }
        for name, value in point.items()
    }


def _inputs(features, y_pred) -> np.ndarray:
    features = np.asarray(features, dtype=float).reshape(len(y_pred), -1)
    inputs = np.column_stack([features, np.asarray(y_pred, dtype=float)])
    return np.nan_to_num(inputs, nan=0.0, posinf=0.0, neginf=0.0)


def _export(model, inputs: np.ndarray) -> dict:
    """The fitted histogram gradient boosting as plain arrays: per tree, each node's
    children (-1 at a leaf), split feature and threshold (left when ``x <= threshold``),
    and the leaf values, already scaled by the learning rate."""
    trees = []
    for (predictor,) in model._predictors:  # one tree per iteration (a single output)
        nodes = predictor.nodes
        leaf = nodes["is_leaf"].astype(bool)
        left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
        feature = nodes["feature_idx"].astype(np.int64)  # unsigned in the model
        trees.append(
            {
                "left": np.where(leaf, -1, left).tolist(),
                "right": np.where(leaf, -1, right).tolist(),
                "feature": np.where(leaf, -2, feature).tolist(),
                "threshold": np.where(leaf, -2.0, nodes["num_threshold"]).tolist(),
                "value": np.where(leaf, nodes["value"], 0.0).tolist(),
            }
        )
    exported = {"init": 0.0, "learning_rate": 1.0, "trees": trees}
    # The starting value (the target's mean for the squared loss), read from the model's
    # own predictions rather than from a private attribute.
    exported["init"] = float(np.mean(model.predict(inputs) - _predict(exported, inputs)))
    return exported


def _predict(exported: dict, inputs: np.ndarray) -> np.ndarray:
    """Evaluate exported boosted trees on ``inputs``.

    Each tree splits the row indices node by node, so a row is compared only on its
    own path: leaf-wise trees are deep on a few paths (up to about 20 levels where
    most rows stop near 6), and comparing every row at every level cost five times as much.
    """
    total = np.full(len(inputs), float(exported["init"]))
    columns = [np.ascontiguousarray(inputs[:, j]) for j in range(inputs.shape[1])]
    rate = float(exported["learning_rate"])
    for tree in exported["trees"]:
        left, right, value = tree["left"], tree["right"], tree["value"]
        feature, threshold = tree["feature"], tree["threshold"]
        pending = [(0, np.arange(len(inputs)))]
        while pending:
            node, rows = pending.pop()
            if not len(rows):
                continue
            if left[node] == -1:
                total[rows] += rate * value[node]
                continue
            go_left = columns[feature[node]][rows] <= threshold[node]
            pending.append((left[node], rows[go_left]))
            pending.append((right[node], rows[~go_left]))
    return total
