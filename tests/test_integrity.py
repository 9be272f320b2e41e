"""Integrity findings: each bad input is named, none crashes the comparison."""

import numpy as np
import pandas as pd
from helpers import make_frame

from mlflow_observe.comparison import compare
from mlflow_observe.core.drift.options import DriftOptions
from mlflow_observe.core.profile.data_profile import build_profile


def _findings(reference, window, **kwargs):
    result = compare(build_profile(reference, **kwargs), window)
    assert all(np.isfinite(v) for v in result.metrics().values())
    return result


def test_clean_window_has_no_findings():
    result = _findings(make_frame(2000, seed=1), make_frame(2000, seed=2))
    assert [f.check for f in result.integrity.findings if f.check != "out_of_range"] == []


def test_missing_and_extra_columns():
    window = make_frame(500, seed=2).drop(columns=["num_b"]).assign(new_col=1)
    result = _findings(make_frame(500, seed=1), window)
    assert [(f.check, f.column) for f in result.integrity.by_check("missing_column")] == [
        ("missing_column", "num_b")
    ]
    assert [f.column for f in result.integrity.by_check("extra_column")] == ["new_col"]
    assert result.drift.column("num_b").note == "column missing from the window"
    assert result.metrics()["integrity/n_missing_columns"] == 1.0


def test_numeric_column_arriving_as_text():
    window = make_frame(500, seed=2)
    window["num_a"] = window["num_a"].astype(str)
    window.loc[:49, "num_a"] = "n/a"
    result = _findings(make_frame(500, seed=1), window)
    change = result.integrity.by_check("type_change")[0]
    assert change.column == "num_a" and "50 values" in change.message
    assert result.drift.column("num_a").n_current == 450  # the readable values are compared


def test_categorical_column_arriving_as_numbers():
    window = make_frame(500, seed=2)
    window["cat"] = np.random.default_rng(0).integers(0, 3, 500)
    result = _findings(make_frame(500, seed=1), window)
    assert result.integrity.by_check("type_change")[0].column == "cat"


def test_missing_rate_increase():
    window = make_frame(1000, seed=2)
    window.loc[:299, "num_b"] = np.nan
    result = _findings(make_frame(1000, seed=1), window)
    finding = result.integrity.by_check("missing_rate_increase")[0]
    assert finding.column == "num_b" and abs(finding.value - 0.3) < 1e-12
    assert result.metrics()["integrity/max_missing_rate_increase"] == finding.value


def test_unseen_categories_with_examples():
    window = make_frame(1000, seed=2)
    window.loc[:19, "cat"] = "purple"
    result = _findings(make_frame(1000, seed=1), window)
    finding = result.integrity.by_check("unseen_categories")[0]
    assert "'purple'" in finding.message and finding.value == 0.02


def test_out_of_range_and_infinite_values():
    window = make_frame(5000, seed=2)
    window.loc[:9, "num_b"] = 1e6
    window.loc[10:14, "num_b"] = np.inf
    result = _findings(make_frame(5000, seed=1), window)
    out_of_range = {f.column: f.value for f in result.integrity.by_check("out_of_range")}
    assert out_of_range["num_b"] >= 10 / 4995  # the planted values (and chance tail values)
    assert result.integrity.by_check("infinite_values")[0].column == "num_b"
    # 0.2% of values a million away move the Wasserstein distance, not the quantile bins.
    # The distance decides alone, as in Evidently: the column drifts, and its note says the
    # KS test cannot tell so few values from chance (the integrity findings report them).
    column = result.drift.column("num_b")
    assert column.statistic > 100 and column.pvalue_adjusted >= 0.05
    assert column.drifted and column.decided_by == "wasserstein"
    assert "decides alone" in column.note and "does not reject" in column.note
    assert column.statistics["psi"]["statistic"] < 0.2
    # With the guard on every distance, the test must agree: not drifted, and the note says why.
    guarded = compare(
        build_profile(make_frame(5000, seed=1)), window, DriftOptions(require_significance=True)
    ).drift.column("num_b")
    assert not guarded.drifted and "too few values" in guarded.note


def test_mixed_types_in_an_object_column():
    reference = pd.DataFrame({"code": ["a", "b", "c"] * 100})
    window = pd.DataFrame({"code": ["a", 2, "c"] * 100})
    result = _findings(reference, window)
    assert result.integrity.by_check("mixed_types")[0].column == "code"


def test_all_nan_and_constant_reference_columns():
    reference = pd.DataFrame(
        {"empty": np.full(200, np.nan), "const": np.ones(200), "x": np.arange(200.0)}
    )
    window = pd.DataFrame(
        {"empty": np.arange(200.0), "const": np.full(200, 2.0), "x": np.arange(200.0)}
    )
    result = _findings(reference, window)
    assert result.drift.column("empty").status == "skipped"
    assert "no values in the reference" in result.drift.column("empty").note
    assert result.drift.column("const").drifted and not result.drift.column("x").drifted
