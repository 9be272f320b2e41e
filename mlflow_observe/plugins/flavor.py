"""The ``mlflow_observe`` model flavor: a model that carries its baseline and logs its predictions.

``save_model``/``log_model`` wrap an inner model (an MLflow model URI or local
path, a scikit-learn estimator, or an ``mlflow.pyfunc.PythonModel``) into a
self-contained MLflow model::

    MLmodel                   flavors: mlflow_observe, python_function
    inner_model/              the inner model, as its own flavor saved it
    baseline_profile.json     the baseline (when given)
    requirements.txt, ...     the inner model's, plus mlflow-observe

Loaded as ``python_function`` (``mlflow models serve``, ``mlflow.pyfunc.load_model``,
:func:`load_model`), it predicts exactly as the inner model and, where a log
directory is configured (``MLFLOW_OBSERVE_LOG_DIR``, or the model config key
``mlflow_observe_log_dir``), hands every call to a
:class:`~mlflow_observe.logs.writer.PredictionLogWriter` off the request path.
With ``MLFLOW_OBSERVE_EXPLAIN_RATE`` set too, a uniform sample of the calls is
attributed to the features in a separate low-priority process, beside the log (see
:mod:`mlflow_observe.plugins.attribution_process`).
"""

from __future__ import annotations

import inspect
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.models.model import MLMODEL_FILE_NAME
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from mlflow_observe._version import __version__
from mlflow_observe.comparison import build_profile
from mlflow_observe.core.profile.data_profile import DataProfile
from mlflow_observe.logs.schema import dict_input_frame
from mlflow_observe.logs.writer import (
    PredictionLogWriter,
    install_stop_handlers,
    no_prediction_logs,
    prediction_logs_allowed,
)
from mlflow_observe.plugins.attribution import (
    EXPLAIN_RATE_ENV,
    ServingExplainer,
    explain_rate,
)
from mlflow_observe.plugins.attribution import (
    install_stop_handlers as install_attribution_stop_handlers,
)
from mlflow_observe.plugins.attribution_process import ProcessAttributionWorker
from mlflow_observe.plugins.log_roller import roller_command

FLAVOR_NAME = "mlflow_observe"
INNER_DIR = "inner_model"
BASELINE_FILE = "baseline_profile.json"
LOG_DIR_ENV = "MLFLOW_OBSERVE_LOG_DIR"
LOG_DIR_CONFIG = "mlflow_observe_log_dir"
MODEL_VERSION_ENV = "MLFLOW_OBSERVE_MODEL_VERSION"
# "false": the writer does not compute class probabilities (they cost a second model pass).
LOG_PROBABILITIES_ENV = "MLFLOW_OBSERVE_LOG_PROBABILITIES"
# "thread": roll the log on a thread of the serving process instead of a roller process.
ROLLER_ENV = "MLFLOW_OBSERVE_ROLLER"
REQUEST_ID_PARAM = "request_id"
EVENT_TIME_PARAM = "event_time"
# Parameters the wrapper adds to the signature and takes for itself, never passed on.
_LOG_PARAMS = (REQUEST_ID_PARAM, EVENT_TIME_PARAM)
_ENV_FILES = ("requirements.txt", "conda.yaml", "python_env.yaml")

# -- saving -----------------------------------------------------------------------------------


