"""The drift evaluator end to end through mlflow.models.evaluate on a real SQLite store."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from helpers import make_frame
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

import mlflow_observe as mo


@pytest.fixture
def baseline_run(tracking_uri):
    reference = make_frame(3000, seed=1)
    reference["prediction"] = reference["num_a"] + 0.1 * reference["num_b"]
    with mlflow.start_run() as run:
        mo.log_baseline(reference, predictions="prediction")
    return run.info.run_id


def _production(shift=1.0, n=3000):
    window = make_frame(n, seed=2, shift=shift)
    window["prediction"] = window["num_a"] + 0.1 * window["num_b"]
    return window


def _artifacts(run_id, path=""):
    client = MlflowClient()
    found = []
    for item in client.list_artifacts(run_id, path):
        found += _artifacts(run_id, item.path) if item.is_dir else [item.path]
    return found


def test_evaluate_logs_metrics_artifacts_and_tags(baseline_run):
    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(
            data=_production(),
            predictions="prediction",
            model_type=mo.MONITORING_MODEL_TYPE,
            evaluators="drift",
            evaluator_config={"baseline": baseline_run},
        )
    assert result.metrics["drift/share_drifted_columns"] == 0.25
    assert result.metrics["drift/prediction_drift"] == 1.0
    stored = MlflowClient().get_run(run.info.run_id)
    for key in (
        "drift/share_drifted_columns",
        "drift/n_drifted_columns",
        "drift/dataset_drift",
        "drift/num_a/wasserstein",
        "drift/cat/js",
        "drift/prediction/wasserstein",
        "integrity/n_findings",
    ):
        assert stored.data.metrics[key] == pytest.approx(result.metrics[key])
    assert all(np.isfinite(v) for v in stored.data.metrics.values())
    artifacts = _artifacts(run.info.run_id)
    assert {
        "drift_table.json",
        "integrity_findings.json",
        "drift_report.html",
        "drift_plots/num_a.png",
    } <= set(artifacts)
    assert stored.data.tags["observe.baseline.run_id"] == baseline_run
    assert stored.data.tags["observe.drift.drifted_columns"] == "num_a"
    table = result.artifacts["drift_table"].content
    assert {
        "column",
        "kind",
        "method",
        "statistic",
        "pvalue",
        "threshold",
        "drifted",
        "status",
    } <= set(table[0])
    local = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="drift_table.json"
    )
    assert json.loads(Path(local).read_text()) == json.loads(json.dumps(table))


# Registering a model version (version, alias) logs a model: seconds each.
@pytest.mark.parametrize(
    "form",
    [
        "id",
        "runs",
        pytest.param("version", marks=pytest.mark.slow),
        pytest.param("alias", marks=pytest.mark.slow),
    ],
)
def test_baseline_references(baseline_run, form):
    from sklearn.linear_model import LinearRegression

    if form in ("version", "alias"):
        model = LinearRegression().fit(np.arange(10).reshape(-1, 1), np.arange(10))
        with mlflow.start_run(run_id=baseline_run):
            info = mlflow.sklearn.log_model(model, name="model", registered_model_name="churn")
        MlflowClient().set_registered_model_alias(
            "churn", "champion", info.registered_model_version
        )
    reference = {
        "id": baseline_run,
        "runs": f"runs:/{baseline_run}",
        "version": "models:/churn/1",
        "alias": "models:/churn@champion",
    }[form]
    profile = mo.load_baseline(reference)
    assert profile.metadata["source_run_id"] == baseline_run
    result = mo.evaluate_drift(_production(), baseline=reference)
    assert result.metrics["drift/n_drifted_columns"] == 1.0


@pytest.mark.slow
def test_evaluate_drift_uses_active_run_or_a_new_one(baseline_run):
    with mlflow.start_run() as run:
        mo.evaluate_drift(_production(0.0), baseline=baseline_run)
    assert "drift/dataset_drift" in MlflowClient().get_run(run.info.run_id).data.metrics
    result = mo.evaluate_drift(_production(0.0), baseline=baseline_run)
    assert result._run_id != run.info.run_id
    assert result.metrics["drift/dataset_drift"] == 0.0


@pytest.mark.slow
def test_with_a_model_instead_of_stored_predictions(baseline_run):
    from sklearn.linear_model import LinearRegression

    reference = make_frame(3000, seed=1)
    model = LinearRegression().fit(
        reference[["num_a", "num_b"]], reference["num_a"] + 0.1 * reference["num_b"]
    )
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="m")
    window = _production(1.0)[["num_a", "num_b"]]
    result = mlflow.models.evaluate(
        model=info.model_uri,
        data=window,
        model_type=mo.MONITORING_MODEL_TYPE,
        evaluators="drift",
        evaluator_config={"baseline": baseline_run},
    )
    assert result.metrics["drift/prediction_drift"] == 1.0


def test_opt_in_only(baseline_run):
    """Without its config the evaluator never runs, so plain evaluate() calls are unaffected."""
    from mlflow.models.evaluation.evaluator_registry import _model_evaluation_registry

    assert "drift" in _model_evaluation_registry._registry  # the entry point is installed
    evaluator = _model_evaluation_registry.get_evaluator("drift")
    assert not evaluator.can_evaluate(model_type="regressor", evaluator_config={})
    assert evaluator.can_evaluate(model_type=None, evaluator_config={"baseline": "x"})
    window = _production()[["num_a", "num_b", "prediction"]]
    window["label"] = window["prediction"]
    result = mlflow.models.evaluate(
        data=window, predictions="prediction", targets="label", model_type="regressor"
    )
    assert not any(k.startswith("drift/") for k in result.metrics)


def test_html_report_escapes_everything(tracking_uri):
    evil = "<script>alert(1)</script>"
    reference = pd.DataFrame(
        {
            evil: np.random.default_rng(0).choice(["a", evil], 3000),
            "x": np.random.default_rng(1).normal(size=3000),
        }
    )
    window = reference.copy()
    window[evil] = np.random.default_rng(2).choice(["a", evil], 3000, p=[0.1, 0.9])
    with mlflow.start_run() as run:
        mo.log_baseline(reference)
    result = mo.evaluate_drift(window, baseline=run.info.run_id)
    page = result.artifacts["drift_report"].content
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "http://" not in page and "https://" not in page  # self-contained
    assert "Largest category changes" in page and "data:image/png;base64," in page


def test_odd_column_names_are_sanitised_with_mapping(tracking_uri):
    rng = np.random.default_rng(0)
    names = ["income / month", "size.cm", "größe", "with space", "a:b"]
    reference = pd.DataFrame({n: rng.normal(size=2000) for n in names})
    with mlflow.start_run() as run:
        mo.log_baseline(reference)
    result = mo.evaluate_drift(reference + 1.0, baseline=run.info.run_id)
    table = {r["column"]: r for r in result.artifacts["drift_table"].content}
    assert table["income / month"]["metric_key"] == "drift/income _ month/wasserstein"
    assert table["größe"]["metric_key"] == "drift/grosse/wasserstein"
    for record in table.values():
        assert result.metrics[record["metric_key"]] > 0.9


def test_bad_baselines_get_clear_errors(tracking_uri):
    window = _production()
    with pytest.raises(mo.BaselineNotFoundError, match="No MLflow run with id"):
        mo.evaluate_drift(window, baseline="runs:/0123456789abcdef0123456789abcdef")
    with mlflow.start_run() as run:
        mlflow.log_param("nothing", 1)
    with pytest.raises(mo.BaselineNotFoundError, match="has no baseline profile"):
        mo.load_baseline(run.info.run_id)
    with pytest.raises(mo.BaselineNotFoundError, match="No registered model version"):
        mo.load_baseline("models:/nope/3")
    with pytest.raises(mo.BaselineNotFoundError, match="Cannot read the baseline reference"):
        mo.load_baseline("s3://bucket/key")


def test_bad_windows_get_clear_errors(baseline_run):
    with pytest.raises(mo.EmptyWindowError, match="no rows"):
        mo.evaluate_drift(_production().iloc[:0], baseline=baseline_run)
    with pytest.raises(MlflowException, match="no rows"):  # straight through MLflow
        mlflow.models.evaluate(
            data=_production()[["num_a"]].iloc[:0],
            model_type=mo.MONITORING_MODEL_TYPE,
            evaluators="drift",
            evaluator_config={"baseline": baseline_run},
        )
    with pytest.raises(
        MlflowException, match="Unknown drift evaluator config keys: \\['treshold'\\]"
    ):
        mo.evaluate_drift(_production(), baseline=baseline_run, treshold=0.2)
    with pytest.raises(MlflowException, match="'drift_share' parameter of DriftOptions"):
        mo.evaluate_drift(_production(), baseline=baseline_run, drift_share=3)


def test_every_bad_column_becomes_a_finding_not_a_crash(baseline_run):
    window = _production()
    window["num_a"] = window["num_a"].astype(object)
    window.loc[:5, "num_a"] = "oops"
    window.loc[:1000, "num_b"] = np.nan
    window.loc[1001:1010, "num_b"] = np.inf
    window.loc[:20, "cat"] = "never seen"
    window = window.drop(columns=["flag"]).assign(extra=1)
    result = mo.evaluate_drift(window, baseline=baseline_run)
    checks = {f["check"] for f in result.artifacts["integrity_findings"].content}
    assert {
        "type_change",
        "missing_rate_increase",
        "infinite_values",
        "unseen_categories",
        "missing_column",
        "extra_column",
    } <= checks
    assert all(np.isfinite(v) for v in result.metrics.values())


def test_window_is_logged_as_a_run_input_cheaply(baseline_run):
    window = _production()
    dataset = mo.monitoring_dataset(window, predictions="prediction")
    assert dataset.schema.input_names() == list(window.columns)
    with mlflow.start_run() as run:
        mlflow.models.evaluate(
            data=dataset,
            model_type=mo.MONITORING_MODEL_TYPE,
            evaluators="drift",
            evaluator_config={"baseline": baseline_run},
        )
    inputs = MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs
    assert [i.dataset.digest for i in inputs] == [dataset.digest]
    assert json.loads(inputs[0].dataset.profile)["num_rows"] == len(window)
    other = mo.monitoring_dataset(_production(shift=0.5), predictions="prediction")
    assert other.digest != dataset.digest


def test_baseline_from_a_profile_file(tmp_path, tracking_uri):
    profile = mo.build_profile(make_frame(500))
    path = tmp_path / "baseline.json"
    path.write_text(profile.to_json())
    result = mo.evaluate_drift(make_frame(500, seed=3, shift=1.0), baseline=str(path))
    assert result.metrics["drift/n_drifted_columns"] == 1.0
    (tmp_path / "other.json").write_text('{"hello": "world"}')
    with pytest.raises(mo.ProfileError, match="not an mlflow-observe baseline profile"):
        mo.load_baseline(str(tmp_path / "other.json"))
