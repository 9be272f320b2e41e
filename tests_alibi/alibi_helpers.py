"""Data makers shared by the alibi-detect backend's test modules (fixtures: conftest.py).

Named apart from tests/helpers.py: the two folders run in different environments, and
a module name of their own keeps them apart if they are ever collected together.
"""

import numpy as np
import pandas as pd


def make_frame(n, *, seed=0, shift=0.0, category_p=(0.6, 0.3, 0.1)):
    """Two normals, a three-label categorical and a boolean."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "num_a": rng.normal(shift, 1.0, n),
            "num_b": rng.normal(10.0, 2.0, n),
            "cat": rng.choice(["red", "green", "blue"], n, p=list(category_p)),
            "flag": rng.random(n) < 0.3,
        }
    )
