import os
import shutil

import mlflow
import pytest
from helpers import running_mlflow_server

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(autouse=True)
def _end_runs():
    yield
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture(scope="session")
def _empty_store(tmp_path_factory):
    """A SQLite tracking store with MLflow's schema and nothing else, made once per process.

    Creating the schema (MLflow's database migrations) takes seconds; each test copies
    this file instead, and MLflow finds its schema up to date. Under pytest-xdist each
    worker has its own (tmp_path_factory is per worker).
    """
    path = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    mlflow.set_tracking_uri(f"sqlite:///{path}")
    assert mlflow.search_experiments()  # the schema and the default experiment exist
    mlflow.set_tracking_uri(None)
    return path


@pytest.fixture
def tracking_uri(tmp_path, _empty_store):
    """A fresh SQLite tracking store (with a local artifact root) for one test."""
    shutil.copyfile(_empty_store, tmp_path / "mlflow.db")
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
