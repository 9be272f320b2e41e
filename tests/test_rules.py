"""Alert rules, gate thresholds and time windows: the expressions users type."""

from itertools import pairwise

import pandas as pd
import pytest
from mlflow.models import MetricThreshold

from mlflow_observe.monitoring.rules import (
    AlertRule,
    RuleSyntaxError,
    Threshold,
    combine_thresholds,
    worst_level,
)
from mlflow_observe.monitoring.windows import WindowError, parse_duration, split_windows


@pytest.mark.parametrize(
    "text, value, fires",
    [
        ("m>=0.3", 0.3, True),
        ("m>=0.3", 0.29, False),
        ("m>0.3", 0.3, False),
        ("m<=-0.02", -0.03, True),
        ("m<-0.02", -0.02, False),
        ("m==1", 1.0, True),
        ("m!=1", 1.0, False),
        ("m >= 1e-3 : warning", 0.01, True),
    ],
)
def test_alert_rules_fire_as_written(text, value, fires):
    assert AlertRule.parse(text).check({"m": value}).fired is fires


def test_alert_levels_and_missing_metrics():
    rules = [AlertRule.parse("a>=1:warning"), AlertRule.parse("b>=1")]
    outcomes = [rule.check({"a": 2.0, "b": float("nan")}) for rule in rules]
    assert [o.fired for o in outcomes] == [True, False]
    assert outcomes[1].note == "metric not computed on this window"
    assert worst_level(outcomes) == "warning"
    assert worst_level([rules[1].check({"b": 5.0}), outcomes[0]]) == "critical"


@pytest.mark.parametrize(
    "text", ["share>=", ">=0.3", "share=>0.3", "share>=0.3:fatal", "share>=abc"]
)
def test_malformed_alert_rules_are_quoted(text):
    with pytest.raises(RuleSyntaxError, match=repr(text).replace("[", r"\[")[:10]):
        AlertRule.parse(text)


def test_thresholds_map_to_mlflow_metric_threshold():
    absolute = Threshold.parse("degradation/accuracy_delta>=-0.01")
    assert (absolute.threshold, absolute.greater_is_better) == (-0.01, True)
    lower = Threshold.parse("drift/share_drifted_columns<=champion-0.05")
    assert (lower.min_absolute_change, lower.greater_is_better) == (0.05, False)
    merged = combine_thresholds([Threshold.parse("acc>=0.8"), Threshold.parse("acc>=champion+5%")])
    mlflow_threshold = MetricThreshold(
        threshold=merged["acc"].threshold,
        min_relative_change=merged["acc"].min_relative_change,
        greater_is_better=True,
    )  # MLflow accepts the values
    assert mlflow_threshold.min_relative_change == 0.05
    for bad in [
        "acc>=champion-0.01",
        "acc<=champion+0.01",
        "acc>=champion",
        "acc>=champion+200%",
        "acc>0.8",
        "acc",
    ]:
        with pytest.raises(RuleSyntaxError, match="acc"):
            Threshold.parse(bad)
    with pytest.raises(RuleSyntaxError, match="disagree"):
        combine_thresholds([Threshold.parse("a>=1"), Threshold.parse("a<=2")])


def test_windows_are_aligned_half_open_and_complete():
    hour = parse_duration("1h")
    windows = split_windows("2026-11-26 22:15", "2026-11-27 02:00", hour)
    assert [w.start.hour for w in windows] == [23, 0, 1]
    assert all(w.end - w.start == hour for w in windows)
    assert [b.index - a.index for a, b in pairwise(windows)] == [1, 1]
    origin = pd.Timestamp("2026-11-26", tz="UTC")
    assert split_windows("2026-11-26 02:00", "2026-11-26 04:00", hour, origin=origin)[0].index == 2
    assert parse_duration("1d") == pd.Timedelta(days=1)
    assert parse_duration("90s") == pd.Timedelta(seconds=90)
    for bad in ["0h", "-1h", "1 hour", ""]:
        with pytest.raises(WindowError):
            parse_duration(bad)
    with pytest.raises(WindowError, match="not before"):
        split_windows("2026-11-27", "2026-11-26", hour)
