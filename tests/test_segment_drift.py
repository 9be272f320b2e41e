"""Drift by segment: the drifted segment found, small segments pooled, streamed == whole."""

import json

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import mlflow_observe as mo
from mlflow_observe.comparison import compare
from mlflow_observe.core.drift.options import DriftOptions
from mlflow_observe.core.profile.data_profile import build_profile
from mlflow_observe.report.html import render_report

REGIONS = ["north", "south", "east", "west"]


def regional(n, *, seed, north_shift=0.0, regions=REGIONS, p=None):
    """Two numeric features and a region; rows of ``north`` shifted by ``north_shift``."""
    rng = np.random.default_rng(seed)
    region = rng.choice(regions, n, p=p)
    north = region == "north"
    return pd.DataFrame(
        {
            "x1": rng.normal(0.0, 1.0, n) + north_shift * north,
            "x2": rng.normal(5.0, 2.0, n) + 2 * north_shift * north,
            "plan": rng.choice(["a", "b", "c"], n),
            "region": region,
        }
    )


@pytest.fixture(scope="module")
def baseline():
    return build_profile(regional(20_000, seed=0))


def test_the_shifted_segment_ranks_first_and_alone(baseline):
    window = regional(8000, seed=1, north_shift=1.0)
    comparison = compare(baseline, window, DriftOptions(segment_by=["region"]))
    segments = comparison.segments
    assert [s.value for s in segments][0] == "north"
    assert segments[0].drift.dataset_drift
    assert set(segments[0].drift.drifted_columns) == {"x1", "x2"}
    assert not any(s.drift.dataset_drift for s in segments[1:])
    assert {s.value for s in segments} == set(REGIONS)
    metrics = comparison.metrics()
    assert metrics["drift/n_segments"] == 4.0
    assert metrics["drift/n_drifted_segments"] == 1.0
    # The segment column is constant within a segment: not compared there.
    assert segments[0].drift.column("region").status == "skipped"


def test_a_calm_window_has_no_drifted_segment(baseline):
    comparison = compare(baseline, regional(8000, seed=2), DriftOptions(segment_by=["region"]))
    assert comparison.metrics()["drift/n_drifted_segments"] == 0.0


def test_small_segments_are_pooled_into_other(baseline):
    # north and south: about 2000 rows each; east and west about 120 each.
    window = regional(4240, seed=3, p=[0.47, 0.47, 0.03, 0.03])
    counts = window["region"].value_counts()
    pooled = counts["east"] + counts["west"]
    assert counts["east"] < 200 and counts["west"] < 200 <= pooled
    segments = compare(baseline, window, DriftOptions(segment_by=["region"])).segments
    sizes = {s.value: s.n_rows for s in segments}
    assert sizes == {"north": counts["north"], "south": counts["south"], "(other)": pooled}
    # Above the pooled size, (other) is too small too and is left out.
    segments = compare(
        baseline, window, DriftOptions(segment_by=["region"], min_segment_size=int(pooled) + 1)
    ).segments
    assert {s.value for s in segments} == {"north", "south"}


def test_values_past_max_segments_share_other(baseline):
    window = regional(4000, seed=4)
    segments = compare(
        baseline, window, DriftOptions(segment_by=["region"], max_segments=2, min_segment_size=1)
    ).segments
    first_two = list(pd.unique(window["region"]))[:2]
    assert sorted(s.value for s in segments) == sorted([*first_two, "(other)"])
    assert sum(s.n_rows for s in segments) == 4000


def test_streamed_equals_in_memory(baseline):
    window = regional(9000, seed=5, north_shift=0.5)
    window.loc[::97, "region"] = None  # a (missing) segment too
    options = DriftOptions(segment_by=["region", "plan"], min_segment_size=50)
    whole = compare(baseline, window, options).segments
    parts = (window.iloc[i : i + 1234] for i in range(0, len(window), 1234))
    streamed = compare(baseline, parts, options).segments
    # Equal but for the last bits of float sums, which depend on the order rows arrive in.
    assert _rounded([s.to_records() for s in streamed]) == _rounded([s.to_records() for s in whole])
    assert "(missing)" in {s.value for s in whole}
    for a, b in zip(whole, streamed, strict=True):
        # 10 digits: a p-value far in the tail (Welch's, 1e-108 here) moves in its 12th
        # digit with the last bit of a mean.
        assert _rounded(a.drift.to_records(), 10) == _rounded(b.drift.to_records(), 10)


def _rounded(value, digits=12):
    """``value`` with every float rounded to ``digits`` significant digits (nested lists/dicts)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v, digits) for v in value]
    return value


def test_a_missing_segment_column_is_a_clear_error(baseline):
    with pytest.raises(ValueError, match="segment_by columns not in the data"):
        compare(
            baseline,
            regional(500, seed=6).drop(columns="region"),
            DriftOptions(segment_by=["region"]),
        )


def test_report_section_escapes_segment_values(baseline):
    window = regional(3000, seed=7, north_shift=1.0)
    window["region"] = window["region"].replace({"north": "<script>n</script>"})
    comparison = compare(baseline, window, DriftOptions(segment_by=["region"]))
    page = render_report(
        comparison, baseline=baseline, options=DriftOptions(), baseline_label="x", plots={}
    )
    assert "Segments that drifted most" in page
    assert "&lt;script&gt;n&lt;/script&gt;" in page and "<script>" not in page


def test_end_to_end_segments_and_streamed(tracking_uri):
    import mlflow

    with mlflow.start_run() as training:
        mo.log_baseline(regional(20_000, seed=0))
    window = regional(6000, seed=8, north_shift=1.0)
    result = mo.evaluate_drift(
        window, baseline=training.info.run_id, segment_by=["region"], log_plots=False
    )
    assert result.metrics["drift/n_segments"] == 4.0
    assert result.metrics["drift/n_drifted_segments"] == 1.0
    records = result.artifacts["drift_segments"].content
    assert records[0]["value"] == "north" and records[0]["dataset_drift"]
    client = MlflowClient()
    path = client.download_artifacts(result.run_id, "drift_segments.json")
    with open(path, encoding="utf-8") as handle:
        assert json.load(handle) == records
    with mlflow.start_run():
        streamed = mo.evaluate_drift(
            iter([window.iloc[:2500], window.iloc[2500:]]),
            baseline=training.info.run_id,
            segment_by=["region"],
            log_plots=False,
        )
    assert streamed.artifacts["drift_segments"].content == records
    assert streamed.metrics["drift/n_drifted_segments"] == 1.0


def test_an_engine_that_counts_no_segments_refuses_segment_by(baseline):
    from mlflow_observe.core.drift.window import compare_counted

    current = baseline.empty_like()
    current.update(regional(500, seed=9))
    with pytest.raises(ValueError, match="Spark engine does not count segments"):
        compare_counted(
            baseline,
            current,
            list(regional(1, seed=9).columns),
            DriftOptions(segment_by=["region"]),
        )
