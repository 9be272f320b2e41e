"""mlflow-observe: model observability native to MLflow.

Record a baseline when you train, then compare production data with it through
``mlflow.models.evaluate``; results are MLflow metrics, tables, plots and an
HTML report.

>>> import mlflow_observe as mo
>>> [name for name in ("log_baseline", "load_baseline", "evaluate_drift") if name in mo.__all__]
['log_baseline', 'load_baseline', 'evaluate_drift']
"""

from mlflow_observe._version import __version__
from mlflow_observe.comparison import build_profile, compare
from mlflow_observe.core.drift.options import DriftOptions
from mlflow_observe.core.drift.univariate import DriftResult
from mlflow_observe.core.drift.window import EmptyWindowError, WindowComparison
from mlflow_observe.core.performance.degradation import (
    DegradationResult,
    compare_performance,
)
from mlflow_observe.core.performance.reference import ReferencePerformance
from mlflow_observe.core.profile.data_profile import DataProfile, ProfileError
from mlflow_observe.core.weights import WeightError
from mlflow_observe.evaluation import (
    MONITORING_MODEL_TYPE,
    evaluate_degradation,
    evaluate_drift,
    monitoring_dataset,
)
from mlflow_observe.explanation import Explanation, explain
from mlflow_observe.logs.compaction import (
    CompactionResult,
    ExpiryResult,
    compact_logs,
    expire_logs,
)
from mlflow_observe.logs.reader import (
    LogSchemaError,
    LogWindowError,
    iter_log_batches,
    log_labels,
    read_logs,
    scan_logs,
)
from mlflow_observe.logs.spool import recover_spools
from mlflow_observe.monitoring.fleet_monitor import FleetMonitorResult, monitor_all
from mlflow_observe.monitoring.gate import GateResult, gate
from mlflow_observe.monitoring.history import history
from mlflow_observe.monitoring.monitor import MonitorResult, monitor
from mlflow_observe.monitoring.status import status
from mlflow_observe.monitoring.trend import trend
from mlflow_observe.plugins.flavor import load_model, log_model, save_model
from mlflow_observe.tracking.baselines import (
    BaselineNotFoundError,
    load_baseline,
    log_baseline,
)

__all__ = [
    "BaselineNotFoundError",
    "CompactionResult",
    "DataProfile",
    "DegradationResult",
    "DriftOptions",
    "DriftResult",
    "EmptyWindowError",
    "ExpiryResult",
    "Explanation",
    "FleetMonitorResult",
    "GateResult",
    "LogSchemaError",
    "LogWindowError",
    "MONITORING_MODEL_TYPE",
    "MonitorResult",
    "ProfileError",
    "ReferencePerformance",
    "WeightError",
    "WindowComparison",
    "__version__",
    "build_profile",
    "compact_logs",
    "compare",
    "compare_performance",
    "evaluate_degradation",
    "evaluate_drift",
    "expire_logs",
    "explain",
    "gate",
    "history",
    "iter_log_batches",
    "load_baseline",
    "load_model",
    "log_baseline",
    "log_labels",
    "log_model",
    "monitor",
    "monitor_all",
    "monitoring_dataset",
    "read_logs",
    "recover_spools",
    "save_model",
    "scan_logs",
    "status",
    "trend",
]