def save_model(
    model,
    path,
    *,
    baseline=None,
    targets=None,
    predictions=None,
    model_name=None,
    mlflow_model=None,
    signature=None,
    input_example=None,
    inner_options=None,
    **profile_options,
) -> None:
    """Save ``model`` wrapped with its baseline as an MLflow model at ``path``.

    Parameters
    ----------
    model : str, scikit-learn estimator or mlflow.pyfunc.PythonModel
        The inner model: an MLflow model URI (``runs:/``, ``models:/``) or local
        path, or an object that MLflow's sklearn or pyfunc flavor saves.
    path : str
        A directory that does not exist yet.
    baseline : pandas.DataFrame or DataProfile, optional
        The reference data (or its profile), stored inside the model.
    targets, predictions : str, optional
        The label and prediction columns of ``baseline``.
    model_name : str, optional
        Recorded on every prediction log row as ``model_name``.
    signature, input_example :
        For an inner model object: passed to its flavor's ``save_model``. The
        wrapped model's signature and input example are the inner model's.
    inner_options : dict, optional
        More keyword arguments for the inner flavor's ``save_model`` (for
        example ``skops_trusted_types`` for tree models).
    **profile_options
        Passed to :func:`~mlflow_observe.core.profile.data_profile.build_profile`.
    """
    path = os.path.abspath(path)
    if os.path.exists(path) and os.listdir(path):
        raise MlflowException(
            f"Path '{path}' already exists and is not empty", error_code=INVALID_PARAMETER_VALUE
        )
    os.makedirs(path, exist_ok=True)
    with no_prediction_logs():
        _save_inner(
            model, os.path.join(path, INNER_DIR), signature, input_example, inner_options or {}
        )
    inner = Model.load(os.path.join(path, INNER_DIR))
    mlflow_model = mlflow_model or Model()
    mlflow_model.signature = _with_request_id_param(inner.signature)
    _copy_input_example(inner, os.path.join(path, INNER_DIR), path, mlflow_model)
    profile = _as_profile(baseline, targets, predictions, profile_options, model)
    if profile is not None:
        with open(os.path.join(path, BASELINE_FILE), "w", encoding="utf-8") as handle:
            handle.write(profile.to_json())
    mlflow_model.add_flavor(
        FLAVOR_NAME,
        inner_model=INNER_DIR,
        baseline=BASELINE_FILE if profile is not None else None,
        model_name=model_name,
        inner_flavors=sorted(inner.flavors),
        mlflow_observe_version=__version__,
    )
    _copy_environment(os.path.join(path, INNER_DIR), path)
    mlflow.pyfunc.add_to_model(
        mlflow_model,
        loader_module=__name__,
        data=INNER_DIR,
        # Declared (empty) so that MLflow passes a load-time value on: MLflow drops the
        # model_config keys a model was not saved with. Empty means MLFLOW_OBSERVE_LOG_DIR.
        model_config={LOG_DIR_CONFIG: ""},
        conda_env="conda.yaml" if os.path.exists(os.path.join(path, "conda.yaml")) else None,
        python_env="python_env.yaml"
        if os.path.exists(os.path.join(path, "python_env.yaml"))
        else None,
    )
    mlflow_model.save(os.path.join(path, MLMODEL_FILE_NAME))


def log_model(
    model,
    name: str = "model",
    *,
    baseline=None,
    targets=None,
    predictions=None,
    registered_model_name=None,
    signature=None,
    input_example=None,
    inner_options=None,
    log_location=None,
    **kwargs,
):
    """Log ``model`` wrapped with its baseline to the active run (see :func:`save_model`).

    The baseline is also recorded on the run, as
    :func:`~mlflow_observe.tracking.baselines.log_baseline` does, so that
    ``mlflow_observe.load_baseline("models:/<name>@<alias>")`` finds it.

    ``log_location`` (default: ``$MLFLOW_OBSERVE_LOG_DIR`` when set) is the
    prediction log the served model will write: it is recorded as the
    ``observe.monitor.logs`` tag of the run and of the registered version, where
    ``mlflow-observe monitor --all`` finds it (change it later with
    ``mlflow-observe logs set-location``).

    Returns
    -------
    mlflow.models.model.ModelInfo
    """
    from mlflow_observe.tracking.baselines import record_baseline

    # Every option of build_profile, as save_model takes them (probabilities and task too).
    profile_keys = set(inspect.signature(build_profile).parameters) - {
        "data",
        "targets",
        "predictions",
    }
    profile_options = {k: kwargs.pop(k) for k in list(kwargs) if k in profile_keys}
    profile = _as_profile(baseline, targets, predictions, profile_options, model)
    with no_prediction_logs():
        info = Model.log(
            artifact_path=None,
            name=name,
            flavor=sys.modules[__name__],
            registered_model_name=registered_model_name,
            model=model,
            baseline=profile,
            model_name=registered_model_name or name,
            signature=signature,
            input_example=input_example,
            inner_options=inner_options,
            **kwargs,
        )
    if profile is not None:
        record_baseline(profile, info.run_id)
    location = log_location or os.environ.get(LOG_DIR_ENV)
    if location:
        _record_log_location(str(location), info, registered_model_name)
    return info


