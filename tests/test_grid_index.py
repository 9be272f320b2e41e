"""GridIndex answers exactly as np.searchsorted(side="right"), on every kind of grid."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_observe.core.profile._grid import GridIndex


def quantile_edges(reference):
    grid = np.unique(np.quantile(reference, np.linspace(0.0, 1.0, 1001)))
    return np.append(grid, np.nextafter(grid[-1], np.inf))


def probes(edges, rng):
    """Values on, just beside, between and beyond the edges."""
    return np.concatenate(
        [
            edges,
            np.nextafter(edges, -np.inf),
            np.nextafter(edges, np.inf),
            rng.uniform(edges[0] - 1.0, edges[-1] + 1.0, 5000),
            [edges[0] - 1e300, edges[-1] + 1e300, -1e308, 1e308],
        ]
    )


@pytest.mark.parametrize(
    "name, reference",
    [
        ("normal", np.random.default_rng(0).normal(size=50_000)),
        ("lognormal", np.random.default_rng(1).lognormal(0.0, 3.0, 50_000)),
        ("integers", np.random.default_rng(2).poisson(3, 50_000).astype(float)),
        ("two values", np.array([0.0, 1.0] * 10)),
        ("constant", np.array([5.0] * 10)),
    ],
)
def test_quantile_grids(name, reference):
    edges = quantile_edges(reference)
    index = GridIndex(edges)
    values = probes(edges, np.random.default_rng(3))
    np.testing.assert_array_equal(
        index.positions(values), np.searchsorted(edges, values, side="right")
    )


def test_the_table_is_used_on_an_even_grid():
    assert (
        GridIndex(quantile_edges(np.random.default_rng(0).normal(size=50_000)))._table is not None
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60, unique=True),
    st.lists(st.floats(-2e6, 2e6), min_size=1, max_size=200),
)
def test_any_grid(edges, values):
    edges, values = np.sort(np.asarray(edges)), np.asarray(values)
    np.testing.assert_array_equal(
        GridIndex(edges).positions(values), np.searchsorted(edges, values, side="right")
    )
