"""Record a baseline profile on an MLflow run, and find it again from a run or model URI."""

from __future__ import annotations

import os
import re
import tempfile

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
from mlflow.tracking import MlflowClient

from mlflow_observe._version import __version__
from mlflow_observe.comparison import build_profile  # pandas or Spark
from mlflow_observe.core.profile.data_profile import DataProfile, ProfileError
from mlflow_observe.tracking import tags
from mlflow_observe.tracking.registry import (
    MODEL_URI,
    ModelVersionNotFoundError,
    resolve_model_version,
)

ARTIFACT_DIR = "mlflow_observe"
ARTIFACT_FILE = "baseline_profile.json"
ARTIFACT_PATH = f"{ARTIFACT_DIR}/{ARTIFACT_FILE}"

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


class BaselineNotFoundError(MlflowException):
    """The baseline reference does not lead to a recorded baseline profile."""

    def __init__(self, message: str):
        super().__init__(message, error_code=RESOURCE_DOES_NOT_EXIST)


def log_baseline(
    data,
    targets: str | None = None,
    predictions: str | None = None,
    *,
    run_id: str | None = None,
    model=None,
    **profile_options,
) -> DataProfile:
    """Build a baseline profile from reference data and record it on an MLflow run.

    The profile (JSON, never pickle) is logged as the artifact
    ``mlflow_observe/baseline_profile.json`` and the run is tagged
    ``observe.baseline = true``. Later evaluations name this run (or a
    model version logged from it) as their baseline.

    Parameters
    ----------
    data : pandas.DataFrame or pyspark.sql.DataFrame
        The reference data, usually the training or validation set. A Spark
        DataFrame is profiled by Spark, its bin edges from approximate quantiles
        (see :func:`mlflow_observe.engines.spark.build_profile_spark`).
    targets, predictions : str, optional
        The label and prediction columns in ``data``.
    run_id : str, optional
        The run to record on. Default: the active run, or a new one (as
        ``mlflow.log_metric`` does).
    model : optional
        The model (an estimator, a pyfunc model, a model URI or a callable):
        each feature's impact on its predictions is measured on (a sample of)
        ``data`` and kept in the profile, for drift impact at evaluation (see
        :mod:`mlflow_observe.core.profile.feature_impact`). A pandas ``data`` only.
    **profile_options
        Passed to :func:`mlflow_observe.build_profile`
        (``columns``, ``exclude``, ``kinds``, ``n_bins``, ``sample_size``...).

    Returns
    -------
    DataProfile

    Examples
    --------
    >>> import mlflow, pandas as pd
    >>> mlflow.set_tracking_uri("sqlite:///" + tempfile.mkdtemp() + "/doctest.db")
    >>> experiment = mlflow.set_experiment("baselines")
    >>> with mlflow.start_run() as run:
    ...     profile = log_baseline(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    >>> load_baseline(run.info.run_id).n_rows
    3
    """
    profile = build_profile(data, targets=targets, predictions=predictions, **profile_options)
    if model is not None:
        from mlflow_observe.tracking.predictor import record_impact

        record_impact(profile, model, data)
    if run_id is None:
        run_id = (mlflow.active_run() or mlflow.start_run()).info.run_id
    return record_baseline(profile, run_id)


def record_baseline(profile: DataProfile, run_id: str) -> DataProfile:
    """Log an already-built profile to a run as its baseline (artifact and tags)."""
    client = MlflowClient()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, ARTIFACT_FILE)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(profile.to_json())
        client.log_artifact(run_id, path, artifact_path=ARTIFACT_DIR)
    for key, value in {
        tags.BASELINE: "true",
        tags.BASELINE_ARTIFACT: ARTIFACT_PATH,
        tags.PLUGIN_VERSION: __version__,
    }.items():
        client.set_tag(run_id, key, value)
    profile.metadata["source_run_id"] = run_id
    return profile


def load_baseline(reference) -> DataProfile:
    """Load a baseline profile from a run or a registered model.

    Parameters
    ----------
    reference : str or DataProfile
        A run id, ``runs:/<run_id>``, ``models:/<name>/<version>``,
        ``models:/<name>@<alias>``, a local path to a profile JSON file, or a
        profile (returned as is).

    Returns
    -------
    DataProfile
        With ``metadata['source_run_id']`` set when it came from a run.

    Raises
    ------
    BaselineNotFoundError
        When the reference names no run or model, or the run has no baseline.

    Examples
    --------
    See :func:`log_baseline`; a profile object passes through:

    >>> import pandas as pd
    >>> profile = build_profile(pd.DataFrame({"x": [1.0, 2.0]}))
    >>> load_baseline(profile) is profile
    True
    """
    if isinstance(reference, DataProfile):
        return reference
    if not isinstance(reference, (str, os.PathLike)) or not str(reference).strip():
        raise BaselineNotFoundError(
            "The baseline must be a run id, 'runs:/<run_id>', 'models:/<name>/<version>', "
            f"'models:/<name>@<alias>' or a profile file. Got {reference!r}."
        )
    reference = str(reference).strip()
    if os.path.isfile(reference):
        with open(reference, encoding="utf-8") as handle:
            profile = DataProfile.from_json(handle.read())
        profile.metadata["source_uri"] = reference
        return profile
    run_id = resolve_baseline_run_id(reference)
    profile = _download_profile(run_id)
    profile.metadata["source_run_id"] = run_id
    profile.metadata["source_uri"] = reference
    return profile


def resolve_baseline_run_id(reference: str) -> str:
    """The id of the run that holds the baseline named by ``reference``."""
    if _RUN_ID.match(reference):
        return reference
    if reference.startswith("runs:/"):
        run_id = reference[len("runs:/") :].strip("/").split("/")[0]
        if not run_id:
            raise BaselineNotFoundError(f"No run id in {reference!r}.")
        return run_id
    if MODEL_URI.match(reference):
        return _model_version_run_id(reference)
    raise BaselineNotFoundError(
        f"Cannot read the baseline reference {reference!r}: expected a run id, "
        "'runs:/<run_id>', 'models:/<name>/<version>', 'models:/<name>@<alias>' or the path "
        "of a profile file."
    )


def _model_version_run_id(uri: str) -> str:
    try:
        model_version = resolve_model_version(uri)
    except ModelVersionNotFoundError as exc:
        raise BaselineNotFoundError(f"No registered model version {uri}: {exc.message}") from exc
    if not model_version.run_id:
        raise BaselineNotFoundError(
            f"{uri} was not logged from a run, so it has no baseline. Record one with "
            "mlflow_observe.log_baseline(data, run_id=...) and evaluate against that run."
        )
    return model_version.run_id


def _download_profile(run_id: str) -> DataProfile:
    client = MlflowClient()
    try:
        client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise BaselineNotFoundError(f"No MLflow run with id {run_id!r}.") from exc
        raise
    names = {os.path.basename(f.path) for f in client.list_artifacts(run_id, ARTIFACT_DIR)}
    if ARTIFACT_FILE not in names:
        raise BaselineNotFoundError(
            f"Run {run_id} has no baseline profile (no artifact {ARTIFACT_PATH!r}). Record one "
            "in the training run with mlflow_observe.log_baseline(train_df, ...)."
        )
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=ARTIFACT_PATH, dst_path=tmp
        )
        with open(local, encoding="utf-8") as handle:
            text = handle.read()
    try:
        return DataProfile.from_json(text)
    except ProfileError as exc:
        raise BaselineNotFoundError(f"Run {run_id}'s {ARTIFACT_PATH} is unreadable: {exc}") from exc
