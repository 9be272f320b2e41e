import contextlib
import os
import socket
import subprocess
import sys
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(autouse=True)
def _end_runs():
    yield
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture
def tracking_uri(tmp_path):
    """A fresh SQLite tracking store (with a local artifact root) for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    # Artifacts beside the store, not in ./mlruns of the working directory.
    mlflow.create_experiment("tests", artifact_location=(tmp_path / "artifacts").as_uri())
    experiment = mlflow.set_experiment("tests")
    assert experiment.artifact_location  # a real store answered
    yield uri
    mlflow.set_tracking_uri(None)
    # The active experiment id belongs to this store; forget it for the next test.
    mlflow.tracking.fluent._active_experiment_id = None


def make_frame(n, *, seed=0, shift=0.0, scale=1.0, category_p=(0.6, 0.3, 0.1)):
    """Features with known distributions: two normals, a categorical and a boolean."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "num_a": rng.normal(shift, scale, n),
            "num_b": rng.normal(10.0, 2.0, n),
            "cat": rng.choice(["red", "green", "blue"], n, p=list(category_p)),
            "flag": rng.random(n) < 0.3,
        }
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_mlflow_server(root):
    """A real `mlflow server` process on loopback, with a SQLite store and artifacts in root."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root / 'server.db'}",
            "--default-artifact-root",
            str(root / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            raise RuntimeError("mlflow server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def mlflow_server(tmp_path):
    with running_mlflow_server(tmp_path) as url:
        yield url
