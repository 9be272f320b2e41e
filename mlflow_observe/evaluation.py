"""Python entry points that make the right ``mlflow.models.evaluate`` call."""

from __future__ import annotations

import contextlib
import hashlib
import warnings

import mlflow
import pandas as pd

from mlflow_observe.core.drift.window import EmptyWindowError
from mlflow_observe.engines import is_spark_dataframe
from mlflow_observe.inputs import as_window
from mlflow_observe.logs.schema import LABEL, PREDICTION, TIMESTAMP
from mlflow_observe.tracking.baselines import load_baseline

# MLflow 3 requires targets for model_type "classifier"/"regressor" and extra
# metrics for model_type None; stored predictions without labels need neither,
# and MLflow passes any other model type through to the evaluators untouched.
MONITORING_MODEL_TYPE = "monitoring"
# Rows MLflow's dataset schema and digest are computed from (as MLflow's own digest does).
_SCHEMA_ROWS = 10_000


def _row_hashes(head: pd.DataFrame):
    """pandas' row hashes; cells pandas cannot hash (vectors of an embedding) by their text."""
    try:
        return pd.util.hash_pandas_object(head, index=False).to_numpy()
    except TypeError:
        cells = head.apply(lambda column: column.map(repr) if column.dtype == object else column)
        return pd.util.hash_pandas_object(cells, index=False).to_numpy()


def monitoring_dataset(data: pd.DataFrame, *, predictions=None, targets=None, name=None):
    """Wrap a window as an ``mlflow.data`` dataset that is cheap to log, whatever its size.

    ``mlflow.models.evaluate`` logs its data as a run input. For a plain
    DataFrame, MLflow 3 infers the schema from every row and maps ``type`` over
    every cell for the digest, which takes longer than the drift evaluation
    itself on large windows (about 50 s for 1M rows x 25 columns). This dataset
    takes both from the first 10,000 rows. Pass it as ``data=`` (and leave
    ``predictions``/``targets`` of ``evaluate`` unset: the dataset carries them).

    Examples
    --------
    >>> import pandas as pd
    >>> dataset = monitoring_dataset(pd.DataFrame({"x": [1.0, 2.0], "p": [0, 1]}), predictions="p")
    >>> dataset.predictions, dataset.profile["num_rows"]
    ('p', 2)
    """
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature

    head = data.head(_SCHEMA_ROWS)
    digest = hashlib.md5(usedforsecurity=False)
    digest.update(_row_hashes(head).tobytes())
    digest.update(str(len(data)).encode())
    digest.update("\x1f".join(map(str, data.columns)).encode())
    dataset = from_pandas(
        data, targets=targets, predictions=predictions, name=name, digest=digest.hexdigest()[:8]
    )
    try:
        with warnings.catch_warnings():  # its hint about integer columns is for model inputs
            warnings.simplefilter("ignore", UserWarning)
            dataset.__dict__["schema"] = infer_signature(head).inputs  # fills the cached property
    except Exception:  # MLflow then logs the input without a schema, as it does on failure
        dataset.__dict__["schema"] = None
    return dataset


def _is_stream(data) -> bool:
    """An iterator or generator of parts (not a frame, dataset, array or list)."""
    import collections.abc

    return isinstance(data, collections.abc.Iterator)


def _evaluate_stream(parts, profile, predictions, targets, config):
    """Count a window part by part, then log as the evaluator does; return its result."""
    from mlflow_observe.comparison import compare, with_attributions
    from mlflow_observe.evaluators.config import drift_options
    from mlflow_observe.logs.frames import prepare_window_part, timestamp_bounds, weights_column
    from mlflow_observe.tracking.predictor import attribution_model

    config = {"baseline": profile, **config}
    options = drift_options(config)
    bounds: list = []

    def frames():
        for part in parts:
            frame = part if isinstance(part, pd.DataFrame) else part.to_pandas()
            found = timestamp_bounds(frame)
            if found:
                bounds.extend(found)
            prepared = prepare_window_part(
                frame,
                profile,
                predictions=predictions
                or next((c for c in (profile.predictions, PREDICTION) if c in frame.columns), None),
                targets=targets
                or next((c for c in (profile.targets, LABEL) if c in frame.columns), None),
                keep_weights=True,
            )
            yield with_attributions(prepared, frame)

    explainer = config.get("attribution_model")
    impact = profile.impact
    explain_model = (
        attribution_model(explainer)
        if explainer is not None and impact is not None and impact.attribution
        else None
    )
    comparison = compare(
        profile,
        frames(),
        options,
        n_jobs=config.get("n_jobs"),
        progress=config.get("progress"),
        weights=weights_column(profile),
        explain_model=explain_model,
    )
    return _log_window(comparison, profile, options, config, bounds)


