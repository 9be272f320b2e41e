"""Data of the unstructured-drift benchmarks: real review texts, synthetic embeddings.

Texts come from the Rotten Tomatoes corpus that ``tests/corpora.py`` reads out of a
wheel on the package index: critics' snippets (``fresh`` and ``rotten``) and plot
summaries (``plot``). A row is two or three snippets of one pool joined (about 50
words), drawn with replacement. Embeddings are Gaussian vectors with a correlated
structure (a random low-rank part plus noise), standardised per dimension.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from corpora import rotten_tomatoes  # noqa: E402


def corpus_pools() -> dict:
    """Snippets by category: ``fresh``, ``rotten``, ``plot``, and ``critics`` (both reviews)."""
    corpus = rotten_tomatoes()
    pools = {c: corpus.loc[corpus["category"] == c, "text"].to_numpy() for c in ("fresh", "rotten")}
    pools["plot"] = corpus.loc[corpus["category"] == "plot", "text"].to_numpy()
    pools["critics"] = np.concatenate([pools["fresh"], pools["rotten"]])
    return pools


def texts(pool: np.ndarray, n: int, rng) -> pd.Series:
    """``n`` texts of two or three snippets of ``pool`` each (drawn with replacement)."""
    parts = rng.integers(2, 4, size=n)
    picks = rng.integers(0, len(pool), size=int(parts.sum()))
    snippets = pool[picks]
    ends = np.cumsum(parts)
    starts = ends - parts
    return pd.Series([" ".join(snippets[a:b]) for a, b in zip(starts, ends, strict=True)])


def embedding_basis(dim: int, seed: int = 0, rank: int = 16):
    """A random correlated structure: vectors are ``z @ loadings + noise``."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rank, dim)) / np.sqrt(rank)


def embeddings(
    n: int, loadings, rng, *, shift: float = 0.0, mix: float = 0.0, shifted_dims: int = 20
) -> np.ndarray:
    """``n`` vectors; ``shift`` moves the mean of the first ``shifted_dims`` dimensions (in
    units of their spread); ``mix`` replaces that share of the correlated part by independent
    noise of the same variance (the correlations change, each dimension's spread does not)."""
    rank, dim = loadings.shape
    common = rng.normal(size=(n, rank)) @ loadings
    spread = np.sqrt((loadings**2).sum(axis=0))
    if mix:
        independent = rng.normal(size=(n, dim)) * spread
        common = np.sqrt(1 - mix) * common + np.sqrt(mix) * independent
    x = common + rng.normal(size=(n, dim)) * 0.5
    x /= np.sqrt(spread**2 + 0.25)
    if shift:
        x[:, :shifted_dims] += shift
    return x.astype(np.float32)