def _record_log_location(location: str, info, name) -> None:
    from mlflow.tracking import MlflowClient

    from mlflow_observe.tracking.tags import MONITOR_LOGS

    client = MlflowClient()
    client.set_tag(info.run_id, MONITOR_LOGS, location)
    version = getattr(info, "registered_model_version", None)
    if version is not None and name:
        client.set_model_version_tag(name, str(version), MONITOR_LOGS, location)


def load_model(model_uri: str, dst_path=None, model_config=None):
    """Load a wrapped model as a pyfunc model that predicts like its inner model."""
    return mlflow.pyfunc.load_model(model_uri, dst_path=dst_path, model_config=model_config)


def _save_inner(model, path, signature, input_example, options) -> None:
    if isinstance(model, (str, os.PathLike)):
        source = str(model)
        if os.path.isdir(source):
            shutil.copytree(source, path)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp)
                shutil.copytree(local, path)
        if not os.path.exists(os.path.join(path, MLMODEL_FILE_NAME)):
            raise MlflowException(
                f"{source!r} is not an MLflow model (no MLmodel file).",
                error_code=INVALID_PARAMETER_VALUE,
            )
        return
    if isinstance(model, mlflow.pyfunc.PythonModel):
        mlflow.pyfunc.save_model(
            path, python_model=model, signature=signature, input_example=input_example, **options
        )
        return
    if type(model).__module__.split(".")[0] == "sklearn" or _is_sklearn_estimator(model):
        mlflow.sklearn.save_model(
            model, path, signature=signature, input_example=input_example, **options
        )
        return
    raise MlflowException(
        "mlflow_observe.save_model takes an MLflow model URI or path, a scikit-learn estimator "
        f"or an mlflow.pyfunc.PythonModel. Got {type(model).__name__}. Log other models with "
        "their MLflow flavor first and pass the model URI.",
        error_code=INVALID_PARAMETER_VALUE,
    )


def _is_sklearn_estimator(model) -> bool:
    try:
        from sklearn.base import BaseEstimator
    except ImportError:
        return False
    return isinstance(model, BaseEstimator)


def _copy_input_example(inner: Model, inner_path: str, path: str, model: Model) -> None:
    info = inner.saved_input_example_info
    if not info:
        return
    for key in ("artifact_path", "serving_input_path"):
        name = info.get(key)
        if name and os.path.exists(os.path.join(inner_path, name)):
            shutil.copy(os.path.join(inner_path, name), os.path.join(path, name))
    model.saved_input_example_info = dict(info)


