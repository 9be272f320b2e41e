"""The baseline profile: everything a later comparison needs, from counts alone.

A :class:`DataProfile` holds one column profile per compared column (bin edges
or categories learned from the reference, and the counts in them), the columns
left out and why, which column holds the target and which the prediction, and
a bounded uniform sample of rows for exact small-sample tests.

The profile of a production window is built with :meth:`DataProfile.empty_like`
of the baseline, so both sides are counted in the same bins.

Free-text and embedding columns have parts of their own (``unstructured``): a
text column's descriptors are ordinary numeric columns named
``<column>.<descriptor>``, computed from the text on every update, and its
part keeps the baseline's vocabulary and a sample of texts
(:mod:`~mlflow_observe.core.profile.text`); an embedding's part keeps moments
and a sample of vectors (:mod:`~mlflow_observe.core.profile.embedding`).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from itertools import pairwise

import numpy as np
import pandas as pd

from mlflow_observe.core._parallel import parallel_map
from mlflow_observe.core._validation import (
    InstanceOf,
    Interval,
    NoneValue,
    Options,
    checked,
)
from mlflow_observe.core.performance.degradation import (
    DegradationError,
    reference_performance,
)
from mlflow_observe.core.performance.reference import ReferencePerformance
from mlflow_observe.core.profile.columns import (
    CategoricalColumnProfile,
    NumericColumnProfile,
    column_profile_from_dict,
    to_float_array,
)
from mlflow_observe.core.profile.embedding import EMBEDDING_SAMPLE_SIZE, EmbeddingColumnProfile
from mlflow_observe.core.profile.kinds import (
    EMBEDDING,
    KINDS,
    NUMERIC,
    TEXT,
    KindDecision,
    infer_kind,
)
from mlflow_observe.core.profile.text import TEXT_SAMPLE_SIZE, TextColumnProfile, TextVocabulary
from mlflow_observe.core.sample import RowSample
from mlflow_observe.core.weights import check_weights

PROFILE_FORMAT = "mlflow-observe/profile"
# Version 2 added the model's feature impact ("impact"); version 3 the per-cell sums of
# numeric columns ("sums") and their grid's own cells for repeated values. Versions 1 and 2
# still load (their Wasserstein distance spreads a cell's mass evenly over it). Version 4
# added the text and embedding parts ("unstructured").
PROFILE_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)

_NAMES = [NoneValue(), InstanceOf(str, list, tuple, description="a column name or a list of them")]


class ProfileError(ValueError):
    """A profile cannot be built, read or merged."""


class DataProfile:
    """Mergeable sufficient statistics of a table.

    Use :func:`build_profile` to learn a profile from reference data, and
    :meth:`empty_like` then :meth:`update` to count other data in its bins.

    Attributes
    ----------
    columns : dict of str to column profile
        The compared columns, features first, then target and prediction.
    excluded : dict of str to str
        Columns left out, with the reason.
    targets, predictions : str or None
        The names of the label and prediction columns, when recorded.
    n_rows : int or float
        Rows counted; counted with weights, the rows they stand for (the sum of the weights).
    n_logged : int
        Rows counted, each once whatever its weight (``n_rows`` when unweighted).
    weight_sq : float or None
        The sum of the squared row weights; None when every row weighed 1.
    sample : RowSample
        A uniform sample of at most ``settings['sample_size']`` rows.
    performance : ReferencePerformance or None
        The reference's model performance, when recorded with labels and
        predictions (see :mod:`mlflow_observe.core.performance.reference`).
    impact : FeatureImpact or None
        Each feature's impact on the model's predictions, when recorded with a
        model (see :mod:`mlflow_observe.core.profile.feature_impact`).
    unstructured : dict of str to TextColumnProfile or EmbeddingColumnProfile
        The text and embedding columns' parts, by column (or declared group) name.

    Examples
    --------
    >>> import pandas as pd
    >>> whole = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    >>> baseline = build_profile(whole, n_bins=2)
    >>> first, second = baseline.empty_like(), baseline.empty_like()
    >>> first.update(whole.iloc[:1])
    >>> second.update(whole.iloc[1:])
    >>> (first + second).columns["x"].counts.tolist() == baseline.columns["x"].counts.tolist()
    True
    """

    def __init__(
        self,
        columns,
        *,
        excluded=None,
        targets=None,
        predictions=None,
        settings=None,
        performance=None,
        unstructured=None,
    ):
        self.columns = dict(columns)
        self.unstructured: dict = dict(unstructured or {})
        self.performance: ReferencePerformance | None = performance
        self.impact = None
        self.excluded = dict(excluded or {})
        self.targets = targets
        self.predictions = predictions
        self.settings = dict(settings or {})
        self.metadata: dict = {}
        self.n_rows: int | float = 0
        self.n_logged = 0
        self.weight_sq: float | None = None
        self._n_updates = 0
        self.sample = RowSample(self.settings.get("sample_size", 5000), list(self.columns))

    def reset(self) -> None:
        """Forget every count, keeping the layout."""
        for column in self.columns.values():
            column.reset()
        for part in self.unstructured.values():
            part.reset()
        self.n_rows = 0
        self.n_logged = 0
        self.weight_sq = None
        self._n_updates = 0
        self.sample = RowSample(self.settings.get("sample_size", 5000), list(self.columns))

    # -- building -------------------------------------------------------------------------

    def empty_like(self) -> DataProfile:
        """A profile with the same columns and bins and no counts."""
        return DataProfile(
            {name: column.empty_like() for name, column in self.columns.items()},
            excluded=self.excluded,
            targets=self.targets,
            predictions=self.predictions,
            settings=self.settings,
            performance=self.performance,
            unstructured={name: part.empty_like() for name, part in self.unstructured.items()},
        )

    @property
    def descriptor_columns(self) -> dict:
        """Each text descriptor column, to the text column it describes."""
        return {
            descriptor: name
            for name, part in self.unstructured.items()
            if part.kind == TEXT
            for descriptor in part.descriptor_columns
        }

    @property
    def input_columns(self) -> list[str]:
        """The columns a window must bring to be counted: the compared columns that are not
        derived, the text and embedding columns, and the declared embeddings' columns."""
        derived = self.descriptor_columns
        names = [name for name in self.columns if name not in derived]
        for name, part in self.unstructured.items():
            names.extend(getattr(part, "source", None) or [name])
        return list(dict.fromkeys(names))

    def present_columns(self, columns) -> list[str]:
        """``columns`` (a window's) with the descriptor columns its text columns give."""
        columns = list(columns)
        present = set(columns)
        derived = [d for d, text in self.descriptor_columns.items() if text in present]
        return columns + [d for d in derived if d not in present]

    def _with_descriptors(self, frame: pd.DataFrame) -> pd.DataFrame:
        tables = [
            part.descriptors(frame[name]).set_axis(frame.index)
            for name, part in self.unstructured.items()
            if part.kind == TEXT and name in frame.columns
        ]
        if not tables:
            return frame
        return pd.concat([frame, *tables], axis=1)

    def update(
        self,
        frame: pd.DataFrame,
        *,
        weights=None,
        n_jobs: int | None = None,
        part: int | None = None,
    ) -> None:
        """Count the rows of ``frame``. Columns it lacks are left uncounted.

        ``weights`` (one finite number > 0 a row) counts each row that many
        times: a row kept with probability 1/4 by load shedding stands for 4
        (see :func:`check_weights`). Counts, moments and ``n_rows`` become sums
        of weights; the tests then take Kish's effective sample size as their
        ``n``. ``n_jobs`` threads count the columns of large frames (default:
        every core). ``part`` numbers a profile counted apart from others that
        will be merged with it (a Spark partition, say), so that each part draws
        its own sample keys.
        """
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"update() takes a pandas DataFrame. Got {type(frame).__name__}.")
        if weights is not None:
            weights = check_weights(weights, len(frame))
        frame = self._with_descriptors(frame)
        present = [column for name, column in self.columns.items() if name in frame.columns]
        parallel_map(
            lambda column: column.update(frame[column.name], weights),
            present,
            n_jobs=n_jobs,
            n_rows=len(frame),
        )
        seed = [self.settings.get("random_state", 0), self._n_updates]
        rng = np.random.default_rng(seed if part is None else [*seed, part])
        self.sample.update(frame, rng=rng)
        # Text and embedding samples are uniform over rows, whatever their weights.
        for name, piece in self.unstructured.items():
            values = piece.values_of(frame) if piece.kind == EMBEDDING else frame.get(name)
            if values is not None:
                piece.update(values, rng=rng)
        if weights is None:
            self.n_rows += len(frame)
            if self.weight_sq is not None:
                self.weight_sq += len(frame)
        else:
            if self.weight_sq is None:
                self.weight_sq = float(self.n_rows)
            self.n_rows += float(weights.sum())
            self.weight_sq += float(np.einsum("i,i->", weights, weights))
        self.n_logged += len(frame)
        self._n_updates += 1

    @property
    def weighted(self) -> bool:
        """Whether rows were counted with weights."""
        return self.weight_sq is not None

    @property
    def n_effective(self) -> float:
        """Kish's effective sample size ``(sum w)^2 / sum w^2`` of the rows (``n_rows`` unweighted)."""
        if self.weight_sq is None:
            return self.n_rows
        return self.n_rows**2 / self.weight_sq if self.weight_sq > 0 else 0.0

    def merge(self, other: DataProfile) -> DataProfile:
        """Return the profile of both parts' rows. The two must share their layout.

        The reference performance merges as :meth:`ReferencePerformance.merge` says:
        kept when both parts carry the same (or one has none), refused otherwise.
        """
        if list(self.columns) != list(other.columns):
            raise ProfileError(
                "Cannot merge profiles of different columns: "
                f"{list(self.columns)} != {list(other.columns)}."
            )
        merged = self.empty_like()
        if self.performance is None:
            merged.performance = other.performance
        elif other.performance is not None:
            try:
                merged.performance = self.performance.merge(other.performance)
            except ValueError as exc:
                raise ProfileError(str(exc)) from exc
        merged.columns = {
            name: column.merge(other.columns[name]) for name, column in self.columns.items()
        }
        merged.sample = self.sample.merge(other.sample)
        if list(self.unstructured) != list(other.unstructured):
            raise ProfileError(
                "Cannot merge profiles of different text or embedding columns: "
                f"{list(self.unstructured)} != {list(other.unstructured)}."
            )
        try:
            merged.unstructured = {
                name: part.merge(other.unstructured[name])
                for name, part in self.unstructured.items()
            }
        except ValueError as exc:
            raise ProfileError(str(exc)) from exc
        merged.n_rows = self.n_rows + other.n_rows
        merged.n_logged = self.n_logged + other.n_logged
        if self.weighted or other.weighted:
            merged.weight_sq = sum(
                p.n_rows if p.weight_sq is None else p.weight_sq for p in (self, other)
            )
        merged._n_updates = self._n_updates + other._n_updates
        return merged

    __add__ = merge

    # -- reading --------------------------------------------------------------------------

    @property
    def feature_names(self) -> list[str]:
        """The model's inputs: every compared column but the label, prediction and probabilities."""
        roles = {self.targets, self.predictions}
        if self.performance is not None:
            roles.update(self.performance.probabilities)
        return [name for name in self.columns if name not in roles]

    # -- serialisation --------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "metadata": self.metadata,
            "settings": self.settings,
            "n_rows": self.n_rows,
            **(
                {}
                if self.weight_sq is None
                else {"n_logged": self.n_logged, "weight_sq": self.weight_sq}
            ),
            "n_updates": self._n_updates,
            "targets": self.targets,
            "predictions": self.predictions,
            "excluded": self.excluded,
            "performance": None if self.performance is None else self.performance.to_dict(),
            "impact": None if self.impact is None else self.impact.to_dict(),
            "columns": [
                {"name": name, **column.to_dict()} for name, column in self.columns.items()
            ],
            "sample": self.sample.to_dict(),
            "unstructured": [
                {"name": name, **part.to_dict()} for name, part in self.unstructured.items()
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, payload: dict) -> DataProfile:
        if not isinstance(payload, dict) or payload.get("format") != PROFILE_FORMAT:
            raise ProfileError(
                "This is not an mlflow-observe baseline profile (no "
                f"'format': {PROFILE_FORMAT!r} field)."
            )
        if payload.get("version") not in READABLE_VERSIONS:
            raise ProfileError(
                f"Baseline profile version {payload.get('version')!r} is not supported by this "
                f"mlflow-observe (reads versions {READABLE_VERSIONS}). Upgrade mlflow-observe or "
                "record the baseline again."
            )
        check_profile_schema(payload)
        try:
            return cls._from_checked_dict(payload)
        except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
            raise ProfileError(
                f"The baseline profile does not match its format: {type(exc).__name__}: {exc}. "
                "Record the baseline again."
            ) from exc

    @classmethod
    def _from_checked_dict(cls, payload: dict) -> DataProfile:
        columns = {c["name"]: column_profile_from_dict(c["name"], c) for c in payload["columns"]}
        profile = cls(
            columns,
            excluded=payload["excluded"],
            targets=payload["targets"],
            predictions=payload["predictions"],
            settings=payload["settings"],
            performance=(
                ReferencePerformance.from_dict(payload["performance"])
                if payload.get("performance")
                else None
            ),
            unstructured={
                part["name"]: unstructured_part_from_dict(part)
                for part in payload.get("unstructured") or []
            },
        )
        if payload.get("weight_sq") is None:
            profile.n_rows = int(payload["n_rows"])
            profile.n_logged = profile.n_rows
        else:  # a window counted with weights
            profile.n_rows = float(payload["n_rows"])
            profile.n_logged = int(payload["n_logged"])
            profile.weight_sq = float(payload["weight_sq"])
        profile._n_updates = int(payload.get("n_updates", 1))
        profile.sample = RowSample.from_dict(payload["sample"])
        profile.metadata = dict(payload.get("metadata", {}))
        if payload.get("impact"):
            from mlflow_observe.core.profile.feature_impact import FeatureImpact

            profile.impact = FeatureImpact.from_dict(payload["impact"])
        return profile

    @classmethod
    def from_json(cls, text: str) -> DataProfile:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProfileError(f"The baseline profile is not valid JSON: {exc}") from exc
        return cls.from_dict(payload)

    def __repr__(self) -> str:
        return (
            f"DataProfile(n_rows={self.n_rows}, columns={len(self.columns)}, "
            f"excluded={len(self.excluded)})"
        )


