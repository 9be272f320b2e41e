"""alibi-detect is optional: the package never imports it unless a detector is asked for.

These run in the main environment (numpy 2, no alibi-detect). The backend's own
tests run in their own environment: ``tests_alibi/``.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
from helpers import make_frame

from mlflow_observe.backends.alibi import INSTALL_COMMAND, BackendNotInstalledError
from mlflow_observe.comparison import compare
from mlflow_observe.core.drift.options import DriftOptions
from mlflow_observe.core.profile.data_profile import build_profile

ALIBI_INSTALLED = importlib.util.find_spec("alibi_detect") is not None


@pytest.mark.server
def test_default_evaluators_import_no_alibi_detect(tmp_path):
    # A fresh interpreter: what this test session imported elsewhere does not count.
    script = textwrap.dedent(f"""
        import sys
        import mlflow
        import numpy as np
        import pandas as pd
        import mlflow_observe as mo

        mlflow.set_tracking_uri("sqlite:///{tmp_path / "mlflow.db"}")
        mlflow.create_experiment("t", artifact_location={(tmp_path / "artifacts").as_uri()!r})
        mlflow.set_experiment("t")
        rng = np.random.default_rng(0)
        frame = pd.DataFrame({{"x": rng.normal(size=500), "plan": rng.choice(list("ab"), 500)}})
        frame["label"] = (frame["x"] > 0).astype(int)
        frame["prediction"] = frame["label"]
        with mlflow.start_run() as run:
            mo.log_baseline(frame, targets="label", predictions="prediction")
        window = frame.assign(x=frame["x"] + 1)
        with mlflow.start_run():
            mo.evaluate_drift(window, baseline=run.info.run_id, predictions="prediction",
                              multivariate=True)
        with mlflow.start_run():
            mo.evaluate_degradation(window, baseline=run.info.run_id,
                                    predictions="prediction", targets="label")
        print(sorted(m for m in sys.modules if m.split(".")[0] == "alibi_detect"))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.skipif(ALIBI_INSTALLED, reason="alibi-detect is installed in this environment")
@pytest.mark.parametrize("detector", ["alibi:ks", "alibi:mmd"])
def test_detector_without_the_extra_says_how_to_install(detector):
    baseline = build_profile(make_frame(300))
    with pytest.raises(BackendNotInstalledError, match="alibi-detect") as raised:
        compare(baseline, make_frame(300, seed=1), DriftOptions(detectors=[detector]))
    assert INSTALL_COMMAND in str(raised.value)
    assert "pip install 'mlflow-observe[alibi]'" in str(raised.value)


def test_unknown_detector_is_refused_by_name():
    with pytest.raises(ValueError, match="'alibi:mmd'"):
        DriftOptions(detectors=["alibi:nope"])


def test_detectors_from_a_config_list_become_a_tuple():
    options = DriftOptions.from_config({"detectors": ["alibi:ks", "alibi:ks", "alibi:mmd"]})
    assert options.detectors == ("alibi:ks", "alibi:mmd")


def test_no_detectors_asked_means_no_backend_needed():
    baseline = build_profile(make_frame(300))
    comparison = compare(baseline, make_frame(300, seed=1))
    assert comparison.detectors is None
    assert not any(key.startswith("drift/alibi/") for key in comparison.metrics())


@pytest.mark.server
@pytest.mark.skipif(ALIBI_INSTALLED, reason="alibi-detect is installed in this environment")
def test_cli_detector_without_the_extra_exits_3_with_the_install_command(tracking_uri, tmp_path):
    import shutil

    import mlflow

    import mlflow_observe as mo

    with mlflow.start_run() as run:
        mo.log_baseline(make_frame(300))
    window = tmp_path / "window.csv"
    make_frame(300, seed=1).to_csv(window, index=False)
    executable = shutil.which("mlflow-observe", path=os.path.dirname(sys.executable))
    done = subprocess.run(
        [executable, "drift", "-b", run.info.run_id, "-d", str(window), "--detector", "alibi:ks"],
        capture_output=True,
        text=True,
        timeout=180,
        env={
            **os.environ,
            "MLFLOW_TRACKING_URI": tracking_uri,
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        },
    )
    assert done.returncode == 3, done.stderr
    assert INSTALL_COMMAND in done.stderr
