"""The flavor's log_model records the same baseline as save_model, whatever options it is given."""

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mlflow_observe as mo


def _labelled(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    features = pd.DataFrame(rng.normal(size=(n, 3)), columns=["f0", "f1", "f2"])
    label = (features["f0"] + rng.normal(scale=0.5, size=n) > 0).astype(int)
    return features, label


@pytest.mark.slow
def test_log_model_honours_probabilities_so_windows_can_be_estimated(tracking_uri):
    features, label = _labelled()
    model = LogisticRegression().fit(features, label)
    reference = features.assign(
        label=label,
        prediction=model.predict(features),
        p_1=model.predict_proba(features)[:, 1],
    )
    with mlflow.start_run() as run:
        mo.log_model(
            model,
            name="model",
            baseline=reference,
            targets="label",
            predictions="prediction",
            probabilities=["p_1"],
            input_example=features.head(3),
        )
    baseline = mo.load_baseline(run.info.run_id)
    # The probability column is an output, not an input: the model's impact was measured.
    assert baseline.impact is not None
    assert set(baseline.impact.importances) == {"f0", "f1", "f2"}
    assert max(baseline.impact.importances, key=baseline.impact.importances.get) == "f0"

    # A window without labels: its performance is estimated from the recorded calibration.
    window_features, window_label = _labelled(n=1500, seed=1)
    window = window_features.assign(
        prediction=model.predict(window_features),
        p_1=model.predict_proba(window_features)[:, 1],
    )
    with mlflow.start_run():
        result = mo.evaluate_degradation(window, baseline)
    estimated = result.metrics["degradation/estimated_accuracy"]
    realised = float((model.predict(window_features) == window_label).mean())
    assert abs(estimated - realised) < 0.03


@pytest.mark.slow
def test_log_model_takes_every_option_save_model_takes(tracking_uri, tmp_path):
    features, label = _labelled(n=500)
    model = LogisticRegression().fit(features, label)
    reference = features.assign(label=label)
    options = {"n_bins": 4, "sample_size": 123, "random_state": 7, "exclude": ["f2"]}
    with mlflow.start_run() as run:
        mo.log_model(model, name="model", baseline=reference, targets="label", **options)
    logged = mo.load_baseline(run.info.run_id)
    mo.save_model(model, str(tmp_path / "saved"), baseline=reference, targets="label", **options)
    saved = mo.DataProfile.from_json((tmp_path / "saved" / "baseline_profile.json").read_text())
    assert logged.to_dict()["columns"] == saved.to_dict()["columns"]
    assert "f2" not in logged.columns
    # ... and the options took effect: the default profile's bins differ.
    default = mo.build_profile(reference, targets="label")
    assert logged.to_dict()["columns"] != default.to_dict()["columns"]


def test_the_log_directory_can_be_given_at_load_time(tracking_uri, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_OBSERVE_LOG_DIR", raising=False)
    features, label = _labelled(n=300)
    model = LogisticRegression().fit(features, label)
    with mlflow.start_run():
        info = mo.log_model(model, name="model", baseline=features, input_example=features.head(3))
    log_dir = tmp_path / "log"
    loaded = mlflow.pyfunc.load_model(
        info.model_uri, model_config={"mlflow_observe_log_dir": str(log_dir)}
    )
    loaded.predict(features.head(7))
    assert loaded._model_impl.log_writer.flush(timeout=30)
    logged = mo.read_logs(str(log_dir))
    assert len(logged) == 7
    np.testing.assert_allclose(logged["f0"].to_numpy(), features["f0"].head(7).to_numpy())
    # Without it (and without the environment variable) nothing is logged.
    plain = mlflow.pyfunc.load_model(info.model_uri)
    assert plain._model_impl.log_writer is None
