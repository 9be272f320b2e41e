"""Mixed tables as numbers, for the detectors that look at all columns at once.

The multivariate detectors need a numeric matrix. :class:`FeatureEncoding`
learns, from the reference only, which columns are numbers and the vocabulary
of each categorical column (its most frequent labels, counted as text as the
profiles count them), then encodes any table the same way:

* :meth:`FeatureEncoding.codes` for trees: numbers as they are (missing and
  infinite values as NaN, which gradient-boosted trees route on their own), a
  category as its position in the vocabulary; labels outside it (unseen, or
  beyond ``max_categories``) share one extra code, and a missing value is NaN.
* :meth:`FeatureEncoding.indicators` for linear methods: numbers as they are,
  and one 0/1 indicator per vocabulary label. A missing, unseen or rare label
  sets no indicator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlflow_observe.core.profile.columns import (
    category_counts,
    category_label,
    to_float_array,
)

# The largest vocabulary kept per column (the profiles' default too). Gradient-boosted
# trees take at most 255 categories a column, so this also keeps the codes within reach.
MAX_CATEGORIES = 100


@dataclass(frozen=True)
class FeatureEncoding:
    """How the columns of a reference table become numbers.

    Attributes
    ----------
    columns : tuple of str
        Every encoded column, in the reference's order.
    categories : dict of str to tuple of str
        The vocabulary of each categorical column, most frequent label first.

    Examples
    --------
    >>> import pandas as pd
    >>> reference = pd.DataFrame({"age": [30.0, 40.0, None], "plan": ["a", "b", "a"]})
    >>> encoding = FeatureEncoding.fit(reference)
    >>> encoding.categories
    {'plan': ('a', 'b')}
    >>> codes, is_categorical = encoding.codes(pd.DataFrame({"age": [50.0], "plan": ["z"]}))
    >>> codes.tolist(), is_categorical.tolist()
    ([[50.0, 2.0]], [False, True])
    >>> encoding.indicators(reference)[0].tolist()
    [[30.0, 1.0, 0.0], [40.0, 0.0, 1.0], [nan, 1.0, 0.0]]
    """

    columns: tuple
    categories: dict

    @classmethod
    def fit(
        cls, reference: pd.DataFrame, *, categorical=None, max_categories: int = MAX_CATEGORIES
    ) -> FeatureEncoding:
        """Learn the encoding from the reference.

        ``categorical`` names the categorical columns; by default, every column
        whose dtype is not numeric (booleans count as categories).
        """
        if categorical is None:
            categorical = [c for c in reference.columns if not _is_number(reference[c])]
        vocabulary = {}
        for column in categorical:
            counts = category_counts(reference[column])
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            vocabulary[str(column)] = tuple(label for label, _ in ranked[:max_categories])
        return cls(columns=tuple(str(c) for c in reference.columns), categories=vocabulary)

    @property
    def numeric_columns(self) -> list[str]:
        return [c for c in self.columns if c not in self.categories]

    def codes(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """One column per feature; returns the matrix and which columns are categorical."""
        self._check_columns(frame)
        matrix = np.empty((len(frame), len(self.columns)))
        for j, column in enumerate(self.columns):
            if column in self.categories:
                matrix[:, j] = self._category_codes(frame[column])
            else:
                matrix[:, j] = _finite_or_nan(frame[column])
        return matrix, np.array([c in self.categories for c in self.columns])

    def indicators(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Numbers, then one indicator per label: the matrix, and which columns are indicators."""
        self._check_columns(frame)
        blocks, is_indicator = [], []
        for column in self.columns:
            if column not in self.categories:
                blocks.append(_finite_or_nan(frame[column])[:, None])
                is_indicator.append(False)
                continue
            size = len(self.categories[column])
            codes = self._category_codes(frame[column])
            block = np.zeros((len(frame), size))
            known = np.isfinite(codes) & (codes < size)
            block[np.flatnonzero(known), codes[known].astype(np.int64)] = 1.0
            blocks.append(block)
            is_indicator.extend([True] * size)
        matrix = np.hstack(blocks) if blocks else np.empty((len(frame), 0))
        return matrix, np.array(is_indicator, dtype=bool)

    def _category_codes(self, series: pd.Series) -> np.ndarray:
        vocabulary = self.categories[str(series.name)]
        position = {label: float(i) for i, label in enumerate(vocabulary)}
        other = float(len(vocabulary))
        # Label each distinct value once, then spread the codes over the rows.
        raw_codes, uniques = pd.factorize(series, use_na_sentinel=True)
        lookup = np.array([position.get(category_label(v), other) for v in uniques] + [np.nan])
        return lookup[raw_codes]  # the sentinel -1 picks the trailing NaN

    def _check_columns(self, frame: pd.DataFrame) -> None:
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"Columns of the reference are missing from the data: {missing}.")


def _is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
        series.dtype
    )


def _finite_or_nan(series: pd.Series) -> np.ndarray:
    values, _ = to_float_array(series)
    # A copy: to_numpy may hand back the caller's own data.
    return np.where(np.isfinite(values), values, np.nan)
