"""Alert rules and gate thresholds, written as short expressions.

Alert rules (checked on every monitored window)::

    drift/share_drifted_columns>=0.3:critical
    degradation/accuracy_delta<=-0.02:warning
    traffic/rows==0 for 2h:critical

A rule fires when ``<metric> <op> <value>`` holds; ``op`` is one of ``>= <= > <
== !=`` and the level ``warning`` or ``critical`` (default ``critical``). With
``for <duration>`` it fires only when the condition has held on every window
of the last ``<duration>`` (the current one included). A performance rule
written without ``estimated_`` (``degradation/accuracy_delta``) applies to the
realised value on windows whose labels arrived and to the estimate
(``degradation/estimated_accuracy_delta``) on the others; the outcome says which.

Gate thresholds (MLflow's ``MetricThreshold`` semantics: ``>=`` means greater
is better, ``<=`` lower is better)::

    degradation/accuracy>=0.8              absolute threshold
    degradation/accuracy>=champion+0.01    at least 0.01 above the champion
    degradation/accuracy>=champion+2%      at least 2% above the champion
    drift/share_drifted_columns<=champion-0.05

and non-inferiority (no worse than the champion by more than a margin), which
``MetricThreshold`` cannot express and the gate checks on the delta
candidate - champion::

    degradation/accuracy>=champion-0.01    at most 0.01 below the champion
    degradation/log_loss<=champion+0.02    at most 0.02 above the champion
    degradation/accuracy>=champion-1%      at most 1% (of the champion's value) below
    degradation/accuracy>=champion         not below the champion
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

import pandas as pd

from mlflow_observe.monitoring.windows import WindowError, format_duration, parse_duration

WARNING, CRITICAL = "warning", "critical"
LEVELS = (WARNING, CRITICAL)
_OPERATORS = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_ALERT = re.compile(
    rf"^\s*(?P<metric>[^<>=!]+?)\s*(?P<op>>=|<=|==|!=|>|<)\s*"
    rf"(?P<value>{_NUMBER})(?:\s+for\s+(?P<sustained>[0-9a-z.]+))?"
    rf"\s*(?::\s*(?P<level>\w+))?\s*$"
)
_THRESHOLD = re.compile(
    rf"^\s*(?P<metric>[^<>=!]+?)\s*(?P<op>>=|<=|==|!=|>|<)\s*"
    rf"(?:(?P<champion>champion)\s*(?:(?P<sign>[-+])\s*"
    rf"(?P<change>{_NUMBER})\s*(?P<percent>%)?)?|(?P<value>{_NUMBER}))\s*$",
    re.IGNORECASE,
)


class RuleSyntaxError(ValueError):
    """An alert rule or threshold that cannot be read; the message quotes it."""


def _finite(text: str, number: str, what: str) -> float:
    """``float(number)``, refusing what is not a finite number (``1e999`` is infinite)."""
    value = float(number)
    if not math.isfinite(value):
        raise RuleSyntaxError(
            f"Cannot use the {what} {text!r}: {number} is not a finite number "
            f"(it reads as {value}); a bound that nothing can cross checks nothing."
        )
    return value


@dataclass(frozen=True)
class AlertRule:
    """``metric op value [for duration]`` at a level; see the module docstring for the syntax."""

    metric: str
    op: str
    value: float
    level: str = CRITICAL
    sustained: pd.Timedelta | None = None

    @classmethod
    def parse(cls, text: str) -> AlertRule:
        """Read ``metric op value [for duration][:level]``.

        >>> AlertRule.parse("drift/share_drifted_columns>=0.3:critical")
        AlertRule(metric='drift/share_drifted_columns', op='>=', value=0.3, level='critical', sustained=None)
        >>> str(AlertRule.parse("traffic/rows==0 for 2h"))
        'traffic/rows==0 for 2h:critical'
        >>> AlertRule.parse("drift/x>0.3:urgent")
        Traceback (most recent call last):
        ...
        mlflow_observe.monitoring.rules.RuleSyntaxError: Cannot read the alert rule 'drift/x>0.3:urgent': the level must be 'warning' or 'critical', not 'urgent'.
        """  # noqa: E501
        match = _ALERT.match(str(text))
        if not match:
            raise RuleSyntaxError(
                f"Cannot read the alert rule {text!r}: write METRIC OP VALUE[:LEVEL], e.g. "
                "'drift/share_drifted_columns>=0.3:critical' (OP one of >= <= > < == !=, "
                "LEVEL warning or critical)."
            )
        level = (match["level"] or CRITICAL).lower()
        if level not in LEVELS:
            raise RuleSyntaxError(
                f"Cannot read the alert rule {text!r}: the level must be "
                f"'warning' or 'critical', not {match['level']!r}."
            )
        value = _finite(text, match["value"], "alert rule")
        sustained = None
        if match["sustained"]:
            try:
                sustained = parse_duration(match["sustained"])
            except WindowError as exc:
                raise RuleSyntaxError(f"Cannot read the alert rule {text!r}: {exc}") from exc
        return cls(match["metric"].strip(), match["op"], value, level, sustained)

    def __str__(self) -> str:
        sustained = f" for {format_duration(self.sustained)}" if self.sustained else ""
        return f"{self.metric}{self.op}{self.value:g}{sustained}:{self.level}"

    def holds(self, value) -> bool:
        """Whether the condition holds on ``value`` (never on a missing or NaN value)."""
        return value is not None and math.isfinite(value) and _OPERATORS[self.op](value, self.value)

    def value_in(self, metrics: dict) -> tuple:
        """``(key, value, source)``: the realised key, else its estimate for a performance rule.

        >>> AlertRule.parse("degradation/accuracy_delta<=-0.02").value_in(
        ...     {"degradation/estimated_accuracy_delta": -0.1})
        ('degradation/estimated_accuracy_delta', -0.1, 'estimated')
        """
        value = metrics.get(self.metric)
        twin = estimated_twin(self.metric)
        if value is not None and math.isfinite(value):
            return self.metric, float(value), ("realised" if twin else "")
        if twin and metrics.get(twin) is not None and math.isfinite(metrics[twin]):
            return twin, float(metrics[twin]), "estimated"
        return self.metric, None, ""

    def check(self, metrics: dict, previous=None) -> AlertOutcome:
        """Evaluate the rule on one window's metrics.

        A metric the window does not have (or that is not finite) does not fire;
        the outcome says why. ``previous`` holds the rule's values on the windows
        before this one that ``for <duration>`` covers (oldest first; None where
        unknown); the rule fires only when it holds on all of them too.

        >>> rule = AlertRule.parse("drift/share_drifted_columns>=0.3")
        >>> rule.check({"drift/share_drifted_columns": 0.5}).fired
        True
        >>> rule.check({}).note
        'metric not computed on this window'
        >>> quiet = AlertRule.parse("traffic/rows==0 for 2h")
        >>> quiet.check({"traffic/rows": 0.0}, previous=[5.0]).fired
        False
        """
        key, value, source = self.value_in(metrics)

        def outcome(fired, note=""):
            return AlertOutcome(
                rule=str(self),
                metric=self.metric,
                op=self.op,
                threshold=self.value,
                level=self.level,
                value=value,
                fired=fired,
                note=note,
                evaluated_metric=key,
                source=source,
            )

        if value is None:
            return outcome(False, "metric not computed on this window")
        fired = self.holds(value)
        if fired and self.sustained is not None:
            earlier = list(previous or [])
            if any(v is None for v in earlier):
                return outcome(
                    False,
                    f"held, but not known on every window of the last "
                    f"{format_duration(self.sustained)}",
                )
            if not all(self.holds(v) for v in earlier):
                return outcome(
                    False,
                    f"held, but not on every window of the last {format_duration(self.sustained)}",
                )
        note = "on the estimate (no labels on this window)" if source == "estimated" else ""
        return outcome(fired, note)


@dataclass(frozen=True)
class AlertOutcome:
    """One rule on one window: did it fire, on which value."""

    rule: str
    metric: str
    op: str
    threshold: float
    level: str
    value: float | None
    fired: bool
    note: str
    evaluated_metric: str = ""  # the key the value came from (the estimate's, for a fallback)
    source: str = ""  # "realised" or "estimated" for performance rules


def estimated_twin(metric: str) -> str | None:
    """The estimate's key for a realised performance key, else None.

    >>> estimated_twin("degradation/accuracy_delta")
    'degradation/estimated_accuracy_delta'
    >>> estimated_twin("degradation/estimated_accuracy") is None
    True
    """
    prefix = "degradation/"
    if not metric.startswith(prefix) or metric.startswith(prefix + "estimated_"):
        return None
    if metric[len(prefix) :] in ("degraded", "n_segments", "n_degraded_segments"):
        return None
    return f"{prefix}estimated_{metric[len(prefix) :]}"


def worst_level(outcomes) -> str | None:
    """``'critical'``, ``'warning'`` or None, over the outcomes that fired.

    >>> worst_level([]) is None
    True
    """
    fired = {o.level for o in outcomes if o.fired}
    return CRITICAL if CRITICAL in fired else (WARNING if WARNING in fired else None)


@dataclass(frozen=True)
class Threshold:
    """A gate threshold on one metric, in MLflow ``MetricThreshold`` terms."""

    metric: str
    greater_is_better: bool
    threshold: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None
    margin_absolute: float | None = None  # non-inferiority: worse than the champion by at most
    margin_relative: float | None = None  # the same, as a share of the champion's |value|

    @property
    def compares_with_champion(self) -> bool:
        return any(
            v is not None
            for v in (
                self.min_absolute_change,
                self.min_relative_change,
                self.margin_absolute,
                self.margin_relative,
            )
        )

    @property
    def expressible_in_mlflow(self) -> bool:
        """Whether a part of it is MLflow's ``MetricThreshold`` (absolute or improvement)."""
        return any(
            v is not None
            for v in (self.threshold, self.min_absolute_change, self.min_relative_change)
        )

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """Read one threshold expression (see the module docstring).

        >>> Threshold.parse("degradation/accuracy_delta>=-0.01").threshold
        -0.01
        >>> Threshold.parse("degradation/accuracy>=champion-0.01").margin_absolute
        0.01
        >>> Threshold.parse("degradation/accuracy>=champion+2%").min_relative_change
        0.02
        >>> Threshold.parse("drift/share>0.3")
        Traceback (most recent call last):
        ...
        mlflow_observe.monitoring.rules.RuleSyntaxError: Cannot use the threshold 'drift/share>0.3': a gate threshold uses >= (greater is better) or <= (lower is better), as MLflow's MetricThreshold does.
        """  # noqa: E501
        match = _THRESHOLD.match(str(text))
        if not match:
            raise RuleSyntaxError(
                f"Cannot read the threshold {text!r}: write METRIC>=VALUE or METRIC<=VALUE, or "
                "compare with the champion: METRIC>=champion+0.01, METRIC>=champion+2%, "
                "METRIC<=champion-0.05."
            )
        op = match["op"]
        if op not in (">=", "<="):
            raise RuleSyntaxError(
                f"Cannot use the threshold {text!r}: a gate threshold uses >= (greater is "
                "better) or <= (lower is better), as MLflow's MetricThreshold does."
            )
        greater = op == ">="
        metric = match["metric"].strip()
        if match["value"] is not None:
            return cls(metric, greater, threshold=_finite(text, match["value"], "threshold"))
        sign, change = match["sign"], match["change"]
        if change is None:  # not worse than the champion
            return cls(metric, greater, margin_absolute=0.0)
        amount = _finite(text, change, "threshold")
        if amount <= 0:
            raise RuleSyntaxError(
                f"Cannot use the threshold {text!r}: write a positive change, e.g. "
                "'METRIC>=champion+0.01' (an improvement) or 'METRIC>=champion-0.01' "
                "(a non-inferiority margin)."
            )
        if (sign == "+") != greater:  # non-inferiority: a margin, checked on the delta
            if match["percent"]:
                if amount > 100:
                    raise RuleSyntaxError(
                        f"Cannot use the threshold {text!r}: a relative margin must be at "
                        "most 100%."
                    )
                return cls(metric, greater, margin_relative=amount / 100)
            return cls(metric, greater, margin_absolute=amount)
        if match["percent"]:
            relative = float(change) / 100
            if relative > 1:
                raise RuleSyntaxError(
                    f"Cannot use the threshold {text!r}: a relative change must be at most 100%."
                )
            return cls(metric, greater, min_relative_change=relative)
        return cls(metric, greater, min_absolute_change=float(change))

    def __str__(self) -> str:
        op = ">=" if self.greater_is_better else "<="
        sign = "+" if self.greater_is_better else "-"
        parts = []
        if self.threshold is not None:
            parts.append(f"{self.metric}{op}{self.threshold:g}")
        if self.min_absolute_change is not None:
            parts.append(f"{self.metric}{op}champion{sign}{self.min_absolute_change:g}")
        if self.min_relative_change is not None:
            parts.append(f"{self.metric}{op}champion{sign}{self.min_relative_change * 100:g}%")
        other = "-" if self.greater_is_better else "+"
        if self.margin_absolute == 0:
            parts.append(f"{self.metric}{op}champion")
        elif self.margin_absolute is not None:
            parts.append(f"{self.metric}{op}champion{other}{self.margin_absolute:g}")
        if self.margin_relative is not None:
            parts.append(f"{self.metric}{op}champion{other}{self.margin_relative * 100:g}%")
        return " and ".join(parts)


