"""Text and embedding columns of a baseline and a window, as rows of the drift table.

Each text or embedding part of the baseline profile becomes one feature row,
like a numeric or categorical column: its statistic is its domain classifier's
held-out ROC AUC (``text_domain_auc`` or ``embedding_domain_auc``), its
threshold the upper edge of the AUC's null band, and it counts once in the
share of drifted columns. The samples compared are the parts' samples (at most
``text_sample_size`` texts, ``embedding_sample_size`` vectors a side). A part
that cannot be judged (too few texts or vectors, the column missing from the
window, vectors of another length) is skipped, with the reason.

A text row's note names the terms that separate the window from the reference
(the *why*); an embedding row carries the mean-vector distances and the share
of drifted components as extra metrics, and is a warning when one of them
drifts while the classifier does not.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict

from mlflow_observe.core.drift.column import ColumnDrift
from mlflow_observe.core.drift.multivariate import WindowTooSmallError
from mlflow_observe.core.drift.options import DRIFT, FEATURE, OK, WARNING
from mlflow_observe.core.drift.unstructured.embedding import embedding_drift
from mlflow_observe.core.drift.unstructured.text import text_domain_drift
from mlflow_observe.core.profile.data_profile import DataProfile
from mlflow_observe.core.profile.kinds import TEXT

TEXT_METHOD, EMBEDDING_METHOD = "text_domain_auc", "embedding_domain_auc"
# Terms named in a text row's note, on each side.
_NOTE_TERMS = 5


def unstructured_rows(
    baseline: DataProfile,
    current: DataProfile,
    names: dict,
    present,
    *,
    random_state: int = 0,
) -> list[ColumnDrift]:
    """One drift-table row per text or embedding part of ``baseline``.

    Parameters
    ----------
    baseline, current : DataProfile
        The baseline and the window counted into ``baseline.empty_like()``.
    names : dict of str to str
        Metric-safe names, by column.
    present : collection of str
        The columns the window had.
    random_state : int, default=0

    Returns
    -------
    list of ColumnDrift

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mlflow_observe.core.profile.data_profile import build_profile
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"v": list(rng.normal(size=(300, 4)))})
    >>> baseline = build_profile(frame)
    >>> window = baseline.empty_like()
    >>> window.update(pd.DataFrame({"v": list(rng.normal(size=(300, 4)) + 1.0)}))
    >>> [row] = unstructured_rows(baseline, window, {"v": "v"}, {"v"})
    >>> row.method, row.drifted, sorted(row.extra)
    ('embedding_domain_auc', True, ['embedding_cosine_distance', 'embedding_euclidean_distance', 'embedding_share_drifted_components'])
    """  # noqa: E501
    present = set(present)
    rows = []
    for name, part in baseline.unstructured.items():
        window = current.unstructured[name]
        method = TEXT_METHOD if part.kind == TEXT else EMBEDDING_METHOD
        needed = getattr(part, "source", None) or [name]
        base = {
            "column": name,
            "metric_name": names[name],
            "role": FEATURE,
            "kind": part.kind,
            "method": method,
            "n_reference": part.count,
            "n_current": window.count,
        }
        lacking = [c for c in needed if c not in present]
        if lacking:
            note = (
                "column missing from the window"
                if lacking == [name]
                else f"columns of the embedding missing from the window: {lacking[:5]}"
            )
            rows.append(ColumnDrift.skipped(note, **base))
            continue
        try:
            row = (
                _text_row(base, part, window, random_state)
                if part.kind == TEXT
                else _embedding_row(base, part, window, random_state)
            )
        except (WindowTooSmallError, ValueError) as exc:
            warnings.warn(f"Drift of {name!r} left out: {exc}", RuntimeWarning, stacklevel=2)
            row = ColumnDrift.skipped(str(exc) + _invalid_note(window), **base)
        rows.append(row)
    return rows


def _invalid_note(window) -> str:
    n_invalid = getattr(window, "n_invalid", 0)
    if not n_invalid:
        return ""
    return (
        f" ({n_invalid} vectors of the window were left out: of another length than the "
        "baseline's or holding NaN or an infinite value)"
    )


def _text_row(base, part, window, random_state) -> ColumnDrift:
    result = text_domain_drift(part.texts(), window.texts(), random_state=random_state)
    terms = list(result.separating_terms)
    return ColumnDrift(
        **base,
        statistic=float(result.statistic),
        pvalue=None,
        threshold=float(result.threshold),
        drifted=bool(result.drifted),
        status=DRIFT if result.drifted else OK,
        exact=False,
        statistics={
            TEXT_METHOD: {
                "statistic": float(result.statistic),
                "pvalue": float(result.pvalue),
                "interval": list(result.interval),
                "band": list(result.band),
                "fold_statistics": list(result.fold_statistics),
                "n_reference": result.n_reference,
                "n_current": result.n_current,
            },
            "separating_terms": terms,
        },
        note=_why(terms),
        decided_by=TEXT_METHOD,
    )


def _why(terms: list) -> str | None:
    if not terms:
        return None
    sides = []
    for side, label in (
        ("window", "more frequent in the window"),
        ("reference", "in the reference"),
    ):
        words = [t["term"] for t in terms if t["side"] == side][:_NOTE_TERMS]
        if words:
            sides.append(f"{label}: " + ", ".join(words))
    return "; ".join(sides)


def _embedding_row(base, part, window, random_state) -> ColumnDrift:
    result = embedding_drift(part.vectors, window.vectors, random_state=random_state)
    others = {
        "embedding_euclidean_distance": result.euclidean,
        "embedding_cosine_distance": result.cosine,
    }
    side_alarm = result.components_drifted or any(r.drifted for r in others.values())
    notes = [
        f"{key.removeprefix('embedding_').replace('_', ' ')} drifts"
        for key, r in others.items()
        if r.drifted
    ]
    if result.components_drifted:
        notes.append(
            f"{result.share_drifted_components:.0%} of the {result.dimension} components drift"
        )
    return ColumnDrift(
        **base,
        statistic=float(result.statistic),
        pvalue=None,
        threshold=float(result.threshold),
        drifted=bool(result.drifted),
        status=DRIFT if result.drifted else WARNING if side_alarm else OK,
        exact=False,
        statistics={
            EMBEDDING_METHOD: {
                **asdict(result.domain),
                "n_reference": result.n_reference,
                "n_current": result.n_current,
            },
            "euclidean": asdict(result.euclidean),
            "cosine": asdict(result.cosine),
            "share_drifted_components": result.share_drifted_components,
            "components_drifted": result.components_drifted,
            "dimension": result.dimension,
            "n_invalid": window.n_invalid,
            # The exact distance between the mean vectors of every row (not the samples').
            "mean_shift": (
                float(((window.mean - part.mean) ** 2).sum() ** 0.5) if window.count else None
            ),
        },
        note="; ".join(notes) + _invalid_note(window) or None,
        extra={
            "embedding_euclidean_distance": result.euclidean.statistic,
            "embedding_cosine_distance": result.cosine.statistic,
            "embedding_share_drifted_components": result.share_drifted_components,
        },
        decided_by=EMBEDDING_METHOD,
    )
