"""Registered model versions: from a ``models:/`` URI to the version, its run and aliases."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
from mlflow.tracking import MlflowClient

MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/]+))/?$")


class ModelVersionNotFoundError(MlflowException):
    """The URI names no registered model version (a missing model, version or alias)."""

    def __init__(self, message: str):
        super().__init__(message, error_code=RESOURCE_DOES_NOT_EXIST)


@dataclass(frozen=True)
class ModelVersionRef:
    """A registered model version, and the alias it was reached by (if any)."""

    name: str
    version: str
    run_id: str | None
    alias: str | None = None

    @property
    def uri(self) -> str:
        """``models:/<name>/<version>``: the version itself, whatever alias moves later."""
        return f"models:/{self.name}/{self.version}"

    @property
    def label(self) -> str:
        """``churn v7``: how runs and messages name the version."""
        return f"{self.name} v{self.version}"


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``(name, version, alias)`` of a ``models:/`` URI.

    >>> parse_model_uri("models:/churn@champion")
    ('churn', None, 'champion')
    >>> parse_model_uri("runs:/abc/model")
    Traceback (most recent call last):
    ...
    ValueError: Expected a registered model version, 'models:/<name>/<version>' or 'models:/<name>@<alias>'; got 'runs:/abc/model'.
    """  # noqa: E501
    match = MODEL_URI.match(str(uri).strip())
    if not match:
        raise ValueError(
            "Expected a registered model version, 'models:/<name>/<version>' or "
            f"'models:/<name>@<alias>'; got {uri!r}."
        )
    return match["name"], match["version"], match["alias"]


def resolve_model_version(uri: str, client: MlflowClient | None = None) -> ModelVersionRef:
    """The registered model version a ``models:/`` URI names today.

    Raises :class:`ModelVersionNotFoundError` naming what is missing (the model,
    the version or the alias, with the aliases that do exist).
    """
    name, version, alias = parse_model_uri(uri)
    client = client or MlflowClient()
    try:
        found = (
            client.get_model_version(name, version)
            if version
            else client.get_model_version_by_alias(name, alias)
        )
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        raise ModelVersionNotFoundError(_missing_message(client, name, version, alias)) from exc
    return ModelVersionRef(
        name=name, version=str(found.version), run_id=found.run_id or None, alias=alias
    )


def _missing_message(client, name, version, alias) -> str:
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        return f"No registered model named {name!r}."
    if alias:
        aliases = sorted(model.aliases or {})
        return f"Registered model {name!r} has no alias {alias!r}" + (
            f" (its aliases: {', '.join(aliases)})." if aliases else " (it has no aliases)."
        )
    return f"Registered model {name!r} has no version {version}."
