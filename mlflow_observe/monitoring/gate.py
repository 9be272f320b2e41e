"""The registry gate: promote a model version only when its evaluation passes thresholds.

The candidate is evaluated (drift, integrity, degradation against its own
baseline) on a dataset, or its latest recorded evaluation is used; optionally
the current holder of an alias (the champion) is evaluated the same way, for
thresholds relative to it. The verdict follows MLflow's own
``MetricThreshold`` / ``mlflow.validate_evaluation_results`` rules. The version
is tagged with the verdict, ``gate_report.json`` keeps the whole decision on
the gate's run, and the alias moves only on a pass.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
from dataclasses import asdict, dataclass, field

import mlflow
import pandas as pd
from mlflow.entities import RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.models import MetricThreshold
from mlflow.models.evaluation import EvaluationResult
from mlflow.models.evaluation.validation import ModelValidationFailedException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.tracking import MlflowClient

from mlflow_observe._version import __version__
from mlflow_observe.inputs import read_table
from mlflow_observe.logs.schema import LABEL, PREDICTION
from mlflow_observe.logs.writer import no_prediction_logs
from mlflow_observe.monitoring.catalogue import check_metrics, metric_catalogue
from mlflow_observe.monitoring.checks import run_checks
from mlflow_observe.monitoring.fleet import refresh_quietly
from mlflow_observe.monitoring.rules import (
    RuleSyntaxError,
    Threshold,
    combine_thresholds,
    estimated_twin,
)
from mlflow_observe.monitoring.runs import (
    create_run,
    default_experiment_name,
    get_or_create_experiment,
    mlflow_user,
    model_version_runs,
    resumed_run,
)
from mlflow_observe.tracking import deadline, tags
from mlflow_observe.tracking.baselines import load_baseline
from mlflow_observe.tracking.registry import ModelVersionRef, resolve_model_version

_logger = logging.getLogger(__name__)

PASSED, FAILED = "passed", "failed"
REPORT_ARTIFACT = "gate_report.json"


class GateError(MlflowException):
    """The gate cannot decide (nothing to evaluate, a missing baseline...)."""

    def __init__(self, message: str):
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)


class GatePromotionError(GateError):
    """The gate decided and recorded its verdict, but moving the alias (or stage) failed.

    ``result`` is the recorded decision; its ``promotion`` is ``'failed'`` and
    the version's ``observe.gate.promotion`` tag says so.
    """

    def __init__(self, result: GateResult, message: str):
        super().__init__(f"The gate passed {result.candidate.label}, but {message}.")
        self.result = result


@dataclass(frozen=True)
class ThresholdCheck:
    """One threshold against the candidate's (and the champion's) metric."""

    threshold: str
    metric: str
    candidate_value: float | None
    champion_value: float | None
    passed: bool
    reason: str
    evaluated_metric: str = ""  # the key read (the estimate's, for a realised key without labels)


@dataclass
class GateResult:
    """The gate's verdict on a candidate, with every check behind it."""

    candidate: ModelVersionRef
    champion: ModelVersionRef | None
    status: str
    checks: list
    run_id: str
    evaluated_on: str
    actions: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    promotion: str = tags.PROMOTION_NONE

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    @property
    def reasons(self) -> list:
        return [c.reason for c in self.checks if not c.passed]

    def to_dict(self) -> dict:
        return {
            "candidate": self.candidate.uri,
            "champion": self.champion.uri if self.champion else None,
            "status": self.status,
            "run_id": self.run_id,
            "evaluated_on": self.evaluated_on,
            "reasons": self.reasons,
            "actions": self.actions,
            "promotion": self.promotion,
            "notes": self.notes,
            "checks": [asdict(c) for c in self.checks],
        }


