"""The attributions of sampled served predictions: a sibling stream of the prediction log.

A served model with ``MLFLOW_OBSERVE_EXPLAIN_RATE`` set attributes a sample of
its predictions off the request path (see :mod:`mlflow_observe.plugins.attribution`)
and writes them beside the log, never into its files::

    <log>/attributions/date=2026-11-26/part-<token>-<sequence>.parquet

one row per attributed prediction row: its ``request_id`` (the log row's), the
``timestamp`` of the call, ``attribution_<input column>`` per input (named as
the log names the input), and ``explain_base_value``, ``explain_rate``,
``explain_method``, ``explain_output``. Files appear whole (written under a
temporary name, then moved), are partitioned by the day of the prediction
like the log, and :func:`~mlflow_observe.logs.reader.read_logs` joins them on
``request_id`` with ``with_attributions=True``. The log's maintenance covers
the stream: :func:`~mlflow_observe.logs.compaction.compact_logs` merges its
finished days after the log's, and
:func:`~mlflow_observe.logs.compaction.expire_logs` removes its days with them.
"""

from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlflow_observe.logs.schema import ATTRIBUTIONS_DIR, DATE_PARTITION, TIMESTAMP
from mlflow_observe.logs.spool import log_filesystem


def attributions_uri(uri: str) -> str:
    """Where the attributions of the log at ``uri`` are stored.

    A URI's options (``?endpoint_override=...``) stay at its end.

    >>> attributions_uri("s3://bucket/churn/")
    's3://bucket/churn/attributions'
    >>> attributions_uri("s3://bucket/churn?endpoint_override=127.0.0.1:9000&scheme=http")
    's3://bucket/churn/attributions?endpoint_override=127.0.0.1:9000&scheme=http'
    """
    uri = os.fspath(uri)
    location, query = uri, ""
    if "://" in uri:
        location, mark, options = uri.partition("?")
        query = mark + options
    return f"{location.rstrip('/')}/{ATTRIBUTIONS_DIR}{query}"


def write_attributions(uri: str, frame: pd.DataFrame, *, name: str) -> int:
    """Write attribution rows under the log at ``uri``, one file per day; the rows written.

    ``frame`` has a UTC ``timestamp`` column (the day partition) and the
    stream's columns; ``name`` makes the file names unique (writer token and sequence).
    """
    if frame.empty:
        return 0
    filesystem, base = log_filesystem(attributions_uri(uri))
    days = pd.to_datetime(frame[TIMESTAMP], utc=True).dt.strftime("%Y-%m-%d")
    for day, part in frame.groupby(days.to_numpy(), sort=True):
        folder = f"{base}/{DATE_PARTITION}={day}"
        filesystem.create_dir(folder, recursive=True)
        temporary, final = f"{folder}/.{name}.tmp", f"{folder}/part-{name}.parquet"
        table = pa.Table.from_pandas(part.reset_index(drop=True), preserve_index=False)
        with filesystem.open_output_stream(temporary) as stream:
            pq.write_table(table, stream)
        filesystem.move(temporary, final)
    return len(frame)
