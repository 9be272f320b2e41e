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