def gate(
    model_uri: str,
    *,
    thresholds,
    data: pd.DataFrame | str | None = None,
    against: str | None = None,
    promote: str | None = None,
    stage: str | None = None,
    targets: str | None = None,
    experiment_name: str | None = None,
    drift_options: dict | None = None,
) -> GateResult:
    """Decide whether a model version may be promoted, record why, and promote on a pass.

    Parameters
    ----------
    model_uri : str
        The candidate, ``models:/<name>/<version>`` (or ``@<alias>``).
    thresholds : list of str or Threshold
        ``"drift/share_drifted_columns<=0.3"``, ``"degradation/accuracy_delta>=-0.01"``,
        ``"degradation/accuracy>=champion+0.01"`` (see :mod:`mlflow_observe.monitoring.rules`).
    data : pandas.DataFrame or str, optional
        Evaluation data with the features (and labels, for realised performance):
        the candidate predicts on it. Without data, the candidate's latest
        recorded evaluation (a monitored window or an earlier gate) is used.
    against : str, optional
        The champion: ``models:/<name>@<alias>`` or just the alias. Needed for
        thresholds relative to the champion; evaluated on the same data.
    promote : str, optional
        Alias to point at the candidate when the gate passes.
    stage : str, optional
        Legacy registry stage to move the candidate to on a pass (e.g. ``Production``).
    targets : str, optional
        Label column of ``data`` (default: the baseline's, or ``label``).
    experiment_name : str, optional
        Where the gate's run goes; default ``'<model name> monitoring'``.

    Returns
    -------
    GateResult
        ``status`` ``'passed'`` or ``'failed'``; missing or NaN metrics fail
        with a reason, never raise.
    """
    parsed = [t if isinstance(t, Threshold) else Threshold.parse(t) for t in thresholds]
    if not parsed:
        raise RuleSyntaxError(
            "The gate needs at least one threshold, e.g. 'drift/share_drifted_columns<=0.3'."
        )
    merged = combine_thresholds(parsed)
    client = MlflowClient()
    candidate = resolve_model_version(model_uri, client)
    try:
        catalogue, any_column = metric_catalogue(load_baseline(candidate.uri)), False
    except Exception:  # no baseline to name the columns: judged by the recorded metrics
        catalogue, any_column = metric_catalogue(), True
    check_metrics(list(merged), catalogue, what="threshold", any_column=any_column)
    champion = None
    if against:
        against = (
            against if against.startswith("models:/") else f"models:/{candidate.name}@{against}"
        )
        champion = resolve_model_version(against, client)
    elif any(t.compares_with_champion for t in merged.values()):
        raise RuleSyntaxError(
            "A threshold compares with the champion but no champion was "
            "given: pass against='models:/<name>@<alias>' (--against)."
        )
    if isinstance(data, str):
        data = read_table(data)
    experiment_id = get_or_create_experiment(
        client, experiment_name or default_experiment_name(candidate.name)
    )
    run = create_run(
        client,
        experiment_id,
        f"{candidate.label} gate",
        {
            tags.ROLE: tags.ROLE_GATE,
            tags.MODEL_NAME: candidate.name,
            tags.MODEL_VERSION: candidate.version,
        },
    )
    run_id = run.info.run_id
    notes: list[str] = []
    try:
        with contextlib.redirect_stdout(sys.stderr):
            if data is not None:
                evaluated_on = f"data ({len(data)} rows)"
                candidate_metrics = _evaluate_version(
                    candidate, data, run_id, targets, drift_options, notes
                )
                champion_metrics = None
                if champion is not None:
                    child = create_run(
                        client,
                        experiment_id,
                        f"{champion.label} (champion) for gate",
                        {
                            tags.PARENT_RUN_ID: run_id,
                            tags.MODEL_NAME: champion.name,
                            tags.MODEL_VERSION: champion.version,
                        },
                    )
                    champion_metrics = _evaluate_version(
                        champion, data, child.info.run_id, targets, drift_options, notes
                    )
                    client.set_terminated(child.info.run_id)
            else:
                candidate_metrics, source = _recorded_metrics(client, candidate)
                evaluated_on = f"recorded evaluation (run {source})"
                champion_metrics = None
                if champion is not None:
                    champion_metrics, champion_source = _recorded_metrics(client, champion)
                    notes.append(f"champion metrics from run {champion_source}")
        checks = [_check(t, candidate_metrics, champion_metrics) for t in merged.values()]
        status = PASSED if all(c.passed for c in checks) else FAILED
        result = GateResult(candidate, champion, status, checks, run_id, evaluated_on, notes=notes)
        _decide(client, result, promote, stage, experiment_id)
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
        refresh_quietly(candidate.name, client)  # the fleet's gate column and tags
        return result
    except BaseException:
        with contextlib.suppress(Exception), deadline.last_calls():
            client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise


