"""Baseline profiles: kinds, bins, merging, serialisation and bad input."""

import json

import numpy as np
import pandas as pd
import pytest
from helpers import make_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_observe.core.profile.data_profile import (
    DataProfile,
    ProfileError,
    build_profile,
    plan_profile,
)


def test_kinds_are_inferred_with_reasons():
    n = 500
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(size=n),
            "count": rng.integers(0, 20, n),
            "stars": rng.integers(1, 6, n),  # 5 distinct values: compared as categories
            "binary": rng.integers(0, 2, n).astype(float),
            "plan": rng.choice(["a", "b"], n),
            "flag": rng.random(n) < 0.5,
            "when": pd.date_range("2026-01-01", periods=n, freq="h"),
            "when_text": pd.date_range("2026-01-01", periods=n, freq="h").astype(str),
            "user_id": [f"u{i:06d}" for i in range(n)],
            "row_id": np.arange(n),
            "comment": [f"this is comment number {i} about things" for i in range(n)],
        }
    )
    profile = build_profile(frame, text_columns=False)
    assert {n: c.kind for n, c in profile.columns.items()} == {
        "amount": "numeric",
        "count": "numeric",
        "stars": "categorical",
        "binary": "categorical",
        "plan": "categorical",
        "flag": "boolean",
    }
    assert (
        "5 distinct values (at most 5): compared as categories"
        in (profile.metadata["kind_reasons"]["stars"])
    )
    assert profile.columns["binary"].categories in (["0", "1"], ["1", "0"])
    assert "datetime" in profile.excluded["when"]
    assert "datetime" in profile.excluded["when_text"]
    assert "identifier" in profile.excluded["user_id"]
    assert "identifier" in profile.excluded["row_id"]
    assert (
        build_profile(frame[["row_id"]], kinds={"row_id": "numeric"}).columns["row_id"].count == n
    )
    assert "free text" in profile.excluded["comment"]
    # By default, free text is profiled: its descriptors are numeric columns.
    texts = build_profile(frame)
    assert "comment" in texts.unstructured and "comment" not in texts.excluded
    assert texts.columns["comment.length_words"].kind == "numeric"
    assert "free text" in texts.metadata["kind_reasons"]["comment"]


def test_overrides_columns_exclude_and_kinds():
    frame = make_frame(300)
    profile = build_profile(
        frame, columns=["num_a", "cat", "flag"], exclude=["flag"], kinds={"num_a": "categorical"}
    )
    assert list(profile.columns) == ["num_a", "cat"]
    assert profile.columns["num_a"].kind == "categorical"
    assert profile.excluded == {"flag": "excluded by the user"}


def test_bins_come_from_reference_quantiles_with_guard_bins():
    values = np.arange(1000, dtype=float)
    profile = build_profile(pd.DataFrame({"x": values}), n_bins=4)
    column = profile.columns["x"]
    assert column.bin_edges.tolist() == np.quantile(values, [0, 0.25, 0.5, 0.75, 1]).tolist()
    # guard bins empty for the reference, four bins of 250 values
    assert column.coarse_counts().tolist() == [0, 250, 250, 250, 250, 0]
    window = profile.empty_like()
    window.update(pd.DataFrame({"x": [-5.0, 0.0, 999.0, 2000.0, np.nan, np.inf]}))
    assert window.columns["x"].coarse_counts().tolist() == [1, 1, 0, 0, 1, 1]
    assert (window.columns["x"].n_missing, window.columns["x"].n_inf) == (1, 1)


@pytest.mark.parametrize("n_bins", [2, 5, 10, 25])
def test_n_bins_is_honoured(n_bins):
    profile = build_profile(
        pd.DataFrame({"x": np.random.default_rng(0).normal(size=2000)}), n_bins=n_bins
    )
    assert len(profile.columns["x"].coarse_counts()) == n_bins + 2


