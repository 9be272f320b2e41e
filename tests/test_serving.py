"""The wrapped model served by a real `mlflow models serve` process, over real HTTP."""

import os
import signal
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from helpers import free_port
from sklearn.linear_model import LogisticRegression

import mlflow_observe as mo

N_FEATURES = 4


def _training_data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        rng.normal(size=(n, N_FEATURES)), columns=[f"f{i}" for i in range(N_FEATURES)]
    )
    return frame, (frame["f0"] + frame["f1"] > 0).astype(int)


@pytest.fixture
def wrapped_model(tracking_uri):
    X, y = _training_data()
    model = LogisticRegression().fit(X, y)
    with mlflow.start_run():
        info = mo.log_model(
            model,
            name="model",
            baseline=X.assign(label=y),
            targets="label",
            registered_model_name="churn",
            input_example=X.head(5),
        )
    return model, info


class Server:
    def __init__(self, model_uri, tracking_uri, log_dir, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            "MLFLOW_TRACKING_URI": tracking_uri,
            "MLFLOW_OBSERVE_LOG_DIR": str(log_dir),
            **env,
            # the server runs `uvicorn` from the environment's bin directory
            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                model_uri,
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-w",
                "2",
            ],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        for _ in range(240):
            if self.process.poll() is not None:
                break
            try:
                if requests.get(f"{self.url}/ping", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("mlflow models serve did not start:\n" + self.output())

    def predict(self, frame):
        response = requests.post(
            f"{self.url}/invocations",
            timeout=30,
            json={"dataframe_split": frame.to_dict(orient="split")},
        )
        return response

    def stop(self, sig=signal.SIGTERM):
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=60)

    def output(self):
        return self.process.stdout.read() if self.process.stdout else ""


