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


def _expected_status(row, *, warning_ratio=0.5, pvalue_warning_ratio=1.5, alpha=0.05):
    """The drift table's status, from its own numbers, by the rules of decision-rules.md."""
    adjusted, threshold = row["pvalue_adjusted"], row["threshold"]
    if row["drifted"]:
        return "drift"
    if row["method"] in ("ks", "chi2", "ztest"):
        return "warning" if adjusted < threshold * pvalue_warning_ratio else "ok"
    significant = adjusted is not None and adjusted < alpha
    return "warning" if row["statistic"] >= threshold * warning_ratio and significant else "ok"


def test_the_warning_levels_from_the_command_line(tracking_uri, baseline_and_files, tmp_path):
    """--pvalue-warning-ratio moves the tests' warning level (a window under 1,000 rows),
    --warning-ratio the distances' (a larger window); the report states the level."""
    run_id, _, _ = baseline_and_files
    env = _env(tracking_uri)
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    make_frame(300, seed=5, shift=0.1).to_csv(small, index=False)
    make_frame(3000, seed=6, shift=0.07).to_csv(large, index=False)
    tables = {}
    for name, path, flags in (
        ("tests", small, ["--pvalue-warning-ratio", "19.9"]),
        ("distances", large, ["--warning-ratio", "0.9"]),
    ):
        result = _cli("drift", "-b", run_id, "-d", str(path), "--output", "json", *flags, env=env)
        assert result.returncode == 0, result.stderr
        payload = json.loads(result.stdout)
        tables[name] = [r for r in payload["columns"] if r["statistic"] is not None]
        if name == "tests":
            report = mlflow.artifacts.download_artifacts(
                run_id=payload["run_id"], artifact_path="drift_report.html", dst_path=tmp_path
            )
            with open(report, encoding="utf-8") as page:
                assert "p-value below 19.9 times its threshold" in page.read()
    tests, distances = tables["tests"], tables["distances"]
    assert {r["method"] for r in tests} <= {"ks", "chi2", "ztest"} and len(tests) == 4
    assert {r["method"] for r in distances} <= {"wasserstein", "js", "psi"}
    for row in tests:
        assert row["status"] == _expected_status(row, pvalue_warning_ratio=19.9), row
    for row in distances:
        assert row["status"] == _expected_status(row, warning_ratio=0.9), row
    # The flags changed a verdict that the defaults would have given otherwise.
    assert any(_expected_status(r) != r["status"] for r in tests)
    assert any(_expected_status(r) != r["status"] for r in distances)


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


def test_non_finite_numbers_and_non_http_webhooks_are_usage_errors(tmp_path):
    """Refused before any server is asked (the tracking URI here answers nothing)."""
    window = tmp_path / "window.csv"
    make_frame(10).to_csv(window, index=False)
    env = _env(f"http://127.0.0.1:{free_port()}")
    model = ["-m", "models:/churn/1"]
    cases = [
        (["gate", *model, "--threshold", "drift/share_drifted_columns<=1e999"], "1e999"),
        (["gate", *model, "--threshold", "degradation/accuracy>=nan"], "nan"),
        (["monitor", *model, "--logs", str(tmp_path), "--alert", "drift/x>=1e999"], "1e999"),
        (["monitor", *model, "--logs", str(tmp_path), "--webhook", "file:///etc/passwd"], "file"),
        (["monitor", *model, "--logs", str(tmp_path), "--webhook", "data:,x"], "data"),
        (["monitor", *model, "--logs", str(tmp_path), "--webhook-timeout", "inf"], "inf"),
        (["drift", "-b", "x", "-d", str(window), "--threshold", "nan"], "nan"),
        (["drift", "-b", "x", "-d", str(window), "--drift-share", "1e999"], "1e999"),
        (["drift", "-b", "x", "-d", str(window), "--drift-share", "1.5"], "drift_share"),
        (["drift", "-b", "x", "-d", str(window), "--warning-ratio", "0"], "warning_ratio"),
        (["drift", "-b", "x", "-d", str(window), "--pvalue-warning-ratio", "0.5"], ">= 1"),
        (["drift", "-b", "x", "-d", str(window), "--pvalue-warning-ratio", "inf"], "inf"),
        (["degradation", "-b", "x", "-d", str(window), "--tolerance", "-inf"], "-inf"),
    ]
    for args, quoted in cases:
        result = _cli(*args, env=env, timeout=60)
        assert result.returncode == 2, (args, result.stderr)
        assert quoted in result.stderr, (args, result.stderr)


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers a byte."""

    def __init__(self):
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        for conn in self.held:
            conn.close()
        self.sock.close()


def test_every_command_has_one_deadline_for_a_silent_or_refusing_server(tmp_path):
    """Each command gives up at MLFLOW_OBSERVE_SERVER_TIMEOUT, exit 3, naming the server."""
    import time

    window = tmp_path / "window.csv"
    make_frame(10).to_csv(window, index=False)
    model = ["-m", "models:/churn/1"]
    commands = {
        "drift": ["drift", "-b", "0123456789abcdef0123456789abcdef", "-d", str(window)],
        "degradation": ["degradation", "-b", "0123456789abcdef0123456789abcdef", "-d", str(window)],
        "monitor": ["monitor", *model, "--logs", str(tmp_path)],
        "gate": ["gate", *model, "--threshold", "drift/share_drifted_columns<=0.3"],
        "history": ["history", *model],
    }
    deadline = 8
    silent = SilentServer()
    executable = shutil.which("mlflow-observe", path=os.path.dirname(sys.executable))

    def start(uri, args):
        env = {**_env(uri), "MLFLOW_OBSERVE_SERVER_TIMEOUT": str(deadline)}
        for key in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
            env.pop(key, None)
        process = subprocess.Popen(
            [executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        return process, time.monotonic()

    elapsed, results = {}, {}
    try:
        for name, args in commands.items():  # a pair at a time: this machine is busy
            runs = {
                (name, "silent"): start(silent.url, args),
                (name, "refused"): start(f"http://127.0.0.1:{free_port()}", args),
            }
            limit = time.monotonic() + 240
            while any(key not in elapsed for key in runs) and time.monotonic() < limit:
                for key, (process, started) in runs.items():
                    if key not in elapsed and process.poll() is not None:
                        elapsed[key] = time.monotonic() - started
                time.sleep(0.05)
            for key, (process, _) in runs.items():
                if key not in elapsed:
                    process.kill()
                results[key] = (process.returncode, process.communicate()[1])
    finally:
        silent.close()
    for key, (code, err) in results.items():
        assert code == 3, (key, err)
        assert "did not answer within the deadline" in err, (key, err)
        assert f"MLFLOW_OBSERVE_SERVER_TIMEOUT={deadline} s" in err, (key, err)
    for name in commands:
        # A silent server costs the deadline (not MLflow's 7 retries of 120 s); a refused
        # port fails at once. The refused run measures this machine's start-up time.
        extra = elapsed[name, "silent"] - elapsed[name, "refused"]
        assert deadline - 3 <= extra <= deadline + 15, (name, elapsed)
    print({f"{k[0]} {k[1]}": round(v, 1) for k, v in elapsed.items()})