def test_constant_and_all_missing_columns():
    frame = pd.DataFrame({"const": np.full(100, 3.0), "empty": np.full(100, np.nan)})
    assert build_profile(frame).columns["const"].categories == ["3"]
    profile = build_profile(frame, kinds={"const": "numeric"})
    assert profile.columns["const"].coarse_counts().tolist() == [0, 100, 0]
    assert profile.columns["empty"].count == 0 and profile.columns["empty"].n_missing == 100


def _profile_fields(profile):
    payload = profile.to_dict()
    payload.pop("sample")
    payload.pop("n_updates")
    payload.pop("metadata")
    for column in payload["columns"]:
        for key in ("mean", "m2", "low_sum", "high_sum"):
            if key in column:
                column[key] = round(column[key], 6)
        if column.get("sums") is not None:
            column["sums"] = [round(v, 6) for v in column["sums"]]
    return payload


@given(split=st.floats(0.0, 1.0), seed=st.integers(0, 1000), n=st.integers(2, 400))
@settings(max_examples=40, deadline=None)
def test_merged_parts_equal_the_whole(split, seed, n):
    frame = make_frame(n, seed=seed)
    frame.loc[frame.index[::7], "num_b"] = np.nan
    whole = build_profile(frame, sample_size=1000)
    cut = int(split * n)
    left, right = whole.empty_like(), whole.empty_like()
    left.update(frame.iloc[:cut])
    right.update(frame.iloc[cut:])
    merged = left + right
    assert _profile_fields(merged) == _profile_fields(whole)
    # under capacity, the sample is every row
    assert sorted(merged.sample.values("num_a")) == sorted(frame["num_a"])


def test_merged_sample_is_bounded_and_from_both_parts():
    frame = make_frame(4000, seed=1)
    base = build_profile(frame, sample_size=500)
    left, right = base.empty_like(), base.empty_like()
    left.update(frame.iloc[:2000])
    right.update(frame.iloc[2000:])
    merged = left.merge(right)
    values = set(merged.sample.values("num_a"))
    assert len(merged.sample) == 500 and not merged.sample.is_complete
    assert values & set(frame["num_a"].iloc[:2000]) and values & set(frame["num_a"].iloc[2000:])


def test_merge_refuses_different_edges():
    a = build_profile(make_frame(300, seed=1))
    b = build_profile(make_frame(300, seed=2))
    with pytest.raises(ValueError, match="bin edges differ"):
        a.merge(b)


def test_json_round_trip_is_versioned_and_exact():
    frame = make_frame(800, seed=3)
    frame.loc[3, "cat"] = None
    profile = build_profile(frame, targets="flag")
    text = profile.to_json()
    payload = json.loads(text)
    assert payload["format"] == "mlflow-observe/profile" and payload["version"] == 4
    again = DataProfile.from_json(text)
    assert again.to_dict() == profile.to_dict()
    assert again.targets == "flag" and again.feature_names == ["num_a", "num_b", "cat"]


def test_unknown_version_and_foreign_json_are_refused():
    payload = build_profile(make_frame(50)).to_dict()
    payload["version"] = 99
    with pytest.raises(ProfileError, match="version 99 is not supported"):
        DataProfile.from_dict(payload)
    with pytest.raises(ProfileError, match="not an mlflow-observe baseline profile"):
        DataProfile.from_json('{"a": 1}')
    with pytest.raises(ProfileError, match="not valid JSON"):
        DataProfile.from_json("{nope")


def test_bad_input_gets_clear_errors():
    with pytest.raises(ProfileError, match="no rows"):
        build_profile(pd.DataFrame({"x": []}))
    with pytest.raises(
        ValueError,
        match="The 'n_bins' parameter of build_profile must be an int >= 2. Got 1 instead.",
    ):
        build_profile(make_frame(10), n_bins=1)
    with pytest.raises(ValueError, match="must be a pandas DataFrame"):
        build_profile([[1, 2]])
    with pytest.raises(ProfileError, match="not found in the reference data: \\['nope'\\]"):
        build_profile(make_frame(10), targets="nope")
    with pytest.raises(ValueError, match="kind of column 'num_a' must be one of"):
        build_profile(make_frame(10), kinds={"num_a": "text"})
    duplicated = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(ProfileError, match="unique"):
        build_profile(duplicated)