def combine_thresholds(thresholds) -> dict[str, Threshold]:
    """One threshold per metric, as ``MetricThreshold`` wants (an absolute and a change combine).

    >>> merged = combine_thresholds(
    ...     [Threshold.parse("a>=0.8"), Threshold.parse("a>=champion+0.01")]
    ... )
    >>> str(merged["a"])
    'a>=0.8 and a>=champion+0.01'
    """
    merged: dict[str, Threshold] = {}
    for item in thresholds:
        previous = merged.get(item.metric)
        if previous is None:
            merged[item.metric] = item
            continue
        if previous.greater_is_better != item.greater_is_better:
            raise RuleSyntaxError(
                f"The thresholds on {item.metric!r} disagree on its direction "
                f"({previous} and {item}): use >= for both or <= for both."
            )
        fields = {}
        for name in (
            "threshold",
            "min_absolute_change",
            "min_relative_change",
            "margin_absolute",
            "margin_relative",
        ):
            old, new = getattr(previous, name), getattr(item, name)
            if old is not None and new is not None and old != new:
                raise RuleSyntaxError(
                    f"Two thresholds set the same bound on {item.metric!r}: {previous} and {item}."
                )
            fields[name] = old if old is not None else new
        merged[item.metric] = Threshold(item.metric, item.greater_is_better, **fields)
    return merged
