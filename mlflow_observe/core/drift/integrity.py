"""Data integrity: does the window still look like the data the model was built on?

Each check becomes a finding (for the report) and feeds an ``integrity/``
metric. None of them stops the evaluation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mlflow_observe.core.profile.columns import NumericColumnProfile
from mlflow_observe.core.profile.data_profile import DataProfile
from mlflow_observe.core.profile.kinds import NUMERIC

ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass(frozen=True)
class Finding:
    """One integrity problem.

    Attributes
    ----------
    check : str
        The check's name, e.g. ``'missing_column'``, ``'unseen_categories'``.
    column : str or None
    severity : {'error', 'warning', 'info'}
    message : str
        A sentence a person can act on.
    value : float or None
        The size of the problem (a rate, a share, a count).
    """

    check: str
    column: str | None
    severity: str
    message: str
    value: float | None = None

    def to_record(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class IntegrityResult:
    findings: list

    def by_check(self, check: str) -> list:
        return [f for f in self.findings if f.check == check]

    def metrics(self) -> dict[str, float]:
        def count(check):
            return float(len(self.by_check(check)))

        def largest(check):
            values = [f.value for f in self.by_check(check) if f.value is not None]
            return float(max(values)) if values else 0.0

        return {
            "integrity/n_findings": float(len(self.findings)),
            "integrity/n_missing_columns": count("missing_column"),
            "integrity/n_extra_columns": count("extra_column"),
            "integrity/n_type_changes": count("type_change"),
            "integrity/n_missing_rate_increases": count("missing_rate_increase"),
            "integrity/max_missing_rate_increase": largest("missing_rate_increase"),
            "integrity/n_columns_with_unseen_categories": count("unseen_categories"),
            "integrity/max_share_unseen": largest("unseen_categories"),
            "integrity/n_columns_out_of_range": count("out_of_range"),
            "integrity/max_share_out_of_range": largest("out_of_range"),
            "integrity/n_columns_with_infinite_values": count("infinite_values"),
            "integrity/n_empty_columns": count("empty_column"),
            "integrity/n_columns_with_mixed_types": count("mixed_types"),
        }

    def to_records(self) -> list[dict]:
        return [f.to_record() for f in self.findings]


def check_integrity(
    baseline: DataProfile,
    current: DataProfile,
    window_columns,
    *,
    missing_rate_tolerance: float = 0.05,
) -> IntegrityResult:
    """Check a window's profile and column list against the baseline.

    Parameters
    ----------
    baseline : DataProfile
    current : DataProfile
        The window, counted with ``baseline.empty_like()``.
    window_columns : list of str
        The columns the window had (to find missing and extra ones).
    missing_rate_tolerance : float, default=0.05
        A rise in missing rate larger than this (absolute) is a finding.

    Returns
    -------
    IntegrityResult

    Examples
    --------
    >>> import pandas as pd
    >>> from mlflow_observe.core.profile.data_profile import build_profile
    >>> baseline = build_profile(pd.DataFrame({"plan": ["a", "b"] * 50, "x": range(100, 0, -1)}))
    >>> window = baseline.empty_like()
    >>> window.update(pd.DataFrame({"plan": ["a", "c"] * 5}))
    >>> [(f.check, f.column) for f in check_integrity(baseline, window, ["plan"]).findings]
    [('missing_column', 'x'), ('unseen_categories', 'plan')]
    """
    findings: list[Finding] = []
    window_columns = list(window_columns)
    present = set(window_columns)
    roles = {baseline.targets, baseline.predictions}
    # A text column's descriptors are derived from it: the text column is what can be missing.
    derived = baseline.descriptor_columns
    expected = [n for n in baseline.feature_names if n not in derived] + [
        c for c in baseline.input_columns if c not in baseline.columns
    ]
    for name in expected:
        if name not in present:
            findings.append(
                Finding(
                    "missing_column",
                    name,
                    ERROR,
                    f"Column {name!r} of the baseline is missing from the window; its drift "
                    "cannot be checked.",
                )
            )
    known = set(baseline.columns) | set(baseline.excluded) | set(baseline.input_columns)
    for name in window_columns:
        if name not in known:
            findings.append(
                Finding(
                    "extra_column",
                    name,
                    WARNING,
                    f"Column {name!r} is not in the baseline; it is not compared.",
                )
            )
    for name, reference in baseline.columns.items():
        if name not in present:
            continue
        column = current.columns[name]
        if name in roles and column.n_values == 0:
            continue
        findings.extend(_column_findings(name, reference, column, missing_rate_tolerance))
    return IntegrityResult(findings=findings)


def _column_findings(name, reference, current, tolerance) -> list[Finding]:
    findings: list[Finding] = []
    n_current = current.n_values
    if n_current == 0:
        return findings
    if current.count == 0:
        findings.append(
            Finding(
                "empty_column",
                name,
                ERROR,
                f"Column {name!r} has no usable values in the window ({n_current} rows, all "
                "missing or invalid).",
            )
        )
    ref_rate = reference.n_missing / reference.n_values if reference.n_values else 0.0
    cur_rate = current.n_missing / n_current
    if cur_rate - ref_rate > tolerance:
        findings.append(
            Finding(
                "missing_rate_increase",
                name,
                WARNING,
                f"Missing values in {name!r} rose from {ref_rate:.1%} to {cur_rate:.1%}.",
                cur_rate - ref_rate,
            )
        )
    if reference.kind == NUMERIC:
        findings.extend(_numeric_findings(name, reference, current, n_current))
    else:
        findings.extend(_categorical_findings(name, reference, current))
    return findings


def _numeric_findings(
    name, reference: NumericColumnProfile, current: NumericColumnProfile, n_current: int
) -> list[Finding]:
    findings = []
    if current.n_invalid:
        findings.append(
            Finding(
                "type_change",
                name,
                ERROR,
                f"{current.n_invalid} values of the numeric column {name!r} are not numbers "
                "(text arriving in a numeric column?). They are left out of the comparison.",
                current.n_invalid / n_current,
            )
        )
    if current.n_inf:
        findings.append(
            Finding(
                "infinite_values",
                name,
                WARNING,
                f"{current.n_inf} infinite values in {name!r}; left out of the comparison.",
                current.n_inf / n_current,
            )
        )
    if reference.has_layout and current.count:
        outside = int(current.counts[0] + current.counts[-1])
        if outside:
            share = outside / current.count
            findings.append(
                Finding(
                    "out_of_range",
                    name,
                    WARNING,
                    f"{outside} values of {name!r} ({share:.1%}) fall outside the reference range "
                    f"[{reference.grid[0]:.6g}, {reference.grid[-1]:.6g}] "
                    f"(window range [{current.min:.6g}, {current.max:.6g}]).",
                    share,
                )
            )
    return findings


def _categorical_findings(name, reference, current) -> list[Finding]:
    findings = []
    if current.n_unseen:
        share = current.n_unseen / current.count
        examples = ", ".join(repr(v) for v in list(current.unseen_examples)[:5])
        findings.append(
            Finding(
                "unseen_categories",
                name,
                WARNING,
                f"{current.n_unseen} values of {name!r} ({share:.1%}) are categories the "
                f"reference never had, e.g. {examples}.",
                share,
            )
        )
    value_types, reference_types = current.value_types, reference.value_types
    if len(value_types) > 1:
        findings.append(
            Finding(
                "mixed_types",
                name,
                WARNING,
                f"Column {name!r} mixes value types {sorted(value_types)}; values are compared "
                "as text.",
            )
        )
    elif (
        reference_types
        and value_types
        and not (value_types & reference_types)
        and not _compatible_dtypes(reference_types, value_types)
    ):
        findings.append(
            Finding(
                "type_change",
                name,
                ERROR,
                f"Column {name!r} arrived as {sorted(value_types)} where the reference had "
                f"{sorted(reference_types)}.",
            )
        )
    return findings


_TEXT_TYPES = {"str", "object", "string", "category"}


def _family(type_name: str) -> str:
    name = type_name.lower()
    if name in _TEXT_TYPES or name.startswith("string"):
        return "text"
    if name.startswith(("int", "uint", "float")) or name in ("int", "float"):
        return "number"
    if name.startswith("bool"):
        return "bool"
    return name


def _compatible_dtypes(reference_types: set, current_types: set) -> bool:
    # int64 arriving as float64 (a missing value), or str as object, is the same kind of value.
    return bool({_family(t) for t in reference_types} & {_family(t) for t in current_types})
