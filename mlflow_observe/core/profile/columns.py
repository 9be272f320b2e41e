"""Per-column sufficient statistics: counts in the reference's bins, moments, categories.

A column profile has a *layout* learned once from the reference (bin edges,
category vocabulary) and *counts* that any number of ``update`` calls add to.
Two profiles with the same layout merge by adding their counts, so a profile can
be filled chunk by chunk, or on many machines, and merged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlflow_observe.core.profile._grid import GridIndex
from mlflow_observe.core.profile.kinds import BOOLEAN, CATEGORICAL, NUMERIC

# How many distinct unseen categories a profile remembers as examples.
MAX_UNSEEN_EXAMPLES = 20
# The fine grid's extra levels in each tail: 2% of the mass, then halving every two steps.
_TAIL_START, _TAIL_RATIO, _TAIL_STEPS = 0.02, np.sqrt(2.0), 40


def grid_levels(grid_size: int) -> np.ndarray:
    """The quantile levels of the fine grid: ``grid_size`` even steps, refined in the tails.

    Heavy tails put most of a Wasserstein distance in the last few cells; levels at
    ``0.02 / sqrt(2) ** k`` from each end (k = 0 .. 40) keep those cells narrow.

    >>> levels = grid_levels(10)
    >>> len(levels), float(levels[0]), float(levels[-1]), bool(levels[1] < 1e-7)
    (93, 0.0, 1.0, True)
    """
    tail = _TAIL_START * _TAIL_RATIO ** -np.arange(_TAIL_STEPS + 1)
    even = np.linspace(0.0, 1.0, grid_size + 1)
    return np.unique(np.concatenate([even, tail, 1.0 - tail]))


class NumericColumnProfile:
    """Counts of a numeric column in the reference's quantile bins, plus moments.

    The bins come from the reference only. ``grid`` holds the sorted distinct
    reference quantiles ``g_0 = min < ... < g_m = max`` at ``grid_size`` even
    levels, refined in both tails (the fine grid, for KS and Wasserstein on
    large data, see :func:`grid_levels`); the ``n_bins``
    quantile edges (for PSI and Jensen-Shannon) are a subset of it. The counts
    array has ``m + 3`` cells::

        [x < g_0] [g_0, g_1) ... [g_(m-1), g_m) [x == g_m] [x > g_m]

    The first and last cells are the guard bins (below the reference minimum,
    above its maximum). The sum of the values in every cell is kept as well
    (``sums``), so that the Wasserstein distance places a cell's mass at its
    mean: exact outside the reference range, and close on heavy tails, where a
    cell can be wide. A value that holds at least one grid step of the
    reference's mass (a spike at 0, the values of an integer column) gets a cell
    of its own, ``[v, nextafter(v))``, so KS and Wasserstein see it exactly.
    Missing values (NaN, None) and infinite values are counted apart and left
    out of every distribution.
    """

    kind = NUMERIC

    def __init__(self, name: str, *, grid, coarse_positions):
        self.name = name
        self.grid = np.asarray(grid, dtype=float)
        self.coarse_positions = np.asarray(coarse_positions, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        n_cells = len(self.grid) + 2 if len(self.grid) else 0
        self.counts = np.zeros(n_cells, dtype=np.int64)
        # ints, or sums of weights (floats) for a window counted with weights
        self.n_missing: float = 0
        self.n_inf: float = 0
        self.n_invalid: float = 0
        self.count: float = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = np.inf
        self.max = -np.inf
        self.low_sum = 0.0
        self.high_sum = 0.0
        # The sum of the squared weights of the finite values; None while every row weighed 1.
        self.weight_sq: float | None = None
        # None for a profile read from a format without per-cell sums (version < 3).
        self.sums: np.ndarray | None = np.zeros(n_cells, dtype=float)  # None: format 1-2
        self._search_edges = (
            GridIndex(np.append(self.grid, np.nextafter(self.grid[-1], np.inf)))
            if len(self.grid)
            else None
        )

    # -- layout -------------------------------------------------------------------------

    @classmethod
    def fit(cls, name: str, values: np.ndarray, *, n_bins: int, grid_size: int):
        """Learn the bin layout from reference values (finite values only)."""
        finite = values[np.isfinite(values)]
        if len(finite) == 0:
            return cls(name, grid=[], coarse_positions=[])
        coarse = np.quantile(finite, np.linspace(0.0, 1.0, n_bins + 1))
        fine = np.quantile(finite, grid_levels(grid_size))
        return cls.from_quantiles(name, fine=fine, coarse=coarse)

    @classmethod
    def from_quantiles(cls, name: str, *, fine, coarse):
        """The layout from reference quantiles at the fine grid's and the coarse bins' levels.

        >>> NumericColumnProfile.from_quantiles("x", fine=[0, 1, 2, 3], coarse=[0, 2, 3]).bin_edges
        array([0., 2., 3.])
        """
        fine = np.asarray(fine, dtype=float)
        coarse = np.unique(np.asarray(coarse, dtype=float))
        # A value at two or more quantile levels holds at least a grid step of the mass:
        # an edge just above it gives it a cell of its own (the maximum has one already).
        atoms = np.unique(fine[:-1][fine[:-1] == fine[1:]])
        atoms = atoms[atoms < fine[-1]] if len(fine) else atoms
        grid = np.unique(np.concatenate([fine, coarse, np.nextafter(atoms, np.inf)]))
        return cls(name, grid=grid, coarse_positions=np.searchsorted(grid, coarse))

    def empty_like(self) -> NumericColumnProfile:
        return NumericColumnProfile(
            self.name, grid=self.grid, coarse_positions=self.coarse_positions
        )

    @property
    def has_layout(self) -> bool:
        return len(self.grid) > 0

    @property
    def bin_edges(self) -> np.ndarray:
        """The coarse (``n_bins``) edges, from the reference minimum to its maximum."""
        return self.grid[self.coarse_positions]

    # -- counting -----------------------------------------------------------------------

    def update(self, series: pd.Series, weights: np.ndarray | None = None) -> None:
        """Add the values of ``series`` to the counts (each counted ``weights[i]`` times)."""
        values, n_invalid = to_float_array(series)
        if weights is not None:
            self._update_weighted(series, values, n_invalid, weights)
            return
        self.n_invalid += n_invalid
        finite = np.isfinite(values)
        n_finite = int(np.count_nonzero(finite))
        n_nan = int(np.count_nonzero(np.isnan(values)))
        self.n_missing += n_nan - n_invalid  # unreadable values became NaN too
        self.n_inf += len(values) - n_finite - n_nan
        if n_finite < len(values):
            values = values[finite]
        if n_finite == 0:
            return
        if self.has_layout:
            assert self._search_edges is not None  # built with the grid
            cells = self._search_edges.positions(values)
            chunk_counts = np.bincount(cells, minlength=len(self.counts))
            self.counts += chunk_counts
            if self.sums is not None:
                self.sums += np.bincount(cells, weights=values, minlength=len(self.counts))
            if chunk_counts[0]:
                self.low_sum += float(values[cells == 0].sum())
            if chunk_counts[-1]:
                self.high_sum += float(values[cells == len(self.counts) - 1].sum())
        chunk_mean = float(values.mean())
        centred = values - chunk_mean
        # einsum, not np.dot: BLAS's threads make dot erratic (up to 100x slower) on a
        # busy machine, and they compete with the threads that count other columns.
        self._add_moments(n_finite, chunk_mean, float(np.einsum("i,i->", centred, centred)))
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))

    def _update_weighted(self, series, values, n_invalid, weights) -> None:
        # Every count becomes a sum of weights; moments are the weighted ones.
        self._make_weighted()
        nan = np.isnan(values)
        invalid = nan & ~series.isna().to_numpy() if n_invalid else np.zeros(len(values), bool)
        finite = np.isfinite(values)
        self.n_invalid += float(weights[invalid].sum())
        self.n_missing += float(weights[nan & ~invalid].sum())
        self.n_inf += float(weights[~finite & ~nan].sum())
        values, weights = values[finite], weights[finite]
        if len(values) == 0:
            return
        self.weight_sq = (self.weight_sq or 0.0) + float(np.einsum("i,i->", weights, weights))
        weighted = values * weights
        if self.has_layout:
            assert self._search_edges is not None  # built with the grid
            cells = self._search_edges.positions(values)
            self.counts += np.bincount(cells, weights=weights, minlength=len(self.counts))
            if self.sums is not None:
                self.sums += np.bincount(cells, weights=weighted, minlength=len(self.counts))
            self.low_sum += float(weighted[cells == 0].sum())
            self.high_sum += float(weighted[cells == len(self.counts) - 1].sum())
        total = float(weights.sum())
        chunk_mean = float(weighted.sum() / total)
        centred = values - chunk_mean
        self._add_moments(total, chunk_mean, float(np.einsum("i,i,i->", weights, centred, centred)))
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))

    def _make_weighted(self) -> None:
        """Counts as float sums of weights; the rows counted so far each weighed 1."""
        if self.weight_sq is None:
            self.weight_sq = float(self.count)
            self.counts = self.counts.astype(float)

    @property
    def weighted(self) -> bool:
        """Whether rows were counted with weights (counts are then sums of weights)."""
        return self.weight_sq is not None

    @property
    def n_effective(self) -> float:
        """Kish's effective sample size of the finite values, ``(sum w)^2 / sum w^2``
        (``count`` when unweighted): the ``n`` of the tests' p-values."""
        if self.weight_sq is None:
            return self.count
        return self.count**2 / self.weight_sq if self.weight_sq > 0 else 0.0

    def _add_moments(self, n: float, mean: float, m2: float) -> None:
        # Chan et al. (1979) pairwise update of count, mean and sum of squared deviations.
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total

    def merge(self, other: NumericColumnProfile) -> NumericColumnProfile:
        if not np.array_equal(self.grid, other.grid):
            raise ValueError(
                f"Cannot merge profiles of column {self.name!r}: their bin edges differ. "
                "Build one of them with empty_like() of the other."
            )
        merged = self.empty_like()
        if self.sums is None or other.sums is None:
            merged.sums = None
        if self.weighted or other.weighted:
            merged._make_weighted()
            merged.weight_sq = sum(
                p.count if p.weight_sq is None else p.weight_sq for p in (self, other)
            )
        for part in (self, other):
            merged.counts += part.counts
            if merged.sums is not None:
                merged.sums += part.sums
            merged.n_missing += part.n_missing
            merged.n_inf += part.n_inf
            merged.n_invalid += part.n_invalid
            merged.low_sum += part.low_sum
            merged.high_sum += part.high_sum
            if part.count:
                merged._add_moments(part.count, part.mean, part.m2)
            merged.min = min(merged.min, part.min)
            merged.max = max(merged.max, part.max)
        return merged

    # -- derived views ------------------------------------------------------------------

    @property
    def n_values(self) -> float:
        """Rows seen: finite values, missing, infinite and invalid ones (an int unweighted)."""
        return self.count + self.n_missing + self.n_inf + self.n_invalid

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.count)) if self.count else float("nan")

    def coarse_counts(self) -> np.ndarray:
        """Counts in ``[below min] + n_bins quantile bins + [above max]``."""
        starts = np.concatenate(
            [[0, 1], self.coarse_positions[1:-1] + 1, [len(self.counts) - 1]]
        ).astype(np.int64)
        if len(self.coarse_positions) == 1:  # a constant reference column
            starts = np.array([0, 1, len(self.counts) - 1])
        return np.add.reduceat(self.counts, starts)

    # -- serialisation ------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "grid": self.grid.tolist(),
            "coarse_positions": self.coarse_positions.tolist(),
            "counts": self.counts.tolist(),
            "n_missing": self.n_missing,
            "n_inf": self.n_inf,
            "n_invalid": self.n_invalid,
            "count": self.count,
            "mean": self.mean,
            "m2": self.m2,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
            "low_sum": self.low_sum,
            "high_sum": self.high_sum,
            "sums": None if self.sums is None else self.sums.tolist(),
            **({} if self.weight_sq is None else {"weight_sq": self.weight_sq}),
        }

    @classmethod
    def from_dict(cls, name: str, payload: dict) -> NumericColumnProfile:
        profile = cls(name, grid=payload["grid"], coarse_positions=payload["coarse_positions"])
        weight_sq = payload.get("weight_sq")  # present only for a window counted with weights
        number = int if weight_sq is None else float
        profile.counts = np.asarray(
            payload["counts"], dtype=np.int64 if weight_sq is None else float
        )
        profile.weight_sq = None if weight_sq is None else float(weight_sq)
        sums = payload.get("sums")  # absent before profile format version 3
        profile.sums = None if sums is None else np.asarray(sums, dtype=float)
        for key in ("n_missing", "n_inf", "n_invalid", "count"):
            setattr(profile, key, number(payload[key]))
        for key in ("mean", "m2", "low_sum", "high_sum"):
            setattr(profile, key, float(payload[key]))
        profile.min = np.inf if payload["min"] is None else float(payload["min"])
        profile.max = -np.inf if payload["max"] is None else float(payload["max"])
        return profile


