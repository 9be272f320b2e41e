"""The alibi-detect backend's tests: run only in the environment that has the extra.

``.ci/run`` runs them in ``.venv-alibi`` (numpy<2, alibi-detect, PyTorch's CPU
build); the main suite's ``testpaths`` do not include this folder.
"""

import os

import mlflow
import pytest

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture
def tracking_uri(tmp_path):
    """A fresh SQLite tracking store with its artifacts beside it."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("tests", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment("tests")
    yield uri
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    mlflow.tracking.fluent._active_experiment_id = None