def _evaluate_spark(frame, profile, predictions, targets, config):
    """Count a Spark DataFrame on the cluster, then log as the evaluator does."""
    from mlflow_observe.comparison import compare, with_attributions
    from mlflow_observe.engines import spark
    from mlflow_observe.evaluators.config import drift_options
    from mlflow_observe.logs.frames import prepare_window_part, weights_column
    from mlflow_observe.tracking.predictor import attribution_model

    config = {"baseline": profile, **config}
    options = drift_options(config)
    names = [str(c) for c in frame.columns]
    predictions = predictions or next(
        (c for c in (profile.predictions, PREDICTION) if c in names), None
    )
    targets = targets or next((c for c in (profile.targets, LABEL) if c in names), None)
    # The pandas path's renames and drops, applied to a row of column names.
    row = pd.DataFrame([names], columns=names)
    prepared = prepare_window_part(
        row, profile, predictions=predictions, targets=targets, keep_weights=True
    )
    # The logged attributions (bookkeeping to the preparation) are what attribution drift reads.
    prepared = with_attributions(prepared, row)
    window = spark.select_as(frame, dict(zip(prepared.columns, prepared.iloc[0], strict=True)))
    explainer = config.get("attribution_model")
    impact = profile.impact
    explain_model = (
        attribution_model(explainer)
        if explainer is not None and impact is not None and impact.attribution
        else None
    )
    comparison = compare(
        profile, window, options, weights=weights_column(profile), explain_model=explain_model
    )
    bounds = spark.timestamp_bounds(frame, TIMESTAMP) if TIMESTAMP in names else None
    return _log_window(comparison, profile, options, config, list(bounds or []))


def _log_window(comparison, profile, options, config, bounds):
    """Log a counted window to the active run (or a new one); return its result."""
    from mlflow_observe.tracking.results import log_drift_result, time_range_tags

    window_range = time_range_tags(bounds)
    active = mlflow.active_run()
    with contextlib.nullcontext(active) if active else mlflow.start_run() as run:
        return log_drift_result(run.info.run_id, comparison, profile, options, config, window_range)


def _window_name(data: pd.DataFrame) -> str | None:
    """``window <first> .. <last>`` for a prediction-log window (shown as the run's input)."""
    if TIMESTAMP not in data.columns or data.empty:
        return None
    stamps = pd.to_datetime(data[TIMESTAMP], utc=True, errors="coerce").dropna()
    if stamps.empty:
        return None
    return f"window {stamps.min():%Y-%m-%d %H:%M:%S} .. {stamps.max():%Y-%m-%d %H:%M:%S} UTC"


def evaluate_drift(
    data, baseline, *, predictions=None, targets=None, model=None, model_type=None, **options
):
    """Compare ``data`` with a baseline and log the results to MLflow.

    Calls ``mlflow.models.evaluate(..., evaluators="drift")`` for you: it logs to
    the active run, or starts a new one, and returns the same
    ``mlflow.models.EvaluationResult``.

    Parameters
    ----------
    data : pandas.DataFrame, an iterator of DataFrames or Arrow record batches, a Spark DataFrame, a ``pyarrow.dataset.Dataset`` or a Parquet file or directory path
        The production window. An iterator (for example
        :func:`~mlflow_observe.logs.reader.scan_logs` over a log window larger
        than memory) is counted part by part, and a Spark DataFrame is counted
        by Spark (:mod:`mlflow_observe.engines.spark`: the same counts); both
        are logged as the evaluator does, without going through
        ``mlflow.models.evaluate``, which needs the data in memory.
    baseline : str or DataProfile
        A run id, ``runs:/<id>``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
        a profile file or a profile.
    predictions, targets : str, optional
        The prediction and label columns of ``data``. Default: the columns the
        baseline recorded, when ``data`` has them.
    model : str or PyFuncModel, optional
        A model to compute predictions with, instead of a predictions column.
        When the baseline recorded feature impact, the model also explains the
        prediction drift by feature (see :mod:`mlflow_observe.core.drift.root_cause`).
    model_type : str, optional
        Passed to MLflow; default ``'monitoring'``, which needs no labels.
    **options
        Evaluator config: ``method``, ``methods``, ``threshold``, ``thresholds``,
        ``drift_share``, ``dataset_method``, ``segment_by``, ``min_segment_size``,
        ``max_plots``... (see :class:`~mlflow_observe.evaluators.drift.DriftEvaluator`).

    Returns
    -------
    mlflow.models.EvaluationResult

    Examples
    --------
    >>> import tempfile, mlflow, numpy as np, pandas as pd
    >>> from mlflow_observe import log_baseline
    >>> mlflow.set_tracking_uri("sqlite:///" + tempfile.mkdtemp() + "/doctest.db")
    >>> experiment = mlflow.set_experiment("evaluate_drift")
    >>> rng = np.random.default_rng(0)
    >>> with mlflow.start_run() as training:
    ...     _ = log_baseline(pd.DataFrame({"x": rng.normal(size=2000)}))
    >>> window = pd.DataFrame({"x": rng.normal(1.0, 1.0, size=2000)})
    >>> result = evaluate_drift(window, baseline=training.info.run_id, log_plots=False)
    >>> result.metrics["drift/dataset_drift"], round(result.metrics["drift/x/wasserstein"], 1)
    (1.0, 1.0)
    """
    data = as_window(data)
    _check_not_empty(data)
    profile = load_baseline(baseline)
    if is_spark_dataframe(data):
        if model is not None:
            raise ValueError("A Spark window needs its predictions stored; pass model=None.")
        return _evaluate_spark(data, profile, predictions, targets, options)
    if _is_stream(data):
        if model is not None:
            raise ValueError("A streamed window needs its predictions stored; pass model=None.")
        return _evaluate_stream(data, profile, predictions, targets, options)
    return _evaluate(
        "drift",
        data,
        profile,
        predictions=predictions,
        targets=targets,
        model=model,
        model_type=model_type,
        options=options,
    )


