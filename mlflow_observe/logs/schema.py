"""Column names of the prediction log, and how inputs and outputs become columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

REQUEST_ID = "request_id"
BATCH_ID = "batch_id"  # one per predict call
TIMESTAMP = "timestamp"  # UTC
LATENCY_MS = "latency_ms"
SAMPLE_WEIGHT = "sample_weight"  # 1 / the rate a row was sampled at (1.0 unless load was shed)
EVENT_TIME_REJECTED = "event_time_rejected"  # an implausible event_time given, else null
MODEL_NAME = "model_name"
MODEL_VERSION = "model_version"
MODEL_URI = "model_uri"
PREDICTION = "prediction"
DATE_PARTITION = "date"
LABEL = "label"
LABELED_AT = "labeled_at"
LABELS_DIR = "labels"
# Attributions of sampled served predictions: a sibling stream ``<log>/attributions/date=.../``.
ATTRIBUTIONS_DIR = "attributions"
EXPLAIN_BASE_VALUE = "explain_base_value"  # the explainer's expected value (background mean)
EXPLAIN_RATE = "explain_rate"  # the rate the row was sampled at for attribution
EXPLAIN_METHOD = "explain_method"  # "sampled_shapley" or "tree_shap"
EXPLAIN_OUTPUT = "explain_output"  # what was explained: "prediction", "probability of <class>"

BOOKKEEPING = (
    REQUEST_ID,
    BATCH_ID,
    TIMESTAMP,
    LATENCY_MS,
    SAMPLE_WEIGHT,
    EVENT_TIME_REJECTED,
    MODEL_NAME,
    MODEL_VERSION,
    MODEL_URI,
    DATE_PARTITION,
    LABELED_AT,
    EXPLAIN_BASE_VALUE,
    EXPLAIN_RATE,
    EXPLAIN_METHOD,
    EXPLAIN_OUTPUT,
)
OUTPUT_PREFIXES = (f"{PREDICTION}_", "probability_")
# A sampled row's feature attributions are logged as ``attribution_<input column>``.
ATTRIBUTION_PREFIX = "attribution_"
# An input column with a bookkeeping name is logged under this prefix.
INPUT_PREFIX = "input_"


def safe_input_names(columns) -> list[str]:
    """Input column names as logged: text, and never a bookkeeping name.

    >>> safe_input_names(["age", "timestamp", 3])
    ['age', 'input_timestamp', '3']
    """
    reserved = set(BOOKKEEPING) | {PREDICTION}
    return [INPUT_PREFIX + str(c) if str(c) in reserved else str(c) for c in columns]


def dict_input_frame(inputs: dict) -> pd.DataFrame:
    """A dict of arrays (named tensors) as the log's input columns, one row per first-axis item.

    A 2-D (or higher) array becomes one column of vectors, a row's values flattened,
    which the writer logs as ``list<float32>``.

    >>> frame = dict_input_frame({"emb": np.zeros((3, 4)), "text": ["a", "b", "c"]})
    >>> frame.shape, frame["emb"][0].shape
    ((3, 2), (4,))
    """
    columns = {}
    for name, values in inputs.items():
        array = np.atleast_1d(values)
        columns[name] = array if array.ndim == 1 else list(array.reshape(len(array), -1))
    return pd.DataFrame(columns)


def output_frame(outputs, n_rows: int) -> pd.DataFrame:
    """The model's outputs as columns: ``prediction``, or ``prediction_<name>`` for several.

    >>> output_frame([0.2, 0.9], 2).columns.tolist()
    ['prediction']
    >>> output_frame(pd.DataFrame({"a": [1], "b": [2]}), 1).columns.tolist()
    ['prediction_a', 'prediction_b']
    """
    if isinstance(outputs, pd.DataFrame):
        if outputs.shape[1] == 1:
            return pd.DataFrame({PREDICTION: outputs.iloc[:, 0].to_numpy()})
        return pd.DataFrame({f"{PREDICTION}_{c}": outputs[c].to_numpy() for c in outputs.columns})
    if isinstance(outputs, pd.Series):
        return pd.DataFrame({PREDICTION: outputs.to_numpy()})
    if isinstance(outputs, dict):
        return pd.DataFrame(
            {
                f"{PREDICTION}_{k}": np.asarray(v).reshape(n_rows, -1)[:, 0]
                for k, v in outputs.items()
            }
        )
    array = np.asarray(outputs)
    if array.ndim <= 1:
        return pd.DataFrame({PREDICTION: array.reshape(n_rows)})
    array = array.reshape(n_rows, -1)
    return pd.DataFrame({f"{PREDICTION}_{i}": array[:, i] for i in range(array.shape[1])})


def log_bookkeeping_columns(columns) -> list[str]:
    """The columns of a prediction log that are not model inputs.

    >>> log_bookkeeping_columns(["request_id", "age", "probability_1", "attribution_age"])
    ['request_id', 'probability_1', 'attribution_age']
    """
    return [
        c
        for c in columns
        if c in BOOKKEEPING
        or (isinstance(c, str) and c.startswith((*OUTPUT_PREFIXES, ATTRIBUTION_PREFIX)))
    ]
