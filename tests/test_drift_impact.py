"""Drift impact: the drifted feature the model relies on ranks first; bad models; old profiles."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LinearRegression

import mlflow_observe as mo
from mlflow_observe.comparison import compare
from mlflow_observe.core.drift.options import DriftOptions
from mlflow_observe.core.profile.data_profile import DataProfile, build_profile
from mlflow_observe.core.profile.feature_impact import feature_impact
from mlflow_observe.report.html import render_report
from mlflow_observe.tracking import tags
from mlflow_observe.tracking.predictor import record_impact

FEATURES = ["x1", "x2", "x3"]


def frame(n, *, seed, shift=0.0):
    """y depends on x1 only; ``shift`` moves x1 and x2 (by one standard deviation times shift)."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "x1": rng.normal(shift, 1.0, n),
            "x2": rng.normal(3.0 + 2.0 * shift, 2.0, n),
            "x3": rng.normal(0.0, 1.0, n),
        }
    )
    data["y"] = 4.0 * data["x1"] + rng.normal(0.0, 0.3, n)
    return data


@pytest.fixture(scope="module")
def model():
    train = frame(5000, seed=0)
    return LinearRegression().fit(train[FEATURES], train["y"])


@pytest.fixture(scope="module")
def baseline(model):
    reference = frame(20_000, seed=1)[FEATURES]
    profile = build_profile(reference)
    return record_impact(profile, model, reference)


def test_permutation_importance_sees_what_the_model_uses(baseline):
    impact = baseline.impact
    assert impact.method == "permutation" and impact.n_rows == 2000
    assert impact.importances["x1"] > 1.0  # shuffling x1 moves predictions by > 1 std
    assert impact.importances["x2"] < 0.05 and impact.importances["x3"] < 0.05
    assert impact.normalised()["x1"] > 0.95


def test_permutation_importance_is_seeded(model):
    reference = frame(5000, seed=2)[FEATURES]
    first = feature_impact(model.predict, reference, FEATURES, random_state=7, use_shap=False)
    again = feature_impact(model.predict, reference, FEATURES, random_state=7, use_shap=False)
    assert first == again


def test_the_relied_on_drifted_feature_ranks_above_the_ignored_one(baseline, model):
    window = frame(10_000, seed=3, shift=1.0)[FEATURES]
    comparison = compare(baseline, window, predict=model.predict)
    assert set(comparison.drift.drifted_columns) == {"x1", "x2"}
    ranking = comparison.impact.ranking
    assert [r.column for r in ranking][:2] == ["x1", "x2"]
    assert ranking[0].score > 10 * ranking[1].score
    assert comparison.impact.top_feature == "x1"
    # Resetting x1 to the reference removes nearly all of the prediction shift; x2 none.
    explained = {r.column: r.explained for r in ranking}
    assert comparison.impact.prediction_shift > 0.5
    assert explained["x1"] > 0.8
    assert abs(explained["x2"]) < 0.1
    assert comparison.metrics()["drift/impact/prediction_shift"] == pytest.approx(
        comparison.impact.prediction_shift
    )
    records = comparison.impact.to_records()
    assert [r["column"] for r in records] == [r.column for r in ranking]
    assert records == comparison.impact.to_dict()["ranking"]


def test_ranking_needs_no_model(baseline):
    comparison = compare(baseline, frame(10_000, seed=4, shift=1.0)[FEATURES])
    assert comparison.impact.ranking[0].column == "x1"
    assert comparison.impact.prediction_shift is None
    assert all(r.explained is None for r in comparison.impact.ranking)


def test_classifier_labels_are_explained_too():
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"x1": rng.normal(size=8000), "x2": rng.normal(size=8000)})

    def predict(data):
        return np.where(data["x1"].to_numpy() > 0.5, "yes", "no")

    profile = record_impact(build_profile(reference), predict, reference)
    window = reference + 1.0
    impact = compare(profile, window, predict=predict).impact
    assert impact.shift_method == "js"
    assert impact.ranking[0].column == "x1" and impact.ranking[0].explained > 0.8


