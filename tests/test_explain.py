"""``mo.explain`` and ``mlflow-observe explain``: real models, a real tracking store, a real log."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression

import mlflow_observe as mo
from mlflow_observe.cli import cli
from mlflow_observe.logs.writer import PredictionLogWriter


def _houses(n, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "rooms": rng.integers(1, 6, n),
            "area": rng.normal(80, 20, n),
            "age": rng.normal(30, 10, n),
        }
    )
    price = 20 * frame["rooms"] + 1.5 * frame["area"] - 0.8 * frame["age"] + rng.normal(0, 5, n)
    return frame, price


@pytest.fixture()
def registered_regressor(tracking_uri):
    frame, price = _houses(2000)
    model = LinearRegression().fit(frame, price)
    with mlflow.start_run():
        mo.log_baseline(frame)
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=frame.head(3), registered_model_name="houses"
        )
    return model, frame, info


def test_explain_a_registered_model_with_its_baseline_as_background(registered_regressor):
    model, frame, _ = registered_regressor
    rows = frame.iloc[:5]
    explanation = mo.explain("models:/houses/1", rows)
    profile = mo.load_baseline("models:/houses/1")
    background = pd.DataFrame({c: profile.sample.values(c) for c in frame.columns}).astype(float)
    # The background is at most 50 rows of the baseline's sample; the linear model's
    # attributions are coef * (x - mean of those rows), and they add up exactly.
    values = explanation.attributions.values
    implied_mean = rows - values / model.coef_
    assert np.allclose(implied_mean.std(axis=0), 0, atol=1e-8)  # one background mean
    assert implied_mean.iloc[0].between(background.min(), background.max()).all()
    assert explanation.attributions.reconciliation_error < 1e-8
    assert explanation.attributions.predictions == pytest.approx(model.predict(rows))
    table = explanation.to_frame()
    assert len(table) == 15 and set(table.columns) >= {"feature", "value", "attribution"}
    first = table[table["row"] == 0]
    assert first["attribution"].abs().is_monotonic_decreasing


def test_explain_a_classifier_probability_and_log_it_on_a_run(tracking_uri, tmp_path):
    frame, price = _houses(1500, seed=1)
    labels = (price > price.median()).astype(int)
    forest = RandomForestClassifier(n_estimators=40, max_depth=5, random_state=0).fit(frame, labels)
    rows = frame.iloc[:3]
    with mlflow.start_run() as run:
        explanation = mo.explain(
            forest, rows, background=frame.iloc[100:400], output="probability", log=True
        )
    assert explanation.output == "probability of 1"
    assert explanation.attributions.predictions == pytest.approx(forest.predict_proba(rows)[:, 1])
    assert explanation.attributions.reconciliation_error < 1e-9
    artifacts = {
        a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "explanations")
    }
    assert {"explanations/explanation.json", "explanations/waterfall_row_0.png"} <= artifacts
    saved = json.loads(
        mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/explanations/explanation.json")
    )
    assert len(saved["rows"]) == 3 and saved["output"] == "probability of 1"


def test_explain_refuses_what_it_cannot_explain(tracking_uri):
    frame, price = _houses(300)
    labels = np.where(price > price.median(), "high", "low")
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(frame, labels)
    with pytest.raises(TypeError, match="predicts labels, not numbers"):
        mo.explain(forest, frame.iloc[:2], background=frame)
    with pytest.raises(ValueError, match="No background rows"):
        mo.explain(forest, frame.iloc[:2])
    with pytest.raises(ValueError, match="lack the columns"):
        mo.explain(forest, frame.iloc[:2], background=frame.drop(columns="age"))
    with pytest.raises(ValueError, match="non-empty"):
        mo.explain(forest, frame.iloc[:0], background=frame)
    with pytest.raises(TypeError, match="no predict_proba"):
        mo.explain(lambda f: f["age"], frame.iloc[:2], background=frame, output="probability")


def test_cli_explains_a_logged_request(registered_regressor, tmp_path):
    model, frame, _ = registered_regressor
    log_dir = tmp_path / "log"
    writer = PredictionLogWriter(str(log_dir))
    writer.submit(
        frame.iloc[[7]], model.predict(frame.iloc[[7]]), latency_seconds=0.0, request_id="order-42"
    )
    writer.submit(
        frame.iloc[8:10], model.predict(frame.iloc[8:10]), latency_seconds=0.0, request_id="batch-9"
    )
    writer.close()
    runner = CliRunner()
    plot = tmp_path / "why.png"
    result = runner.invoke(
        cli,
        [
            "explain",
            "-m",
            "models:/houses/1",
            "--logs",
            str(log_dir),
            "--request-id",
            "order-42",
            "--request-id",
            "batch-9",
            "--output",
            "json",
            "--plot",
            str(plot),
        ],
    )
    assert result.exit_code == 0, result.output
    account = json.loads(result.stdout)
    assert [r["request_id"] for r in account["rows"]] == ["order-42", "batch-9-0", "batch-9-1"]
    expected = model.predict(frame.iloc[[7, 8, 9]])
    assert [r["prediction"] for r in account["rows"]] == pytest.approx(expected)
    for row in account["rows"]:
        total = sum(row["attributions"].values()) + account["base_value"]
        assert total == pytest.approx(row["prediction"])
    assert plot.read_bytes()[:4] == b"\x89PNG"
    table = runner.invoke(
        cli,
        ["explain", "-m", "models:/houses/1", "--logs", str(log_dir), "--request-id", "order-42"],
    )
    assert table.exit_code == 0 and "order-42" in table.stdout and "rooms" in table.stdout
    missing = runner.invoke(
        cli, ["explain", "-m", "models:/houses/1", "--logs", str(log_dir), "--request-id", "nope"]
    )
    assert missing.exit_code == 3 and "No logged prediction has the request id 'nope'" in (
        missing.stderr
    )
    usage = runner.invoke(cli, ["explain", "-m", "models:/houses/1", "--request-id", "x"])
    assert usage.exit_code == 2 and "--request-id needs --logs" in usage.output


def test_the_sampled_method_agrees_with_shaps_exact_tree_values():
    import shap
    from sklearn.ensemble import RandomForestRegressor

    from mlflow_observe.core.explain import sampled_shapley

    frame, price = _houses(1500, seed=2)
    forest = RandomForestRegressor(n_estimators=30, max_depth=6, random_state=0).fit(frame, price)
    background = frame.iloc[:30]
    rows = frame.iloc[1000:1004]
    exact = shap.TreeExplainer(
        forest, data=background, feature_perturbation="interventional"
    ).shap_values(rows)
    sampled = sampled_shapley(forest.predict, rows, background, n_permutations=200)
    # SHAP's interventional values are the exact Shapley values against the same background.
    scale = float(np.abs(exact).max())
    np.testing.assert_allclose(sampled.values.to_numpy(), exact, atol=0.03 * scale)


def test_tree_models_get_shaps_tree_explainer_and_reconcile(tracking_uri):
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor

    frame, price = _houses(1500, seed=3)
    forest = RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0).fit(frame, price)
    explanation = mo.explain(forest, frame.iloc[:200], background=frame)
    assert explanation.attributions.method == "tree_shap"
    assert explanation.attributions.reconciliation_error < 1e-6
    assert explanation.attributions.predictions == pytest.approx(forest.predict(frame.iloc[:200]))
    labels = (price > price.median()).astype(int)
    boosted = GradientBoostingClassifier(n_estimators=30, random_state=0).fit(frame, labels)
    probability = mo.explain(boosted, frame.iloc[:20], background=frame, output="probability")
    assert probability.attributions.method == "tree_shap"
    assert probability.attributions.reconciliation_error < 1e-6
    sampled = mo.explain(
        boosted, frame.iloc[:20], background=frame, output="probability", method="sampled"
    )
    assert sampled.attributions.method == "sampled_shapley"
    with pytest.raises(ValueError, match="method='tree' needs SHAP"):
        mo.explain(lambda f: f["age"].to_numpy(), frame.iloc[:2], background=frame, method="tree")
