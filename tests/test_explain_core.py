"""Attributions and attribution drift in the core, against closed forms and the definition."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression

from mlflow_observe.core.explain import attribution_drift, global_importance, sampled_shapley


def _exact_shapley(predict, row: pd.DataFrame, background: pd.DataFrame) -> np.ndarray:
    """Shapley values by their definition: every coalition, weighted |S|! (d - |S| - 1)! / d!."""
    columns = list(row.columns)
    d = len(columns)

    def value(coalition):
        frame = background.copy()
        for j in coalition:
            frame[columns[j]] = row.iloc[0, j]
        return float(np.mean(predict(frame)))

    phi = np.zeros(d)
    for j in range(d):
        others = [k for k in range(d) if k != j]
        for size in range(d):
            weight = math.factorial(size) * math.factorial(d - size - 1) / math.factorial(d)
            for coalition in itertools.combinations(others, size):
                phi[j] += weight * (value((*coalition, j)) - value(coalition))
    return phi


def test_a_linear_model_gets_its_closed_form_attributions_exactly():
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(400, 6)), columns=[f"f{i}" for i in range(6)])
    model = LinearRegression().fit(x, x.to_numpy() @ np.arange(1, 7) + rng.normal(size=400))
    background = x.iloc[:80]
    rows = x.iloc[100:140]
    result = sampled_shapley(model.predict, rows, background, max_background=80)
    expected = (rows - background.mean()) * model.coef_
    np.testing.assert_allclose(result.values.to_numpy(), expected.to_numpy(), atol=1e-9)
    assert result.base_value == pytest.approx(model.predict(background).mean())
    assert result.reconciliation_error < 1e-9


def test_a_forest_and_a_classifier_match_the_definition_and_reconcile_exactly():
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(600, 4)), columns=["a", "b", "c", "d"])
    y = x["a"] * x["b"] + np.sin(x["c"]) + rng.normal(scale=0.1, size=600)
    forest = RandomForestRegressor(n_estimators=30, max_depth=6, random_state=0).fit(x, y)
    background = x.iloc[:30]
    rows = x.iloc[500:503]
    sampled = sampled_shapley(forest.predict, rows, background, n_permutations=400)
    for i in range(len(rows)):
        exact = _exact_shapley(forest.predict, rows.iloc[[i]], background)
        np.testing.assert_allclose(sampled.values.iloc[i].to_numpy(), exact, atol=0.03)
    assert sampled.reconciliation_error < 1e-9
    classifier = LogisticRegression().fit(x, y > y.median())

    def probability(frame):
        return classifier.predict_proba(frame)[:, 1]

    explained = sampled_shapley(probability, x.iloc[:20], background)
    assert explained.reconciliation_error < 1e-9
    assert explained.predictions == pytest.approx(probability(x.iloc[:20]))


def test_mixed_dtypes_missing_values_and_bad_backgrounds():
    frame = pd.DataFrame(
        {
            "amount": [10.0, np.nan, 30.0, 5.0],
            "plan": pd.Series(["a", "b", "a", "c"], dtype="category"),
            "active": [True, False, True, True],
            "visits": pd.array([1, 2, None, 4], dtype="Int64"),
        }
    )

    def predict(data):
        plan_bonus = data["plan"].astype(str).map({"a": 1.0, "b": 2.0, "c": 3.0}).to_numpy()
        amount = data["amount"].fillna(0).to_numpy()
        visits = data["visits"].astype("Float64").fillna(0).to_numpy(dtype=float)
        return amount + plan_bonus + data["active"].to_numpy(dtype=float) + visits

    result = sampled_shapley(predict, frame, frame)
    assert result.reconciliation_error < 1e-9
    assert list(result.values.columns) == list(frame.columns)
    records = result.to_records()
    assert len(records) == 16 and {"row", "feature", "attribution"} <= set(records[0])
    with pytest.raises(ValueError, match=r"lack the columns \['visits'\]"):
        sampled_shapley(predict, frame, frame.drop(columns="visits"))
    with pytest.raises(ValueError, match="at least one row"):
        sampled_shapley(predict, frame, frame.iloc[:0])


def _gated(rng, n, share_on):
    """The model multiplies ``x1`` by a switch; ``x3`` acts alone; ``x4`` is unused."""
    return pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "switch": (rng.random(n) < share_on).astype(float),
            "x3": rng.normal(size=n),
            "x4": rng.normal(size=n),
        }
    )


def _gated_model(frame):
    return 2.0 * frame["x1"].to_numpy() * frame["switch"].to_numpy() + 0.7 * frame["x3"].to_numpy()


def test_attribution_drift_sees_the_reliance_move_when_a_partner_feature_changes():
    rng = np.random.default_rng(2)
    reference = _gated(rng, 2000, 0.8)
    background = reference.iloc[:50]
    baseline = global_importance(
        sampled_shapley(_gated_model, reference.iloc[:300], background).values
    )
    assert list(baseline)[0] == "x1"
    # The switch is on less often: x1's own distribution and x3's did not move, but the
    # model's output now depends on the switch far more and on x1 far less.
    window = _gated(rng, 300, 0.3)
    current = global_importance(sampled_shapley(_gated_model, window, background).values)
    result = attribution_drift(baseline, current)
    assert result.drifted
    assert result.share_change["x1"] < -0.1 and result.share_change["switch"] > 0.1
    assert result.current_share["x4"] == 0.0
    assert set(result.metrics()) >= {"drift/attribution/ndcg", "drift/attribution/x1"}
    assert [r["feature"] for r in result.feature_records()][0] in {"x1", "x3"}
    assert result.to_records()[0]["statistic"] == result.ndcg


def test_calm_windows_rarely_show_attribution_drift():
    rng = np.random.default_rng(3)
    reference = _gated(rng, 2000, 0.8)
    background = reference.iloc[:50]
    baseline = global_importance(
        sampled_shapley(_gated_model, reference.iloc[:300], background).values
    )
    alarms = 0
    for seed in range(10):
        window = _gated(rng, 300, 0.8)
        current = global_importance(
            sampled_shapley(_gated_model, window, background, random_state=seed).values
        )
        alarms += attribution_drift(baseline, current).drifted
    assert alarms == 0


def test_attribution_drift_refuses_negative_or_missing_importances_and_handles_new_features():
    with pytest.raises(ValueError, match="negative or not finite"):
        attribution_drift({"a": -1.0}, {"a": 1.0})
    with pytest.raises(ValueError, match="negative or not finite"):
        attribution_drift({"a": 1.0}, {"a": float("nan")})
    result = attribution_drift({"a": 1.0}, {"a": 1.0, "b": 1.0})
    assert result.baseline_share["b"] == 0.0 and result.share_change["b"] == pytest.approx(0.5)
    assert attribution_drift({"a": 0.0}, {"a": 0.0}).ndcg == 1.0


def test_ndcg_follows_its_formula_when_the_order_changes():
    baseline, current = {"a": 0.5, "b": 0.3, "c": 0.2}, {"c": 0.5, "b": 0.3, "a": 0.2}
    gain = 0.2 / math.log2(2) + 0.3 / math.log2(3) + 0.5 / math.log2(4)
    ideal = 0.5 / math.log2(2) + 0.3 / math.log2(3) + 0.2 / math.log2(4)
    result = attribution_drift(baseline, current)
    assert result.ndcg == pytest.approx(gain / ideal)
    assert attribution_drift(baseline, current, top_k=1).ndcg == pytest.approx(0.2 / 0.5)
