"""Column kinds: which columns are compared, and how.

A column is *numeric*, *categorical* or *boolean*. Datetimes and
identifier-like high-cardinality columns carry no distribution worth comparing,
so they are excluded, each with a stated reason that the report shows. Free
text and columns of vectors are not compared as values either; their decision
says so (``unstructured`` is ``'text'`` or ``'embedding'``), and the profile
judges them with their own detectors (:mod:`mlflow_observe.core.profile.text`,
:mod:`mlflow_observe.core.profile.embedding`) unless asked not to.

A numeric column with at most ``MAX_NUMERIC_CATEGORIES`` (5) distinct
reference values, each seen at least twice on average (a 0/1 flag, a binary
prediction, a rating from 1 to 5), is *categorical*: its values are labels, compared by their frequencies
(chi-square, the Z-test, Jensen-Shannon), and a shift between them shows in
its plot. Pass ``kinds={column: 'numeric'}`` to compare it as numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

NUMERIC = "numeric"
CATEGORICAL = "categorical"
BOOLEAN = "boolean"
KINDS = (NUMERIC, CATEGORICAL, BOOLEAN)
TEXT, EMBEDDING = "text", "embedding"

_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?")
# How many non-missing values the string heuristics look at.
_SNIFF_ROWS = 2000
# A numeric column with at most this many distinct reference values is categorical.
MAX_NUMERIC_CATEGORIES = 5


@dataclass(frozen=True)
class KindDecision:
    """The kind chosen for one column, or the reason it is excluded.

    Attributes
    ----------
    kind : {'numeric', 'categorical', 'boolean'} or None
        None when the column is excluded.
    reason : str
        Why the kind was chosen or why the column is excluded.
    unstructured : {'text', 'embedding'} or None
        For an excluded column: free text or a column of equal-length vectors,
        which the profile judges with their own detectors.
    """

    kind: str | None
    reason: str
    unstructured: str | None = None

    @property
    def excluded(self) -> bool:
        return self.kind is None


def infer_kind(series: pd.Series, *, max_categories: int = 100) -> KindDecision:
    """Infer the kind of one column from its values.

    Parameters
    ----------
    series : pandas.Series
        The reference values of the column.
    max_categories : int, default=100
        A text column with more distinct values than this is not treated as
        categorical (it is an identifier, free text, or high-cardinality).

    Returns
    -------
    KindDecision

    Examples
    --------
    >>> import pandas as pd
    >>> infer_kind(pd.Series([1.5, 2.0, None])).kind
    'numeric'
    >>> infer_kind(pd.Series(["a", "b", "a"])).kind
    'categorical'
    >>> decision = infer_kind(pd.Series(pd.to_datetime(["2026-01-01"])))
    >>> decision.excluded, decision.reason.startswith("datetime column")
    (True, True)
    >>> infer_kind(pd.Series([0, 1, 1, 0, 1])).reason
    'numeric dtype (int64) with 2 distinct values (at most 5): compared as categories'
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return KindDecision(BOOLEAN, "boolean dtype")
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return KindDecision(None, f"datetime column ({dtype}): excluded from drift")
    if isinstance(dtype, pd.CategoricalDtype):
        return KindDecision(CATEGORICAL, "pandas categorical dtype")
    if pd.api.types.is_integer_dtype(dtype) and _is_sequential_key(series):
        return KindDecision(
            None,
            "identifier-like (distinct, increasing integers: a row id or key): "
            "excluded from drift; pass kinds={column: 'numeric'} to compare it anyway",
        )
    if pd.api.types.is_numeric_dtype(dtype):
        return _numeric_or_categories(series, f"numeric dtype ({dtype})")
    return _infer_object_kind(series, max_categories=max_categories)


def _numeric_or_categories(series: pd.Series, reason: str) -> KindDecision:
    """Numeric, unless the column has at most MAX_NUMERIC_CATEGORIES distinct values."""
    values = series.dropna()
    if len(values) == 0:
        return KindDecision(NUMERIC, reason)
    # The head settles most columns without hashing every value.
    if values.iloc[:_SNIFF_ROWS].nunique() > MAX_NUMERIC_CATEGORIES:
        return KindDecision(NUMERIC, reason)
    n_unique = values.nunique()
    # Too few rows to tell labels from numbers: each value should repeat.
    if n_unique > MAX_NUMERIC_CATEGORIES or 2 * n_unique > len(values):
        return KindDecision(NUMERIC, reason)
    return KindDecision(
        CATEGORICAL,
        f"{reason} with {n_unique} distinct values (at most {MAX_NUMERIC_CATEGORIES}): "
        "compared as categories",
    )


def _is_sequential_key(series: pd.Series) -> bool:
    """Distinct, strictly increasing integers (a row id), on at least 100 rows."""
    values = series.dropna()
    return len(values) >= 100 and values.is_monotonic_increasing and values.is_unique


def _infer_object_kind(series: pd.Series, *, max_categories: int) -> KindDecision:
    values = series.dropna()
    if len(values) == 0:
        return KindDecision(None, "no non-missing values in the reference: kind unknown")
    head = values.iloc[:_SNIFF_ROWS]
    vectors = _vector_decision(head)
    if vectors is not None:
        return vectors
    python_types = {type(v) for v in head}
    if python_types <= {bool, np.bool_}:
        return KindDecision(BOOLEAN, "object column of booleans")
    if all(issubclass(t, (int, float, np.integer, np.floating)) for t in python_types) and not (
        python_types & {bool, np.bool_}
    ):
        return _numeric_or_categories(values, "object column of numbers")
    as_text = head.astype(str)
    if as_text.str.match(_DATE_LIKE).mean() > 0.9:
        return KindDecision(None, "datetime-like text (YYYY-MM-DD...): excluded from drift")
    n_unique = values.nunique()
    if n_unique <= max_categories:
        return KindDecision(CATEGORICAL, f"{n_unique} distinct values")
    mean_length = as_text.str.len().mean()
    has_spaces = as_text.str.contains(" ", regex=False).mean() > 0.5
    if has_spaces or mean_length > 40:
        return KindDecision(
            None,
            f"free text ({n_unique} distinct values, mean length {mean_length:.0f})",
            unstructured=TEXT,
        )
    if n_unique >= 0.5 * len(values):
        return KindDecision(
            None,
            f"identifier-like ({n_unique} distinct values in {len(values)} rows): "
            "excluded from drift",
        )
    return KindDecision(
        None,
        f"high-cardinality text ({n_unique} distinct values > max_categories={max_categories}); "
        "pass kinds={column: 'categorical'} to compare it anyway",
    )


def _vector_decision(head: pd.Series) -> KindDecision | None:
    """An embedding when every value is a numeric vector of one length; None if no value is."""
    is_vector = [
        isinstance(v, (list, tuple)) or (isinstance(v, np.ndarray) and v.ndim == 1) for v in head
    ]
    if not any(is_vector):
        return None
    if not all(is_vector):
        return KindDecision(None, "a mix of vectors and other values: excluded from drift")
    lengths = sorted({len(v) for v in head})
    if len(lengths) > 1:
        shown = ", ".join(map(str, lengths[:5])) + (", ..." if len(lengths) > 5 else "")
        return KindDecision(
            None,
            f"vectors of different lengths ({shown}): not an embedding, excluded from drift",
        )
    try:
        np.asarray(list(head.iloc[:50]), dtype=float)
    except (TypeError, ValueError):
        return KindDecision(None, "vectors of non-numeric values: excluded from drift")
    return KindDecision(
        None, f"embedding (vectors of {lengths[0]} numbers)", unstructured=EMBEDDING
    )
