"""Explanations: why a prediction came out as it did, and whether the model's reliance moved.

:mod:`.shapley` attributes a prediction to the features (Shapley values by
sampled permutations, for any model given as a function); :mod:`.importance`
turns attributions into a global importance and compares a window's with the
baseline's (attribution drift).
"""

from mlflow_observe.core.explain.importance import (
    AttributionDriftResult,
    AttributionSkipped,
    ImportanceCounter,
    attribution_drift,
    global_importance,
)
from mlflow_observe.core.explain.shapley import Attributions, sampled_shapley

__all__ = [
    "AttributionDriftResult",
    "AttributionSkipped",
    "Attributions",
    "ImportanceCounter",
    "attribution_drift",
    "global_importance",
    "sampled_shapley",
]
