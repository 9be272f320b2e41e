"""The alibi-detect backend's tests: run only in the environment that has the extra.

``.ci/run`` runs them in ``.venv-alibi`` (numpy<2, alibi-detect, PyTorch's CPU
build); the main suite's ``testpaths`` do not include this folder.
"""

import os

import mlflow
import numpy as np
import pandas as pd
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


def make_frame(n, *, seed=0, shift=0.0, category_p=(0.6, 0.3, 0.1)):
    """Two normals, a three-label categorical and a boolean."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "num_a": rng.normal(shift, 1.0, n),
            "num_b": rng.normal(10.0, 2.0, n),
            "cat": rng.choice(["red", "green", "blue"], n, p=list(category_p)),
            "flag": rng.random(n) < 0.3,
        }
    )
