"""alibi-detect's feature-wise tests agree with the core's and SciPy's on the same samples."""

import numpy as np
import pytest
from alibi_helpers import make_frame
from scipy import stats

from mlflow_observe.comparison import compare
from mlflow_observe.core.drift.options import DriftOptions
from mlflow_observe.core.profile.data_profile import build_profile

N = 800  # at most the sample size: both samples are the whole data


def _compare(detectors, *, shift=0.3, category_p=(0.5, 0.3, 0.2)):
    reference = make_frame(N, seed=0)
    window = make_frame(N, seed=1, shift=shift, category_p=category_p)
    comparison = compare(
        build_profile(reference),
        window,
        DriftOptions(method="ks", methods={"cat": "chi2", "flag": "chi2"}, detectors=detectors),
    )
    records = {r["column"]: r for r in comparison.to_records()}
    return reference, window, comparison, records


def test_ks_agrees_with_scipy_and_the_core():
    reference, window, comparison, records = _compare(["alibi:ks"])
    features = records["alibi:ks"]["statistics"]["features"]
    assert set(features) == {"num_a", "num_b"}
    for column in ("num_a", "num_b"):
        scipy_asymp = stats.ks_2samp(reference[column], window[column], method="asymp")
        core = comparison.drift.column(column)
        # The same D statistic (alibi-detect works in float32).
        assert features[column]["distance"] == pytest.approx(scipy_asymp.statistic, abs=1e-6)
        assert features[column]["distance"] == pytest.approx(core.statistic, abs=1e-6)
        # alibi-detect takes the asymptotic p-value, the core SciPy's exact one.
        assert features[column]["pvalue"] == pytest.approx(scipy_asymp.pvalue, rel=1e-4, abs=1e-12)
        assert features[column]["pvalue"] == pytest.approx(core.pvalue, rel=0.15, abs=1e-3)
    assert records["alibi:ks"]["drifted"] is True  # num_a moved by 0.3 sd
    assert records["alibi:ks"]["threshold"] == pytest.approx(0.05 / 2)  # Bonferroni


def test_chi_square_agrees_with_scipy_and_the_core():
    reference, window, comparison, records = _compare(["alibi:chi2"])
    features = records["alibi:chi2"]["statistics"]["features"]
    assert set(features) == {"cat", "flag"}
    for column in ("cat", "flag"):
        labels = sorted(set(reference[column].astype(str)) | set(window[column].astype(str)))
        table = np.array(
            [
                [int((frame[column].astype(str) == label).sum()) for label in labels]
                for frame in (reference, window)
            ]
        )
        # alibi-detect keeps SciPy's default: Yates' correction on a 2 x 2 table.
        expected = stats.chi2_contingency(table)
        assert features[column]["distance"] == pytest.approx(expected.statistic, rel=1e-4)
        assert features[column]["pvalue"] == pytest.approx(expected.pvalue, rel=1e-3, abs=1e-12)
    # The core's chi-square has no continuity correction: the same test where there is none.
    assert features["cat"]["pvalue"] == pytest.approx(
        comparison.drift.column("cat").pvalue, rel=1e-3, abs=1e-12
    )
    assert features["cat"]["pvalue"] < 0.01  # the shares moved from 60/30/10 to 50/30/20


def test_tabular_is_ks_for_numbers_and_chi_square_for_categories():
    _, _, _, records = _compare(["alibi:tabular", "alibi:ks", "alibi:chi2"])
    tabular = records["alibi:tabular"]["statistics"]["features"]
    ks = records["alibi:ks"]["statistics"]["features"]
    chi2 = records["alibi:chi2"]["statistics"]["features"]
    for column, expected in {**ks, **chi2}.items():
        assert tabular[column]["pvalue"] == pytest.approx(expected["pvalue"], rel=1e-5, abs=1e-12)
    assert records["alibi:tabular"]["threshold"] == pytest.approx(0.05 / 4)


def test_no_shift_no_alarm_from_the_feature_wise_detectors():
    detectors = ["alibi:ks", "alibi:cvm", "alibi:chi2", "alibi:fet", "alibi:tabular"]
    _, _, comparison, records = _compare(detectors, shift=0.0, category_p=(0.6, 0.3, 0.1))
    for name in detectors:
        assert records[name]["status"] == "ok", (name, records[name])
        assert comparison.metrics()[f"drift/alibi/{name[6:]}/drifted"] == 0.0


def test_cvm_and_fet_flag_their_shift():
    reference = make_frame(N, seed=0)
    window = make_frame(N, seed=1, shift=0.4)
    window["flag"] = np.random.default_rng(2).random(N) < 0.5  # 30% -> 50% true
    records = {
        r["column"]: r
        for r in compare(
            build_profile(reference), window, DriftOptions(detectors=["alibi:cvm", "alibi:fet"])
        ).to_records()
    }
    assert records["alibi:cvm"]["drifted"] is True
    assert records["alibi:fet"]["drifted"] is True
    assert set(records["alibi:fet"]["statistics"]["features"]) == {"flag"}


def test_rows_with_a_missing_number_are_left_out_and_counted():
    reference = make_frame(N, seed=0)
    window = make_frame(N, seed=1)
    window.loc[:9, "num_a"] = np.nan
    record = compare(
        build_profile(reference), window, DriftOptions(detectors=["alibi:ks"])
    ).to_records()[-1]
    assert record["n_current"] == N - 10
    assert record["statistics"]["rows_left_out"] == {"reference": 0, "current": 10}


def test_a_detector_with_nothing_to_compare_is_skipped_with_the_reason():
    reference = make_frame(N, seed=0)[["num_a"]]
    with pytest.warns(RuntimeWarning, match="no categorical columns"):
        comparison = compare(
            build_profile(reference), reference, DriftOptions(detectors=["alibi:chi2"])
        )
    record = comparison.to_records()[-1]
    assert record["status"] == "skipped" and record["note"] == "no categorical columns to compare"
    assert not any(k.startswith("drift/alibi/chi2") for k in comparison.metrics())
