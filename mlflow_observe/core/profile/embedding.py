"""An embedding column in the profile: moments that merge exactly, and a sample of vectors.

An embedding is a fixed-length numeric vector per row: a column whose values
are lists or arrays (``list<float>`` in Arrow and Parquet), or a group of
numeric columns declared as one (``embeddings={"doc": ["e0", ..., "e383"]}``).
Its part in the profile keeps

* the *moments*: the count of complete vectors, their mean vector and the sums
  of squared deviations per dimension (merged exactly, Chan et al. [1]_);
* the rows left out: missing (``None``, NaN) and *invalid* (a vector of
  another length than the baseline's, or holding NaN or an infinite value);
* a uniform priority sample of at most ``sample_size`` vectors (1,000 by
  default), which merges exactly like the profile's row sample.

References
----------
.. [1] Chan, T. F., Golub, G. H., LeVeque, R. J. "Updating formulae and a pairwise
   algorithm for computing sample variances", COMPSTAT 1982.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EMBEDDING_SAMPLE_SIZE = 1_000


def as_vectors(values, name: str = "embedding") -> np.ndarray:
    """A 2-D float array from a 2-D array, or a sequence of equal-length vectors.

    Rows that are missing or hold a non-finite value are left out.

    Examples
    --------
    >>> as_vectors([[1, 2], [3, 4], None]).shape
    (2, 2)
    """
    if isinstance(values, np.ndarray) and values.ndim == 2:
        array = values.astype(float, copy=False)
    else:
        rows = [v for v in values if v is not None and not is_missing_vector(v)]
        lengths = {len(v) for v in rows}
        if len(lengths) > 1:
            raise ValueError(
                f"The {name} column holds vectors of different lengths ({sorted(lengths)}); "
                "an embedding column needs one length on every row."
            )
        array = np.asarray([np.asarray(v, dtype=float) for v in rows], dtype=float)
        if array.ndim != 2:
            array = array.reshape(len(rows), -1)
    return array[np.isfinite(array).all(axis=1)]


def is_missing_vector(value) -> bool:
    """A missing row of an embedding column: None or a float NaN (not a vector holding NaN)."""
    return value is None or (isinstance(value, float) and np.isnan(value))


def is_vector(value) -> bool:
    """A list, tuple or 1-D array: a candidate embedding value."""
    if isinstance(value, np.ndarray):
        return value.ndim == 1
    return isinstance(value, (list, tuple))


class EmbeddingColumnProfile:
    """An embedding column's profile part: moments, rows left out and a sample of vectors.

    Parameters
    ----------
    name : str
        The embedding's name (the column, or the declared group's name).
    dimension : int
        The baseline's vector length.
    source : list of str, optional
        The declared group's numeric columns, in order; None for a column of vectors.
    sample_size : int, default=1000

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> column = pd.Series([[1.0, 2.0], [3.0, 4.0], None, [1.0, float("nan")], [1.0]])
    >>> part = EmbeddingColumnProfile.fit("doc", column)
    >>> part.dimension, part.count, part.n_missing, part.n_invalid
    (2, 2, 1, 2)
    >>> part.mean.tolist(), part.variance.tolist()
    ([2.0, 3.0], [2.0, 2.0])
    """

    kind = "embedding"

    def __init__(
        self, name: str, dimension: int, *, source=None, sample_size: int = EMBEDDING_SAMPLE_SIZE
    ):
        self.name = name
        self.dimension = int(dimension)
        self.source = None if source is None else [str(c) for c in source]
        self.sample_size = int(sample_size)
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.n_missing = 0
        self.n_invalid = 0
        self.mean = np.zeros(self.dimension)
        self.m2 = np.zeros(self.dimension)
        self._keys = np.empty(0)
        self._vectors = np.empty((0, self.dimension))

    @classmethod
    def fit(
        cls,
        name: str,
        values,
        *,
        source=None,
        sample_size: int = EMBEDDING_SAMPLE_SIZE,
        rng: np.random.Generator | None = None,
    ) -> EmbeddingColumnProfile:
        """Take the dimension from ``values`` (the most common vector length) and count them."""
        if source is not None:
            dimension = len(source)
        else:
            lengths = pd.Series([len(v) for v in values if is_vector(v)])
            if lengths.empty:
                raise ValueError(f"The embedding column {name!r} holds no vectors.")
            dimension = int(lengths.mode().iloc[0])
        part = cls(name, dimension, source=source, sample_size=sample_size)
        part.update(values, rng=rng or np.random.default_rng(0))
        return part

    def empty_like(self) -> EmbeddingColumnProfile:
        return EmbeddingColumnProfile(
            self.name, self.dimension, source=self.source, sample_size=self.sample_size
        )

    @property
    def variance(self) -> np.ndarray:
        """The per-dimension variance of the vectors counted (ddof=1; NaN below two vectors)."""
        if self.count < 2:
            return np.full(self.dimension, np.nan)
        return self.m2 / (self.count - 1)

    @property
    def vectors(self) -> np.ndarray:
        """The sampled vectors (rows x dimension)."""
        return self._vectors

    def values_of(self, frame: pd.DataFrame):
        """This embedding's values in ``frame``: its column, or its group's columns as a 2-D array.

        None when ``frame`` lacks the column (or a column of the group).
        """
        if self.source is None:
            return frame[self.name] if self.name in frame.columns else None
        if not all(c in frame.columns for c in self.source):
            return None
        return frame[self.source].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)

    def update(self, values, *, rng: np.random.Generator) -> None:
        """Count complete vectors of the baseline's length; the others as missing or invalid."""
        vectors, n_missing, n_invalid = self._split(values)
        self.n_missing += n_missing
        self.n_invalid += n_invalid
        if len(vectors) == 0:
            return
        n, mean = len(vectors), vectors.mean(axis=0)
        m2 = ((vectors - mean) ** 2).sum(axis=0)
        total = self.count + n
        delta = mean - self.mean
        self.m2 = self.m2 + m2 + delta**2 * self.count * n / total
        self.mean = self.mean + delta * n / total
        self.count = total
        keys = rng.random(n)
        self._absorb(keys, vectors)

    def _split(self, values):
        if isinstance(values, np.ndarray) and values.ndim == 2:
            array = values.astype(float, copy=False)
            missing = np.isnan(array).all(axis=1)
            complete = np.isfinite(array).all(axis=1)
            n_invalid = int((~complete & ~missing).sum())
            return array[complete], int(missing.sum()), n_invalid
        rows, n_missing, n_invalid = [], 0, 0
        for value in values:
            if is_missing_vector(value):
                n_missing += 1
                continue
            if not is_vector(value) or len(value) != self.dimension:
                n_invalid += 1
                continue
            try:
                vector = np.asarray(value, dtype=float)
            except (TypeError, ValueError):
                n_invalid += 1
                continue
            if not np.isfinite(vector).all():
                n_invalid += 1
                continue
            rows.append(vector)
        array = np.vstack(rows) if rows else np.empty((0, self.dimension))
        return array, n_missing, n_invalid

    def _absorb(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        all_keys = np.concatenate([self._keys, keys])
        order = np.argsort(all_keys, kind="stable")[: self.sample_size]
        self._keys = all_keys[order]
        self._vectors = np.vstack([self._vectors, vectors])[order]

    def merge(self, other: EmbeddingColumnProfile) -> EmbeddingColumnProfile:
        """Both parts' moments (exact) and samples (the sample of both streams)."""
        if (self.dimension, self.source) != (other.dimension, other.source):
            raise ValueError(
                f"Cannot merge the embedding profiles of {self.name!r}: their dimensions or "
                "columns differ (count both parts with the same baseline's empty_like())."
            )
        merged = self.empty_like()
        merged.n_missing = self.n_missing + other.n_missing
        merged.n_invalid = self.n_invalid + other.n_invalid
        total = self.count + other.count
        if total:
            delta = other.mean - self.mean
            merged.mean = self.mean + delta * other.count / total
            merged.m2 = self.m2 + other.m2 + delta**2 * self.count * other.count / total
        merged.count = total
        merged._keys, merged._vectors = self._keys.copy(), self._vectors.copy()
        merged._absorb(other._keys, other._vectors)
        return merged

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "dimension": self.dimension,
            "source": self.source,
            "sample_size": self.sample_size,
            "count": self.count,
            "n_missing": self.n_missing,
            "n_invalid": self.n_invalid,
            "mean": self.mean.tolist(),
            "m2": self.m2.tolist(),
            "keys": self._keys.tolist(),
            "vectors": self._vectors.tolist(),
        }

    @classmethod
    def from_dict(cls, name: str, payload: dict) -> EmbeddingColumnProfile:
        part = cls(
            name,
            payload["dimension"],
            source=payload.get("source"),
            sample_size=payload["sample_size"],
        )
        part.count = int(payload["count"])
        part.n_missing = int(payload["n_missing"])
        part.n_invalid = int(payload["n_invalid"])
        part.mean = np.asarray(payload["mean"], dtype=float)
        part.m2 = np.asarray(payload["m2"], dtype=float)
        part._keys = np.asarray(payload["keys"], dtype=float)
        part._vectors = np.asarray(payload["vectors"], dtype=float).reshape(-1, part.dimension)
        return part
