"""Backends: other libraries' drift detectors, run on the same samples as the core's.

A backend is optional: its library is imported only inside the backend's own
module, and only when one of its detectors is asked for by name, so that the
package imports and runs without it.

* :mod:`mlflow_observe.backends.alibi` (extra ``alibi``): alibi-detect's
  detectors, named ``alibi:<detector>`` in ``DriftOptions(detectors=[...])``;
  ``alibi:mmd`` also judges each embedding column on its own vector samples.
"""

from mlflow_observe.core.drift.options import BACKEND_DETECTORS

# The names accepted in ``DriftOptions(detectors=...)`` for alibi-detect.
ALIBI_DETECTORS = tuple(d for d in BACKEND_DETECTORS if d.startswith("alibi:"))
# What ``alibi:mmd`` logs for each embedding column, as ``drift/<column>/<statistic>``.
ALIBI_EMBEDDING_STATISTICS = (
    "embedding_alibi_mmd_pvalue",
    "embedding_alibi_mmd_drifted",
    "embedding_alibi_mmd_distance",
)
