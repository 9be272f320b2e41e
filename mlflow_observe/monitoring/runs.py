"""Where monitoring results live in MLflow: the experiment, and finding runs by their tags."""

from __future__ import annotations

import contextlib

import mlflow
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from mlflow_observe.tracking import tags

# Runs are searched in pages of this size (MLflow's maximum for search_runs).
_PAGE = 1000


def default_experiment_name(model_name: str) -> str:
    """One monitoring experiment per registered model.

    >>> default_experiment_name("churn")
    'churn monitoring'
    """
    return f"{model_name} monitoring"


# MLflow 3's UIs before the workflow switch open an experiment of this kind on its runs
# table (the model-training view), not on the GenAI traces overview. MLflow 3.17 decides
# by the browser's workflow type instead: see experiment_url.
_EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
# The query that makes MLflow 3.17's UI show the model-training view whatever the browser
# chose before (its default, in a fresh browser, is the GenAI overview).
ML_VIEW = "workflowType=machine_learning"


def experiment_url(tracking_uri: str, experiment_id: str) -> str:
    """The experiment's runs table in the MLflow UI, in the model-training view.

    A relative ``#/...`` link when the tracking URI is not a server's.

    >>> experiment_url("http://127.0.0.1:5000/", "3")
    'http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning'
    >>> experiment_url("sqlite:///mlflow.db", "3")
    '#/experiments/3/runs?workflowType=machine_learning'
    """
    page = f"#/experiments/{experiment_id}/runs?{ML_VIEW}"
    uri = str(tracking_uri)
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/{page}"
    return page


def get_or_create_experiment(client: MlflowClient, name: str) -> str:
    """The id of the experiment ``name``, created when missing (restored when deleted)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(
            name, tags={tags.PLUGIN_VERSION: _version(), **_EXPERIMENT_KIND}
        )
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def create_run(client: MlflowClient, experiment_id: str, run_name: str, run_tags: dict):
    """A run created by the monitor or the gate, recording who ran it (as MLflow's own runs do)."""
    return client.create_run(
        experiment_id,
        run_name=run_name,
        tags={"mlflow.user": mlflow_user(), tags.PLUGIN_VERSION: _version(), **run_tags},
    )


def tag_filter(**conditions) -> str:
    """``tags.`key` = 'value' and ...`` from ``{tag key: value}`` pairs given as a dict.

    >>> tag_filter(**{"observe.role": "window"})
    "tags.`observe.role` = 'window'"
    """
    return " and ".join(f"tags.`{key}` = {tags.quoted(value)}" for key, value in conditions.items())


def search_runs(client: MlflowClient, experiment_ids, filter_string: str, order_by=None) -> list:
    """Every active run that matches, over all pages."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            list(experiment_ids),
            filter_string=filter_string,
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=_PAGE,
            order_by=order_by,
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def tagged_runs(client: MlflowClient, experiment_ids, key: str, value: str) -> list:
    """Every active run whose tag ``key`` is ``value``, under the key as this version writes
    it or as earlier versions wrote it (see :data:`mlflow_observe.tracking.tags.LEGACY`),
    each run once, oldest first."""
    found = {}
    for filter_string in tags.search_filters(key, value):
        for run in search_runs(client, experiment_ids, filter_string):
            found.setdefault(run.info.run_id, run)
    return sorted(found.values(), key=lambda r: (r.info.start_time, r.info.run_id))


def all_experiment_ids(client: MlflowClient) -> list[str]:
    """The ids of every active experiment (to find a model's runs wherever they were logged)."""
    ids, token = [], None
    while True:
        page = client.search_experiments(
            view_type=ViewType.ACTIVE_ONLY, max_results=_PAGE, page_token=token
        )
        ids.extend(e.experiment_id for e in page)
        token = page.token
        if not token:
            return ids


def model_version_runs(
    client: MlflowClient, name: str, version: str, role: str, experiment_ids=None
) -> list:
    """The monitoring runs of one model version with the given role, oldest first."""
    ids = experiment_ids or all_experiment_ids(client)
    return search_runs(
        client,
        ids,
        tag_filter(**{tags.MODEL_NAME: name, tags.MODEL_VERSION: version, tags.ROLE: role}),
        order_by=["attributes.start_time ASC"],
    )


@contextlib.contextmanager
def resumed_run(run_id: str):
    """Make ``run_id`` the active run, whatever experiment the caller has set.

    ``mlflow.start_run(run_id=...)`` refuses a run outside the active
    experiment; the caller's active experiment is put back afterwards.
    """
    from mlflow.tracking import fluent

    previous = fluent._active_experiment_id
    fluent._active_experiment_id = None
    try:
        with mlflow.start_run(run_id=run_id) as run:
            yield run
    finally:
        fluent._active_experiment_id = previous


def mlflow_user() -> str:
    """The user MLflow records on runs (``MLFLOW_TRACKING_USERNAME`` or the login name)."""
    from mlflow.tracking.context.default_context import _get_user

    return _get_user()


def _version() -> str:
    from mlflow_observe._version import __version__

    return __version__
