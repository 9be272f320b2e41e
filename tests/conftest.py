import os

import mlflow
import numpy as np
import pandas as pd
import pytest

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
    return pd.DataFrame({
        "num_a": rng.normal(shift, scale, n),
        "num_b": rng.normal(10.0, 2.0, n),
        "cat": rng.choice(["red", "green", "blue"], n, p=list(category_p)),
        "flag": rng.random(n) < 0.3,
    })