class CategoricalColumnProfile:
    """Counts of each reference category, plus missing and unseen values.

    Categories are compared as text labels (``True`` and ``1.0`` become ``'True'``
    and ``'1'``), so a column that arrives with another dtype still matches its
    reference. Values outside the reference vocabulary are counted as *unseen*,
    and up to 20 of them are kept as examples for the report.
    """

    def __init__(self, name: str, *, categories, kind: str = CATEGORICAL):
        self.name = name
        self.kind = kind
        self.categories = [str(c) for c in categories]
        self._index = {c: i for i, c in enumerate(self.categories)}
        self.reset()

    def reset(self) -> None:
        self.counts = np.zeros(len(self.categories), dtype=np.int64)
        self.n_missing: float = 0  # a sum of weights for a window counted with weights
        self.n_unseen: float = 0
        self.unseen_examples: dict[str, float] = {}
        self.value_types: set[str] = set()
        # The sum of the squared weights of the non-missing values; None while every row weighed 1.
        self.weight_sq: float | None = None

    @classmethod
    def fit(cls, name: str, series: pd.Series, *, kind: str, max_categories: int):
        if kind == BOOLEAN:
            return cls(name, categories=["False", "True"], kind=kind)
        return cls.from_counts(
            name, category_counts(series, kind=kind), kind=kind, max_categories=max_categories
        )

    @classmethod
    def from_counts(cls, name: str, counts: dict, *, kind: str, max_categories: int):
        """The layout from the reference's label counts: its ``max_categories`` commonest labels.

        >>> CategoricalColumnProfile.from_counts("c", {"b": 1, "a": 5, "z": 1}, kind="categorical",
        ...                                      max_categories=2).categories
        ['a', 'b']
        """
        if kind == BOOLEAN:
            return cls(name, categories=["False", "True"], kind=kind)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls(name, categories=[label for label, _ in ranked[:max_categories]], kind=kind)

    def empty_like(self) -> CategoricalColumnProfile:
        return CategoricalColumnProfile(self.name, categories=self.categories, kind=self.kind)

    @property
    def has_layout(self) -> bool:
        return len(self.categories) > 0

    def update(self, series: pd.Series, weights: np.ndarray | None = None) -> None:
        """Add the values of ``series`` to the counts (each counted ``weights[i]`` times)."""
        if weights is None:
            self.n_missing += int(series.isna().sum())
            counts = category_counts(series, kind=self.kind)
        else:
            self._make_weighted()
            missing = series.isna().to_numpy()
            self.n_missing += float(weights[missing].sum())
            present = weights[~missing]
            self.weight_sq = (self.weight_sq or 0.0) + float(np.einsum("i,i->", present, present))
            counts = category_counts(series, kind=self.kind, weights=weights)
        self.value_types |= value_type_names(series)
        for label, count in counts.items():
            position = self._index.get(label)
            if position is None:
                self.n_unseen += count
                self.unseen_examples[label] = self.unseen_examples.get(label, 0) + count
            else:
                self.counts[position] += count
        self._trim_examples()

    def _make_weighted(self) -> None:
        """Counts as float sums of weights; the rows counted so far each weighed 1."""
        if self.weight_sq is None:
            self.weight_sq = float(self.count)
            self.counts = self.counts.astype(float)

    @property
    def weighted(self) -> bool:
        """Whether rows were counted with weights (counts are then sums of weights)."""
        return self.weight_sq is not None

    @property
    def n_effective(self) -> float:
        """Kish's effective sample size of the non-missing values, ``(sum w)^2 / sum w^2``
        (``count`` when unweighted): the ``n`` of the tests' p-values."""
        if self.weight_sq is None:
            return self.count
        return self.count**2 / self.weight_sq if self.weight_sq > 0 else 0.0

    def _trim_examples(self) -> None:
        if len(self.unseen_examples) > MAX_UNSEEN_EXAMPLES:
            kept = sorted(self.unseen_examples.items(), key=lambda item: (-item[1], item[0]))
            self.unseen_examples = dict(kept[:MAX_UNSEEN_EXAMPLES])

    def merge(self, other: CategoricalColumnProfile) -> CategoricalColumnProfile:
        if self.categories != other.categories:
            raise ValueError(
                f"Cannot merge profiles of column {self.name!r}: their categories differ. "
                "Build one of them with empty_like() of the other."
            )
        merged = self.empty_like()
        if self.weighted or other.weighted:
            merged._make_weighted()
            merged.weight_sq = sum(
                p.count if p.weight_sq is None else p.weight_sq for p in (self, other)
            )
        for part in (self, other):
            merged.counts += part.counts
            merged.n_missing += part.n_missing
            merged.n_unseen += part.n_unseen
            merged.value_types |= part.value_types
            for label, count in part.unseen_examples.items():
                merged.unseen_examples[label] = merged.unseen_examples.get(label, 0) + count
        merged._trim_examples()
        return merged

    @property
    def count(self):
        """Non-missing values: reference categories and unseen ones (weighted: their weight)."""
        if self.weight_sq is not None:
            return float(self.counts.sum()) + self.n_unseen
        return int(self.counts.sum()) + self.n_unseen

    @property
    def n_values(self) -> int:
        return self.count + self.n_missing

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "categories": self.categories,
            "counts": self.counts.tolist(),
            "n_missing": self.n_missing,
            "n_unseen": self.n_unseen,
            "unseen_examples": self.unseen_examples,
            "value_types": sorted(self.value_types),
            **({} if self.weight_sq is None else {"weight_sq": self.weight_sq}),
        }

    @classmethod
    def from_dict(cls, name: str, payload: dict) -> CategoricalColumnProfile:
        profile = cls(name, categories=payload["categories"], kind=payload["kind"])
        weight_sq = payload.get("weight_sq")  # present only for a window counted with weights
        number = int if weight_sq is None else float
        profile.counts = np.asarray(
            payload["counts"], dtype=np.int64 if weight_sq is None else float
        )
        profile.weight_sq = None if weight_sq is None else float(weight_sq)
        profile.n_missing = number(payload["n_missing"])
        profile.n_unseen = number(payload["n_unseen"])
        profile.unseen_examples = {str(k): number(v) for k, v in payload["unseen_examples"].items()}
        profile.value_types = set(payload.get("value_types", []))
        return profile