def _evaluate_version(
    model: ModelVersionRef, data: pd.DataFrame, run_id: str, targets, drift_options, notes
) -> dict:
    """Predict with the version on ``data`` and run every check against its own baseline."""
    baseline = load_baseline(model.uri)
    label = targets or next((c for c in (baseline.targets, LABEL) if c and c in data.columns), None)
    prediction = baseline.predictions or PREDICTION
    features = data.drop(columns=[c for c in (label, prediction) if c and c in data.columns])
    loaded = mlflow.pyfunc.load_model(model.uri)
    with no_prediction_logs():  # a gate's evaluation is not production traffic
        output = loaded.predict(features)
        probabilities = _probabilities(loaded, features, baseline, notes, model)
    if isinstance(output, pd.DataFrame):
        output = output.iloc[:, 0]
    frame = features.assign(**{prediction: pd.Series(output).to_numpy()})
    for column, values in probabilities.items():
        frame[column] = values
    if label and label in data.columns:
        frame[baseline.targets or label] = data[label].to_numpy()
    with resumed_run(run_id):
        mlflow.set_tags({tags.MODEL_NAME: model.name, tags.MODEL_VERSION: model.version})
        checks = run_checks(frame, baseline, drift_options=drift_options, min_labelled_rows=1)
    notes.extend(f"{model.label}: {note}" for note in checks.notes)
    return checks.metrics


def _probabilities(loaded, features, baseline, notes, model) -> dict:
    """The baseline's probability columns from the model's ``predict_proba``, when it has one.

    Without them ROC AUC and log loss cannot be computed; the notes say why.
    """
    wanted = list(baseline.performance.probabilities) if baseline.performance else []
    if not wanted:
        return {}
    try:
        raw = loaded.get_raw_model()
        values = raw.predict_proba(features)
    except Exception as exc:  # no probabilities: the metrics that need them are left out
        notes.append(
            f"{model.label}: no class probabilities ({type(exc).__name__}: {exc}); "
            "roc_auc and log_loss not computed."
        )
        return {}
    table = pd.DataFrame(values).reset_index(drop=True)
    if not isinstance(values, pd.DataFrame):
        classes = getattr(raw, "classes_", None)
        if classes is not None and len(classes) == table.shape[1]:
            table.columns = list(classes)
    table.columns = [f"probability_{c}" for c in table.columns]
    found = {c: table[c].to_numpy() for c in wanted if c in table.columns}
    if len(found) < len(wanted):
        notes.append(
            f"{model.label}: the model's probabilities {list(table.columns)} do not match the "
            f"baseline's {wanted}; roc_auc and log_loss not computed."
        )
        return {}
    return found


def _recorded_metrics(client, model: ModelVersionRef) -> tuple[dict, str]:
    """The metrics of the version's latest complete evaluation (window or gate run)."""
    runs = [
        r
        for role in (tags.ROLE_WINDOW, tags.ROLE_GATE)
        for r in model_version_runs(client, model.name, model.version, role)
        if r.info.status == "FINISHED"
        and r.data.metrics
        and (role == tags.ROLE_GATE or r.data.tags.get(tags.WINDOW_COMPLETE) == "true")
    ]
    if not runs:
        raise GateError(
            f"{model.label} has no recorded evaluation to judge: give data to "
            "evaluate it on (--data), or monitor it first."
        )
    latest = max(runs, key=lambda r: r.info.end_time or r.info.start_time)
    return dict(latest.data.metrics), latest.info.run_id


