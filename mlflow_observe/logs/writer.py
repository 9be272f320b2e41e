"""The prediction log writer: a bounded queue and one background thread per process.

``submit`` is all a prediction pays for: it appends references to the call's
inputs and outputs to a bounded queue, and never blocks, waits or raises. The
writer thread turns queued calls into rows, and writes them as Parquet files
partitioned by day::

    <root>/date=2026-11-26/part-<host>-<pid>-<start>-<sequence>.parquet

Each file is written under a hidden temporary name and renamed when complete,
so readers never see half a file. A full queue, or a file that cannot be
written (a full disk, no permission), drops those rows and counts them: the
counts are in ``stats()``, the first failure of each kind is logged once with
its cause, and the counters are logged (at most once a minute) while they grow.

What a crash (SIGKILL, power loss) can lose is what was queued and not yet
written: at most ``max_queue_rows`` rows, plus the batch being written.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from mlflow_observe.logs.schema import (
    BATCH_ID,
    DATE_PARTITION,
    LATENCY_MS,
    MODEL_NAME,
    MODEL_URI,
    MODEL_VERSION,
    REQUEST_ID,
    TIMESTAMP,
    output_frame,
    safe_input_names,
)

_logger = logging.getLogger(__name__)


# False within no_prediction_logs(): while the flavor saves a model (MLflow's own checks
# of the input example load and call it) and while a model is evaluated offline.
_LOGGING_ALLOWED = contextvars.ContextVar("mlflow_observe_logging_allowed", default=True)


@contextlib.contextmanager
def no_prediction_logs():
    """Within this block, wrapped models log nothing (e.g. evaluating a candidate offline)."""
    token = _LOGGING_ALLOWED.set(False)
    try:
        yield
    finally:
        _LOGGING_ALLOWED.reset(token)


def prediction_logs_allowed() -> bool:
    """False inside :func:`no_prediction_logs`."""
    return _LOGGING_ALLOWED.get()


class PredictionLogWriter:
    """Writes prediction calls to a Parquet log, off the caller's thread.

    Parameters
    ----------
    root : str
        A local directory (created if missing) or a URI that ``pyarrow.fs``
        understands (``s3://...``, ``gs://...``).
    model_name, model_version, model_uri : str, optional
        Recorded on every row.
    max_queue_rows : int, default=100_000
        Rows waiting to be written at most; beyond it calls are dropped and
        counted. This bounds what a crash can lose.
    flush_rows : int, default=10_000
        Write as soon as this many rows wait.
    flush_seconds : float, default=2.0
        Write at least this often while rows wait.
    probabilities : callable, optional
        Called by the writer thread on a batch of inputs to add class
        probabilities (a DataFrame with one column per class), off the request path.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from mlflow_observe.logs.reader import read_logs
    >>> root = tempfile.mkdtemp()
    >>> writer = PredictionLogWriter(root, model_name="churn")
    >>> writer.submit(pd.DataFrame({"x": [1.0, 2.0]}), [0, 1], latency_seconds=0.001)
    >>> writer.close()
    >>> read_logs(root)[["x", "prediction", "model_name"]].values.tolist()
    [[1.0, 0, 'churn'], [2.0, 1, 'churn']]
    """

    def __init__(
        self,
        root: str,
        *,
        model_name=None,
        model_version=None,
        model_uri=None,
        max_queue_rows: int = 100_000,
        flush_rows: int = 10_000,
        flush_seconds: float = 2.0,
        probabilities=None,
    ):
        self.root = str(root)
        self.model = {MODEL_NAME: model_name, MODEL_VERSION: model_version, MODEL_URI: model_uri}
        self.max_queue_rows = max_queue_rows
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.probabilities = probabilities
        self._queue: deque = deque()
        self._queued_rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._sequence = 0
        self._prefix = f"part-{_safe(socket.gethostname())}-{os.getpid()}-{int(time.time())}"
        self._stats = {
            "rows_written": 0,
            "rows_dropped_queue_full": 0,
            "rows_dropped_write_failed": 0,
            "files_written": 0,
        }
        self._warned: set[str] = set()
        self._flush_waiters: list[threading.Event] = []
        self.report_seconds = 60.0
        self._last_report = float("-inf")
        self._reported_drops = 0
        self._filesystem, self._base = _filesystem(self.root)
        self._thread = threading.Thread(
            target=self._run, name="mlflow-observe-log-writer", daemon=True
        )
        self._thread.start()
        atexit.register(self.close)

    # -- the request path ---------------------------------------------------------------

    def submit(
        self, inputs, outputs, *, latency_seconds: float, request_id=None, event_time=None
    ) -> None:
        """Queue one prediction call. Never blocks and never raises.

        ``request_id``, when the caller gave one, names the call's rows: the id
        itself for one row, ``<id>-<row>`` for several. Otherwise every row gets
        a fresh UUID. ``event_time`` (ISO 8601, naive means UTC), when given,
        stamps the rows instead of the time of the call: replays and batch
        scoring of past events land in the windows of those events.
        """
        try:
            n_rows = len(inputs)
            timestamp = self._event_time_ns(event_time) if event_time else time.time_ns()
            with self._lock:
                if self._closed or self._queued_rows + n_rows > self.max_queue_rows:
                    self._stats["rows_dropped_queue_full"] += n_rows
                    full = not self._closed
                else:
                    self._queue.append((inputs, outputs, timestamp, latency_seconds, request_id))
                    self._queued_rows += n_rows
                    full = None
                    if self._queued_rows >= self.flush_rows:
                        self._wake.set()
            if full:
                self._warn_once(
                    "queue_full",
                    "Prediction log queue full (%d rows): dropping "
                    "rows; raise max_queue_rows or check the log storage.",
                    self.max_queue_rows,
                )
        except Exception as exc:  # logging must never break a prediction
            self._warn_once("submit", "Could not queue a prediction for the log: %r", exc)

    def _event_time_ns(self, event_time) -> int:
        try:
            stamp = pd.Timestamp(event_time)
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
            return int(stamp.value)
        except (TypeError, ValueError):
            self._warn_once(
                "event_time",
                "Cannot read the event_time %r: the rows are stamped "
                "with the time of the call instead.",
                event_time,
            )
            return time.time_ns()

    # -- the writer thread --------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self._drain()
            self._report_drops()
            if self._closed:
                self._drain()
                self._report_drops(force=True)
                return

    def _report_drops(self, force: bool = False) -> None:
        """Log the drop counters (a metric in the server log) when they grew, at most so often."""
        dropped = self._stats["rows_dropped_queue_full"] + self._stats["rows_dropped_write_failed"]
        due = time.monotonic() - self._last_report >= self.report_seconds
        if dropped > self._reported_drops and (due or force):
            self._reported_drops = dropped
            self._last_report = time.monotonic()
            _logger.warning(
                "mlflow-observe prediction log %s: rows_written=%d rows_dropped_queue_full=%d "
                "rows_dropped_write_failed=%d",
                self.root,
                self._stats["rows_written"],
                self._stats["rows_dropped_queue_full"],
                self._stats["rows_dropped_write_failed"],
            )

    def _drain(self) -> None:
        with self._lock:
            calls = list(self._queue)
            self._queue.clear()
            self._queued_rows = 0
            waiters, self._flush_waiters = self._flush_waiters, []
        try:
            if calls:
                self._write_calls(calls)
        finally:
            for done in waiters:
                done.set()

    def _write_calls(self, calls) -> None:
        try:
            table = self._to_table(calls)
        except Exception as exc:
            self._stats["rows_dropped_write_failed"] += sum(len(c[0]) for c in calls)
            self._warn_once("convert", "Could not convert predictions for the log: %r", exc)
            return
        for date, part in _split_by_date(table):
            self._write(date, part)

    def _to_table(self, calls) -> pa.Table:
        inputs = [_as_frame(c[0]) for c in calls]
        sizes = np.array([len(f) for f in inputs])
        timestamps = np.repeat(np.array([c[2] for c in calls], dtype=np.int64) // 1000, sizes)
        frame = pd.DataFrame(
            {
                REQUEST_ID: [
                    rid
                    for call, size in zip(calls, sizes, strict=True)
                    for rid in _request_ids(call[4], size)
                ],
                BATCH_ID: np.repeat([uuid.uuid4().hex for _ in calls], sizes),
                TIMESTAMP: pd.to_datetime(timestamps, unit="us", utc=True),
                LATENCY_MS: np.repeat([c[3] * 1000.0 for c in calls], sizes),
                **self.model,
            }
        )
        features = (
            pd.concat(inputs, ignore_index=True)
            if len(inputs) > 1
            else inputs[0].reset_index(drop=True)
        )
        features.columns = safe_input_names(features.columns)
        outputs = pd.concat(
            [output_frame(c[1], size) for c, size in zip(calls, sizes, strict=True)],
            ignore_index=True,
        )
        frame = pd.concat([frame, features, outputs], axis=1)
        if self.probabilities is not None:
            frame = self._add_probabilities(frame, inputs)
        return pa.Table.from_pandas(frame, preserve_index=False)

    def _add_probabilities(self, frame: pd.DataFrame, inputs) -> pd.DataFrame:
        try:
            probabilities = self.probabilities(pd.concat(inputs, ignore_index=True))
            if probabilities is not None:
                probabilities = pd.DataFrame(probabilities).reset_index(drop=True)
                probabilities.columns = [f"probability_{c}" for c in probabilities.columns]
                return pd.concat([frame, probabilities], axis=1)
        except Exception as exc:
            self._warn_once(
                "probabilities", "Could not compute class probabilities for the log: %r", exc
            )
        return frame

    def _write(self, date: str, table: pa.Table) -> None:
        self._sequence += 1
        name = f"{self._prefix}-{self._sequence:06d}.parquet"
        folder = f"{self._base}/{DATE_PARTITION}={date}"
        temporary, final = f"{folder}/.{name}.tmp", f"{folder}/{name}"
        try:
            self._filesystem.create_dir(folder, recursive=True)
            with self._filesystem.open_output_stream(temporary) as stream:
                pq.write_table(table, stream)
            self._filesystem.move(temporary, final)
            self._stats["rows_written"] += table.num_rows
            self._stats["files_written"] += 1
        except Exception as exc:
            self._stats["rows_dropped_write_failed"] += table.num_rows
            self._warn_once(
                "write",
                "Could not write the prediction log under %s (%d rows "
                "dropped; predictions go on): %r",
                self.root,
                table.num_rows,
                exc,
            )
            try:
                self._filesystem.delete_file(temporary)
            except Exception:
                pass

    # -- control ------------------------------------------------------------------------

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything queued so far; False if that took longer than ``timeout``."""
        done = threading.Event()
        with self._lock:
            self._flush_waiters.append(done)
        self._wake.set()
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued and stop the thread (also run at interpreter exit).

        A second call waits for the first one's writing too.
        """
        if not self._closed:
            self._closed = True
            self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def stats(self) -> dict:
        """Rows written and dropped (queue full, write failed), files written."""
        return dict(self._stats)

    def _warn_once(self, kind: str, message: str, *args) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            _logger.warning(message, *args)


def _request_ids(given, n_rows: int) -> list[str]:
    if given:
        return [str(given)] if n_rows == 1 else [f"{given}-{i}" for i in range(n_rows)]
    return [uuid.uuid4().hex for _ in range(n_rows)]


def _filesystem(root: str):
    if "://" in root:  # file://, s3://, gs://, hdfs://... as pyarrow.fs knows them
        return pafs.FileSystem.from_uri(root)
    return pafs.LocalFileSystem(), os.path.abspath(root).replace(os.sep, "/")


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)[:40]


def _as_frame(inputs) -> pd.DataFrame:
    if isinstance(inputs, pd.DataFrame):
        return inputs
    if isinstance(inputs, pd.Series):
        return inputs.to_frame()
    if isinstance(inputs, dict):
        return pd.DataFrame({k: np.atleast_1d(v) for k, v in inputs.items()})
    array = np.asarray(inputs)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    return pd.DataFrame(array, columns=[f"input_{i}" for i in range(array.shape[1])])


def _split_by_date(table: pa.Table):
    import pyarrow.compute as pc

    dates = pc.strftime(table.column(TIMESTAMP), format="%Y-%m-%d")
    unique = pc.unique(dates).to_pylist()
    if len(unique) == 1:
        yield unique[0], table
        return
    for date in unique:
        yield date, table.filter(pc.equal(dates, date))