def _wait_for_rows(log_dir, expected, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            logs = mo.read_logs(str(log_dir))
            if len(logs) >= expected:
                return logs
        except mo.LogWindowError:
            pass
        time.sleep(0.3)
    return mo.read_logs(str(log_dir))


@pytest.mark.server
def test_500_requests_from_threads_are_all_logged(wrapped_model, tracking_uri, tmp_path):
    model, info = wrapped_model
    log_dir = tmp_path / "logs"
    server = Server("models:/churn/1", tracking_uri, log_dir, MLFLOW_OBSERVE_FLUSH_SECONDS="0.5")
    X, _ = _training_data(500, seed=7)
    try:

        def call(i):
            response = server.predict(X.iloc[[i]])
            assert response.status_code == 200, response.text
            return i, response.json()["predictions"][0]

        with ThreadPoolExecutor(8) as pool:
            answers = dict(pool.map(call, range(500)))
        logs = _wait_for_rows(log_dir, 500)
    finally:
        server.stop()
    assert len(logs) == 500 and logs["request_id"].is_unique
    assert [answers[i] for i in range(500)] == model.predict(X).tolist()
    logged = logs.sort_values("f0").reset_index(drop=True)
    sent = X.assign(prediction=model.predict(X)).sort_values("f0").reset_index(drop=True)
    assert np.allclose(logged[[f"f{i}" for i in range(N_FEATURES)]], sent.iloc[:, :N_FEATURES])
    assert (logged["prediction"] == sent["prediction"]).all()
    assert set(logs["model_name"]) == {"churn"}
    assert np.allclose(logged[["probability_0", "probability_1"]].sum(axis=1), 1.0)
    assert logs["model_uri"].iloc[0] == info.model_uri
    # the logs are a window that the drift evaluator takes as it is
    with mlflow.start_run() as run:
        result = mo.evaluate_drift(logs, baseline="models:/churn/1")
    assert result.metrics["drift/n_evaluated_columns"] == N_FEATURES
    assert result.metrics["integrity/n_extra_columns"] == 0.0
    stored = mlflow.get_run(run.info.run_id)
    assert pd.Timestamp(stored.data.tags["observe.data.first_row"]) == logs["timestamp"].min()
    assert pd.Timestamp(stored.data.tags["observe.data.last_row"]) == logs["timestamp"].max()
    (dataset_input,) = stored.inputs.dataset_inputs
    assert dataset_input.dataset.name.startswith("window ")


@pytest.mark.server
def test_bad_request_reaches_the_caller_and_logs_nothing(wrapped_model, tracking_uri, tmp_path):
    log_dir = tmp_path / "logs"
    server = Server("models:/churn/1", tracking_uri, log_dir, MLFLOW_OBSERVE_FLUSH_SECONDS="0.2")
    try:
        bad = server.predict(pd.DataFrame({"wrong": [1.0]}))
        good = server.predict(_training_data(3)[0])
        named = requests.post(
            f"{server.url}/invocations",
            timeout=30,
            json={
                "dataframe_split": _training_data(1)[0].to_dict(orient="split"),
                "params": {"request_id": "order-42"},
            },
        )
        assert named.status_code == 200, named.text
        time.sleep(1.5)
    finally:
        server.stop()
    assert bad.status_code == 400 and "f0" in bad.text
    assert good.status_code == 200
    logs = mo.read_logs(str(log_dir))
    assert len(logs) == 3 + 1 and "wrong" not in logs.columns
    # a caller-supplied id names the rows it sent
    assert logs["request_id"].tolist()[-1] == "order-42"


@pytest.mark.server
def test_unwritable_log_directory_never_fails_a_prediction(wrapped_model, tracking_uri, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the log directory should be")
    server = Server(
        "models:/churn/1", tracking_uri, blocker / "logs", MLFLOW_OBSERVE_FLUSH_SECONDS="0.1"
    )
    model, _ = wrapped_model
    X, _ = _training_data(50, seed=3)
    try:
        answers = [server.predict(X.iloc[[i]]).json()["predictions"][0] for i in range(50)]
    finally:
        server.stop()
        output = server.output()
    assert answers == model.predict(X).tolist()
    assert output.count("Could not write the prediction log") <= 2  # once per worker


@pytest.mark.server
def test_sigkill_leaves_only_readable_files_and_bounded_loss(wrapped_model, tracking_uri, tmp_path):
    log_dir = tmp_path / "logs"
    bound = 50  # rows a worker may hold unwritten: the queue bound (and one batch in writing)
    server = Server(
        "models:/churn/1",
        tracking_uri,
        log_dir,
        MLFLOW_OBSERVE_FLUSH_SECONDS="0.05",
        MLFLOW_OBSERVE_MAX_QUEUE_ROWS=str(bound),
    )
    X, _ = _training_data(1, seed=5)
    answered = 0
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        if server.predict(X).status_code == 200:
            answered += 1
    server.stop(signal.SIGKILL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a corrupt file would warn
        logs = mo.read_logs(str(log_dir))
    assert answered > 100
    assert answered - 2 * 2 * bound <= len(logs) <= answered
    assert logs["request_id"].is_unique


@pytest.mark.slow
def test_load_model_predicts_exactly_like_the_inner_model(wrapped_model, tmp_path):
    model, info = wrapped_model
    X, _ = _training_data(200, seed=11)
    loaded = mo.load_model(info.model_uri)
    assert (loaded.predict(X) == model.predict(X)).all()
    assert (loaded.predict(X, params={"request_id": "r1"}) == model.predict(X)).all()
    local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "dl"))
    inner = mlflow.models.Model.load(os.path.join(local, "inner_model"))
    outer = loaded.metadata.signature
    assert (outer.inputs, outer.outputs) == (inner.signature.inputs, inner.signature.outputs)
    assert [p.name for p in outer.params.params] == ["request_id", "event_time"]
    assert loaded.metadata.saved_input_example_info == inner.saved_input_example_info
    assert mo.load_baseline("models:/churn/1").targets == "label"
    path = tmp_path / "saved"
    mo.save_model(info.model_uri, str(path), baseline=X)
    again = mo.load_model(str(path))
    assert (again.predict(X) == model.predict(X)).all()
    assert "mlflow-observe" in (path / "requirements.txt").read_text()
    assert (path / "baseline_profile.json").exists()
