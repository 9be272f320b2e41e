"""Multivariate drift: a domain classifier and PCA reconstruction error, on row samples.

Both detectors take two frames (:mod:`.domain_classifier`, :mod:`.reconstruction`);
:mod:`.compare` runs them on a baseline's and a window's bounded row samples.
"""

from mlflow_observe.core.drift.multivariate._common import MIN_ROWS, WindowTooSmallError
from mlflow_observe.core.drift.multivariate.domain_classifier import (
    DomainClassifierResult,
    domain_classifier_drift,
)
from mlflow_observe.core.drift.multivariate.reconstruction import (
    ReconstructionResult,
    reconstruction_drift,
)

__all__ = [
    "MIN_ROWS",
    "DomainClassifierResult",
    "ReconstructionResult",
    "WindowTooSmallError",
    "domain_classifier_drift",
    "reconstruction_drift",
]
