"""MLflow evaluators (``mlflow.model_evaluator`` entry points)."""

from mlflow_observe.evaluators.degradation import DegradationEvaluator
from mlflow_observe.evaluators.drift import DriftEvaluator

__all__ = ["DegradationEvaluator", "DriftEvaluator"]
