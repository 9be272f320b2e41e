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
    # Non-inferiority, which MetricThreshold cannot express: margins checked on the delta.
    assert Threshold.parse("acc>=champion-0.01").margin_absolute == 0.01
    assert Threshold.parse("loss<=champion+0.02").margin_absolute == 0.02
    assert Threshold.parse("acc>=champion-1%").margin_relative == 0.01
    assert Threshold.parse("acc>=champion").margin_absolute == 0.0
    assert str(Threshold.parse("acc>=champion-0.01")) == "acc>=champion-0.01"
    for bad in [
        "acc>=champion+0",
        "acc>=champion-200%",
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


@pytest.mark.parametrize(
    "text", ["drift/share_drifted_columns<=1e999", "m>=-1e400", "m>=champion+1e999"]
)
def test_non_finite_bounds_are_refused(text):
    with pytest.raises(RuleSyntaxError, match="not a finite number"):
        Threshold.parse(text)
    if "champion" not in text:
        with pytest.raises(RuleSyntaxError, match="not a finite number"):
            AlertRule.parse(text)
    for word in ("nan", "inf", "-inf"):
        with pytest.raises(RuleSyntaxError, match="Cannot read"):
            Threshold.parse(f"m<={word}")
        with pytest.raises(RuleSyntaxError, match="Cannot read"):
            AlertRule.parse(f"m<={word}")


def test_a_performance_rule_follows_the_labels():
    """Named once, it reads the realised value when labels arrived, the estimate otherwise."""
    rule = AlertRule.parse("degradation/accuracy_delta<=-0.02:warning")
    realised = rule.check({"degradation/accuracy_delta": -0.05})
    estimated = rule.check({"degradation/estimated_accuracy_delta": -0.05})
    calm = rule.check({"degradation/estimated_accuracy_delta": 0.0})
    assert (realised.fired, realised.source) == (True, "realised")
    assert (estimated.fired, estimated.source) == (True, "estimated")
    assert estimated.evaluated_metric == "degradation/estimated_accuracy_delta"
    assert "estimate" in estimated.note
    assert not calm.fired
    explicit = AlertRule.parse("degradation/estimated_accuracy_delta<=-0.02")
    assert not explicit.check({"degradation/accuracy_delta": -0.5}).fired  # as written


def test_sustained_rules_need_every_window():
    rule = AlertRule.parse("traffic/rows==0 for 3h:warning")
    assert rule.sustained == pd.Timedelta(hours=3) and rule.level == "warning"
    assert rule.check({"traffic/rows": 0.0}, previous=[0.0, 0.0]).fired
    assert not rule.check({"traffic/rows": 0.0}, previous=[0.0, 12.0]).fired
    unknown = rule.check({"traffic/rows": 0.0}, previous=[None, 0.0])
    assert not unknown.fired and "not known" in unknown.note
    with pytest.raises(RuleSyntaxError, match="traffic/rows==0 for soon"):
        AlertRule.parse("traffic/rows==0 for soon")


def test_rules_are_checked_against_the_catalogue():
    from mlflow_observe.monitoring.catalogue import (
        UnknownMetricError,
        check_metrics,
        metric_catalogue,
    )

    catalogue = metric_catalogue()
    check_metrics(["traffic/rows", "integrity/n_findings", "degradation/accuracy_delta"], catalogue)
    with pytest.raises(UnknownMetricError, match="Did you mean 'drift/share_drifted_columns'"):
        check_metrics(["drift/share_drifted_column"], catalogue)
    with pytest.raises(UnknownMetricError, match="'integrity/n_finding'"):
        check_metrics(["integrity/n_finding"], catalogue)
    with pytest.raises(UnknownMetricError, match="could never pass"):
        check_metrics(["drift/tenure/ks_pvalue"], catalogue, what="threshold")
    check_metrics(["drift/tenure/ks_pvalue"], catalogue, what="threshold", any_column=True)


def test_non_inferiority_is_checked_on_the_delta():
    from mlflow_observe.monitoring.gate import _check

    def check(text, candidate, champion):
        return _check(Threshold.parse(text), {"m": candidate}, {"m": champion})

    assert check("m>=champion-0.01", 0.825, 0.83).passed
    worse = check("m>=champion-0.01", 0.81, 0.83)
    assert not worse.passed and "non-inferiority" in worse.reason and "0.82" in worse.reason
    assert check("m<=champion+0.02", 0.51, 0.50).passed
    assert not check("m<=champion+0.02", 0.53, 0.50).passed
    assert check("m>=champion-1%", 0.792, 0.80).passed  # 1% of 0.80 = 0.008
    assert not check("m>=champion-1%", 0.791, 0.80).passed
    assert not check("m>=champion", 0.79, 0.80).passed
    combined = combine_thresholds([Threshold.parse("m>=0.9"), Threshold.parse("m>=champion-0.01")])
    assert not _check(combined["m"], {"m": 0.85}, {"m": 0.85}).passed  # the absolute part
    # Without labels the realised key reads the estimate, and says so.
    estimated = _check(
        Threshold.parse("degradation/accuracy_delta>=-0.05"),
        {"degradation/estimated_accuracy_delta": -0.1},
        None,
    )
    assert not estimated.passed and estimated.evaluated_metric.endswith("estimated_accuracy_delta")


def test_every_key_a_window_logs_is_in_the_catalogue():
    """A rule on any key the evaluation logs is accepted: the catalogue and the code agree."""
    import numpy as np
    import pandas as pd

    import mlflow_observe as mo
    from mlflow_observe.monitoring.catalogue import metric_catalogue

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=2000), "plan": rng.choice(["a", "b", "c"], 2000)})
    frame["flag"] = rng.integers(0, 2, 2000)
    frame["y"] = (frame["x"] + rng.normal(size=2000) > 0).astype(int)
    frame["p_1"] = 1 / (1 + np.exp(-frame["x"]))
    frame["p"] = (frame["p_1"] > 0.5).astype(int)
    baseline = mo.build_profile(frame, targets="y", predictions="p", probabilities=["p_1"])
    catalogue = set(metric_catalogue(baseline))
    for window in (frame.head(300), frame.assign(x=frame["x"] + 1)):  # small and large, drifted
        logged = mo.compare(baseline, window).metrics()
        assert set(logged) - catalogue == set()
    for labels in (frame["y"], None):  # realised and estimated
        result = mo.compare_performance(
            baseline.performance,
            y_true=None if labels is None else labels.to_numpy(),
            y_pred=frame["p"].to_numpy(),
            proba=frame[["p_1"]].to_numpy(),
        )
        assert set(result.metrics()) - catalogue == set()