def _planned_frame(n=300, seed=0):
    rng = np.random.default_rng(seed)
    frame = make_frame(n, seed=seed)
    frame["note"] = [f"visit {i} went {rng.choice(['well', 'badly'])}" for i in range(n)]
    frame["key"] = np.arange(n)
    frame["e0"], frame["e1"] = rng.normal(size=(2, n))
    frame["label"] = rng.integers(0, 2, n)
    return frame


def test_the_plan_is_what_the_baseline_records():
    frame = _planned_frame()
    options = dict(targets="label", embeddings={"emb": ["e0", "e1"]}, exclude=["num_b"], n_bins=4)
    plan = plan_profile(frame, **options)
    profile = build_profile(frame, **options)
    assert list(plan.kept) == ["num_a", "cat", "flag", "label"]
    assert set(plan.excluded) == {"num_b", "key"} and "note" not in plan.excluded
    assert plan.excluded["num_b"] == "excluded by the user"
    assert profile.excluded == plan.excluded
    assert profile.metadata["kind_reasons"] == plan.kind_reasons
    assert list(profile.unstructured) == list(plan.parts) == ["note", "emb"]
    assert profile.settings == plan.settings and plan.settings["n_bins"] == 4
    descriptors = [c for c in profile.columns if c.startswith("note.")]
    assert descriptors == list(plan.descriptors) and len(descriptors) == 5
    # The layout puts the descriptors after the features and before the label, uncounted.
    layout = plan.layout(
        {name: profile.columns[name].empty_like() for name in plan.kept}, targets="label"
    )
    assert list(layout.columns) == list(profile.columns) and layout.targets == "label"
    assert layout.n_rows == 0 and layout.metadata["kind_reasons"] == plan.kind_reasons


def test_a_plan_excluding_a_column_leaves_the_original_alone():
    frame = _planned_frame(50)
    plan = plan_profile(frame, targets="label")
    narrower = plan.excluding("label", "too many labels")
    assert "label" in plan.kept and "label" not in plan.excluded
    assert "label" not in narrower.kept and narrower.excluded["label"] == "too many labels"
    assert "label" not in narrower.kind_reasons
    fitted = build_profile(frame, targets="label")
    layout = narrower.layout(
        {name: fitted.columns[name].empty_like() for name in plan.kept}, targets="label"
    )
    assert "label" not in layout.columns and layout.targets is None
    # A kept column the engine gave no layout is left out, not an error.
    partial = plan.layout({"num_a": fitted.columns["num_a"].empty_like()}, targets="label")
    assert [c for c in partial.columns if not c.startswith("note.")] == ["num_a"]
    assert partial.targets is None


def test_a_plan_from_odd_rows():
    with pytest.raises(ProfileError, match="no rows"):
        plan_profile(pd.DataFrame({"x": []}))
    one = plan_profile(pd.DataFrame({"x": [np.nan], "y": [np.inf], "s": ["only"]}))
    assert set(one.decisions) == {"x", "y", "s"} and one.parts == {}
    with pytest.raises(ProfileError, match="at least 2 columns"):
        plan_profile(pd.DataFrame({"a": [1.0]}), embeddings={"v": ["a"]})
    with pytest.raises(ProfileError, match="unique"):
        plan_profile(pd.DataFrame([[1, 2]], columns=["a", "a"]))


def test_odd_column_names_and_mixed_types_are_profiled():
    frame = pd.DataFrame(
        {
            "income / month": [1.0, 2.0, 3.0],
            "größe.cm": [170.0, 180.0, 165.0],
            "mixed": [1, "1", "b"],
        }
    )
    profile = build_profile(frame)
    assert profile.columns["mixed"].kind == "categorical"
    assert profile.columns["mixed"].counts.sum() == 3
    assert profile.columns["mixed"].value_types == {"int", "str"}


