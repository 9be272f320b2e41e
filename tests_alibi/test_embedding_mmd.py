"""alibi:mmd on embedding columns: each judged on its own vector samples, keys of its own."""

import numpy as np
import pandas as pd
import pytest

from mlflow_observe.comparison import compare
from mlflow_observe.core.drift.options import DriftOptions
from mlflow_observe.core.profile.data_profile import build_profile
from mlflow_observe.monitoring.catalogue import metric_catalogue

pytest.importorskip("torch", reason="MMD runs on PyTorch's CPU build")
DIM = 16
N = 400
KEYS = ("pvalue", "drifted", "distance")


def _frame(n, seed, shift=0.0):
    """A vector column ``doc``, a declared group ``e0..e3`` and a numeric column."""
    rng = np.random.default_rng(seed)
    group = rng.normal(shift, 1.0, size=(n, 4))
    return pd.DataFrame(
        {
            "doc": list(rng.normal(shift, 1.0, size=(n, DIM))),
            **{f"e{i}": group[:, i] for i in range(4)},
            "x": rng.normal(size=n),
        }
    )


@pytest.fixture(scope="module")
def baseline():
    return build_profile(_frame(N, seed=0), embeddings={"grp": [f"e{i}" for i in range(4)]})


def _mmd(baseline, window):
    comparison = compare(baseline, window, DriftOptions(detectors=["alibi:mmd"]))
    return comparison.metrics(), {r["column"]: r for r in comparison.to_records()}


def test_a_mean_shifted_embedding_is_flagged_and_a_calm_one_is_not(baseline):
    metrics, records = _mmd(baseline, _frame(N, seed=1, shift=0.3))
    for name in ("doc", "grp"):
        assert metrics[f"drift/{name}/embedding_alibi_mmd_drifted"] == 1.0
        assert metrics[f"drift/{name}/embedding_alibi_mmd_pvalue"] < 0.05
        assert metrics[f"drift/{name}/embedding_alibi_mmd_distance"] > 0
        record = records[f"alibi:mmd:{name}"]
        assert record["drifted"] is True and record["kind"] == "embedding"
        assert (record["n_reference"], record["n_current"]) == (N, N)
        assert record["metric_key"] == f"drift/{name}/embedding_alibi_mmd_pvalue"
    assert records["doc"]["drifted"]  # the core's verdict is untouched by alibi-detect's
    # the table-wide MMD still runs on the row sample, beside the embeddings
    assert "drift/alibi/mmd/pvalue" in metrics


def test_calm_windows_alarm_at_about_the_stated_rate(baseline):
    """Ten calm windows, two embeddings each: 20 tests at level 0.05, one alarm expected;
    five or more would happen by chance with probability 0.003 (binomial)."""
    alarms = []
    for seed in range(10, 20):
        metrics, records = _mmd(baseline, _frame(N, seed=seed))
        for name in ("doc", "grp"):
            alarms.append(metrics[f"drift/{name}/embedding_alibi_mmd_drifted"])
            assert records[f"alibi:mmd:{name}"]["status"] in ("ok", "drift")
    assert len(alarms) == 20 and sum(alarms) <= 4, alarms


def test_the_distance_is_the_unbiased_squared_mmd_of_the_two_samples(baseline):
    """alibi-detect's distance, worked by hand: the unbiased squared MMD with the Gaussian
    kernel exp(-d^2 / (2 sigma^2)), sigma^2 half the median squared distance between
    reference vectors (its bandwidth is set from the reference)."""
    window = _frame(N, seed=3, shift=0.2)
    metrics, _ = _mmd(baseline, window)
    x = np.asarray(baseline.unstructured["doc"].vectors, dtype=np.float32).astype(float)
    y = np.stack(window["doc"]).astype(np.float32).astype(float)
    reference = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    sigma2 = 0.5 * np.median(reference[np.triu_indices(len(x), 1)])
    pooled = np.vstack([x, y])
    squared = ((pooled[:, None, :] - pooled[None, :, :]) ** 2).sum(-1)
    kernel = np.exp(-squared / (2 * sigma2))
    n, m = len(x), len(y)
    k_xx, k_yy, k_xy = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    expected = (
        (k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
        + (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        - 2 * k_xy.mean()
    )
    assert expected > 0.01  # a real shift, so that a relative tolerance means something
    assert metrics["drift/doc/embedding_alibi_mmd_distance"] == pytest.approx(expected, rel=0.02)


def test_a_window_without_the_embedding_leaves_it_out_with_the_reason(baseline):
    window = _frame(N, seed=4).drop(columns=["doc"])
    with pytest.warns(RuntimeWarning, match="left out on 'doc'"):
        metrics, records = _mmd(baseline, window)
    assert not any(k.startswith("drift/doc/embedding_alibi_mmd") for k in metrics)
    assert records["alibi:mmd:doc"]["status"] == "skipped"
    assert "at least 10 vectors" in records["alibi:mmd:doc"]["note"]
    assert "drift/grp/embedding_alibi_mmd_pvalue" in metrics  # the other one still judged


def test_only_mmd_judges_embeddings_and_the_catalogue_knows_the_keys(baseline):
    comparison = compare(baseline, _frame(N, seed=5), DriftOptions(detectors=["alibi:ks"]))
    assert not any("embedding_alibi_mmd" in k for k in comparison.metrics())
    catalogue = metric_catalogue(baseline)
    for name in ("doc", "grp"):
        assert all(f"drift/{name}/embedding_alibi_mmd_{k}" in catalogue for k in KEYS)
