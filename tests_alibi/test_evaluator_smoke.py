"""The package in this environment (numpy<2): the evaluator logs the detectors' results."""

import json

import mlflow
import numpy as np
from alibi_helpers import make_frame

import mlflow_observe as mo


def test_numpy_is_below_2_here():
    assert int(np.__version__.split(".")[0]) < 2


def test_evaluator_logs_alibi_metrics_table_and_report(tracking_uri, tmp_path):
    with mlflow.start_run() as baseline_run:
        mo.log_baseline(make_frame(600, seed=0))
    with mlflow.start_run() as run:
        result = mo.evaluate_drift(
            make_frame(600, seed=1, shift=0.5),
            baseline=baseline_run.info.run_id,
            detectors=["alibi:mmd", "alibi:tabular"],
        )
    assert result.metrics["drift/alibi/mmd/drifted"] == 1.0
    assert result.metrics["drift/alibi/tabular/drifted"] == 1.0
    logged = mlflow.get_run(run.info.run_id).data.metrics
    assert {
        "drift/alibi/mmd/pvalue",
        "drift/alibi/mmd/distance",
        "drift/alibi/tabular/pvalue",
    } <= set(logged)
    assert all(np.isfinite(v) for v in logged.values())
    folder = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path))
    with open(f"{folder}/drift_table.json") as handle:
        table = json.load(handle)
    records = table["columns"] if isinstance(table, dict) else table
    methods = [r["method"] for r in records]
    assert "alibi:mmd" in methods and "alibi:tabular" in methods
    with open(f"{folder}/drift_report.html") as handle:
        page = handle.read()
    assert "alibi-detect detectors" in page and "alibi:mmd" in page


def test_cli_runs_a_detector(tracking_uri, tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    with mlflow.start_run() as run:
        mo.log_baseline(make_frame(600, seed=0))
    window = tmp_path / "window.parquet"
    make_frame(600, seed=1, shift=0.5).to_parquet(window)
    executable = shutil.which("mlflow-observe", path=os.path.dirname(sys.executable))
    done = subprocess.run(
        [
            executable,
            "drift",
            "-b",
            run.info.run_id,
            "-d",
            str(window),
            "--detector",
            "alibi:ks",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["metrics"]["drift/alibi/ks/drifted"] == 1.0
