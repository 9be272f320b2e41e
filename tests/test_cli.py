"""The mlflow-observe command, run as a real process on real CSV/Parquet files."""

import json
import os
import shutil
import subprocess
import sys

import mlflow
import pytest
from helpers import free_port, make_frame

import mlflow_observe as mo

# Every test runs the mlflow-observe command in its own process.
pytestmark = pytest.mark.server


def _cli(*args, env=None, timeout=180):
    executable = shutil.which("mlflow-observe", path=os.path.dirname(sys.executable))
    return subprocess.run(
        [executable, *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def _env(tracking_uri):
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


@pytest.fixture
def baseline_and_files(tracking_uri, tmp_path):
    with mlflow.start_run() as run:
        mo.log_baseline(make_frame(3000, seed=1))
    drifted = tmp_path / "drifted.parquet"
    make_frame(3000, seed=2, shift=1.0).to_parquet(drifted)
    clean = tmp_path / "clean.csv"
    make_frame(3000, seed=3).to_csv(clean, index=False)
    return run.info.run_id, str(drifted), str(clean)


def test_version():
    result = _cli("--version")
    assert result.returncode == 0 and mo.__version__ in result.stdout


def test_drift_from_files_json_and_table(tracking_uri, baseline_and_files):
    run_id, drifted, clean = baseline_and_files
    result = _cli(
        "drift", "--baseline", run_id, "--data", drifted, "--output", "json", env=_env(tracking_uri)
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["metrics"]["drift/n_drifted_columns"] == 1.0
    assert mlflow.get_run(payload["run_id"]).data.tags["observe.baseline.run_id"] == run_id
    table = _cli("drift", "-b", f"runs:/{run_id}", "-d", clean, env=_env(tracking_uri))
    assert table.returncode == 0, table.stderr
    assert "0 of 4 columns drifted" in table.stdout and "num_a" in table.stdout


def test_exit_codes(tracking_uri, baseline_and_files):
    run_id, drifted, clean = baseline_and_files
    env = _env(tracking_uri)
    fail = _cli(
        "drift", "-b", run_id, "-d", drifted, "--fail-on-drift", "--drift-share", "0.25", env=env
    )
    assert fail.returncode == 1, fail.stderr
    passing = _cli("drift", "-b", run_id, "-d", clean, "--fail-on-drift", env=env)
    assert passing.returncode == 0, passing.stderr
    usage = _cli("drift", "-b", run_id, env=env)
    assert usage.returncode == 2 and "Missing option '--data'" in usage.stderr
    bad_method = _cli("drift", "-b", run_id, "-d", clean, "--method", "magic", env=env)
    assert bad_method.returncode == 2 and "'magic' is not one of" in bad_method.stderr
    missing = _cli("drift", "-b", "runs:/0123456789abcdef0123456789abcdef", "-d", clean, env=env)
    assert missing.returncode == 3 and "No MLflow run with id" in missing.stderr
    assert "Exit codes" in _cli("drift", "--help").stdout


def test_against_a_real_tracking_server(mlflow_server, tmp_path):
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("server")
    try:
        with mlflow.start_run() as run:
            mo.log_baseline(make_frame(2000, seed=1))
        window = tmp_path / "window.parquet"
        make_frame(2000, seed=2, shift=1.0).to_parquet(window)
        result = _cli(
            "drift",
            "-b",
            run.info.run_id,
            "-d",
            str(window),
            "--output",
            "json",
            env=_env(mlflow_server),
        )
        assert result.returncode == 0, result.stderr
        evaluation = json.loads(result.stdout)["run_id"]
        stored = mlflow.get_run(evaluation)
        assert stored.data.metrics["drift/num_a/wasserstein"] > 0.9
    finally:
        mlflow.set_tracking_uri(None)


def test_unreachable_tracking_server_exits_3(tmp_path):
    window = tmp_path / "window.csv"
    make_frame(10).to_csv(window, index=False)
    env = {
        **_env(f"http://127.0.0.1:{free_port()}"),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "3",
    }
    result = _cli("drift", "-b", "0123456789abcdef0123456789abcdef", "-d", str(window), env=env)
    assert result.returncode == 3
    assert "Error:" in result.stderr


def test_degradation_command(tracking_uri, tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = rng.normal(size=4000)
    p = 1 / (1 + np.exp(-2 * x))
    reference = pd.DataFrame(
        {
            "x": x,
            "p_1": p,
            "prediction": (p > 0.5).astype(int),
            "label": (rng.random(4000) < p).astype(int),
        }
    )
    with mlflow.start_run() as run:
        mo.log_baseline(reference, targets="label", predictions="prediction", probabilities=["p_1"])
    window = reference.sample(2000, random_state=1).reset_index(drop=True)
    window["label"] = 1 - window["label"]  # every label wrong: a collapse
    labelled = tmp_path / "labelled.parquet"
    window.to_parquet(labelled)
    unlabelled = tmp_path / "unlabelled.csv"
    window.drop(columns=["label"]).to_csv(unlabelled, index=False)
    env = _env(tracking_uri)
    failed = _cli(
        "degradation", "-b", run.info.run_id, "-d", str(labelled), "--fail-on-degradation", env=env
    )
    assert failed.returncode == 1, failed.stderr
    assert "degraded" in failed.stdout and "accuracy" in failed.stdout
    estimated = _cli(
        "degradation", "-b", run.info.run_id, "-d", str(unlabelled), "--output", "json", env=env
    )
    assert estimated.returncode == 0, estimated.stderr
    assert "degradation/estimated_roc_auc" in json.loads(estimated.stdout)["metrics"]


def test_drift_by_segment(tracking_uri, baseline_and_files, tmp_path):
    run_id, _, _ = baseline_and_files
    window = make_frame(3000, seed=4)
    red = window["cat"] == "red"
    window.loc[red, "num_a"] += 2.0  # only the red rows drift
    path = tmp_path / "segmented.parquet"
    window.to_parquet(path)
    result = _cli(
        "drift",
        "-b",
        run_id,
        "-d",
        str(path),
        "--segment-by",
        "cat",
        "--segment-by",
        "flag",
        "--min-segment-size",
        "100",
        "--output",
        "json",
        env=_env(tracking_uri),
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["metrics"]["drift/n_segments"] == 5.0  # three colours, two flags
    by_value = {(s["column"], s["value"]): s for s in payload["segments"]}
    assert by_value[("cat", "red")]["drifted_columns"] == ["num_a"]
    # Each segment's columns are tested at p < 0.05: a calm column can alarm by chance.
    assert "num_a" not in by_value[("cat", "green")]["drifted_columns"]
    assert "num_a" not in by_value[("cat", "blue")]["drifted_columns"]
    table = _cli(
        "drift", "-b", run_id, "-d", str(path), "--segment-by", "cat", env=_env(tracking_uri)
    )
    assert table.returncode == 0 and "segment cat=red" in table.stdout
