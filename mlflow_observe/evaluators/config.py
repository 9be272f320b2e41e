"""Evaluator configs: checked against the keys each evaluator knows, before any work."""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from mlflow_observe.core.drift.options import DriftOptions

# Keys of the drift evaluator config besides the DriftOptions fields.
DRIFT_EVALUATOR_KEYS = {
    "baseline",
    "max_plots",
    "chunk_size",
    "n_jobs",
    "col_mapping",
    "log_plots",
    "progress",
    "attribution_model",
}
DEGRADATION_EVALUATOR_KEYS = {
    "baseline",
    "tolerance",
    "random_state",
    "col_mapping",
    "segment_by",
    "min_segment_size",
    "attribution_model",
}


def drift_options(config: dict) -> DriftOptions:
    """The :class:`DriftOptions` of a drift evaluator config; unknown keys are refused."""
    option_keys = set(DriftOptions.__dataclass_fields__)
    unknown = set(config) - option_keys - DRIFT_EVALUATOR_KEYS
    if unknown:
        raise MlflowException(
            f"Unknown drift evaluator config keys: {sorted(unknown)}. Valid keys: "
            f"{sorted(option_keys | DRIFT_EVALUATOR_KEYS)}.",
            error_code=INVALID_PARAMETER_VALUE,
        )
    try:
        return DriftOptions.from_config(config)
    except ValueError as exc:
        raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc


def check_degradation_config(config: dict) -> None:
    """Refuse keys the degradation evaluator does not know."""
    unknown = set(config) - DEGRADATION_EVALUATOR_KEYS
    if unknown:
        raise MlflowException(
            f"Unknown degradation evaluator config keys: {sorted(unknown)}. "
            f"Valid keys: {sorted(DEGRADATION_EVALUATOR_KEYS)}.",
            error_code=INVALID_PARAMETER_VALUE,
        )