def _copy_environment(inner_path: str, path: str) -> None:
    requirement = f"mlflow-observe=={__version__}"
    for name in _ENV_FILES:
        source = os.path.join(inner_path, name)
        if os.path.exists(source):
            shutil.copy(source, os.path.join(path, name))
    requirements = os.path.join(path, "requirements.txt")
    lines = Path(requirements).read_text().splitlines() if os.path.exists(requirements) else []
    if not any(line.startswith("mlflow-observe") for line in lines):
        lines.append(requirement)
    with open(requirements, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    conda = os.path.join(path, "conda.yaml")
    if os.path.exists(conda):
        import yaml

        with open(conda) as handle:
            env = yaml.safe_load(handle)
        for dependency in env.get("dependencies", []):
            if isinstance(dependency, dict) and "pip" in dependency:
                if requirement not in dependency["pip"]:
                    dependency["pip"].append(requirement)
        with open(conda, "w") as handle:
            yaml.safe_dump(env, handle, sort_keys=False)


def _with_request_id_param(signature):
    """The inner signature plus optional ``request_id`` and ``event_time`` parameters.

    Inputs and outputs stay the inner model's. A caller that sends
    ``"params": {"request_id": "order-42"}`` finds its rows in the log under that
    id, which is how the id becomes known to the caller of a served model. A
    caller that replays or batch-scores past events sends ``"event_time":
    "2026-11-27T14:05:00Z"`` so the rows land in the log's windows of those events.
    """
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec

    if signature is None:
        return None
    params = list(signature.params.params) if signature.params else []
    known = {p.name for p in params}
    if all(name in known for name in _LOG_PARAMS):
        return signature
    params.extend(ParamSpec(name, "string", "") for name in _LOG_PARAMS if name not in known)
    return ModelSignature(
        inputs=signature.inputs, outputs=signature.outputs, params=ParamSchema(params)
    )


def _as_profile(baseline, targets, predictions, options, model=None):
    if baseline is None or isinstance(baseline, DataProfile):
        return baseline
    profile = build_profile(baseline, targets=targets, predictions=predictions, **options)
    if model is not None and isinstance(baseline, pd.DataFrame):
        _record_impact(profile, model, baseline)
    return profile


def _record_impact(profile: DataProfile, model, reference: pd.DataFrame) -> None:
    """Feature impact for drift impact later; a model it cannot run on is logged anyway."""
    from mlflow_observe.tracking.predictor import record_impact

    try:
        with no_prediction_logs():
            record_impact(profile, model, reference)
    except Exception as exc:  # the model is still logged, without impact
        warnings.warn(
            f"Feature impact not recorded: the model failed on the baseline: {exc!r}",
            RuntimeWarning,
            stacklevel=3,
        )


# -- loading and predicting -----------------------------------------------------------------


class ObservedModel:
    """The pyfunc implementation: predicts with the inner model, logs each call."""

    def __init__(self, inner, *, root: str, model_config: dict | None):
        self.inner = inner
        # The outer pyfunc model already enforced the (same) signature: call the
        # inner implementation directly instead of enforcing it twice.
        self._impl = inner._model_impl
        self._root = root
        signature = inner.metadata.signature
        self._inner_takes_params = bool(signature and signature.params)
        outer = Model.load(root)
        conf = outer.flavors.get(FLAVOR_NAME, {})
        self._log_dir = (model_config or {}).get(LOG_DIR_CONFIG) or os.environ.get(LOG_DIR_ENV)
        self._model_fields = {
            "model_name": conf.get("model_name"),
            "model_version": os.environ.get(MODEL_VERSION_ENV),
            "model_uri": f"models:/{outer.model_id}"
            if getattr(outer, "model_id", None)
            else (f"runs:/{outer.run_id}" if outer.run_id else None),
        }
        self._writer = None
        self._writer_pid = None
        self._writer_lock = threading.Lock()
        self._baseline_path = os.path.join(root, conf["baseline"]) if conf.get("baseline") else None
        self._explain_rate = self._explain_setting()
        self._attribution = None
        self._attribution_pid = None
        if self._log_dir:
            # Loaded in a server's main thread (uvicorn workers import the scoring app
            # there): a SIGTERM or SIGINT then spools every answered call before the stop.
            install_stop_handlers()
            if self._explain_rate:  # in front: attributions written before the log's stop
                install_attribution_stop_handlers()
        if self._explain_rate and prediction_logs_allowed():
            # Started now (not at the first call): the attribution process loads the model
            # at a low priority while the server starts, ready by the first sampled calls.
            self.attribution_worker  # noqa: B018

    def predict(self, model_input, params=None):
        request_id = event_time = None
        if params and any(name in params for name in _LOG_PARAMS):
            params = dict(params)
            request_id = params.pop(REQUEST_ID_PARAM, None) or None
            event_time = params.pop(EVENT_TIME_PARAM, None) or None
            if not self._inner_takes_params:
                params = None
        start = time.perf_counter()
        output = self._impl.predict(model_input, params=params)
        latency = time.perf_counter() - start
        if self._log_dir and prediction_logs_allowed():
            if self._explain_rate:
                worker = self.attribution_worker
                if worker is not None:
                    request_id = worker.offer(model_input, request_id, event_time)
            writer = self.log_writer
            if writer is not None:
                writer.submit(
                    _logged_inputs(model_input),
                    output,
                    latency_seconds=latency,
                    request_id=request_id,
                    event_time=event_time,
                )
        return output

    @property
    def log_writer(self) -> PredictionLogWriter | None:
        """This process's writer (created at the first logged call, again after a fork)."""
        if self._writer is not None and self._writer_pid == os.getpid():
            return self._writer
        with self._writer_lock:
            if self._writer is None or self._writer_pid != os.getpid():
                try:
                    self._writer = PredictionLogWriter(
                        self._log_dir,
                        probabilities=self._probabilities(),
                        roller_command=self._roller_command(),
                        **_writer_settings(),
                        **self._model_fields,
                    )
                    self._writer_pid = os.getpid()
                except Exception as exc:  # a broken log location never breaks predictions
                    import logging

                    logging.getLogger(__name__).warning(
                        "Prediction logging disabled: cannot start the writer for %s: %r",
                        self._log_dir,
                        exc,
                    )
                    self._log_dir = None
                    return None
        return self._writer

    def _roller_command(self) -> list[str] | None:
        """The roller process's command (``MLFLOW_OBSERVE_ROLLER=thread``: None, the thread)."""
        if os.environ.get(ROLLER_ENV, "process").strip().lower() == "thread":
            return None
        return roller_command(self._root)

    def _explain_setting(self) -> float:
        """The share of calls to attribute (``MLFLOW_OBSERVE_EXPLAIN_RATE``); 0.0 when off."""
        rate = explain_rate(os.environ.get(EXPLAIN_RATE_ENV))
        reason = None
        if rate and not self._log_dir:
            reason = f"attributions are stored beside the prediction log: set {LOG_DIR_ENV}"
        elif rate and self._baseline_path is None:
            reason = "the model has no baseline, whose row sample is the background"
        if reason:
            import logging

            logging.getLogger(__name__).warning(
                "%s=%s is ignored: %s.", EXPLAIN_RATE_ENV, os.environ[EXPLAIN_RATE_ENV], reason
            )
            return 0.0
        return rate

    @property
    def attribution_worker(self) -> ProcessAttributionWorker | None:
        """This process's attribution worker and its process (started when the model is
        loaded, again after a fork), or None when attributions are off."""
        if self._attribution is not None and self._attribution_pid == os.getpid():
            return self._attribution
        with self._writer_lock:
            if self._explain_rate and (
                self._attribution is None or self._attribution_pid != os.getpid()
            ):
                try:
                    self._attribution = ProcessAttributionWorker(
                        self._log_dir,
                        self._root,
                        rate=self._explain_rate,
                        max_event_age_days=_writer_settings().get("max_event_age_days", 30.0),
                    )
                    self._attribution_pid = os.getpid()
                except Exception as exc:  # a broken baseline never breaks predictions
                    import logging

                    logging.getLogger(__name__).warning(
                        "Attributions disabled: cannot start the explainer: %r", exc
                    )
                    self._explain_rate = 0.0
                    return None
        return self._attribution

    def _probabilities(self):
        if os.environ.get(LOG_PROBABILITIES_ENV, "true").strip().lower() in ("0", "false", "no"):
            return None
        proba = getattr(self._impl, "predict_proba", None)
        if proba is None:
            return None
        try:
            classes = list(self.inner.get_raw_model().classes_)
        except Exception:
            classes = None

        def probabilities(inputs: pd.DataFrame):
            values = proba(inputs)
            return pd.DataFrame(
                values, columns=classes if classes and len(classes) == len(values[0]) else None
            )

        return probabilities

    def predict_proba(self, model_input) -> pd.DataFrame:
        """The inner model's class probabilities, one column per class (not logged).

        Raises ``AttributeError`` when the inner model has no ``predict_proba``.
        """
        probabilities = self._probabilities()
        if probabilities is None:
            raise AttributeError("The model has no predict_proba: it gives no probabilities.")
        return probabilities(model_input)

    def get_raw_model(self):
        return self


def serving_explainer(inner, baseline_path: str) -> ServingExplainer:
    """The explainer of served predictions: the loaded inner pyfunc model ``inner`` on the
    baseline row sample of the profile at ``baseline_path``."""
    profile = DataProfile.from_json(Path(baseline_path).read_text(encoding="utf-8"))
    try:
        raw = inner.get_raw_model()
    except Exception:  # a pyfunc model without a raw model: the sampled method
        raw = None
    impl = inner._model_impl
    return ServingExplainer(
        profile,
        lambda frame: impl.predict(frame, params=None),
        predict_proba=getattr(impl, "predict_proba", None),
        raw_model=raw,
    )


def load_serving_explainer(root: str) -> ServingExplainer:
    """The explainer of the wrapped model saved at ``root`` (a local directory), on a copy of
    its inner model loaded here: what the attribution process explains with."""
    conf = Model.load(root).flavors.get(FLAVOR_NAME, {})
    if not conf.get("baseline"):
        raise ValueError(
            f"The model at {root!r} has no baseline, whose row sample is the background: log "
            "it with baseline= to attribute its served predictions."
        )
    with no_prediction_logs():
        inner = mlflow.pyfunc.load_model(os.path.join(root, conf.get("inner_model") or INNER_DIR))
    return serving_explainer(inner, os.path.join(root, conf["baseline"]))


def load_probabilities(root: str):
    """The class-probabilities callable of the wrapped model saved at ``root`` (a local
    directory), on a copy loaded here, or None when the model gives none: what the roller
    process computes the log's probabilities with."""
    with no_prediction_logs():
        return load_model(root).get_raw_model()._probabilities()


def _logged_inputs(model_input):
    """The inputs as the log takes them: named tensors (a dict of arrays) as a frame whose
    rows are the arrays' first axis (the writer counts rows with ``len``)."""
    if not isinstance(model_input, dict):
        return model_input
    try:
        return dict_input_frame(model_input)
    except Exception:  # left to the writer, which counts what it cannot convert
        return model_input


def _writer_settings() -> dict:
    """Writer limits from the environment (``MLFLOW_OBSERVE_FLUSH_SECONDS`` and friends)."""
    settings = {}
    for key, env, cast in (
        ("flush_seconds", "MLFLOW_OBSERVE_FLUSH_SECONDS", float),
        ("flush_rows", "MLFLOW_OBSERVE_FLUSH_ROWS", int),
        ("max_queue_rows", "MLFLOW_OBSERVE_MAX_QUEUE_ROWS", int),
        ("max_queue_bytes", "MLFLOW_OBSERVE_MAX_QUEUE_BYTES", int),
        ("spool_seconds", "MLFLOW_OBSERVE_SPOOL_SECONDS", float),
        ("max_spool_bytes", "MLFLOW_OBSERVE_MAX_SPOOL_BYTES", int),
        ("max_event_age_days", "MLFLOW_OBSERVE_MAX_EVENT_AGE_DAYS", _days),
    ):
        if os.environ.get(env):
            settings[key] = cast(os.environ[env])
    return settings


def _days(text: str):
    """A number of days, or None for ``none`` (no limit)."""
    return None if text.strip().lower() == "none" else float(text)


def _load_pyfunc(path, model_config=None):
    """MLflow's pyfunc loader: ``path`` is the inner model directory."""
    inner = mlflow.pyfunc.load_model(path)
    return ObservedModel(
        inner, root=os.path.dirname(os.path.abspath(path)), model_config=model_config
    )