def to_float_array(series: pd.Series) -> tuple[np.ndarray, int]:
    """Return the values as float64 (NaN for missing) and how many could not be read as numbers."""
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype="float64", na_value=np.nan), 0
    coerced = pd.to_numeric(series, errors="coerce")
    values = coerced.to_numpy(dtype="float64", na_value=np.nan)
    n_invalid = int(coerced.isna().sum() - series.isna().sum())
    return values, n_invalid


def category_label(value, kind: str = CATEGORICAL) -> str:
    """The text label a value is counted under.

    >>> category_label(True), category_label(2.0), category_label("b")
    ('True', '2', 'b')
    >>> category_label("true", kind="boolean")
    'True'
    """
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if kind == BOOLEAN:
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return "True" if value.strip().lower() == "true" else "False"
        if isinstance(value, (int, float, np.integer, np.floating)) and value in (0, 1):
            return "True" if value == 1 else "False"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def category_counts(series: pd.Series, *, kind: str = CATEGORICAL, weights=None) -> dict:
    """Count non-missing values by label (one hash pass, then a loop over distinct values).

    With ``weights``, each value counts its row's weight (the counts are floats).

    >>> category_counts(pd.Series(["a", "b", "a", None]), weights=np.array([1.0, 4.0, 2.0, 8.0]))
    {'a': 3.0, 'b': 4.0}
    """
    if weights is None:
        pairs = series.value_counts(dropna=True, sort=False).items()
        number: type = int
    else:
        present = series.notna().to_numpy()
        values = pd.Series(weights[present]).groupby(
            series[present].to_numpy(), sort=False, observed=True
        )
        pairs = values.sum().items()
        number = float
    counts: dict = {}
    for value, count in pairs:
        label = category_label(value, kind)
        counts[label] = counts.get(label, 0) + number(count)
    return counts


def value_type_names(series: pd.Series) -> set[str]:
    """The Python types of the values of an object column (its dtype name otherwise)."""
    if series.dtype != object:
        return {str(series.dtype)}
    distinct = series.dropna().unique()
    return {type(v).__name__ for v in distinct[:10_000]}


def column_profile_from_dict(name: str, payload: dict):
    if payload["kind"] == NUMERIC:
        return NumericColumnProfile.from_dict(name, payload)
    return CategoricalColumnProfile.from_dict(name, payload)