def _check(threshold: Threshold, candidate: dict, champion: dict | None) -> ThresholdCheck:
    """One threshold: MLflow's ``validate_evaluation_results`` for what ``MetricThreshold``
    expresses, the delta to the champion for a non-inferiority margin; missing or NaN fails.

    A realised performance key falls back to the estimate when the evaluation had no
    labels (``degradation/accuracy`` -> ``degradation/estimated_accuracy``).
    """
    metric = threshold.metric
    value = candidate.get(metric)
    twin = estimated_twin(metric)
    if (value is None or not math.isfinite(value)) and twin and twin in candidate:
        metric, value = twin, candidate[twin]
    reference = (champion or {}).get(metric)
    source = f" (read from {metric}: no labels)" if metric != threshold.metric else ""

    def result(passed, reason=""):
        return ThresholdCheck(
            str(threshold), threshold.metric, value, reference, passed, reason, metric
        )

    if value is None or not math.isfinite(value):
        return result(
            False,
            f"{threshold.metric}: the candidate has no value for it "
            "(not computed on this evaluation; see the run's artifacts).",
        )
    if threshold.compares_with_champion and (reference is None or not math.isfinite(reference)):
        return result(False, f"{threshold.metric}: the champion has no value to compare with.")
    if threshold.expressible_in_mlflow:
        metric_threshold = MetricThreshold(
            threshold=threshold.threshold,
            min_absolute_change=threshold.min_absolute_change,
            min_relative_change=threshold.min_relative_change,
            greater_is_better=threshold.greater_is_better,
        )
        try:
            with _quiet_validation():
                mlflow.validate_evaluation_results(
                    {metric: metric_threshold},
                    EvaluationResult(metrics={metric: value}, artifacts={}),
                    EvaluationResult(metrics={metric: reference}, artifacts={})
                    if reference is not None
                    and (threshold.min_absolute_change or threshold.min_relative_change)
                    else None,
                )
        except ModelValidationFailedException as exc:
            return result(False, exc.message.strip().replace("\n", " ") + source)
    if threshold.margin_absolute is not None or threshold.margin_relative is not None:
        margin = max(
            threshold.margin_absolute or 0.0, (threshold.margin_relative or 0.0) * abs(reference)
        )
        delta = value - reference
        greater = threshold.greater_is_better
        slack = 1e-12 * max(1.0, abs(reference))  # a value on the bound passes, in floats too
        if (delta < -margin - slack) if greater else (delta > margin + slack):
            bound = reference - margin if greater else reference + margin
            return result(
                False,
                f"Metric {metric} non-inferiority check failed: candidate model {metric} = "
                f"{value:.6g}, champion = {reference:.6g}, delta = {delta:+.6g}; the margin "
                f"allows {'-' if greater else '+'}{margin:.6g} (candidate must be "
                f"{'>=' if greater else '<='} {bound:.6g}).{source}",
            )
    return result(True)


@contextlib.contextmanager
def _quiet_validation():
    """MLflow logs 'Model validation passed!' per metric: the gate's verdict is the one to read."""
    logger = logging.getLogger("mlflow.models.evaluation.validation")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _decide(client, result: GateResult, promote, stage, experiment_id) -> None:
    """Record the decision, then act on it: tags, report, and only then the alias.

    The version's ``observe.gate.*`` tags are set first (with the promotion
    ``pending`` when one is due), then ``gate_report.json``; only when both
    are stored does the alias (or stage) move, and the promotion tag then says
    ``done`` or ``failed``. A decision that cannot be recorded moves nothing.
    """
    candidate = result.candidate
    planned = []
    if result.passed and promote:
        planned.append(f"alias {promote!r} -> version {candidate.version}")
    if result.passed and stage:
        planned.append(f"stage -> {stage}")
    if not result.passed and (promote or stage):
        result.actions.append("no promotion: the gate failed")
    result.promotion = tags.PROMOTION_PENDING if planned else tags.PROMOTION_NONE
    try:
        _record(client, result, planned, promote, stage, experiment_id)
    except Exception as exc:
        result.promotion = tags.PROMOTION_FAILED
        with contextlib.suppress(Exception):  # say so, if the server still answers
            _set_verdict_tags(client, result, "none: the decision could not be recorded")
        raise GateError(
            f"The gate's decision on {candidate.label} ({result.status}) could not be recorded "
            f"({_message(exc)}); nothing was promoted."
        ) from exc
    if not planned:
        return
    try:
        if promote:
            client.set_registered_model_alias(candidate.name, promote, candidate.version)
            result.actions.append(planned[0])
        if stage:
            client.transition_model_version_stage(candidate.name, candidate.version, stage)
            result.actions.append(planned[-1])
    except Exception as exc:
        result.promotion = tags.PROMOTION_FAILED
        done = "; ".join(result.actions) or "nothing moved"
        failure = f"promotion failed ({_message(exc)}); done before the failure: {done}"
        result.actions.append(f"promotion failed: {_message(exc)}")
        with contextlib.suppress(Exception):
            _set_verdict_tags(client, result, failure)
            _log_report(client, result, promote, stage, experiment_id)
        raise GatePromotionError(result, failure) from exc
    result.promotion = tags.PROMOTION_DONE
    _set_verdict_tags(client, result, "; ".join(result.actions))
    try:
        _log_report(client, result, promote, stage, experiment_id)
    except Exception as exc:  # the move and the tags stand; the first report says what was due
        _logger.warning(
            "The gate promoted %s but could not update %s (%s); the version's tags are up to date.",
            candidate.label,
            REPORT_ARTIFACT,
            _message(exc),
        )