def evaluate_degradation(
    data, baseline, *, predictions=None, targets=None, model=None, model_type=None, **options
):
    """Compare a window's model performance with the baseline's and log it to MLflow.

    Realised metrics when ``data`` has labels, estimated ones otherwise (binary
    classifiers whose baseline recorded probabilities). Calls
    ``mlflow.models.evaluate(..., evaluators="degradation")`` and returns its result.

    Parameters
    ----------
    data : pandas.DataFrame, an iterator of DataFrames or Arrow record batches, a Spark DataFrame, a ``pyarrow.dataset.Dataset`` or a Parquet file or directory path
        The window, with the prediction column (and the probability columns the
        baseline recorded; and the label column when labels have arrived). An
        iterator (for example :func:`~mlflow_observe.logs.reader.scan_logs`) is
        counted batch by batch, in memory bounded by the batch
        (:mod:`mlflow_observe.core.performance.streamed`: counts exact, ROC AUC
        in fine probability bins); a Spark DataFrame's few needed columns are
        streamed to the driver one partition at a time and counted the same way.
        Both are logged as the evaluator does.
    baseline : str or DataProfile
        Recorded with ``targets``, ``predictions`` (and ``probabilities``).
    predictions, targets : str, optional
        Default: the baseline's column names (or the prediction log's), when present.
    **options
        ``tolerance``, ``random_state``; ``segment_by`` and ``min_segment_size``
        for in-memory windows; ``progress`` for streamed ones.

    Examples
    --------
    >>> import tempfile, mlflow, numpy as np, pandas as pd
    >>> from mlflow_observe import log_baseline
    >>> mlflow.set_tracking_uri("sqlite:///" + tempfile.mkdtemp() + "/doctest.db")
    >>> experiment = mlflow.set_experiment("evaluate_degradation")
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 2000)
    >>> with mlflow.start_run() as training:
    ...     _ = log_baseline(pd.DataFrame({"x": rng.normal(size=2000), "label": y,
    ...                                    "prediction": y}), targets="label", predictions="prediction")
    >>> window = pd.DataFrame({"label": y, "prediction": np.where(np.arange(2000) < 400, 1 - y, y)})
    >>> parts = (window.iloc[i:i + 500] for i in range(0, 2000, 500))
    >>> result = evaluate_degradation(parts, baseline=training.info.run_id)
    >>> result.metrics["degradation/accuracy"], result.metrics["degradation/degraded"]
    (0.8, 1.0)
    """  # noqa: E501
    data = as_window(data)
    _check_not_empty(data)
    profile = load_baseline(baseline)
    if is_spark_dataframe(data) or _is_stream(data):
        if model is not None:
            raise ValueError(
                "A streamed or Spark window needs its predictions stored; pass model=None."
            )
        return _degradation_stream(data, profile, baseline, predictions, targets, options)
    return _evaluate(
        "degradation",
        data,
        profile,
        predictions=predictions,
        targets=targets,
        model=model,
        model_type=model_type,
        options=options,
    )


_STREAMED_DEGRADATION_KEYS = {"tolerance", "random_state", "progress", "sample_size"}


