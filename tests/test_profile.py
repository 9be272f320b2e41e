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
)


def test_kinds_are_inferred_with_reasons():
    n = 500
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(size=n),
            "count": rng.integers(0, 5, n),
            "plan": rng.choice(["a", "b"], n),
            "flag": rng.random(n) < 0.5,
            "when": pd.date_range("2026-01-01", periods=n, freq="h"),
            "when_text": pd.date_range("2026-01-01", periods=n, freq="h").astype(str),
            "user_id": [f"u{i:06d}" for i in range(n)],
            "row_id": np.arange(n),
            "comment": [f"this is comment number {i} about things" for i in range(n)],
        }
    )
    profile = build_profile(frame)
    assert {n: c.kind for n, c in profile.columns.items()} == {
        "amount": "numeric",
        "count": "numeric",
        "plan": "categorical",
        "flag": "boolean",
    }
    assert "datetime" in profile.excluded["when"]
    assert "datetime" in profile.excluded["when_text"]
    assert "identifier" in profile.excluded["user_id"]
    assert "identifier" in profile.excluded["row_id"]
    assert (
        build_profile(frame[["row_id"]], kinds={"row_id": "numeric"}).columns["row_id"].count == n
    )
    assert "free text" in profile.excluded["comment"]


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
    profile = build_profile(frame)
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
    assert payload["format"] == "mlflow-observe/profile" and payload["version"] == 2
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