def test_threads_count_exactly_like_one_thread():
    frame = make_frame(60_000, seed=4)  # large enough for threads
    one, two = build_profile(frame, n_jobs=1), build_profile(frame, n_jobs=2)
    assert _profile_fields(one) == _profile_fields(two)


# -- the reference performance -------------------------------------------------------------


def _stump(low: float, high: float) -> dict:
    """One exported tree splitting the first input at 0 (the layout dle writes)."""
    return {
        "init": 0.0,
        "learning_rate": 1.0,
        "trees": [
            {
                "left": [1, -1, -1],
                "right": [2, -1, -1],
                "feature": [0, -2, -2],
                "threshold": [0.0, -2.0, -2.0],
                "value": [0.0, low, high],
            }
        ],
    }


# DataProfile.performance as versions 1 and 2 wrote it, key for key.
BINARY_AS_WRITTEN = {
    "task": "classification",
    "probabilities": ["p_1"],
    "n_rows": 400,
    "classes": [0, 1],
    "class_counts": [200, 200],
    "metrics": {
        "accuracy": {"value": 0.8, "ci_low": 0.76, "ci_high": 0.84},
        "roc_auc": {"value": 0.9, "ci_low": 0.87, "ci_high": 0.93},
    },
    "calibration": {"x": [0.0, 0.5, 1.0], "y": [0.0, 0.25, 1.0]},
}
MULTICLASS_AS_WRITTEN = {
    "task": "classification",
    "probabilities": ["a", "b", "c"],
    "n_rows": 300,
    "classes": ["a", "b", "c"],
    "class_counts": [100, 100, 100],
    "metrics": {"accuracy": {"value": 0.6, "ci_low": 0.55, "ci_high": 0.65}},
    "calibration": {
        "classes": [
            {"x": [0.0, 1.0], "y": [0.0, 1.0]},
            {"x": [0.0, 1.0], "y": [0.0, 0.5]},
            {"x": [0.0, 1.0], "y": [0.0, 1.0]},
        ]
    },
}
REGRESSION_AS_WRITTEN = {
    "task": "regression",
    "probabilities": [],
    "n_rows": 500,
    "metrics": {
        "mae": {"value": 2.0, "ci_low": 1.9, "ci_high": 2.1},
        "rmse": {"value": 2.5, "ci_low": 2.4, "ci_high": 2.6},
    },
    "loss_features": ["x1"],
    "loss_models": {"absolute": _stump(1.0, 3.0), "squared": _stump(1.0, 9.0)},
}


@pytest.mark.parametrize("version", [1, 2])
def test_performance_written_by_earlier_versions_still_loads(version):
    from mlflow_observe.core.performance.degradation import (
        calibrated_probabilities,
        compare_performance,
    )
    from mlflow_observe.core.performance.reference import ReferencePerformance

    payload = build_profile(make_frame(50)).to_dict()
    payload["version"] = version
    if version == 1:
        payload.pop("impact")
    loaded = {}
    for name, written in [
        ("binary", BINARY_AS_WRITTEN),
        ("multiclass", MULTICLASS_AS_WRITTEN),
        ("regression", REGRESSION_AS_WRITTEN),
    ]:
        profile = DataProfile.from_dict({**payload, "performance": json.loads(json.dumps(written))})
        assert isinstance(profile.performance, ReferencePerformance)
        assert profile.performance.to_dict() == written  # written back key for key
        assert list(profile.to_dict()["performance"]) == list(written)  # in the same order
        loaded[name] = profile.performance
    binary = loaded["binary"]
    assert binary.task == "classification" and binary.n_rows == 400
    assert binary.classes == (0, 1) and binary.class_counts == (200, 200)
    assert binary.metrics == {"accuracy": 0.8, "roc_auc": 0.9}
    assert binary.interval("roc_auc") == (0.87, 0.93)
    # the calibration curve is read as written: 0.25 -> halfway between 0 and 0.25
    assert calibrated_probabilities(binary, [0.25, 0.75]).tolist() == [0.125, 0.625]
    multiclass = loaded["multiclass"]
    rows = calibrated_probabilities(multiclass, [[0.2, 0.4, 0.4]])
    np.testing.assert_allclose(rows, [[0.2 / 0.8, 0.2 / 0.8, 0.4 / 0.8]])
    regression = loaded["regression"]
    assert regression.loss_features == ("x1",) and regression.metrics["mae"] == 2.0
    window = pd.DataFrame({"x1": [-1.0, 1.0, -1.0, 1.0]})
    estimated = compare_performance(regression, y_pred=np.zeros(4), features=window)
    # the stumps: absolute error 1 below 0, 3 above; squared error 1 and 9
    assert estimated.metric("mae").value == pytest.approx(2.0)
    assert estimated.metric("rmse").value == pytest.approx(np.sqrt(5.0))


