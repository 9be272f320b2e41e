"""What a queue keeps of a call's inputs until its thread takes them: a frame of one numeric
dtype (the common served input) as its column index and values, not the frame.

The prediction log's writer and the attribution worker keep the calls of a second or so;
a frame's tracked objects would reach the collector's oldest generation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def column_dtypes(frame: pd.DataFrame) -> set:
    """The set of the frame's column dtypes, as ``set(frame.dtypes)`` gives it.

    ``frame.dtypes`` builds a Series at each call (18 us for 20 columns, on the server's
    interpreter for every sampled call); the frame's blocks give the same set in 0.4 us.
    Pandas keeps them private (``_mgr``), hence the public path where they are not found.

    >>> sorted(map(str, column_dtypes(pd.DataFrame({"x": [1.5], "y": [2], "z": [3]}))))
    ['float64', 'int64']
    """
    arrays = getattr(getattr(frame, "_mgr", None), "arrays", None)
    if arrays is None:
        return set(frame.dtypes)
    return {array.dtype for array in arrays}


class NumericRows:
    """What a queue keeps of a frame of one numeric numpy dtype: its column index and its
    values (an array the garbage collector does not track), not the frame.

    A frame kept until a thread takes it (up to a second) outlives the collector's young
    generations with its tens of tracked objects, and brings the full collection (0.2 s
    with a model and MLflow loaded) nearer: see ``benchmarks/explain_gc.py``.
    """

    __slots__ = ("columns", "values")

    def __init__(self, columns: pd.Index, values: np.ndarray):
        self.columns, self.values = columns, values

    def __len__(self) -> int:
        return len(self.values)

    @property
    def shape(self) -> tuple:
        return self.values.shape

    def to_numpy(self) -> np.ndarray:
        return self.values

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, columns=self.columns)


def numeric_rows(inputs):
    """``inputs`` as :class:`NumericRows` when it is a frame of one numeric numpy dtype (the
    common served input, taken in a few microseconds), else ``inputs`` itself.

    >>> rows = numeric_rows(pd.DataFrame({"x": [1.5], "y": [2.0]}))
    >>> type(rows).__name__, len(rows), rows.values.tolist()
    ('NumericRows', 1, [[1.5, 2.0]])
    >>> type(numeric_rows(pd.DataFrame({"x": [1.5], "y": [2]}))).__name__  # two dtypes
    'DataFrame'
    """
    if not isinstance(inputs, pd.DataFrame):
        return inputs
    dtypes = column_dtypes(inputs)
    if len(dtypes) != 1:
        return inputs
    dtype = next(iter(dtypes))
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf":
        return inputs
    return NumericRows(inputs.columns, inputs.to_numpy())


def same_labels(a: pd.Index, b: pd.Index) -> bool:
    """Equal labels of the same types (``Index.equals`` takes ``1`` for ``1.0``).

    >>> same_labels(pd.Index([1, 2], dtype=object), pd.Index([1.0, 2.0], dtype=object))
    False
    """
    if a is b:
        return True
    return (
        a.dtype == b.dtype
        and a.equals(b)
        and (a.dtype != object or list(map(type, a)) == list(map(type, b)))
    )
