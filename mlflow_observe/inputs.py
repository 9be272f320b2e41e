"""Reading a table file (CSV or Parquet) into a DataFrame, with errors that say what to do."""

from __future__ import annotations

import os

import pandas as pd


def read_table(path: str) -> pd.DataFrame:
    """Read a CSV/TSV or Parquet file (or a directory of Parquet files).

    >>> read_table("window.xlsx")
    Traceback (most recent call last):
    ...
    ValueError: Cannot tell the format of 'window.xlsx': use a .csv, .tsv or .parquet file.
    """
    lower = str(path).lower()
    if os.path.isdir(path) or lower.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if lower.endswith((".csv", ".csv.gz", ".tsv")):
        return pd.read_csv(path, sep="\t" if lower.endswith(".tsv") else ",")
    raise ValueError(f"Cannot tell the format of {path!r}: use a .csv, .tsv or .parquet file.")


def as_window(data, *, batch_size: int = 65_536):
    """A Parquet path or ``pyarrow.dataset.Dataset`` as a stream of record batches; else ``data``.

    The stream reads one batch at a time (no read-ahead), so memory is bounded
    by the batch, not by the window: pyarrow's default read-ahead keeps several
    files' batches in flight. A directory's files are found in its subfolders
    too (the prediction log's ``date=...`` folders), without adding the folder
    names as columns.

    >>> import tempfile, pandas as pd
    >>> path = f"{tempfile.mkdtemp()}/window.parquet"
    >>> pd.DataFrame({"x": range(5)}).to_parquet(path)
    >>> [b.num_rows for b in as_window(path, batch_size=2)]
    [2, 2, 1]
    >>> as_window(pd.DataFrame({"x": [1]})).shape
    (1, 1)
    """
    import pyarrow.dataset as ds

    if isinstance(data, (str, os.PathLike)):
        lower = str(data).lower()
        if not (os.path.isdir(data) or lower.endswith((".parquet", ".pq"))):
            return data
        data = ds.dataset(os.fspath(data), format="parquet")
    if isinstance(data, ds.Dataset):
        return data.to_batches(batch_size=batch_size, batch_readahead=0, fragment_readahead=0)
    return data