def _degradation_stream(data, profile, reference, predictions, targets, options):
    """Count a window's performance batch by batch, then log as the evaluator does."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    from mlflow_observe.core.performance.degradation import DegradationError
    from mlflow_observe.core.performance.streamed import (
        SAMPLE_SIZE,
        StreamedPerformance,
    )
    from mlflow_observe.core.progress import progress_bar
    from mlflow_observe.logs.frames import row_weights, weights_column
    from mlflow_observe.tracking.results import log_degradation_result

    unknown = set(options) - _STREAMED_DEGRADATION_KEYS
    if unknown:
        raise ValueError(
            f"Options {sorted(unknown)} are not available for a streamed window; "
            f"valid: {sorted(_STREAMED_DEGRADATION_KEYS)}."
        )
    if is_spark_dataframe(data):
        data = _spark_performance_batches(data, profile, predictions, targets)
    counted = None
    try:
        for part in progress_bar(data, enabled=options.get("progress"), desc="counting"):
            frame = part if isinstance(part, pd.DataFrame) else part.to_pandas()
            if counted is None:
                names = set(frame.columns)
                counted = StreamedPerformance(
                    profile.performance,
                    predictions=predictions
                    or next(
                        (c for c in (profile.predictions, PREDICTION) if c in names),
                        profile.predictions or PREDICTION,
                    ),
                    targets=targets
                    or next((c for c in (profile.targets, LABEL) if c and c in names), None),
                    sample_size=options.get("sample_size", SAMPLE_SIZE),
                    random_state=options.get("random_state", 0),
                )
            counted.update(frame, weights=row_weights(frame, weights_column(profile)))
        if counted is None or counted.n_rows == 0:
            raise EmptyWindowError(
                "The production window has no rows: there is nothing to compare with the "
                "baseline. Check the window's time range or the data source."
            )
        result = counted.result(tolerance=options.get("tolerance", 0.02))
    except DegradationError as exc:  # as the evaluator reports it
        raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc
    active = mlflow.active_run()
    with contextlib.nullcontext(active) if active else mlflow.start_run() as run:
        return log_degradation_result(run.info.run_id, result, [], profile, reference)


def _spark_performance_batches(frame, profile, predictions, targets):
    """The columns degradation needs, from a Spark DataFrame, as pandas batches."""
    from mlflow_observe.engines.spark import iter_pandas_batches
    from mlflow_observe.logs.frames import weights_column

    names = [str(c) for c in frame.columns]
    performance = profile.performance
    wanted = [
        predictions or next((c for c in (profile.predictions, PREDICTION) if c in names), None),
        targets or next((c for c in (profile.targets, LABEL) if c and c in names), None),
        *(performance.probabilities if performance else ()),
        *((performance.loss_features or ()) if performance else ()),
        weights_column(profile),  # the rows' weights, when the log recorded them
    ]
    return iter_pandas_batches(frame, list(dict.fromkeys(c for c in wanted if c in names)))


def _check_not_empty(data) -> None:
    # Checked here: MLflow's own dataset hashing fails on some empty frames first.
    if hasattr(data, "__len__") and len(data) == 0:
        raise EmptyWindowError(
            "The production window has no rows: there is nothing to compare with the baseline. "
            "Check the window's time range or the data source."
        )


def _evaluate(evaluator, data, profile, *, predictions, targets, model, model_type, options):
    """The ``mlflow.models.evaluate`` call for one of our evaluators.

    The prediction and label columns default to the baseline's (or the prediction
    log's); a label column with no labels yet counts as absent. Labels present
    make the model type the baseline's task (``classifier``/``regressor``),
    otherwise ``monitoring``, which needs none.
    """
    columns = set(getattr(data, "columns", []))
    if predictions is None and model is None:
        predictions = next((c for c in (profile.predictions, PREDICTION) if c in columns), None)
    if targets is None:
        targets = next((c for c in (profile.targets, LABEL) if c in columns), None)
    if targets is not None and targets in columns and data[targets].isna().all():
        targets = None  # the labels have not arrived yet
    if model_type is None:
        task = profile.performance.task if profile.performance else None
        model_type = (
            {"classification": "classifier", "regression": "regressor"}.get(task)
            if targets is not None and evaluator == "degradation"
            else MONITORING_MODEL_TYPE
        )
    if isinstance(data, pd.DataFrame):
        data = monitoring_dataset(
            data,
            predictions=None if model is not None else predictions,
            targets=targets,
            name=_window_name(data),
        )
        targets, predictions = None, (None if model is None else predictions)
    return mlflow.models.evaluate(
        model=model,
        data=data,
        predictions=predictions,
        targets=targets,
        model_type=model_type or MONITORING_MODEL_TYPE,
        evaluators=evaluator,
        evaluator_config={"baseline": profile, **options},
    )
