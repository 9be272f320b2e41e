"""Backends: other libraries' drift detectors, run on the same samples as the core's.

A backend is optional: its library is imported only inside the backend's own
module, and only when one of its detectors is asked for by name, so that the
package imports and runs without it.

* :mod:`mlflow_observe.backends.alibi` (extra ``alibi``): alibi-detect's
  detectors, named ``alibi:<detector>`` in ``DriftOptions(detectors=[...])``.
"""

# The names accepted in ``DriftOptions(detectors=...)``. Kept here, apart from the
# backend's module, so that options are validated without touching the backend.
ALIBI_DETECTORS = (
    "alibi:mmd", "alibi:lsdd", "alibi:classifier",  # multivariate: one test on all columns
    "alibi:ks", "alibi:cvm", "alibi:chi2", "alibi:fet", "alibi:tabular",  # one test a column
)
