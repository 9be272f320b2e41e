"""Which cell of a sorted grid each value falls in: ``np.searchsorted(..., side="right")``, faster.

Binning into the 1000-quantile grid is the hot loop of counting a window. A
binary search per value costs about ten unpredictable branches; here a table
of the answer at evenly spaced points between the first and last edge gives
every value a guess at most a step or two off (quantile edges are about as
dense as the data), and a few vectorised steps correct it. The answer is
exactly ``searchsorted``'s: values the steps do not settle are searched. On a
grid too uneven for the table (heavy tails crowd the edges into a few
buckets), :class:`GridIndex` just calls ``searchsorted``.
"""

from __future__ import annotations

import numpy as np

# Table buckets per grid edge, and correction steps before searching.
_BUCKETS_PER_EDGE = 4
_MAX_STEPS = 3
# The table is used when at most this share of the edges sits in crowded buckets.
_MAX_CROWDED_SHARE = 0.05


class GridIndex:
    """Positions of values in a sorted array of edges, as ``searchsorted(side="right")``.

    Examples
    --------
    >>> index = GridIndex(np.array([0.0, 1.0, 2.0, 3.0]))
    >>> index.positions(np.array([-5.0, 0.0, 0.5, 2.0, 3.0, 9.0])).tolist()
    [0, 1, 1, 3, 4, 4]
    """

    def __init__(self, edges: np.ndarray):
        self.edges = np.asarray(edges, dtype=float)
        self._table = None
        if len(self.edges) < 2 or not self.edges[-1] > self.edges[0]:
            return
        low, high = self.edges[0], self.edges[-1]
        n_buckets = _BUCKETS_PER_EDGE * len(self.edges)
        with np.errstate(over="ignore", divide="ignore"):  # a grid of one spike's own cell
            scale = n_buckets / (high - low)
        if not np.isfinite(scale):
            return
        starts = low + np.arange(n_buckets + 1) / scale
        table = np.searchsorted(self.edges, starts, side="right")
        per_bucket = np.diff(table)
        crowded = np.repeat(per_bucket, per_bucket) > _MAX_STEPS
        if np.count_nonzero(crowded) > _MAX_CROWDED_SHARE * len(self.edges):
            return
        self._low, self._scale, self._n_buckets, self._table = low, scale, n_buckets, table
        self._padded = np.concatenate([[-np.inf], self.edges, [np.inf]])

    def positions(self, values: np.ndarray) -> np.ndarray:
        """``np.searchsorted(edges, values, side="right")`` for finite ``values``."""
        if self._table is None:
            return np.searchsorted(self.edges, values, side="right")
        with np.errstate(over="ignore"):  # far outside the grid: clipped to its ends
            guess = np.clip((values - self._low) * self._scale, 0, self._n_buckets)
        positions = self._table[guess.astype(np.intp)]
        padded = self._padded
        for _ in range(_MAX_STEPS):
            # padded[p + 1] is edges[p], the first edge the answer p must be below.
            up = padded[positions + 1] <= values
            down = padded[positions] > values
            if not (up.any() or down.any()):
                return positions
            positions += up
            positions -= down
        wrong = (padded[positions + 1] <= values) | (padded[positions] > values)
        if wrong.any():
            positions[wrong] = np.searchsorted(self.edges, values[wrong], side="right")
        return positions
