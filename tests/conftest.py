import os

import mlflow
import pytest
from helpers import running_mlflow_server

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


@pytest.fixture
def mlflow_server(tmp_path):
    with running_mlflow_server(tmp_path) as url:
        yield url
