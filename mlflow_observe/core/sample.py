"""A bounded, mergeable, uniform sample of rows (priority sampling).

Every row gets a random key in [0, 1); the sample keeps the ``capacity`` rows
with the smallest keys. The rows kept from the union of two streams are the
smallest keys of the two samples, so merging two samples gives exactly the
sample of the concatenated stream, and the result is a uniform sample without
replacement. Below capacity, the sample is the whole data.

References
----------
.. [1] Efraimidis, P. S., Spirakis, P. G. "Weighted random sampling with a
   reservoir", Information Processing Letters 97(5), 2006 (the unweighted case).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class RowSample:
    """A uniform sample of at most ``capacity`` rows of a table.

    Parameters
    ----------
    capacity : int
        The largest number of rows kept.
    columns : list of str
        The columns kept for every row.

    Examples
    --------
    >>> import pandas as pd
    >>> sample = RowSample(capacity=3, columns=["x"])
    >>> sample.update(pd.DataFrame({"x": [1.0, 2.0]}), rng=np.random.default_rng(0))
    >>> sorted(sample.values("x"))
    [1.0, 2.0]
    >>> sample.is_complete
    True
    """

    def __init__(self, capacity: int, columns: list[str]):
        self.capacity = capacity
        self.columns = list(columns)
        self.n_seen = 0
        self._keys = np.empty(0)
        self._data: dict[str, np.ndarray] = {c: np.empty(0, dtype=object) for c in self.columns}

    @property
    def is_complete(self) -> bool:
        """True when every row seen is in the sample (so tests on it are exact)."""
        return self.n_seen <= self.capacity

    def __len__(self) -> int:
        return len(self._keys)

    def values(self, column: str) -> np.ndarray:
        return self._data[column]

    def update(self, frame: pd.DataFrame, *, rng: np.random.Generator) -> None:
        """Offer every row of ``frame`` to the sample."""
        n = len(frame)
        if n == 0:
            return
        self.n_seen += n
        keys = rng.random(n)
        if n > self.capacity:
            # Only the smallest keys of this chunk can enter the sample.
            keep = np.argpartition(keys, self.capacity - 1)[: self.capacity]
        else:
            keep = np.arange(n)
        rows = frame.iloc[keep] if len(keep) < n else frame  # take rows before converting
        chunk = {}
        for column in self.columns:
            if column in rows.columns:
                chunk[column] = _as_object_array(rows[column].to_numpy())
            else:
                chunk[column] = np.full(len(keep), None, dtype=object)
        self._absorb(keys[keep], chunk)

    def merge(self, other: RowSample) -> RowSample:
        """Return the sample of both streams."""
        if self.columns != other.columns:
            raise ValueError("Cannot merge samples of different columns.")
        merged = RowSample(max(self.capacity, other.capacity), self.columns)
        merged.n_seen = self.n_seen + other.n_seen
        merged._keys = self._keys.copy()
        merged._data = {c: v.copy() for c, v in self._data.items()}
        merged._absorb(other._keys, other._data)
        return merged

    def _absorb(self, keys: np.ndarray, data: dict[str, np.ndarray]) -> None:
        all_keys = np.concatenate([self._keys, keys])
        order = np.argsort(all_keys, kind="stable")[: self.capacity]
        self._keys = all_keys[order]
        self._data = {c: np.concatenate([self._data[c], data[c]])[order] for c in self.columns}

    def to_frame(self, columns=None, *, like=None) -> pd.DataFrame:
        """The sampled rows of ``columns`` (default: all), with ``like``'s dtypes where they fit.

        Examples
        --------
        >>> sample = RowSample(10, ["x"])
        >>> sample.update(pd.DataFrame({"x": [1, 2]}), rng=np.random.default_rng(0))
        >>> sample.to_frame(like=pd.DataFrame({"x": [0.5]})).dtypes["x"]
        dtype('float64')
        """
        columns = list(self.columns if columns is None else columns)
        frame = pd.DataFrame({c: self._data[c] for c in columns}).infer_objects()
        for column, dtype in like.dtypes.items() if like is not None else ():
            if column in frame.columns:
                try:
                    frame[column] = frame[column].astype(dtype)
                except (TypeError, ValueError):
                    pass  # left as sampled: the model sees what was recorded
        return frame

    def to_dict(self) -> dict:
        return {
            "capacity": self.capacity,
            "n_seen": self.n_seen,
            "keys": self._keys.tolist(),
            "columns": {c: [_json_value(v) for v in self._data[c]] for c in self.columns},
        }

    @classmethod
    def from_dict(cls, payload: dict) -> RowSample:
        columns = list(payload["columns"])
        sample = cls(payload["capacity"], columns)
        sample.n_seen = payload["n_seen"]
        sample._keys = np.asarray(payload["keys"], dtype=float)
        sample._data = {
            c: _as_object_array(
                np.array([np.nan if v is None else v for v in payload["columns"][c]], dtype=object)
            )
            for c in columns
        }
        return sample


def _as_object_array(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=object)


def _json_value(value):
    """A JSON-safe scalar: NaN/NA become null, numpy scalars plain Python values."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        # Infinite values are left out of every distribution (the profile counts them).
        return value if np.isfinite(value) else None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)
