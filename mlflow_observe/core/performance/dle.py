"""Direct loss estimation for regressors: predict each row's error where labels are missing.

At baseline time a gradient-boosted model learns, on the reference, the
absolute error and the squared error of the model's predictions from the
features and the prediction. On a window without labels, the mean predicted
absolute error estimates MAE and the root of the mean predicted squared error
estimates RMSE. The boosted trees are stored as plain arrays (JSON, not pickle)
and evaluated with numpy.

Assumption, as for every estimate without labels: the relation between the
inputs and the error does not change (no concept drift). Trees do not
extrapolate: inputs far outside the reference's range get the error of its
edge (in the tests, within 5% of the realised MAE while the window stays in the
reference's range, about 20% off when a feature's spread grows by 80%).
"""

from __future__ import annotations

import numpy as np

MAX_TRAINING_ROWS = 50_000


def fit_loss_models(features: np.ndarray, y_true, y_pred, *, random_state: int = 0) -> dict:
    """Fit the absolute- and squared-error models; return them as JSON-safe arrays."""
    from sklearn.ensemble import GradientBoostingRegressor

    inputs = _inputs(features, y_pred)
    error = np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float)
    rng = np.random.default_rng(random_state)
    rows = rng.choice(len(error), min(len(error), MAX_TRAINING_ROWS), replace=False)
    models = {}
    for name, target in (("absolute", np.abs(error)), ("squared", error**2)):
        model = GradientBoostingRegressor(
            n_estimators=100,
            max_depth=3,
            learning_rate=0.1,
            subsample=0.8,
            random_state=random_state,
        )
        model.fit(inputs[rows], target[rows])
        models[name] = _export(model)
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


def _export(model) -> dict:
    trees = []
    for estimator in model.estimators_[:, 0]:
        tree = estimator.tree_
        trees.append(
            {
                "left": tree.children_left.tolist(),
                "right": tree.children_right.tolist(),
                "feature": tree.feature.tolist(),
                "threshold": tree.threshold.tolist(),
                "value": tree.value[:, 0, 0].tolist(),
            }
        )
    init = (
        float(np.ravel(model.init_.constant_)[0])
        if hasattr(model.init_, "constant_")
        else float(model._raw_predict_init(np.zeros((1, model.n_features_in_)))[0, 0])
    )
    return {"init": init, "learning_rate": model.learning_rate, "trees": trees}


def _predict(exported: dict, inputs: np.ndarray) -> np.ndarray:
    """Evaluate exported boosted trees on ``inputs`` (vectorised, level by level)."""
    total = np.full(len(inputs), exported["init"])
    rows = np.arange(len(inputs))
    for tree in exported["trees"]:
        left, right = np.asarray(tree["left"]), np.asarray(tree["right"])
        feature, threshold = np.asarray(tree["feature"]), np.asarray(tree["threshold"])
        node = np.zeros(len(inputs), dtype=np.int64)
        while True:
            inner = left[node] != -1
            if not inner.any():
                break
            go_left = inputs[rows, np.where(inner, feature[node], 0)] <= threshold[node]
            node = np.where(inner, np.where(go_left, left[node], right[node]), node)
        total += exported["learning_rate"] * np.asarray(tree["value"])[node]
    return total
