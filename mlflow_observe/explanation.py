"""``mo.explain``: why a model gave the predictions it gave, feature by feature.

The attributions come from :func:`mlflow_observe.core.explain.sampled_shapley`
(any model; exact for linear models); the background rows, which stand for "no
information", are the baseline's row sample when the model has a baseline.
A logged prediction is found by its request id in the prediction log
(:func:`logged_rows`), so a served answer can be explained after the fact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlflow_observe.core.explain import Attributions, sampled_shapley
from mlflow_observe.logs.reader import read_logs
from mlflow_observe.logs.schema import (
    BOOKKEEPING,
    INPUT_PREFIX,
    LABEL,
    PREDICTION,
    REQUEST_ID,
    log_bookkeeping_columns,
)
from mlflow_observe.tracking.baselines import BaselineNotFoundError, load_baseline
from mlflow_observe.tracking.explainers import baseline_background, tree_attributions, tree_model
from mlflow_observe.tracking.predictor import as_predict


@dataclass(frozen=True)
class Explanation:
    """Attributions of some rows' predictions, with the rows themselves.

    Attributes
    ----------
    attributions : Attributions
        Per row and feature, its share of ``prediction - base_value``.
    rows : pandas.DataFrame
        The explained rows (the model's inputs).
    output : str
        What was explained: ``"prediction"``, or ``"probability of <class>"``.
    request_ids : list of str or None
        The rows' request ids when they came from the prediction log.
    """

    attributions: Attributions
    rows: pd.DataFrame
    output: str
    request_ids: list | None = None

    @property
    def base_value(self) -> float:
        return self.attributions.base_value

    def to_frame(self) -> pd.DataFrame:
        """One line per row and feature, the largest attributions of each row first."""
        values = self.attributions.values
        lines = []
        for i in range(len(values)):
            attribution = values.iloc[i]
            order = attribution.abs().sort_values(ascending=False, kind="stable").index
            for feature in order:
                lines.append(
                    {
                        "row": i,
                        "request_id": self.request_ids[i] if self.request_ids else None,
                        "feature": feature,
                        "value": self.rows.iloc[i][feature],
                        "attribution": float(attribution[feature]),
                    }
                )
        return pd.DataFrame(lines)

    def to_dict(self) -> dict:
        """A JSON-ready account: base value, and per row its prediction and attributions."""
        values = self.attributions.values
        return {
            "output": self.output,
            "method": self.attributions.method,
            "base_value": self.base_value,
            "reconciliation_error": self.attributions.reconciliation_error,
            "rows": [
                {
                    "request_id": self.request_ids[i] if self.request_ids else None,
                    "prediction": float(self.attributions.predictions[i]),
                    "attributions": {k: float(v) for k, v in values.iloc[i].items()},
                    "values": {k: _json_value(v) for k, v in self.rows.iloc[i].items()},
                }
                for i in range(len(values))
            ],
        }

    def plot(self, row: int = 0, *, top: int = 10):
        """A waterfall of one row: from the base value, feature by feature, to its prediction."""
        from mlflow_observe.report.waterfall import plot_waterfall

        attribution = self.attributions.values.iloc[row]
        label = self.request_ids[row] if self.request_ids else f"row {row}"
        return plot_waterfall(
            attribution.to_dict(),
            base_value=self.base_value,
            prediction=float(self.attributions.predictions[row]),
            values=self.rows.iloc[row].to_dict(),
            title=f"Why {label}: {self.output}",
            top=top,
        )

    def log(self, run_id: str | None = None, *, artifact_path: str = "explanations") -> None:
        """Log the JSON account, the table and each row's waterfall (up to 20) on a run.

        On the active run when ``run_id`` is None (one is started if none is active).
        """
        import matplotlib.pyplot as plt
        import mlflow

        client = mlflow.MlflowClient()
        owned = run_id is None and mlflow.active_run() is None
        run = mlflow.start_run() if owned else None
        if run_id is None:
            active = mlflow.active_run()
            assert active is not None  # started above when none was
            run_id = active.info.run_id
        try:
            client.log_text(
                run_id, json.dumps(self.to_dict(), indent=2), f"{artifact_path}/explanation.json"
            )
            table = self.to_frame()
            table["value"] = table["value"].astype(str)
            client.log_table(run_id, table, f"{artifact_path}/explanation_table.json")
            for i in range(min(len(self.rows), 20)):
                name = self.request_ids[i] if self.request_ids else f"row_{i}"
                figure = self.plot(i)
                client.log_figure(run_id, figure, f"{artifact_path}/waterfall_{_safe(name)}.png")
                plt.close(figure)
        finally:
            if run is not None:
                mlflow.end_run()


def _safe(name) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))[:80]


def _json_value(value):
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _output_function(model, output: str):
    """``frame -> numbers`` for the output to explain, and that output's description."""
    if output == "prediction":
        if isinstance(model, str):
            import mlflow.pyfunc

            model = mlflow.pyfunc.load_model(model)
        predict = as_predict(model)
        schema = _input_types(model)

        def numeric(frame):
            result = predict(_conform(frame, schema))
            if isinstance(result, pd.DataFrame):
                result = result.iloc[:, 0]
            array = np.asarray(result)
            if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
                raise TypeError(
                    "The model predicts labels, not numbers, so its prediction cannot be "
                    "split among features: explain output='probability' (a classifier with "
                    "predict_proba) or give a callable returning a score."
                )
            return array.astype(float)

        return numeric, "prediction"
    if output == "probability":
        estimator = _with_probabilities(model)
        classes = list(getattr(estimator, "classes_", [1]))
        positive = classes[-1]

        def probability(frame):
            return np.asarray(estimator.predict_proba(frame))[:, -1]

        return probability, f"probability of {positive}"
    raise ValueError(f"output must be 'prediction' or 'probability'; got {output!r}.")


def _input_types(model) -> dict:
    """The numpy dtype of each input column the model's signature names, if it has one."""
    metadata = getattr(model, "metadata", None)
    schema = metadata.get_input_schema() if metadata is not None else None
    if schema is None or not schema.has_input_names():
        return {}
    types = {}
    for spec in schema.inputs:
        try:
            types[spec.name] = spec.type.to_numpy()
        except Exception:  # an array or object type: left as it is
            continue
    return types


def _conform(frame: pd.DataFrame, types: dict) -> pd.DataFrame:
    """Integers read back as floats (a log that met a missing value) become integers again
    where no value changes, so that a signature that asks for integers accepts them."""
    for column, dtype in types.items():
        if column not in frame.columns or frame[column].dtype == dtype:
            continue
        values = frame[column]
        if np.issubdtype(dtype, np.integer) and pd.api.types.is_float_dtype(values):
            if values.notna().all() and (values == np.round(values)).all():
                frame = frame.assign(**{column: values.astype(dtype)})
    return frame


def _with_probabilities(model):
    if hasattr(model, "predict_proba"):
        return model
    if isinstance(model, str):
        import mlflow.sklearn

        try:
            return mlflow.sklearn.load_model(model)
        except Exception as exc:
            raise TypeError(
                f"{model} is not a scikit-learn model, so its probabilities cannot be read; "
                "give the model object, or a callable returning the score to explain."
            ) from exc
    raise TypeError(
        f"A {type(model).__name__} has no predict_proba: explain output='prediction', or give "
        "a callable returning the score to explain."
    )


def explain(
    model,
    rows: pd.DataFrame,
    background: pd.DataFrame | None = None,
    *,
    baseline=None,
    output: str = "prediction",
    method: str = "auto",
    n_permutations: int = 16,
    max_background: int = 50,
    random_state: int = 0,
    request_ids=None,
    log: bool = False,
) -> Explanation:
    """Attribute each row's prediction to its features.

    Parameters
    ----------
    model : str, model object or callable
        An MLflow model URI (``models:/churn@champion``), a loaded model with
        ``predict``, or a callable ``frame -> numbers``.
    rows : pandas.DataFrame
        The rows to explain, with the model's input columns.
    background : pandas.DataFrame, optional
        Rows that stand for "no information". By default the baseline's row
        sample: the baseline of ``baseline``, else of ``model`` when it is a
        model URI with one.
    baseline : str, optional
        Where the background comes from when it is not given (a run id or model URI).
    output : {"prediction", "probability"}, default="prediction"
        The number to explain: the prediction (a regressor's, or a score), or the
        probability of the last class of a scikit-learn classifier.
    method : {"auto", "tree", "sampled"}, default="auto"
        ``"tree"``: SHAP's TreeExplainer (the ``explain`` extra) for scikit-learn
        tree models, exact and fast; ``"sampled"``: Shapley values by sampled
        orderings, for any model; ``"auto"``: the tree explainer when it applies.
    n_permutations, max_background, random_state
        As for :func:`~mlflow_observe.core.explain.sampled_shapley`: the cost is
        ``n_rows * n_permutations * max_background * (n_features + 1)`` predictions.
    request_ids : list of str, optional
        The rows' request ids, carried into the table and the plots.
    log : bool, default=False
        Log the explanation on the active run (or a new one).

    Returns
    -------
    Explanation

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.linear_model import LinearRegression
    >>> train = pd.DataFrame({"rooms": [1, 2, 3, 4], "age": [30, 10, 20, 5]})
    >>> model = LinearRegression().fit(train, [100, 180, 250, 340])
    >>> explanation = explain(model, train.iloc[[3]], background=train)
    >>> explanation.to_frame()[["feature", "value"]].to_dict("list")
    {'feature': ['rooms', 'age'], 'value': [4, 5]}
    >>> round(explanation.attributions.reconciliation_error, 9)
    0.0
    """
    if not isinstance(rows, pd.DataFrame) or rows.empty:
        raise ValueError("rows must be a non-empty pandas DataFrame of the model's inputs.")
    columns = list(rows.columns)
    if background is None:
        source = baseline if baseline is not None else model if isinstance(model, str) else None
        if source is None:
            raise ValueError(
                "No background rows: pass background= (rows standing for 'no information', "
                "e.g. a sample of the training data) or baseline= (a run or model URI whose "
                "baseline keeps a row sample)."
            )
        try:
            profile = load_baseline(source)
        except BaselineNotFoundError as exc:
            raise ValueError(
                f"No baseline to take background rows from ({exc}); pass background=."
            ) from exc
        background = baseline_background(profile, columns)
    background = _like(background, rows)
    if method not in ("auto", "tree", "sampled"):
        raise ValueError(f"method must be 'auto', 'tree' or 'sampled'; got {method!r}.")
    tree = tree_model(model) if method in ("auto", "tree") else None
    if method == "tree" and tree is None:
        raise ValueError(
            "method='tree' needs SHAP (pip install 'mlflow-observe[explain]') and a "
            "scikit-learn tree model (a forest, boosted trees or one tree)."
        )
    if tree is not None:
        attributions, description = tree_attributions(
            tree, rows, background, output=output, max_background=max_background
        )
    else:
        function, description = _output_function(model, output)
        attributions = sampled_shapley(
            function,
            rows,
            background,
            n_permutations=n_permutations,
            max_background=max_background,
            random_state=random_state,
        )
    explanation = Explanation(
        attributions=attributions,
        rows=rows.reset_index(drop=True),
        output=description,
        request_ids=None if request_ids is None else [str(r) for r in request_ids],
    )
    if log:
        explanation.log()
    return explanation


def _like(background: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """``background`` with the rows' columns and, where it can take them, their dtypes."""
    missing = [c for c in rows.columns if c not in background.columns]
    if missing:
        raise ValueError(f"The background rows lack the columns {missing} of the rows to explain.")
    frame = background[list(rows.columns)].copy()
    for column, dtype in rows.dtypes.items():
        try:
            frame[column] = frame[column].astype(dtype)
        except (TypeError, ValueError):
            pass  # left as recorded: the model sees what the baseline saw
    return frame


def logged_rows(log_uri: str, request_ids, *, model: str | None = None) -> pd.DataFrame:
    """The logged inputs of the given request ids, in the order asked.

    A request id of a multi-row call is logged per row as ``<id>-<i>``; asking for
    ``<id>`` finds all its rows.
    """
    wanted = [str(r) for r in request_ids]
    logs = read_logs(log_uri, model=model)
    ids = logs[REQUEST_ID].astype(str)
    found = []
    for request_id in wanted:
        match = logs[(ids == request_id) | ids.str.startswith(request_id + "-")]
        if match.empty:
            raise LookupError(
                f"No logged prediction has the request id {request_id!r} in {log_uri}; "
                "check the id and the log location (--logs)."
            )
        found.append(match)
    frame = pd.concat(found, ignore_index=True)
    outputs = {*log_bookkeeping_columns(frame.columns), PREDICTION, LABEL}
    inputs = [c for c in frame.columns if c not in outputs]
    # An input named like a bookkeeping column was logged under a prefix: give its name back.
    reserved = {*BOOKKEEPING, PREDICTION}
    names = {
        c: c[len(INPUT_PREFIX) :]
        for c in inputs
        if c.startswith(INPUT_PREFIX) and c[len(INPUT_PREFIX) :] in reserved
    }
    table = frame[inputs].rename(columns=names)
    table.insert(0, REQUEST_ID, frame[REQUEST_ID].astype(str))
    return table