def _labelled(n, seed, classes=2):
    rng = np.random.default_rng(seed)
    frame = make_frame(n, seed=seed)
    if classes == 2:
        p = 1 / (1 + np.exp(-frame["num_a"].to_numpy()))
        frame["label"] = (rng.random(n) < p).astype(int)
        frame["prediction"], frame["p_1"] = (p > 0.5).astype(int), p
        return frame, ["p_1"]
    proba = rng.dirichlet(np.ones(classes), n)
    names = [f"p_{i}" for i in range(classes)]
    frame[names] = proba
    frame["label"] = rng.integers(0, classes, n)
    frame["prediction"] = proba.argmax(axis=1)
    return frame, names


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression", "no probabilities"])
def test_profile_json_with_performance_is_identical_after_a_round_trip(kind):
    if kind == "regression":
        frame = make_frame(600, seed=4)
        frame["target"] = 2 * frame["num_a"] + np.random.default_rng(4).normal(size=600)
        frame["prediction"] = 2 * frame["num_a"]
        options = {"targets": "target", "predictions": "prediction"}
    else:
        frame, names = _labelled(600, seed=4, classes=3 if kind == "multiclass" else 2)
        options = {"targets": "label", "predictions": "prediction"}
        if kind != "no probabilities":
            options["probabilities"] = names
    profile = build_profile(frame, **options)
    text = profile.to_json()
    again = DataProfile.from_json(text)
    assert again.performance == profile.performance
    assert again.to_json() == text
    written = json.loads(text)["performance"]
    assert written["task"] == ("regression" if kind == "regression" else "classification")
    assert ("calibration" in written) == (kind in ("binary", "multiclass"))
    assert ("loss_models" in written) == (kind == "regression")


def test_merging_profiles_keeps_one_reference_performance_and_refuses_two():
    frame, names = _labelled(1000, seed=5)
    options = {"targets": "label", "predictions": "prediction", "probabilities": names}
    baseline = build_profile(frame, **options)
    # windows counted against one baseline carry its performance: kept
    left, right = baseline.empty_like(), baseline.empty_like()
    left.update(frame.iloc[:400])
    right.update(frame.iloc[400:])
    assert (left + right).performance is baseline.performance
    # a part counted without it (a Spark partition's layout): the other side's
    bare = baseline.empty_like()
    bare.performance = None
    assert (bare + left).performance is baseline.performance
    assert (left + bare).performance is baseline.performance
    # after a JSON round trip the same reference is still the same: kept
    copy = DataProfile.from_json(baseline.to_json())
    assert (baseline + copy).performance == baseline.performance
    # two references measured on different rows cannot be merged exactly: refused
    other = build_profile(frame.iloc[:500], **options).empty_like()
    other.columns = baseline.empty_like().columns  # same layout, other performance
    with pytest.raises(ProfileError, match="bootstrap intervals, calibration and loss models"):
        baseline.merge(other)


def test_reference_performance_merge_keeps_a_side_with_rows():
    from mlflow_observe.core.performance.degradation import reference_performance
    from mlflow_observe.core.performance.reference import (
        PerformanceMergeError,
        ReferencePerformance,
    )

    first = reference_performance([0, 1, 1, 0, 1], [0, 1, 0, 0, 1])
    nothing = ReferencePerformance(task="classification", n_rows=0)
    assert first.merge(nothing) is first and nothing.merge(first) is first
    assert first + None is first
    with pytest.raises(PerformanceMergeError, match=r"\(5 and 3 rows\)"):
        first + reference_performance([0, 1, 1], [0, 1, 1])