def _record(client, result: GateResult, planned, promote, stage, experiment_id) -> None:
    """The verdict as tags (promotion pending), then the report: the durable decision."""
    action = "; ".join(result.actions + [f"due: {a}" for a in planned]) or "none"
    _set_verdict_tags(client, result, action)
    _log_report(client, result, promote, stage, experiment_id, planned=planned)


def _set_verdict_tags(client, result: GateResult, action: str) -> None:
    candidate = result.candidate
    reasons = "; ".join(result.reasons) or "all thresholds passed"
    verdict_tags = {
        tags.GATE_STATUS: result.status,
        tags.GATE_REASONS: reasons[:5000],
        tags.GATE_RUN_ID: result.run_id,
        tags.GATE_ACTION: action[:5000] or "none",
        tags.GATE_PROMOTION: result.promotion,
    }
    verdict_tags[tags.GATE_HISTORY] = _history(client, result)
    for key, value in verdict_tags.items():
        client.set_model_version_tag(candidate.name, candidate.version, key, value)
    del verdict_tags[tags.GATE_HISTORY]
    run_tags = {**verdict_tags, tags.DESCRIPTION: _description(result, reasons, action)}
    client.log_batch(result.run_id, tags=[RunTag(k, v) for k, v in run_tags.items()])


def _log_report(client, result: GateResult, promote, stage, experiment_id, planned=()) -> None:
    report = {
        "gate": "mlflow-observe",
        "version": __version__,
        "time": pd.Timestamp.now(tz="UTC").isoformat(),
        "user": mlflow_user(),
        "tracking_uri": mlflow.get_tracking_uri(),
        "experiment_id": experiment_id,
        "candidate": _describe(result.candidate),
        "champion": _describe(result.champion),
        "evaluated_on": result.evaluated_on,
        "verdict": result.status,
        "thresholds": [asdict(c) for c in result.checks],
        "reasons": result.reasons,
        "promote": promote,
        "stage": stage,
        "promotion": result.promotion,
        "actions": result.actions,
        "due": list(planned),
        "notes": result.notes,
    }
    client.log_text(result.run_id, json.dumps(report, indent=2, default=str), REPORT_ARTIFACT)


def _history(client, result: GateResult) -> str:
    """The version's gate decisions, newest last, as JSON that fits a tag (oldest dropped)."""
    candidate = result.candidate
    current = client.get_model_version(candidate.name, candidate.version).tags
    try:
        entries = json.loads(current.get(tags.GATE_HISTORY, "[]"))
    except ValueError:
        entries = []
    entries = [e for e in entries if isinstance(e, dict) and e.get("run_id") != result.run_id]
    entries.append(
        {
            "run_id": result.run_id,
            "time": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
            "status": result.status,
            "promotion": result.promotion,
        }
    )
    text = json.dumps(entries, separators=(",", ":"))
    while len(text) > 5000 and len(entries) > 1:
        entries.pop(0)
        text = json.dumps(entries, separators=(",", ":"))
    return text


def _message(exc: BaseException) -> str:
    return (getattr(exc, "message", None) or str(exc) or type(exc).__name__).strip()


def _describe(model: ModelVersionRef | None):
    if model is None:
        return None
    return {
        "uri": model.uri,
        "name": model.name,
        "version": model.version,
        "alias": model.alias,
        "run_id": model.run_id,
    }


def _description(result: GateResult, reasons: str, action: str) -> str:
    against = f" against {result.champion.label}" if result.champion else ""
    return (
        f"Gate **{result.status}** for {result.candidate.label}{against}, on "
        f"{result.evaluated_on}.\n\n{reasons}\n\nActions: {action or 'none'} "
        f"(promotion: {result.promotion}). Full record: `{REPORT_ARTIFACT}`."
    )
