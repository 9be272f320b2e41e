"""MMD, LSDD (PyTorch, CPU) and the classifier detector: a known shift flagged, none invented."""

import numpy as np
import pandas as pd
import pytest
from alibi_helpers import make_frame

from mlflow_observe.comparison import compare
from mlflow_observe.core.drift.options import DriftOptions
from mlflow_observe.core.profile.data_profile import build_profile

pytest.importorskip("torch", reason="MMD and LSDD run on PyTorch's CPU build")
N = 600


def _correlated(rho, n=N, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], n)
    return pd.DataFrame(
        {"a": x[:, 0], "b": x[:, 1], "plan": rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2])}
    )


@pytest.mark.parametrize("detector", ["alibi:mmd", "alibi:lsdd", "alibi:classifier"])
def test_a_known_shift_is_flagged_and_an_unshifted_window_is_not(detector):
    baseline = build_profile(make_frame(N, seed=0))
    shifted = compare(
        baseline, make_frame(N, seed=1, shift=0.5), DriftOptions(detectors=[detector])
    ).to_records()[-1]
    calm = compare(
        baseline, make_frame(N, seed=2), DriftOptions(detectors=[detector])
    ).to_records()[-1]
    assert shifted["drifted"] is True and shifted["pvalue"] < 0.05
    assert calm["drifted"] is False and calm["pvalue"] >= 0.05
    assert shifted["kind"] == "multivariate"
    assert shifted["statistics"]["columns"] == ["num_a", "num_b", "cat", "flag"]


def test_mmd_sees_a_correlation_shift_with_unchanged_marginals():
    baseline = build_profile(_correlated(0.8))
    comparison = compare(
        baseline, _correlated(-0.8, seed=2), DriftOptions(detectors=["alibi:mmd", "alibi:ks"])
    )
    records = {r["column"]: r for r in comparison.to_records()}
    assert records["alibi:mmd"]["drifted"] is True
    assert records["alibi:ks"]["drifted"] is False  # each column alone looks the same
    metrics = comparison.metrics()
    assert metrics["drift/alibi/mmd/drifted"] == 1.0
    assert metrics["drift/alibi/mmd/distance"] > 0
    assert all(np.isfinite(v) for v in metrics.values())


def test_mmd_pvalue_is_repeatable():
    baseline = build_profile(make_frame(N, seed=0))
    window = make_frame(N, seed=3, shift=0.1)
    first, second = (
        compare(baseline, window, DriftOptions(detectors=["alibi:mmd"])).to_records()[-1]["pvalue"]
        for _ in range(2)
    )
    assert first == second


def test_without_torch_mmd_says_to_install_its_cpu_build(monkeypatch):
    import importlib.util

    from mlflow_observe.backends import alibi

    real = importlib.util.find_spec
    monkeypatch.setattr(
        alibi.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torch" else real(name, *a),
    )
    with pytest.raises(alibi.BackendNotInstalledError, match="need PyTorch") as raised:
        alibi.check_installed(["alibi:ks", "alibi:mmd", "alibi:lsdd"])
    assert "CPU build" in str(raised.value) and "alibi:ks" not in str(raised.value)
    alibi.check_installed(["alibi:ks", "alibi:classifier"])  # these need no PyTorch