def test_copies_of_one_reference_performance_merge_even_with_a_nan():
    import pickle

    from mlflow_observe.core.performance.reference import ReferencePerformance

    performance = ReferencePerformance.from_dict(BINARY_AS_WRITTEN)
    undefined = ReferencePerformance.from_dict(
        {**BINARY_AS_WRITTEN, "metrics": {"roc_auc": {"value": np.nan, "ci_low": 0, "ci_high": 1}}}
    )
    copy = pickle.loads(pickle.dumps(undefined))  # as a Spark executor gets it
    assert copy != undefined  # NaN is not equal to itself ...
    assert undefined.merge(copy) is undefined  # ... but it is the same reference
    assert performance.merge(pickle.loads(pickle.dumps(performance))) is performance


def test_a_version_2_profile_still_loads_and_compares():
    frame = make_frame(3000, seed=4)
    payload = build_profile(frame, sample_size=0).to_dict()
    payload["version"] = 2
    for column in payload["columns"]:
        column.pop("sums", None)  # version 2 had no per-cell sums
    old = DataProfile.from_dict(payload)
    assert old.columns["num_a"].sums is None
    window = old.empty_like()
    window.update(make_frame(3000, seed=5, shift=1.0))
    assert (old + old).columns["num_a"].sums is None  # merging keeps "no sums"
    from mlflow_observe.comparison import compare

    result = compare(old, make_frame(3000, seed=5, shift=1.0)).drift.column("num_a")
    assert result.method == "wasserstein" and result.drifted
    assert result.statistic == pytest.approx(1.0, abs=0.05)  # the uniform-cell estimate


def test_a_repeated_value_gets_a_cell_of_its_own():
    values = np.r_[np.zeros(600), np.random.default_rng(0).exponential(5.0, 1400)]
    column = build_profile(pd.DataFrame({"delay": values}), sample_size=0).columns["delay"]
    assert column.grid[0] == 0.0 and column.grid[1] == np.nextafter(0.0, 1.0)
    assert column.counts[1] == 600  # [0, nextafter(0)): the spike alone
    assert column.sums[2:-1].sum() == pytest.approx(values.sum())


def _baseline_payload():
    frame = make_frame(300, seed=2)
    return json.loads(build_profile(frame).to_json())


def _numeric_column(payload):
    return next(i for i, c in enumerate(payload["columns"]) if c["kind"] == "numeric")


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda p, i: p.pop("columns"), "has no field 'columns'"),
        (
            lambda p, i: p["columns"][i]["counts"].__setitem__(3, 10**30),
            f"field 'columns[{{i}}].counts[3]' must be an integer between 0 and {2**63 - 1}. "
            f"Got {10**30} instead",
        ),
        (
            lambda p, i: p["columns"][i]["coarse_positions"].__setitem__(1, 10_001),
            "field 'columns[{i}].coarse_positions[1]' must be a position in the grid",
        ),
        (lambda p, i: p.__setitem__("n_rows", 2**64), "field 'n_rows' must be an integer"),
        (lambda p, i: p["columns"][i].__setitem__("mean", "NaN"), "'columns[{i}].mean'"),
        (lambda p, i: p["sample"].__setitem__("keys", [0.5]), "field \"sample.columns['"),
    ],
)
def test_a_profile_that_does_not_match_its_schema_is_refused(corrupt, message):
    payload = _baseline_payload()
    i = _numeric_column(payload)
    corrupt(payload, i)
    with pytest.raises(ProfileError) as caught:
        DataProfile.from_json(json.dumps(payload))
    assert message.format(i=i) in str(caught.value)


def test_a_valid_profile_still_loads_after_the_schema_check():
    payload = _baseline_payload()
    assert DataProfile.from_dict(payload).to_dict()["columns"] == payload["columns"]