class FailsOnResampledInputs:
    """Predicts the row samples, then fails on every later call (the resampled rows)."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def predict(self, data):
        self.calls += 1
        if self.calls > 2:
            raise ValueError("input rejected: rows out of the training schema")
        return self.model.predict(data)


def test_a_model_failing_on_resampled_inputs_leaves_the_report_intact(baseline, model):
    window = frame(5000, seed=6, shift=1.0)[FEATURES]
    failing = FailsOnResampledInputs(model)
    comparison = compare(baseline, window, predict=failing.predict)
    impact = comparison.impact
    assert [r.column for r in impact.ranking][:2] == ["x1", "x2"]
    assert all(r.explained is None for r in impact.ranking)
    assert "input rejected" in impact.notes["x1"]
    assert comparison.drift.drifted_columns == ["x1", "x2"]  # the rest as before
    page = render_report(
        comparison, baseline=baseline, options=DriftOptions(), baseline_label="x", plots={}
    )
    assert "Drift impact" in page and "failed on resampled inputs" in page
    assert "Data integrity" in page


def test_a_model_failing_on_every_input_is_noted(baseline):
    def broken(data):
        raise RuntimeError("model server down")

    impact = compare(baseline, frame(3000, seed=7)[FEATURES], predict=broken).impact
    assert "model server down" in impact.notes["explanation"]
    assert impact.ranking and impact.prediction_shift is None


def test_old_profile_without_impact_still_loads(baseline):
    payload = json.loads(baseline.to_json())
    assert payload["version"] >= 2 and payload["impact"]["importances"]
    restored = DataProfile.from_json(baseline.to_json())
    assert restored.impact == baseline.impact
    del payload["impact"]
    payload["version"] = 1
    old = DataProfile.from_dict(payload)
    assert old.impact is None
    comparison = compare(old, frame(3000, seed=8, shift=1.0)[FEATURES])
    assert comparison.impact is None and "drift/impact/top_score" not in comparison.metrics()


def test_shap_is_optional(model):
    reference = frame(500, seed=9)[FEATURES]
    impact = feature_impact(model.predict, reference, FEATURES)
    try:
        import shap  # noqa: F401
    except ImportError:
        assert impact.shap is None and "not installed" in impact.notes["shap"]
    else:
        assert impact.shap is not None and max(impact.shap, key=impact.shap.get) == "x1"


@pytest.mark.slow
def test_end_to_end_flavor_records_impact_and_evaluate_drift_explains(tracking_uri):
    train = frame(5000, seed=10)
    model = LinearRegression().fit(train[FEATURES], train["y"])
    with mlflow.start_run():
        info = mo.log_model(
            model,
            name="model",
            baseline=train[FEATURES],
            registered_model_name="impact-model",
            input_example=train[FEATURES].head(3),
        )
    assert mo.load_baseline("models:/impact-model/1").impact.importances["x1"] > 1.0
    window = frame(4000, seed=11, shift=1.0)[FEATURES]
    with mlflow.start_run() as run:
        result = mo.evaluate_drift(
            window, baseline="models:/impact-model/1", model=info.model_uri, log_plots=True
        )
    content = result.artifacts["drift_impact"].content
    assert content["top_feature"] == "x1"
    assert content["ranking"][0]["explained"] > 0.8
    run_data = MlflowClient().get_run(run.info.run_id).data
    assert run_data.tags[tags.TOP_IMPACT_FEATURE] == "x1"
    assert np.isfinite(run_data.metrics["drift/impact/prediction_shift"])
    artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "drift_plots")}
    assert "drift_plots/drift_impact.png" in artifacts
    page = result.artifacts["drift_report"].content
    assert "Drift impact" in page and "prediction shift explained" in page


def test_end_to_end_log_baseline_with_model_and_stored_predictions(tracking_uri, model):
    reference = frame(8000, seed=12)
    reference["prediction"] = model.predict(reference[FEATURES])
    with mlflow.start_run() as training:
        mo.log_baseline(reference[[*FEATURES, "prediction"]], predictions="prediction", model=model)
    window = frame(4000, seed=13, shift=1.0)
    window["prediction"] = model.predict(window[FEATURES])
    result = mo.evaluate_drift(
        window[[*FEATURES, "prediction"]], baseline=training.info.run_id, log_plots=False
    )
    content = result.artifacts["drift_impact"].content
    assert content["top_feature"] == "x1" and content["prediction_shift"] is None
    assert set(content["ranking"][0]) >= {"column", "importance", "severity", "score"}


def test_flavor_logs_a_model_that_fails_on_the_baseline_without_impact():
    from mlflow_observe.plugins.flavor import _as_profile

    def broken(data):
        raise ValueError("needs a column the baseline lacks")

    with pytest.warns(RuntimeWarning, match="Feature impact not recorded"):
        profile = _as_profile(frame(500, seed=14)[FEATURES], None, None, {}, broken)
    assert profile is not None and profile.impact is None


@pytest.mark.slow
def test_explains_a_pyfunc_model_whose_signature_has_integers_and_booleans(tracking_uri):
    rng = np.random.default_rng(15)

    def data(n, shift=0.0):
        return pd.DataFrame(
            {"x1": rng.normal(shift, 1.0, n), "n": rng.integers(0, 5, n), "ok": rng.random(n) < 0.5}
        )

    train = data(3000)
    model = LinearRegression().fit(train, 2.0 * train["x1"] + train["n"])
    with mlflow.start_run():
        info = mo.log_model(
            model,
            name="model",
            baseline=train,
            registered_model_name="ints",
            input_example=train.head(3),
        )
    with mlflow.start_run():
        result = mo.evaluate_drift(
            data(3000, shift=1.0), baseline="models:/ints/1", model=info.model_uri, log_plots=False
        )
    content = result.artifacts["drift_impact"].content
    assert content["notes"] == {}, content["notes"]
    assert content["top_feature"] == "x1" and content["ranking"][0]["explained"] > 0.8


def test_a_model_returning_some_nan_still_gives_finite_json():
    rng = np.random.default_rng(16)
    reference = pd.DataFrame({"x1": rng.normal(size=3000), "x2": rng.normal(size=3000)})

    def predict(data):
        out = 2.0 * data["x1"].to_numpy()
        out[::10] = np.nan  # a model that declines some rows
        return out

    profile = record_impact(build_profile(reference), predict, reference)
    restored = DataProfile.from_json(profile.to_json())  # no NaN in the JSON
    impact = compare(restored, reference + 1.0, predict=predict).impact
    assert impact.ranking[0].column == "x1" and impact.ranking[0].explained > 0.8
    json.dumps(impact.to_dict(), allow_nan=False)