# -- the JSON layout's schema, checked before a profile is read -----------------------------------

_INT64_MAX = 2**63 - 1
_ROOT_FIELDS = ("columns", "excluded", "targets", "predictions", "settings", "n_rows", "sample")


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _refuse(field: str, value, expected: str):
    raise ProfileError(
        f"The baseline profile's field {field!r} must be {expected}. Got {_shown(value)} instead."
    )


def _field(record: dict, key: str, where: str):
    if key not in record:
        raise ProfileError(f"The baseline profile has no field {where + key!r}.")
    return record[key]


def _count(field: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INT64_MAX:
        _refuse(field, value, f"an integer between 0 and {_INT64_MAX}")
    return value


def _finite(field: str, value, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        _refuse(field, value, "a finite number" + (" or null" if allow_none else ""))


def _typed(field: str, value, kind: type, description: str):
    if not isinstance(value, kind) or isinstance(value, bool):
        _refuse(field, value, description)
    return value


def _amount(field: str, value) -> float:
    """A count of a window counted with weights: a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < np.inf:
        _refuse(field, value, "a finite number >= 0")
    return value


def _counts(field: str, values, length: int | None = None, *, weighted: bool = False) -> None:
    _typed(field, values, list, "a list of counts")
    if length is not None and len(values) != length:
        _refuse(field, f"a list of {len(values)} counts", f"a list of {length} counts")
    check = _amount if weighted else _count
    for i, value in enumerate(values):
        check(f"{field}[{i}]", value)


def check_profile_schema(payload: dict) -> None:
    """Refuse a profile JSON that does not match its layout, naming the field and its value.

    Checked: the fields every reader needs, their types, counts as integers that
    fit 64 bits, numbers finite, bin positions inside their grid, list lengths
    that must agree. Fields it does not know are left alone.

    Examples
    --------
    >>> check_profile_schema({"columns": [], "excluded": {}, "targets": None,
    ...                       "predictions": None, "settings": {}, "n_rows": -1, "sample": {}})
    Traceback (most recent call last):
    ...
    mlflow_observe.core.profile.data_profile.ProfileError: The baseline profile's field 'n_rows' must be an integer between 0 and 9223372036854775807. Got -1 instead.
    """
    for key in _ROOT_FIELDS:
        _field(payload, key, "")
    _typed("columns", payload["columns"], list, "a list of column profiles")
    _typed("excluded", payload["excluded"], dict, "an object of column names to reasons")
    _typed("settings", payload["settings"], dict, "an object")
    for key in ("targets", "predictions"):
        if payload[key] is not None:
            _typed(key, payload[key], str, "a column name or null")
    if payload.get("weight_sq") is None:
        _count("n_rows", payload["n_rows"])
    else:  # a window counted with weights
        _amount("n_rows", payload["n_rows"])
        _amount("weight_sq", payload["weight_sq"])
        _count("n_logged", _field(payload, "n_logged", ""))
    if "n_updates" in payload:
        _count("n_updates", payload["n_updates"])
    names = set()
    for i, column in enumerate(payload["columns"]):
        where = f"columns[{i}]"
        _typed(where, column, dict, "a column profile (an object)")
        name = _typed(f"{where}.name", _field(column, "name", f"{where}."), str, "a text")
        if name in names:
            _refuse(f"{where}.name", name, "a name no other column has")
        names.add(name)
        _check_column(column, f"{where}.")
    _check_sample(_typed("sample", payload["sample"], dict, "an object"))
    parts = _typed("unstructured", payload.get("unstructured") or [], list, "a list of parts")
    for i, part in enumerate(parts):
        _typed(f"unstructured[{i}]", part, dict, "a text or embedding part (an object)")
        _check_unstructured(part, f"unstructured[{i}].")
    if payload.get("performance") is not None:
        _check_performance(_typed("performance", payload["performance"], dict, "an object"))
    if payload.get("impact") is not None:
        _check_impact(_typed("impact", payload["impact"], dict, "an object"), len(names))


def _check_impact(impact: dict, n_columns: int) -> None:
    """Feature impact and the baseline's global importance: one finite number per column."""
    for part in ("importances", "shap", "attribution"):
        if impact.get(part) is None and part != "importances":
            continue
        values: dict = _typed(
            f"impact.{part}", impact.get(part), dict, "an object of column names to numbers"
        )
        if len(values) > n_columns:
            _refuse(f"impact.{part}", f"{len(values)} entries", f"at most {n_columns} entries")
        for name, value in values.items():
            _finite(f"impact.{part}.{name}", value)
            if part == "attribution" and value < 0:
                _refuse(f"impact.{part}.{name}", value, "a mean absolute attribution (>= 0)")
    if impact.get("attribution") is not None:
        _count("impact.attribution_rows", impact.get("attribution_rows", 0))
        _typed("impact.attribution_method", impact.get("attribution_method"), str, "a text")


def _check_column(column: dict, where: str) -> None:
    kind = _field(column, "kind", where)
    weighted = column.get("weight_sq") is not None
    count = _amount if weighted else _count
    if weighted:
        _amount(f"{where}weight_sq", column["weight_sq"])
    if kind not in KINDS:
        _refuse(f"{where}kind", kind, "one of " + ", ".join(repr(k) for k in KINDS))
    if kind == NUMERIC:
        grid = _typed(f"{where}grid", _field(column, "grid", where), list, "a list of numbers")
        for j, value in enumerate(grid):
            _finite(f"{where}grid[{j}]", value)
        if any(b < a for a, b in pairwise(grid)):
            _refuse(f"{where}grid", grid, "a non-decreasing list of numbers")
        positions = _field(column, "coarse_positions", where)
        _typed(f"{where}coarse_positions", positions, list, "a list of grid positions")
        for j, value in enumerate(positions):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(grid):
                _refuse(
                    f"{where}coarse_positions[{j}]",
                    value,
                    f"a position in the grid of {len(grid)} values (0 to {len(grid) - 1})",
                )
        _counts(
            f"{where}counts",
            _field(column, "counts", where),
            len(grid) + 2 if grid else 0,
            weighted=weighted,
        )
        for key in ("n_missing", "n_inf", "n_invalid", "count"):
            count(f"{where}{key}", _field(column, key, where))
        for key in ("mean", "m2", "low_sum", "high_sum"):
            _finite(f"{where}{key}", _field(column, key, where))
        for key in ("min", "max"):
            _finite(f"{where}{key}", _field(column, key, where), allow_none=True)
        return
    categories = _field(column, "categories", where)
    _typed(f"{where}categories", categories, list, "a list of categories")
    _counts(f"{where}counts", _field(column, "counts", where), len(categories), weighted=weighted)
    for key in ("n_missing", "n_unseen"):
        count(f"{where}{key}", _field(column, key, where))
    examples = _field(column, "unseen_examples", where)
    _typed(f"{where}unseen_examples", examples, dict, "an object of values to counts")
    for value, n in examples.items():
        count(f"{where}unseen_examples[{value!r}]", n)


def unstructured_part_from_dict(payload: dict):
    """A text or embedding part from its (checked) JSON record."""
    if payload["kind"] == TEXT:
        return TextColumnProfile.from_dict(payload["name"], payload)
    return EmbeddingColumnProfile.from_dict(payload["name"], payload)


def _check_unstructured(part: dict, where: str) -> None:
    _typed(f"{where}name", _field(part, "name", where), str, "a text")
    kind = _field(part, "kind", where)
    if kind not in (TEXT, EMBEDDING):
        _refuse(f"{where}kind", kind, "'text' or 'embedding'")
    for key in ("sample_size", "count", "n_missing"):
        _count(f"{where}{key}", _field(part, key, where))
    if kind == TEXT:
        vocabulary = _typed(
            f"{where}vocabulary", _field(part, "vocabulary", where), dict, "an object"
        )
        frequency = _typed(
            f"{where}vocabulary.document_frequency",
            _field(vocabulary, "document_frequency", f"{where}vocabulary."),
            dict,
            "an object of words to counts",
        )
        for word, n in frequency.items():
            _count(f"{where}vocabulary.document_frequency[{word!r}]", n)
        _count(
            f"{where}vocabulary.n_documents",
            _field(vocabulary, "n_documents", f"{where}vocabulary."),
        )
        sample = _typed(f"{where}sample", _field(part, "sample", where), dict, "an object")
        _check_sample(sample, f"{where}sample.")
        return
    dimension = _count(f"{where}dimension", _field(part, "dimension", where))
    if dimension < 1:
        _refuse(f"{where}dimension", dimension, "an integer >= 1")
    source = part.get("source")
    if source is not None:
        _typed(f"{where}source", source, list, "a list of column names or null")
        if len(source) != dimension or not all(isinstance(c, str) for c in source):
            _refuse(f"{where}source", source, f"a list of {dimension} column names")
    _count(f"{where}n_invalid", _field(part, "n_invalid", where))
    for key in ("mean", "m2"):
        values = _typed(f"{where}{key}", _field(part, key, where), list, "a list of numbers")
        if len(values) != dimension:
            _refuse(f"{where}{key}", f"a list of {len(values)} numbers", f"{dimension} numbers")
        for j, value in enumerate(values):
            _finite(f"{where}{key}[{j}]", value)
    keys = _typed(f"{where}keys", _field(part, "keys", where), list, "a list of numbers")
    vectors = _typed(f"{where}vectors", _field(part, "vectors", where), list, "a list of vectors")
    if len(vectors) != len(keys):
        _refuse(f"{where}vectors", f"a list of {len(vectors)} vectors", f"{len(keys)} vectors")
    for j, vector in enumerate(vectors):
        _typed(f"{where}vectors[{j}]", vector, list, "a list of numbers")
        if len(vector) != dimension:
            _refuse(f"{where}vectors[{j}]", f"{len(vector)} numbers", f"{dimension} numbers")
        for k, value in enumerate(vector):
            _finite(f"{where}vectors[{j}][{k}]", value)


def _check_sample(sample: dict, where: str = "sample.") -> None:
    _count(f"{where}capacity", _field(sample, "capacity", where))
    _count(f"{where}n_seen", _field(sample, "n_seen", where))
    keys = _typed(f"{where}keys", _field(sample, "keys", where), list, "a list of numbers")
    for j, value in enumerate(keys):
        _finite(f"{where}keys[{j}]", value)
    columns = _field(sample, "columns", where)
    _typed(f"{where}columns", columns, dict, "an object of column names to value lists")
    for name, values in columns.items():
        _typed(f"{where}columns[{name!r}]", values, list, "a list of values")
        if len(values) != len(keys):
            _refuse(
                f"{where}columns[{name!r}]",
                f"a list of {len(values)} values",
                f"a list of {len(keys)} values, one per sample key",
            )


def _check_performance(performance: dict) -> None:
    task = _field(performance, "task", "performance.")
    if task not in ("classification", "regression"):
        _refuse("performance.task", task, "'classification' or 'regression'")
    _count("performance.n_rows", _field(performance, "n_rows", "performance."))
    metrics = performance.get("metrics") or {}
    _typed("performance.metrics", metrics, dict, "an object of metric names to values")
    for name, metric in metrics.items():
        where = f"performance.metrics.{name}"
        _typed(where, metric, dict, "an object with 'value', 'ci_low' and 'ci_high'")
        for key in ("value", "ci_low", "ci_high"):
            _finite(f"{where}.{key}", _field(metric, key, f"{where}."))
    classes = performance.get("classes")
    if classes is not None:
        _typed("performance.classes", classes, list, "a list of classes")
        if performance.get("class_counts") is not None:
            _counts("performance.class_counts", performance["class_counts"], len(classes))
    calibration = performance.get("calibration")
    if calibration is not None:
        _typed("performance.calibration", calibration, dict, "an object")
        curves = calibration.get("classes", [calibration])
        for j, curve in enumerate(curves):
            where = (
                f"performance.calibration.classes[{j}]"
                if "classes" in calibration
                else ("performance.calibration")
            )
            _typed(where, curve, dict, "an object with 'x' and 'y'")
            x, y = _field(curve, "x", f"{where}."), _field(curve, "y", f"{where}.")
            _typed(f"{where}.x", x, list, "a list of numbers")
            _typed(f"{where}.y", y, list, "a list of numbers")
            if len(x) != len(y) or not x:
                _refuse(f"{where}.y", f"a list of {len(y)} values", f"{len(x)} values, as 'x'")
            for key, values in (("x", x), ("y", y)):
                for k, value in enumerate(values):
                    _finite(f"{where}.{key}[{k}]", value)


BUILD_CONSTRAINTS: dict[str, list] = {
    "data": [InstanceOf(pd.DataFrame, description="a pandas DataFrame")],
    "targets": [NoneValue(), InstanceOf(str)],
    "predictions": [NoneValue(), InstanceOf(str)],
    "columns": _NAMES,
    "exclude": _NAMES,
    "kinds": [NoneValue(), InstanceOf(dict)],
    "n_bins": [Interval(int, 2, None)],
    "grid_size": [Interval(int, 10, None)],
    "max_categories": [Interval(int, 2, None)],
    "sample_size": [Interval(int, 0, None)],
    "random_state": [Interval(int, 0, None)],
    "n_jobs": [NoneValue(), Interval(int, -1, None)],
    "probabilities": _NAMES,
    "task": [NoneValue(), Options("classification", "regression")],
    "text_columns": [InstanceOf(bool)],
    "embeddings": [NoneValue(), InstanceOf(dict)],
    "text_sample_size": [Interval(int, 0, None)],
    "embedding_sample_size": [Interval(int, 0, None)],
}


@checked(BUILD_CONSTRAINTS)
def build_profile(
    data: pd.DataFrame,
    *,
    targets: str | None = None,
    predictions: str | None = None,
    columns=None,
    exclude=None,
    kinds: dict | None = None,
    n_bins: int = 10,
    grid_size: int = 1000,
    max_categories: int = 100,
    sample_size: int = 5000,
    random_state: int = 0,
    n_jobs: int | None = None,
    probabilities=None,
    task: str | None = None,
    text_columns: bool = True,
    embeddings: dict | None = None,
    text_sample_size: int = TEXT_SAMPLE_SIZE,
    embedding_sample_size: int = EMBEDDING_SAMPLE_SIZE,
) -> DataProfile:
    """Learn a baseline profile from reference data.

    Parameters
    ----------
    data : pandas.DataFrame
        The reference data (training or validation set), with the target and
        prediction columns when they are to be compared too. (For a Spark
        DataFrame, :func:`mlflow_observe.build_profile` profiles it with Spark.)
    targets, predictions : str, optional
        The label and prediction columns. They are profiled like features and
        compared as target drift and prediction drift.
    columns : list of str, optional
        Compare only these feature columns (default: all but the excluded).
    exclude : list of str, optional
        Columns never to compare (identifiers, timestamps).
    kinds : dict of str to {'numeric', 'categorical', 'boolean'}, optional
        Kind overrides; otherwise each column's kind is inferred.
    n_bins : int, default=10
        Quantile bins for PSI and Jensen-Shannon, from the reference only.
    grid_size : int, default=1000
        Quantile levels of the fine grid used for KS and Wasserstein on large data.
    max_categories : int, default=100
        Largest vocabulary kept for a categorical column; a text column with more
        distinct values is excluded unless ``kinds`` says it is categorical.
    sample_size : int, default=5000
        Rows kept in the uniform sample. References up to this size are kept
        whole, so exact tests on them are exactly SciPy's.
    random_state : int, default=0
        Seed of the sample.
    n_jobs : int, optional
        Threads that count columns on large data (default: every core; 1: no threads).
    probabilities : str or list of str, optional
        Class-probability columns (binary: the positive class's; multiclass: one per
        class, in sorted class order). With ``targets`` and ``predictions``, the
        profile records the reference performance, its bootstrap intervals and
        the calibration needed to estimate performance without labels.
    task : {'classification', 'regression'}, optional
        Default: inferred from the labels.
    text_columns : bool, default=True
        Profile free-text feature columns: their descriptors as numeric columns
        ``<column>.<descriptor>``, their vocabulary and a sample of texts for the
        text domain classifier. False leaves them out, with the reason; ``exclude``
        leaves out any one column.
    embeddings : dict of str to list of str, optional
        Groups of numeric columns that are one embedding, by name
        (``{"doc": ["e0", ..., "e383"]}``). Columns of vectors (lists, arrays)
        are embeddings without being declared.
    text_sample_size : int, default=2000
        Texts kept in each text column's sample (each cut to 1,000 characters).
    embedding_sample_size : int, default=1000
        Vectors kept in each embedding's sample.

    Returns
    -------
    DataProfile

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"age": [31, 45, 27, 60], "plan": ["a", "b", "a", "a"]})
    >>> profile = build_profile(frame, n_bins=2)
    >>> {name: column.kind for name, column in profile.columns.items()}
    {'age': 'numeric', 'plan': 'categorical'}
    >>> profile.columns["plan"].counts.tolist()
    [3, 1]
    """
    plan = plan_profile(
        data,
        targets=targets,
        predictions=predictions,
        columns=columns,
        exclude=exclude,
        kinds=kinds,
        n_bins=n_bins,
        grid_size=grid_size,
        max_categories=max_categories,
        sample_size=sample_size,
        random_state=random_state,
        text_columns=text_columns,
        embeddings=embeddings,
        text_sample_size=text_sample_size,
        embedding_sample_size=embedding_sample_size,
    )

    def fit(name, decision):
        if decision.kind == NUMERIC:
            values, _ = to_float_array(data[name])
            return NumericColumnProfile.fit(name, values, n_bins=n_bins, grid_size=grid_size)
        return CategoricalColumnProfile.fit(
            name, data[name], kind=decision.kind, max_categories=max_categories
        )

    kept = list(plan.kept.items())
    fitted = parallel_map(lambda item: fit(*item), kept, n_jobs=n_jobs, n_rows=len(data))
    profile = plan.layout(
        {name: column for (name, _), column in zip(kept, fitted, strict=True)},
        targets=targets,
        predictions=predictions,
    )
    with counting_reference(profile):
        profile.update(data, n_jobs=n_jobs)
    if targets is not None and predictions is not None:
        profile.performance = profile_performance(
            data, targets, predictions, as_column_list(probabilities), task, random_state
        )
    return profile


@dataclass(frozen=True)
class ProfilePlan:
    """How a baseline profiles its columns, decided from reference rows before any count.

    Every engine starts a baseline with :func:`plan_profile`, then gives each kept
    column its layout its own way (fitted on pandas, from cluster-wide quantiles
    and label counts on Spark) and counts the rows into :meth:`layout`.

    Attributes
    ----------
    decisions : dict of str to KindDecision
        Each candidate column's kind, or why it is left out: features, then the roles.
    settings : dict
        The settings the profile records (bins, grid, sample sizes, seed).
    parts : dict of str to TextColumnProfile or EmbeddingColumnProfile
        The text and embedding parts, by column (or declared group) name; no row counted.
    descriptors : dict of str to NumericColumnProfile
        The text descriptor columns' layouts (``<column>.<descriptor>``); no row counted.

    Examples
    --------
    >>> import pandas as pd
    >>> plan = plan_profile(pd.DataFrame({"x": [1.0, 2.0], "day": ["2024-01-01"] * 2}))
    >>> list(plan.kept), list(plan.excluded)
    (['x'], ['day'])
    """

    decisions: dict[str, KindDecision]
    settings: dict
    parts: dict
    descriptors: dict

    @property
    def kept(self) -> dict[str, KindDecision]:
        """The decisions of the compared columns."""
        return {name: d for name, d in self.decisions.items() if not d.excluded}

    @property
    def excluded(self) -> dict[str, str]:
        """Each column left out, with the reason (text and embedding columns have parts)."""
        return {
            name: d.reason
            for name, d in self.decisions.items()
            if d.excluded and name not in self.parts
        }

    @property
    def kind_reasons(self) -> dict[str, str]:
        """Why each compared, text or embedding column is profiled as it is."""
        return {
            name: d.reason
            for name, d in self.decisions.items()
            if not d.excluded or name in self.parts
        }

    def excluding(self, name: str, reason: str) -> ProfilePlan:
        """The plan with column ``name`` left out, for ``reason``."""
        return replace(self, decisions={**self.decisions, name: KindDecision(None, reason)})

    def layout(self, columns: dict, *, targets=None, predictions=None) -> DataProfile:
        """The uncounted profile of the kept columns, given their ``columns`` layouts.

        A kept column without a layout is left out. The roles are recorded when
        their columns are compared; the metadata says when, and each kind's reason.
        """
        compared = {name: columns[name] for name in self.kept if name in columns}
        profile = DataProfile(
            with_descriptors(compared, self.descriptors, (targets, predictions)),
            excluded=self.excluded,
            targets=targets if targets in compared else None,
            predictions=predictions if predictions in compared else None,
            settings=self.settings,
            unstructured=self.parts,
        )
        profile.metadata = {
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "kind_reasons": self.kind_reasons,
        }
        return profile


def plan_profile(
    data: pd.DataFrame,
    *,
    targets: str | None = None,
    predictions: str | None = None,
    columns=None,
    exclude=None,
    kinds: dict | None = None,
    n_bins: int = 10,
    grid_size: int = 1000,
    max_categories: int = 100,
    sample_size: int = 5000,
    random_state: int = 0,
    text_columns: bool = True,
    embeddings: dict | None = None,
    text_sample_size: int = TEXT_SAMPLE_SIZE,
    embedding_sample_size: int = EMBEDDING_SAMPLE_SIZE,
) -> ProfilePlan:
    """Decide from reference rows which columns a baseline compares, and how.

    Checks the rows (some, unique column names, the declared embeddings), decides
    each column's kind, and learns the text and embedding parts. Takes the options of
    :func:`build_profile` (checked there) and ``data``: every reference row on pandas,
    the first rows of a Spark reference.

    Returns
    -------
    ProfilePlan

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"note": [f"visit {i} went fine" for i in range(200)], "x": 0.5})
    >>> plan = plan_profile(frame, n_bins=4)
    >>> list(plan.kept), list(plan.parts), list(plan.descriptors)[:2]
    (['x'], ['note'], ['note.length_characters', 'note.length_words'])
    >>> plan.settings["n_bins"]
    4
    """
    if len(data) == 0:
        raise ProfileError("Cannot build a baseline profile from data with no rows.")
    check_unique_columns(data)
    grouped = check_embedding_groups(data, embeddings)
    decisions = decide_kinds(
        data.drop(columns=grouped), targets, predictions, columns, exclude, kinds, max_categories
    )
    settings = {
        "n_bins": n_bins,
        "grid_size": grid_size,
        "max_categories": max_categories,
        "sample_size": sample_size,
        "random_state": random_state,
        "text_sample_size": text_sample_size,
        "embedding_sample_size": embedding_sample_size,
    }
    parts, descriptors = unstructured_layout(
        data, decisions, settings, text_columns=text_columns, embeddings=embeddings
    )
    return ProfilePlan(decisions, settings, parts, descriptors)


def profile_performance(data, targets, predictions, probabilities, task, random_state):

    missing = [c for c in probabilities if c not in data.columns]
    if missing:
        raise ProfileError(f"Probability columns not found in the reference data: {missing}.")
    labelled = data[targets].notna() & data[predictions].notna()
    frame = data[labelled]
    proba = frame[probabilities].to_numpy(dtype=float, na_value=np.nan) if probabilities else None
    numeric = [
        c
        for c in frame.columns
        if c not in (targets, predictions, *probabilities)
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]
    try:
        return reference_performance(
            frame[targets],
            frame[predictions],
            proba,
            probabilities=probabilities,
            task=task,
            features=frame[numeric],
            names=(targets, predictions),
            random_state=random_state,
        )
    except DegradationError as exc:
        raise ProfileError(str(exc)) from None


def check_unique_columns(data: pd.DataFrame) -> None:
    duplicated = data.columns[data.columns.duplicated()].tolist()
    if duplicated:
        raise ProfileError(f"Column names must be unique; repeated: {duplicated}.")


def as_column_list(names) -> list[str]:
    if names is None:
        return []
    return [names] if isinstance(names, str) else list(names)


def decide_kinds(data, targets, predictions, columns, exclude, kinds, max_categories):
    kinds = dict(kinds or {})
    for name, kind in kinds.items():
        if kind not in KINDS:
            raise ValueError(
                f"The kind of column {name!r} must be one of {', '.join(KINDS)}. Got {kind!r}."
            )
    roles = [r for r in (targets, predictions) if r is not None]
    wanted = as_column_list(columns) or [c for c in data.columns if c not in roles]
    unknown = [c for c in [*wanted, *roles, *kinds] if c not in data.columns]
    if unknown:
        raise ProfileError(
            f"Columns not found in the reference data: {unknown}. "
            f"It has: {list(map(str, data.columns))[:20]}."
        )
    excluded = set(as_column_list(exclude))
    decisions: dict[str, KindDecision] = {}
    for name in [*wanted, *roles]:
        if name in excluded:
            decisions[name] = KindDecision(None, "excluded by the user")
        elif name in kinds:
            decisions[name] = KindDecision(kinds[name], "set by the user")
        else:
            decisions[name] = infer_kind(data[name], max_categories=max_categories)
    return decisions


def check_embedding_groups(data: pd.DataFrame, embeddings) -> list[str]:
    """The columns of the declared embeddings, refused when one is missing or shared."""
    grouped: list[str] = []
    for name, group in (embeddings or {}).items():
        if not isinstance(name, str) or isinstance(group, str) or not hasattr(group, "__iter__"):
            raise ValueError(
                "The 'embeddings' parameter of build_profile must map a name to a list of "
                f"numeric columns, e.g. {{'doc': ['e0', 'e1']}}. Got {name!r}: {group!r}."
            )
        group = list(group)
        if len(group) < 2:
            raise ProfileError(
                f"The embedding {name!r} must name at least 2 columns. Got {group!r}."
            )
        missing = [c for c in group if c not in data.columns]
        if missing:
            raise ProfileError(
                f"The embedding {name!r} names columns not found in the reference data: "
                f"{missing[:10]}. Check the 'embeddings' option."
            )
        if name in data.columns:
            raise ProfileError(
                f"The embedding {name!r} has the name of a column of the data; name it apart."
            )
        shared = [c for c in group if c in grouped]
        if shared:
            raise ProfileError(f"Columns {shared[:10]} belong to two declared embeddings.")
        grouped.extend(group)
    return grouped


def unstructured_layout(data, decisions, settings, *, text_columns=True, embeddings=None):
    """The text and embedding parts, and the descriptor columns' layouts, learned from ``data``.

    Free-text features (``decision.unstructured == 'text'``) get a part with the
    vocabulary of ``data`` and a numeric layout per descriptor; columns of vectors
    and the declared groups get an embedding part. Returns ``(parts, descriptors)``;
    neither has counted a row (``update`` counts).
    """
    parts: dict = {}
    descriptors: dict = {}
    n_bins, grid_size = settings["n_bins"], settings["grid_size"]
    for name, decision in decisions.items():
        if (
            decision.unstructured == TEXT
            and text_columns
            and decision.reason != "excluded by the user"
        ):
            part = TextColumnProfile(
                name,
                TextVocabulary.fit(data[name]),
                sample_size=settings.get("text_sample_size", TEXT_SAMPLE_SIZE),
            )
            table = part.descriptors(data[name])
            for column in table.columns:
                values, _ = to_float_array(table[column])
                descriptors[column] = NumericColumnProfile.fit(
                    column, values, n_bins=n_bins, grid_size=grid_size
                )
            parts[name] = part
        elif decision.unstructured == EMBEDDING:
            parts[name] = EmbeddingColumnProfile.fit(
                name,
                data[name],
                sample_size=settings.get("embedding_sample_size", EMBEDDING_SAMPLE_SIZE),
            ).empty_like()
    for name, group in (embeddings or {}).items():
        parts[name] = EmbeddingColumnProfile(
            name,
            len(group),
            source=list(group),
            sample_size=settings.get("embedding_sample_size", EMBEDDING_SAMPLE_SIZE),
        )
    return parts, descriptors


@contextmanager
def counting_reference(profile: DataProfile):
    """While the reference is counted, its texts' out-of-vocabulary shares leave each text out
    of the vocabulary it was learned into (see :func:`~mlflow_observe.core.profile.text.text_descriptors`)."""
    texts = [part for part in profile.unstructured.values() if part.kind == TEXT]
    for part in texts:
        part.counting_reference = True
    try:
        yield profile
    finally:
        for part in texts:
            part.counting_reference = False


def with_descriptors(layout: dict, descriptors: dict, roles) -> dict:
    """The column layouts with the descriptor columns after the features, before the roles."""
    features = {name: column for name, column in layout.items() if name not in roles}
    rest = {name: column for name, column in layout.items() if name in roles}
    return {**features, **descriptors, **rest}
