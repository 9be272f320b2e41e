"""Alert rules and gate thresholds, written as short expressions.

Alert rules (checked on every monitored window)::

    drift/share_drifted_columns>=0.3:critical
    degradation/estimated_accuracy_delta<=-0.02:warning

A rule fires when ``<metric> <op> <value>`` holds; ``op`` is one of ``>= <= > <
== !=`` and the level ``warning`` or ``critical`` (default ``critical``).

Gate thresholds (MLflow's ``MetricThreshold`` semantics: ``>=`` means greater
is better, ``<=`` lower is better)::

    degradation/accuracy>=0.8              absolute threshold
    degradation/accuracy>=champion+0.01    at least 0.01 above the champion
    degradation/accuracy>=champion+2%      at least 2% above the champion
    drift/share_drifted_columns<=champion-0.05
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

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
    rf"(?P<value>{_NUMBER})\s*(?::\s*(?P<level>\w+))?\s*$"
)
_THRESHOLD = re.compile(
    rf"^\s*(?P<metric>[^<>=!]+?)\s*(?P<op>>=|<=|==|!=|>|<)\s*"
    rf"(?:(?P<champion>champion)\s*(?:(?P<sign>[-+])\s*"
    rf"(?P<change>{_NUMBER})\s*(?P<percent>%)?)?|(?P<value>{_NUMBER}))\s*$",
    re.IGNORECASE,
)


class RuleSyntaxError(ValueError):
    """An alert rule or threshold that cannot be read; the message quotes it."""


@dataclass(frozen=True)
class AlertRule:
    """``metric op value`` at a level; see the module docstring for the syntax."""

    metric: str
    op: str
    value: float
    level: str = CRITICAL

    @classmethod
    def parse(cls, text: str) -> AlertRule:
        """Read ``metric op value[:level]``.

        >>> AlertRule.parse("drift/share_drifted_columns>=0.3:critical")
        AlertRule(metric='drift/share_drifted_columns', op='>=', value=0.3, level='critical')
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
        return cls(match["metric"].strip(), match["op"], float(match["value"]), level)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}:{self.level}"

    def check(self, metrics: dict) -> AlertOutcome:
        """Evaluate the rule on one window's metrics.

        A metric the window does not have (or that is not finite) does not fire;
        the outcome says why.

        >>> rule = AlertRule.parse("drift/share_drifted_columns>=0.3")
        >>> rule.check({"drift/share_drifted_columns": 0.5}).fired
        True
        >>> rule.check({}).note
        'metric not computed on this window'
        """
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return AlertOutcome(
                rule=str(self),
                metric=self.metric,
                op=self.op,
                threshold=self.value,
                level=self.level,
                value=None,
                fired=False,
                note="metric not computed on this window",
            )
        fired = bool(_OPERATORS[self.op](value, self.value))
        return AlertOutcome(
            rule=str(self),
            metric=self.metric,
            op=self.op,
            threshold=self.value,
            level=self.level,
            value=float(value),
            fired=fired,
            note="",
        )


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

    @property
    def compares_with_champion(self) -> bool:
        return self.min_absolute_change is not None or self.min_relative_change is not None

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """Read one threshold expression (see the module docstring).

        >>> Threshold.parse("degradation/accuracy_delta>=-0.01")
        Threshold(metric='degradation/accuracy_delta', greater_is_better=True, threshold=-0.01, min_absolute_change=None, min_relative_change=None)
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
            return cls(metric, greater, threshold=float(match["value"]))
        sign, change = match["sign"], match["change"]
        if change is None or float(change) <= 0 or (sign == "+") != greater:
            raise RuleSyntaxError(
                f"Cannot use the threshold {text!r}: against the champion, MLflow's "
                "MetricThreshold asks for a positive improvement: 'METRIC>=champion+D' when "
                "greater is better, 'METRIC<=champion-D' when lower is better."
            )
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
        for name in ("threshold", "min_absolute_change", "min_relative_change"):
            old, new = getattr(previous, name), getattr(item, name)
            if old is not None and new is not None and old != new:
                raise RuleSyntaxError(
                    f"Two thresholds set the same bound on {item.metric!r}: {previous} and {item}."
                )
            fields[name] = old if old is not None else new
        merged[item.metric] = Threshold(item.metric, item.greater_is_better, **fields)
    return merged
