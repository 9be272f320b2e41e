"""The prediction log writer: a bounded queue, a write-ahead spool and two threads per process.

``submit`` is all a prediction pays for: it appends references to the call's
inputs and outputs to a bounded queue, and never blocks, waits or raises. The
writer thread takes the queued calls every ``spool_seconds`` (0.1 s), or as
soon as half the queue's bound waits, turns them into Arrow rows as they are
and appends them to a local spool file (see :mod:`mlflow_observe.logs.spool`):
from then on they survive the process being killed. It does nothing else, so
that it keeps up with a model answering at full speed, and it takes a whole
cycle's calls at once: each time it takes the interpreter lock, or makes a
pyarrow call holding it, a request thread may have to wait. Every ``flush_seconds`` (2 s) the spool segment is closed and the
roller, at a lower scheduling priority, does the slow work: the class
probabilities of the rows (a second model pass, when the writer has a
``probabilities`` callable) and the Parquet files, partitioned by day::

    <root>/date=2026-11-26/part-<token>-<sequence>.parquet

where ``<token>`` is 128 random bits drawn when the writer starts: names never
depend on the host name, the process id or the clock, so replicas sharing a
location never collide.

The roller is a thread of this process, or, given a ``roller_command``, a
process of its own (see :mod:`mlflow_observe.logs.roller`): then the roller
thread only hands it each closed segment, with the segment's lock, and counts
what it answers. Rolling in a process never holds this process's interpreter
lock, which a thread does however low its priority. If the process cannot
start, dies or stops answering, the roller thread rolls from then on (one
warning); a segment it was rolling is rolled again, to the same file.

The roller may lag behind a model at full speed: the spool absorbs the backlog
(up to ``max_spool_bytes`` waiting to be rolled, 1 GiB by default) and the
roller catches up when traffic eases.

What each kind of stop loses:

- a clean stop (``close()``, interpreter exit, SIGTERM or SIGINT with the
  handlers of :func:`install_stop_handlers`): nothing. The stop is bounded:
  the queue is spooled (fast), then the roller rolls what it can until the
  deadline (``close(timeout)``, 10 s after a signal) and is cut short; what it
  did not roll stays in the spool, whole, for the next writer or reader (a
  roller process stops within the same bound, also when its process group
  gets the signal);
- a crash (SIGKILL, out of memory): the calls answered in the last
  ``spool_seconds`` before it, at most ``max_queue_rows`` rows; the rest is
  recovered from the spool by the next writer or reader of the log. A roller
  process outlives a killed writer by the stop bound (``STOP_SECONDS``) at most;
  a roller process killed alone loses nothing.

Rows recovered by a writer of the same model (the same name, version and URI)
get their class probabilities at that roll; rows recovered by a reader, or by
a writer of another model, are written without them (null probabilities: a
label-free estimate leaves those rows out and says so).

When calls arrive faster than the writer can spool them, or the spool's budget
is used up, load is shed by uniform sampling, never by dropping bursts: when
the queue is full, the sampling rate is halved and every queued call (and the
new one) kept with probability one half, until the new call fits; each row
records ``sample_weight`` (1 / the rate it was kept at), so counts weighted by
it estimate the traffic without bias. The rate
doubles back once the queue has room. Every row not logged is counted in
``stats()``.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import functools
import json
import logging
import math
import os
import queue
import random
import signal
import threading
import time
import uuid
import weakref
from collections import deque

import numpy as np
import pandas as pd
import pyarrow as pa

from mlflow_observe.logs.compact import NumericRows, numeric_rows, same_labels
from mlflow_observe.logs.roller import RollerProcess, RollerUnavailable
from mlflow_observe.logs.schema import (
    BATCH_ID,
    EVENT_TIME_REJECTED,
    LATENCY_MS,
    MODEL_NAME,
    MODEL_URI,
    MODEL_VERSION,
    PREDICTION,
    REQUEST_ID,
    SAMPLE_WEIGHT,
    TIMESTAMP,
    dict_input_frame,
    output_frame,
    safe_input_names,
)
from mlflow_observe.logs.spool import (
    RollCancelled,
    Segment,
    default_spool_dir,
    log_filesystem,
    recover_spools,
    roll_segment,
)

_logger = logging.getLogger(__name__)

# An event_time more than this ahead of the receive time (or further back than the
# writer's max_event_age_days) is implausible: the rows keep the receive time (see submit).
MAX_EVENT_AHEAD = pd.Timedelta(days=1)


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


ROLLER_NICENESS = 10
# How long a stop signal may take: the queue is spooled, then the roller rolls what it can
# and is cut short (what it did not roll stays in the spool, recovered later).
STOP_SECONDS = 10.0
# The spool's schema metadata: the inputs' names as the caller gave them (the roller hands
# them to the model), and the model whose probabilities the roll owes these rows.
INPUT_NAMES_KEY = b"mlflow_observe.input_names"
PROBABILITIES_KEY = b"mlflow_observe.probabilities_of"
# After a stop signal, the spool is rolled into the log this often (an object store gets the
# rows before the process ends, not only when the next process recovers the spool).
STOPPING_ROLL_SECONDS = 0.25
_WRITERS: weakref.WeakSet = weakref.WeakSet()
# Set by a stop signal: a writer started after it (its server's first call came during the
# graceful shutdown) spools each call before returning from the start.
_STOP_SIGNALLED = threading.Event()


class PredictionLogWriter:
    """Writes prediction calls to a Parquet log through a local spool, off the caller's thread.

    Parameters
    ----------
    root : str
        A local directory (created if missing) or a URI that ``pyarrow.fs``
        understands (``s3://...``, ``gs://...``).
    model_name, model_version, model_uri : str, optional
        Recorded on every row.
    max_queue_rows : int, default=1_000_000
        Rows waiting to be spooled at most; beyond it load is shed by uniform
        sampling (see the module notes). This bounds what a crash can lose. The
        queue holds references to the callers' inputs, not copies.
    max_queue_bytes : int, default=256 MiB
        The same bound in memory: the inputs waiting to be spooled, estimated
        at 8 bytes a value (rows x columns), so that wide inputs shed load
        before they fill the memory.
    flush_rows : int, optional
        Spool as soon as this many rows wait (default: half of
        ``max_queue_rows``; half of ``max_queue_bytes`` also wakes the writer).
        Between those, the writer takes the queue every ``spool_seconds``:
        waking it for every large call would cost the requests a hand-over of
        the interpreter lock each time.
    flush_seconds : float, default=2.0
        Roll the spool into the log's Parquet files at least this often.
    spool_seconds : float, default=0.1
        Spool queued calls at least this often: what a crash can lose.
    spool_dir : str, optional
        The local spool folder (default: :func:`~mlflow_observe.logs.spool.default_spool_dir`).
    max_spool_bytes : int, default=1 GiB
        The spool's budget: bytes spooled and waiting to be rolled at most.
        The spool absorbs a backlog up to it while the roller lags behind;
        beyond it the writer waits for the roller, the queue fills, and
        sampling sheds load.
    roll_rows : int, default=2_000_000
        Roll a spool segment once it holds this many rows.
    max_event_age_days : float or None, default=30
        An ``event_time`` further back than this is implausible (see
        :meth:`submit`); None accepts any past time (backfilling old events).
    probabilities : callable, optional
        Called by the roller thread on the inputs of the rows it rolls to add
        class probabilities (a DataFrame with one column per class), off the
        request path and after the rows are spooled.
    roller_command : list of str, optional
        Roll in a process of its own, started with this command (see
        :mod:`mlflow_observe.logs.roller`; the model flavor gives one that
        loads the model and computes the same probabilities), so that rolling
        never holds the interpreter's lock that requests need. None rolls on
        the roller thread. If the process cannot start, dies or stops
        answering, the roller thread rolls, with one warning.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from mlflow_observe.logs.reader import read_logs
    >>> root = tempfile.mkdtemp()
    >>> writer = PredictionLogWriter(root, model_name="churn")
    >>> writer.submit(pd.DataFrame({"x": [1.0, 2.0]}), [0, 1], latency_seconds=0.001)
    >>> writer.close()
    >>> read_logs(root)[["x", "prediction", "model_name", "sample_weight"]].values.tolist()
    [[1.0, 0, 'churn', 1.0], [2.0, 1, 'churn', 1.0]]
    """

    def __init__(
        self,
        root: str,
        *,
        model_name=None,
        model_version=None,
        model_uri=None,
        max_queue_rows: int = 1_000_000,
        max_queue_bytes: int = 256 << 20,
        flush_rows: int | None = None,
        flush_seconds: float = 2.0,
        spool_seconds: float = 0.1,
        spool_dir: str | None = None,
        max_spool_bytes: int = 1 << 30,
        roll_rows: int = 2_000_000,
        max_event_age_days: float | None = 30.0,
        probabilities=None,
        roller_command: list[str] | None = None,
    ):
        self.root = os.fspath(root)
        self.model = {
            MODEL_NAME: _text(model_name),
            MODEL_VERSION: _text(model_version),
            MODEL_URI: _text(model_uri),
        }
        self.max_queue_rows = max_queue_rows
        self.max_queue_bytes = max_queue_bytes
        self.flush_rows = flush_rows if flush_rows is not None else max(1, max_queue_rows // 2)
        self.flush_seconds = flush_seconds
        self.spool_seconds = spool_seconds
        self.spool_dir = spool_dir or default_spool_dir(self.root)
        self.max_spool_bytes = max_spool_bytes
        self.roll_rows = roll_rows
        self.max_event_age_days = max_event_age_days
        self.probabilities = probabilities
        self.roller_command = list(roller_command) if roller_command else None
        self.report_seconds = 60.0
        # 128 random bits name this writer's files: unique without host, pid or clock.
        self._token = uuid.uuid4().hex
        self._random = random.Random(os.urandom(16)).random
        self._queue: deque = deque()
        self._queued_rows = 0
        self._queued_bytes = 0
        # Reentrant: a stop signal's handler runs on the main thread, maybe inside submit.
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._spooled = threading.Condition()
        self._submitted_calls = 0  # sequence of the last queued call
        self._spooled_calls = 0  # every call up to this one is spooled (or counted as lost)
        self._rate = 1.0
        self._last_rate_change = time.monotonic()
        self._closed = False
        self._stopping = _STOP_SIGNALLED.is_set()
        self._sequence = 0
        self._calls = 0
        self._segment: Segment | None = None
        self._rolls: queue.Queue = queue.Queue()
        self._cancel_rolls = threading.Event()
        self._identity = json.dumps(self.model, sort_keys=True).encode()
        self._enricher = ProbabilityEnricher(probabilities, self._identity, warn=self._warn_once)
        self._process: RollerProcess | None = None
        self._process_pid: int | None = None
        self._unrolled_bytes = 0
        self._flush_waiters: list[threading.Event] = []
        self._stats = {
            "rows_spooled": 0,
            "rows_written": 0,
            "rows_recovered": 0,
            "rows_sampled_out": 0,
            "rows_dropped_queue_full": 0,
            "rows_dropped_write_failed": 0,
            "rows_dropped_closed": 0,
            "event_times_rejected": 0,
            "files_written": 0,
            "roll_failures": 0,
            "rolls_deferred": 0,
            "roller_fallbacks": 0,
        }
        self._warned: set[str] = set()
        self._last_report = float("-inf")
        self._reported_drops = 0
        self._roller = threading.Thread(
            target=self._roll_loop, name="mlflow-observe-log-roller", daemon=True
        )
        self._thread = threading.Thread(
            target=self._run, name="mlflow-observe-log-writer", daemon=True
        )
        self._roller.start()
        self._thread.start()
        _WRITERS.add(self)
        atexit.register(self.close)

    # -- the request path ---------------------------------------------------------------

    def submit(
        self, inputs, outputs, *, latency_seconds: float, request_id=None, event_time=None
    ) -> None:
        """Queue one prediction call. Never raises; never waits, except while stopping.

        ``request_id``, when the caller gave one, names the call's rows: the id
        itself for one row, ``<id>-<row>`` for several. Otherwise the rows get
        ``<writer token>-<call>`` ids. ``event_time`` (ISO 8601, naive means
        UTC), when given and plausible (not more than ``max_event_age_days``
        back or a day ahead of now), stamps the rows instead of the time of the call:
        replays and batch scoring of past events land in the windows of those
        events. An implausible or unreadable one is not used: the rows keep
        the time of the call, the value given is recorded in
        ``event_time_rejected``, and ``stats()["event_times_rejected"]``
        counts them.

        The outputs are snapshotted (a numpy array is copied, a list copied),
        so that a caller changing its predictions in place after ``predict``
        returns does not change what is logged. The inputs are taken by
        reference and read by the writer thread within ``spool_seconds``:
        copying them here would cost the request more than the rest of the
        logging (a 10,000 x 20 array, a few hundred microseconds; a pandas
        shallow copy, extra objects for the garbage collector on every call).
        A model served over HTTP gets a frame of its own per request; a caller
        in the same process that refills an input array in place right after
        ``predict`` should pass a copy. A call of up to ``SMALL_CALL_ROWS`` rows
        whose columns share one numeric type (the common served request) is kept
        as its values and column index (:class:`~mlflow_observe.logs.compact.NumericRows`),
        not the frame, whose tracked objects would otherwise reach the garbage
        collector's oldest generation. The conversion to Arrow rows is the
        writer thread's.

        After a stop signal (see :func:`install_stop_handlers`), a call returns
        only once its rows are in the spool, so that the answer the caller
        gets implies a logged row.
        """
        try:
            n_rows = len(inputs)
            if n_rows <= SMALL_CALL_ROWS:
                # A served call's frame, kept until the writer thread takes it, would bring
                # its tracked objects to the collector's oldest generation: its values are
                # kept instead (a view where pandas holds them in one block; a few
                # microseconds).
                inputs = numeric_rows(inputs)
            n_bytes = _queued_size(inputs, n_rows)
            received = time.time_ns()
            with self._lock:
                if self._closed:
                    self._stats["rows_dropped_closed"] += n_rows
                    return
                weight = self._admit(n_rows, n_bytes)
                if weight is None:
                    return
                # The predictions the caller gets back are copied: changing them in place
                # after predict returns is common, and would change the log.
                call = [
                    inputs,
                    _snapshot(outputs),
                    received,
                    latency_seconds,
                    request_id,
                    event_time,
                    weight,
                    n_bytes,
                ]
                self._submitted_calls += 1
                sequence = self._submitted_calls
                self._queue.append(call)
                self._queued_rows += n_rows
                self._queued_bytes += n_bytes
                if (
                    self._queued_rows >= self.flush_rows
                    or self._queued_bytes * 2 >= self.max_queue_bytes
                    or self._stopping
                ):
                    self._wake.set()
                stopping = self._stopping
            if stopping:
                self._wait_spooled(sequence, timeout=10.0)
        except Exception as exc:  # logging must never break a prediction
            self._warn_once("submit", "Could not queue a prediction for the log: %r", exc)
        if _DEFERRED_STOPS:
            _run_deferred_stops()

    def _admit(self, n_rows: int, n_bytes: int):
        """The weight this call is logged with, or None when not queued (caller holds the lock)."""
        if n_rows > self.max_queue_rows or n_bytes > self.max_queue_bytes:
            # Larger than the whole queue: no sampling could ever keep such a call, so it
            # is counted as dropped (not as sampled out) and the queue is left alone.
            self._stats["rows_dropped_queue_full"] += n_rows
            self._warn_once(
                "queue_full",
                "A prediction call of %d rows (about %d bytes) does not fit in the log "
                "queue (%d rows, %d bytes): dropped; raise max_queue_rows or "
                "max_queue_bytes.",
                n_rows,
                n_bytes,
                self.max_queue_rows,
                self.max_queue_bytes,
            )
            return None
        if self._rate < 1.0 and self._random() >= self._rate:
            self._stats["rows_sampled_out"] += n_rows
            return None
        # Halve the rate until the call fits: each halving thins the queue and flips the
        # same coin for this call, so every call is kept with the same probability.
        while not self._fits(n_rows, n_bytes):
            self._thin()
            if self._random() >= 0.5:
                self._stats["rows_sampled_out"] += n_rows
                return None
        return 1.0 / self._rate

    def _fits(self, n_rows: int, n_bytes: int) -> bool:
        return (
            self._queued_rows + n_rows <= self.max_queue_rows
            and self._queued_bytes + n_bytes <= self.max_queue_bytes
        )

    def _thin(self) -> None:
        """Halve the sampling rate: keep each queued call with probability 1/2, double its weight."""
        self._rate /= 2.0
        self._last_rate_change = time.monotonic()
        kept = deque()
        rows = n_bytes = 0
        for call in self._queue:
            if self._random() < 0.5:
                call[6] *= 2.0
                kept.append(call)
                rows += len(call[0])
                n_bytes += call[7]
            else:
                self._stats["rows_sampled_out"] += len(call[0])
        self._queue, self._queued_rows, self._queued_bytes = kept, rows, n_bytes
        self._warn_once(
            "sampling",
            "Prediction log queue full (%d rows): sampling calls uniformly (rate %.3g, "
            "recorded in sample_weight); raise max_queue_rows or check the log storage.",
            self.max_queue_rows,
            self._rate,
        )

    def _wait_spooled(self, sequence: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._spooled:
            while self._spooled_calls < sequence:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._spooled.wait(min(left, 0.5))
        return True

    # -- the writer thread: queue -> spool ----------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self.spool_seconds)
            self._wake.clear()
            self._wait_for_roller()
            with self._lock:
                waiters, self._flush_waiters = self._flush_waiters, []
                closed = self._closed
            self._spool_queue()
            segment = self._segment
            if segment is not None and (
                waiters
                or closed
                or segment.rows >= self.roll_rows
                or time.monotonic() - segment.opened
                >= (
                    min(self.flush_seconds, STOPPING_ROLL_SECONDS)
                    if self._stopping
                    else self.flush_seconds
                )
            ):
                self._close_segment()
            if waiters:
                self._rolls.put(("flush", waiters))
            self._raise_rate()
            self._report_drops()
            if closed:
                with self._lock:
                    if self._queue:
                        continue
                self._rolls.put(None)
                return

    def _wait_for_roller(self) -> None:
        """Backpressure: while the spool's budget is used up, let the queue fill (and sample).

        Not while stopping: then the spool is where every answered row must go.
        """
        while self._unrolled_bytes > self.max_spool_bytes and self._roller.is_alive():
            if self._closed or self._stopping:
                return
            time.sleep(0.01)

    def _spool_queue(self) -> None:
        with self._lock:
            calls = list(self._queue)
            self._queue.clear()
            self._queued_rows = self._queued_bytes = 0
            last = self._submitted_calls
        try:
            if calls:
                self._spool(calls)
        finally:
            with self._spooled:
                self._spooled_calls = last
                self._spooled.notify_all()

    def _spool(self, calls) -> None:
        """The calls taken off the queue into the spool: converted group by group (see
        ``_groups``), and the tables of one schema appended together, in one write. The
        interpreter lock is what the requests wait for: each pyarrow call that the writer
        makes holding it, and each time it takes it back, costs them."""
        pending: list[pa.Table] = []
        for table in self._tables(calls):
            if pending and (
                not pending[0].schema.equals(table.schema)
                or self._segment_rows() + sum(t.num_rows for t in pending) >= self.roll_rows
            ):
                self._append_all(pending)  # a new schema, or a full segment, starts a new one
                pending = []
            pending.append(table)
        if pending:
            self._append_all(pending)

    def _tables(self, calls):
        for group in _groups(calls, self.roll_rows):
            yield from self._convert(group)

    def _convert(self, group) -> list[pa.Table]:
        """The group's table; a group of large calls that do not convert together (their
        columns' types differ) is converted call by call, so that one odd call costs no
        other call its rows."""
        try:
            return [self._to_table(group)]
        except Exception as exc:
            if len(group) > 1 and len(group[0][0]) > SMALL_CALL_ROWS:
                return [table for call in group for table in self._convert([call])]
            self._stats["rows_dropped_write_failed"] += sum(len(c[0]) for c in group)
            self._warn_once("convert", "Could not convert predictions for the log: %r", exc)
            return []

    def _segment_rows(self) -> int:
        return self._segment.rows if self._segment is not None else 0

    def _append_all(self, tables: list[pa.Table]) -> None:
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        try:
            self._append(table)
        except Exception as exc:
            self._stats["rows_dropped_write_failed"] += table.num_rows
            self._warn_once(
                "write",
                "Could not write the prediction log spool under %s (%d rows dropped; "
                "predictions go on): %r",
                self.spool_dir,
                table.num_rows,
                exc,
            )
            self._abandon_segment()

    def _append(self, table: pa.Table) -> None:
        segment = self._segment
        if segment is not None and (
            not segment.schema.equals(table.schema) or segment.rows >= self.roll_rows
        ):
            self._close_segment()  # a new schema, or a full segment, starts a new one
            segment = None
        if segment is None:
            self._sequence += 1
            segment = self._segment = Segment(
                self.spool_dir, self._token, self._sequence, table.schema
            )
        segment.append(table)
        self._stats["rows_spooled"] += table.num_rows

    def _close_segment(self) -> None:
        segment, self._segment = self._segment, None
        try:
            segment.close()
        except Exception as exc:
            self._warn_once("close", "Could not close the spool %s: %r", segment.path, exc)
        with self._lock:
            self._unrolled_bytes += segment.bytes
        self._rolls.put(("roll", segment))

    def _abandon_segment(self) -> None:
        segment, self._segment = self._segment, None
        if segment is not None:
            with contextlib.suppress(Exception):
                segment.close()
            os.close(segment.lock_fd)  # what it holds is recovered later

    def _raise_rate(self) -> None:
        """Double the sampling rate back (at most once a second) while the queue has room."""
        if self._rate >= 1.0 or time.monotonic() - self._last_rate_change < 1.0:
            return
        with self._lock:
            if (
                self._queued_rows <= self.max_queue_rows // 4
                and self._queued_bytes <= self.max_queue_bytes // 4
            ):
                self._rate = min(1.0, self._rate * 2.0)
                self._last_rate_change = time.monotonic()

    # -- the roller thread: spool -> Parquet --------------------------------------------

    def _roll_loop(self) -> None:
        # Rolling (Parquet encoding) yields the CPU to predictions: the rows are safe in
        # the spool meanwhile. Linux schedules threads apart, so this niceness is the thread's.
        with contextlib.suppress(Exception):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), ROLLER_NICENESS)
        if self.roller_command:
            self._start_process()
        self._recover()
        last_retry = time.monotonic()
        while True:
            try:
                item = self._rolls.get(timeout=30.0)
            except queue.Empty:
                item = ("retry", None)
            if item is None:
                if self._process is not None:
                    self._process.stop(timeout=5.0)
                return
            kind, payload = item
            if kind == "flush":
                for done in payload:
                    done.set()
                continue
            if kind == "roll":
                if self._cancel_rolls.is_set():
                    self._defer(payload)
                elif self._process is not None:
                    self._roll_in_process(payload)
                else:
                    self._roll(payload)
            if (
                self._stats["roll_failures"]
                and time.monotonic() - last_retry >= 30.0
                and not self._cancel_rolls.is_set()
            ):
                last_retry = time.monotonic()
                self._recover()  # segments whose roll failed earlier

    def _recover(self) -> None:
        """Roll the segments that dead writers (or failed rolls) left in the spool."""
        if self._process is not None:
            try:
                answer = self._process.recover(self._cancel_rolls.is_set)
            except RollerUnavailable as exc:
                self._lose_process(exc)
            else:
                if answer.get("result") == "failed":
                    self._warn_once("recover", "Could not recover earlier spools: %s", answer)
                self._stats["rows_recovered"] += int(answer.get("rows") or 0)
                return
        if self._cancel_rolls.is_set():
            return
        try:
            self._stats["rows_recovered"] += recover_spools(
                self.root, self.spool_dir, enrich=self._enrich, cancel=self._cancel_rolls.is_set
            )
        except Exception as exc:
            self._warn_once("recover", "Could not recover earlier spools: %r", exc)

    def _start_process(self) -> None:
        process = RollerProcess(
            self.roller_command,
            {
                "root": self.root,
                "spool_dir": self.spool_dir,
                "identity": self._identity.decode(),
                "stop_seconds": STOP_SECONDS,
            },
        )
        try:
            process.launch(self._cancel_rolls.is_set)
        except Exception as exc:
            self._process = process
            self._lose_process(exc)
            return
        self._process, self._process_pid = process, process.pid

    def _lose_process(self, exc) -> None:
        """Roll on this thread from now on (the process could not start, died or went silent)."""
        process, self._process = self._process, None
        self._stats["roller_fallbacks"] += 1
        if process is not None:
            process.kill()
        if not self._cancel_rolls.is_set():
            self._warn_once(
                "roller_process",
                "The prediction log roller process is unavailable (%s): rolling on a thread "
                "of this process instead.",
                exc,
            )

    def _roll_in_process(self, segment: Segment) -> None:
        """Hand a closed segment to the roller process; this thread keeps its lock meanwhile."""
        try:
            answer = self._process.roll(
                segment.path,
                segment.lock_fd,
                segment.token,
                segment.sequence,
                self._cancel_rolls.is_set,
            )
        except RollerUnavailable as exc:
            self._lose_process(exc)
            if _rolled_already(segment):  # the process died between its roll and its answer
                self._release(segment)
                self._stats["files_written"] += 1
            elif self._cancel_rolls.is_set():
                self._defer(segment)
            else:
                self._roll(segment)  # what a dead process half-wrote is rewritten the same
            return
        self._release(segment)
        result = answer.get("result")
        if result == "done":
            self._stats["rows_written"] += int(answer.get("rows") or 0)
            self._stats["files_written"] += 1
        elif result == "deferred":
            self._stats["rolls_deferred"] += 1
        else:
            self._stats["roll_failures"] += 1
            self._warn_once(
                "roll",
                "Could not write the prediction log under %s (the rows stay in the spool %s "
                "and are retried; predictions go on): %s",
                self.root,
                self.spool_dir,
                answer.get("error"),
            )

    def _release(self, segment: Segment) -> None:
        with contextlib.suppress(OSError):
            os.close(segment.lock_fd)
        with self._lock:
            self._unrolled_bytes -= segment.bytes

    def _roll(self, segment: Segment) -> None:
        try:
            rows = roll_segment(
                segment.path,
                segment.lock_fd,
                self.root,
                segment.token,
                segment.sequence,
                enrich=self._enrich,
                cancel=self._cancel_rolls.is_set,
            )
            self._stats["rows_written"] += rows
            self._stats["files_written"] += 1
        except RollCancelled:
            self._stats["rolls_deferred"] += 1
        except Exception as exc:
            self._stats["roll_failures"] += 1
            self._warn_once(
                "roll",
                "Could not write the prediction log under %s (the rows stay in the spool %s "
                "and are retried; predictions go on): %r",
                self.root,
                self.spool_dir,
                exc,
            )
        finally:
            with self._lock:
                self._unrolled_bytes -= segment.bytes

    def _defer(self, segment: Segment) -> None:
        """Leave a closed segment in the spool (a stop's deadline passed): recovered later."""
        self._stats["rolls_deferred"] += 1
        self._release(segment)

    def _enrich(self, table: pa.Table, metadata: dict) -> pa.Table:
        """The rows with their class probabilities, when this writer's model owes them."""
        return self._enricher(table, metadata)

    @property
    def roller_pid(self) -> int | None:
        """The process id of the roller process (None while rolling on the roller thread)."""
        process = self._process
        return process.pid if process is not None else None

    # -- rows ---------------------------------------------------------------------------

    def _to_table(self, calls) -> pa.Table:
        """One group of calls (see ``_groups``) as Arrow rows, as the spool keeps them.

        What is the same for every row of a call (its batch id, time, latency,
        weight, the model, its request id before numbering) is run-end encoded:
        a few bytes per call instead of per row. :func:`~mlflow_observe.logs.spool.decode_runs` expands them
        when the spool is rolled into Parquet. Numeric inputs and outputs are
        taken without a copy where their memory already holds each column in
        one piece (the append copies them into the file); this runs with the
        GIL held, so it makes as few Python and pyarrow calls per call as it can.
        """
        n_calls = len(calls)
        sizes = np.fromiter((len(c[0]) for c in calls), dtype=np.int64, count=n_calls)
        n_rows = int(sizes.sum())
        first = self._calls
        self._calls += n_calls
        token = self._token
        batch_ids = [f"{token}-{first + i}" for i in range(n_calls)]
        stamps, rejected = self._timestamps(calls)
        run_ends = _flat(np.cumsum(sizes, dtype=np.int32))

        def per_call(values: pa.Array) -> pa.Array:
            return _runs(run_ends, n_rows, values)

        columns = {
            # Each call's id; numbered per row when the spool is rolled (see decode_runs).
            REQUEST_ID: per_call(
                pa.array(
                    [str(c[4]) if c[4] else b for c, b in zip(calls, batch_ids, strict=True)],
                    pa.string(),
                )
            ),
            BATCH_ID: per_call(pa.array(batch_ids, pa.string())),
            TIMESTAMP: per_call(_flat(stamps, _TIMESTAMP_TYPE)),
            LATENCY_MS: per_call(
                _flat(np.fromiter((c[3] for c in calls), np.float64, n_calls) * 1000.0)
            ),
            SAMPLE_WEIGHT: per_call(_flat(np.fromiter((c[6] for c in calls), np.float64, n_calls))),
            EVENT_TIME_REJECTED: _run_of(None, n_rows)
            if rejected is None
            else per_call(pa.array(rejected, pa.string())),
        }
        for key, value in self.model.items():
            columns[key] = _run_of(value, n_rows)
        inputs, input_names = _input_columns([_as_frame(c[0]) for c in calls])
        columns.update(inputs)
        columns.update(_outputs(calls, sizes, n_rows))
        metadata = {INPUT_NAMES_KEY: input_names}
        if self.probabilities is not None:
            metadata[PROBABILITIES_KEY] = self._identity
        return pa.Table.from_arrays(list(columns.values()), names=list(columns), metadata=metadata)

    def _timestamps(self, calls):
        """Each call's time (microseconds since the epoch, UTC) and its rejected event_time.

        The rejected values are None when no call's event_time was rejected.
        """
        stamps = np.fromiter((c[2] // 1000 for c in calls), dtype=np.int64, count=len(calls))
        rejected = None  # none rejected (the common case: one run of nulls)
        for i, call in enumerate(calls):
            if call[5] is not None:
                stamp = _event_time(call[5], call[2], self.max_event_age_days)
                if stamp is None:
                    if rejected is None:
                        rejected = [None] * len(calls)
                    rejected[i] = str(call[5])[:200]
                    self._stats["event_times_rejected"] += 1
                    self._warn_once(
                        "event_time",
                        "Rejected the event_time %r (unreadable, or more than %s days back "
                        "or %s ahead): the rows keep the time of the call; the value is "
                        "recorded in event_time_rejected.",
                        call[5],
                        self.max_event_age_days,
                        MAX_EVENT_AHEAD,
                    )
                else:
                    stamps[i] = stamp
        return stamps, rejected

    # -- control ------------------------------------------------------------------------

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything queued so far to the log's Parquet files.

        Returns False if that took longer than ``timeout``.
        """
        done = threading.Event()
        with self._lock:
            self._flush_waiters.append(done)
        _run_deferred_stops()
        self._wake.set()
        return done.wait(timeout)

    def spool_now(self, timeout: float = 5.0) -> bool:
        """Spool every call queued so far (not rolled yet); False after ``timeout``."""
        with self._lock:
            sequence = self._submitted_calls
        _run_deferred_stops()
        self._wake.set()
        return self._wait_spooled(sequence, timeout)

    def stop_signalled(self, timeout: float = 5.0) -> bool:
        """Prepare for a stop: spool what is queued; from now on ``submit`` spools before returning."""
        with self._lock:
            self._stopping = True
        _run_deferred_stops()
        return self.spool_now(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Spool what is queued, roll what can be rolled in ``timeout`` seconds, stop the threads.

        Bounded: the queue is spooled first (from then on the rows are safe);
        the roller then rolls the spool into Parquet until shortly before the
        deadline, and is cut short there: what it did not roll stays in the
        spool, whole, and is rolled by the next writer or reader of the log.
        Also run at interpreter exit. A second call waits for the first one's
        writing too.
        """
        with self._lock:
            self._closed = True
        _run_deferred_stops()
        self._wake.set()
        if threading.current_thread() not in (self._thread, self._roller):
            deadline = time.monotonic() + timeout
            # The last moments are kept for the roller to stop between two batches.
            grace = min(2.0, timeout / 5)
            self._thread.join(timeout)
            self._roller.join(max(0.0, deadline - grace - time.monotonic()))
            if self._roller.is_alive():
                self._cancel_rolls.set()
                self._roller.join(max(0.0, deadline - time.monotonic()))
            process = self._process
            if self._roller.is_alive() and process is not None:
                process.kill()  # its roll did not stop in time: the segment stays whole
                self._roller.join(1.0)
            self._report_drops(force=True)

    def _locked_here(self) -> bool:
        """True when the calling thread holds this writer's lock."""
        return self._lock._is_owned()

    def stats(self) -> dict:
        """Rows spooled, written, recovered, sampled out and dropped; files written.

        ``spool_bytes_waiting`` is the backlog: bytes spooled and not rolled yet
        (at most ``max_spool_bytes`` before load is shed).
        """
        segment = self._segment
        waiting = self._unrolled_bytes + (segment.bytes if segment is not None else 0)
        return {**self._stats, "spool_bytes_waiting": waiting}

    def _report_drops(self, force: bool = False) -> None:
        """Log the counters (a metric in the server log) when they grew, at most so often."""
        lost = sum(
            self._stats[k]
            for k in (
                "rows_sampled_out",
                "rows_dropped_queue_full",
                "rows_dropped_write_failed",
                "rows_dropped_closed",
            )
        )
        due = time.monotonic() - self._last_report >= self.report_seconds
        if lost > self._reported_drops and (due or force):
            self._reported_drops = lost
            self._last_report = time.monotonic()
            _logger.warning(
                "mlflow-observe prediction log %s: %s",
                self.root,
                " ".join(f"{k}={v}" for k, v in self._stats.items()),
            )

    def _warn_once(self, kind: str, message: str, *args) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            _logger.warning(message, *args)


class ProbabilityEnricher:
    """The ``enrich`` of a roll: the rows with the class probabilities their model owes them.

    Rows get probabilities only when their spool segment names this model
    (``identity``, the writer's model name, version and URI as JSON bytes):
    rows recovered from a writer of another model are written as they are.
    The roller thread and the roller process both roll with one.

    Parameters
    ----------
    probabilities : callable or None
        Inputs (a DataFrame, as the model was given them) -> class probabilities
        (a DataFrame with one column per class).
    identity : bytes
        The model the probabilities are of.
    warn : callable, optional
        ``warn(kind, message, *args)``, called once per kind of failure.

    Examples
    --------
    >>> import pyarrow as pa
    >>> enrich = ProbabilityEnricher(lambda f: f.assign(x=1.0 - f["x"]), b"m")
    >>> meta = {PROBABILITIES_KEY: b"m", INPUT_NAMES_KEY: b'[["x", "x"]]'}
    >>> enrich(pa.table({"x": [0.25]}), meta).column_names
    ['x', 'probability_x']
    >>> enrich(pa.table({"x": [0.25]}), {**meta, PROBABILITIES_KEY: b"other"}).column_names
    ['x']
    """

    def __init__(self, probabilities, identity: bytes, *, warn=None):
        self.probabilities = probabilities
        self.identity = identity
        self.warn = warn

    def __call__(self, table: pa.Table, metadata: dict) -> pa.Table:
        if (
            self.probabilities is None
            or metadata.get(PROBABILITIES_KEY) != self.identity
            or INPUT_NAMES_KEY not in metadata
        ):
            return table
        try:
            names = json.loads(metadata[INPUT_NAMES_KEY])
            frame = _input_frame(table, names)
        except Exception as exc:
            self._warn(exc)
            return table
        for name, column in self._columns(frame).items():
            if name not in table.schema.names:
                table = table.append_column(name, column)
        return table

    def _columns(self, features: pd.DataFrame) -> dict:
        try:
            probabilities = self.probabilities(features)
            if probabilities is not None:
                probabilities = pd.DataFrame(probabilities).reset_index(drop=True)
                if len(probabilities) != len(features):
                    raise ValueError(
                        f"{len(probabilities)} rows of probabilities for {len(features)} inputs"
                    )
                return {f"probability_{c}": _arrow(probabilities[c]) for c in probabilities.columns}
        except Exception as exc:
            self._warn(exc)
        return {}

    def _warn(self, exc) -> None:
        message = "Could not compute class probabilities for the log: %r"
        if self.warn is not None:
            self.warn("probabilities", message, exc)
        else:
            _logger.warning(message, exc)


def _rolled_already(segment: Segment) -> bool:
    """True when the segment's file is gone or replaced: a roll of it completed elsewhere."""
    try:
        return os.stat(segment.path).st_ino != os.fstat(segment.lock_fd).st_ino
    except FileNotFoundError:
        return True
    except OSError:
        return False


# -- stop signals -------------------------------------------------------------------------


def install_stop_handlers(signals=(signal.SIGTERM, signal.SIGINT)) -> bool:
    """Make SIGTERM and SIGINT spool every answered prediction before the process stops.

    Each handler is chained in front of the one in place (a server's graceful
    shutdown, Python's ``KeyboardInterrupt``, or the default action): it
    spools what the writers of this process have queued, switches them to
    spooling each later call before it returns (the calls a graceful shutdown
    still answers), then calls the previous handler, or, for the default
    action, writes the log and stops the process with the same signal.

    Returns False (and installs nothing) outside the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    for sig in signals:
        previous = signal.getsignal(sig)
        if getattr(previous, "func", None) is _on_stop_signal:
            continue  # already in front
        signal.signal(sig, functools.partial(_on_stop_signal, previous))
    return True


# True while a stop handler runs: a second signal then (uvicorn's supervisor forwards the one
# its process group got) must not reenter the writers.
_HANDLING_STOP = [False]
# (previous handler, signal) of a stop signal that came while the main thread held a writer's
# lock (a plain script predicting on its main thread): handled as soon as it lets go of it.
_DEFERRED_STOPS: list = []


def _run_deferred_stops() -> None:
    if _DEFERRED_STOPS and threading.current_thread() is threading.main_thread():
        if not any(writer._locked_here() for writer in list(_WRITERS)):
            while _DEFERRED_STOPS:
                previous, signum = _DEFERRED_STOPS.pop(0)
                _on_stop_signal(previous, signum, None)


def _on_stop_signal(previous, signum, frame) -> None:
    default = previous in (signal.SIG_DFL, None)
    if _HANDLING_STOP[0]:
        if callable(previous):
            previous(signum, frame)
        return  # the default action is taken by the first handler, once the log is written
    writers = list(_WRITERS)
    if any(writer._locked_here() for writer in writers):
        # Waiting here for the writer thread, which waits for that lock, would never end.
        _DEFERRED_STOPS.append((previous, signum))
        return
    _HANDLING_STOP[0] = True
    try:
        if previous is not signal.default_int_handler:
            _STOP_SIGNALLED.set()
        _stop_writers(writers, close=default)
        if previous is signal.default_int_handler:
            # Ctrl-C in an interactive session need not stop the process: calls go on
            # returning without waiting for the spool.
            for writer in writers:
                writer._stopping = False
    finally:
        _HANDLING_STOP[0] = False
    if callable(previous):
        previous(signum, frame)
    elif default:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


def _stop_writers(writers, *, close: bool, seconds: float = STOP_SECONDS) -> None:
    """Spool (and, to ``close``, roll) the writers' rows on a thread, waited for ``seconds`` at most.

    The handler runs on the main thread, which the signal may have interrupted
    anywhere, even holding a writer's lock: the work is done on a thread of its
    own so that the wait is bounded whatever the main thread held.
    """
    deadline = time.monotonic() + seconds

    def work():
        for writer in writers:
            left = max(0.0, deadline - time.monotonic())
            try:
                if close:
                    writer.close(timeout=left)
                else:
                    writer.stop_signalled(timeout=min(left, 5.0))
            except Exception:  # never stands in the way of the stop
                pass

    try:
        thread = threading.Thread(target=work, name="mlflow-observe-log-stop", daemon=True)
        thread.start()
    except RuntimeError:  # the interpreter is shutting down: no new threads
        work()
        return
    thread.join(seconds + 1.0)


# -- helpers ------------------------------------------------------------------------------


def _text(value):
    return None if value is None else str(value)


def _event_time(value, received_ns: int, max_age_days=None):
    """``value`` as microseconds since the epoch (UTC), or None when unreadable or implausible."""
    try:
        stamp = pd.Timestamp(value)
        if pd.isna(stamp):
            return None
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        received = pd.Timestamp(received_ns, unit="ns", tz="UTC")
        oldest = (
            received - pd.Timedelta(days=max_age_days)
            if max_age_days is not None
            else pd.Timestamp("1970-01-01", tz="UTC")
        )
        if not (oldest <= stamp <= received + MAX_EVENT_AHEAD):
            return None
        return int(stamp.value) // 1000  # nanoseconds (in range: checked above)
    except (TypeError, ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return None


SMALL_CALL_ROWS = 64  # calls up to this size are converted together; larger ones one by one
_TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")


@functools.lru_cache(maxsize=64)
def _run_of(value, n_rows: int) -> pa.Array:
    """``n_rows`` rows of one text value (or null) as one run (calls repeat their sizes)."""
    return _runs(_flat(np.array([n_rows], np.int32)), n_rows, pa.array([value], pa.string()))


def _runs(run_ends: pa.Array, n_rows: int, values: pa.Array) -> pa.Array:
    """A run-end encoded array (built from its parts: a fifth of ``from_arrays``' cost)."""
    kind = pa.run_end_encoded(pa.int32(), values.type)
    return pa.Array.from_buffers(kind, n_rows, [None], children=[run_ends, values])


def _flat(values: np.ndarray, kind=None) -> pa.Array:
    """A contiguous numeric numpy array as an Arrow array over the same memory (no nulls)."""
    kind = kind or pa.from_numpy_dtype(values.dtype)
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def _groups(calls, max_rows: int):
    """Calls in queue order, in groups converted to one table each: runs of small calls,
    and runs of large calls whose inputs are frames with the same columns (at most
    ``max_rows`` rows a group). A large call's columns are taken without a copy, one
    chunk a call: grouping them saves the per-table work (the bookkeeping columns, the
    table itself), which holds the interpreter lock.

    A call of no rows has nothing to log (and as a run of length 0 it would
    make its whole group fail to convert): it is left out.
    """
    small: list = []
    large: list = []
    large_rows = 0
    for call in calls:
        n_rows = len(call[0])
        if n_rows == 0:
            continue
        if n_rows <= SMALL_CALL_ROWS:
            if large:
                yield large
                large, large_rows = [], 0
            small.append(call)
            continue
        if small:
            yield small
            small = []
        if large and (large_rows + n_rows > max_rows or not _same_columns(large[0][0], call[0])):
            yield large
            large, large_rows = [], 0
        large.append(call)
        large_rows += n_rows
    if small:
        yield small
    if large:
        yield large


def _same_columns(first, other) -> bool:
    """Whether two calls' inputs are frames (or their :class:`NumericRows`) with the same
    columns (the same index: at once).

    Equal labels of different types (``1`` and ``1.0``) are logged under different names,
    so the types must match too.
    """
    return (
        isinstance(first, _FRAMES)
        and isinstance(other, _FRAMES)
        and same_labels(first.columns, other.columns)
    )


_FRAMES = (pd.DataFrame, NumericRows)


# The last input columns seen, their logged names and the spool's record of them: calls
# repeat their columns, and naming them again costs more than taking a 10,000-row call's
# numbers (iterating a pandas index of text is slow).
_LAST_COLUMNS: tuple = (None, None, None)


def _named(columns) -> tuple[list[str], bytes]:
    """``safe_input_names(columns)`` and ``_input_names`` of them, kept for the last columns."""
    global _LAST_COLUMNS
    seen, names, record = _LAST_COLUMNS
    if seen is not None and same_labels(seen, columns):
        return names, record
    names = safe_input_names(columns)
    record = _input_names(dict.fromkeys(names), columns)
    _LAST_COLUMNS = (columns, names, record)
    return names, record


def _input_columns(frames) -> tuple[dict, bytes]:
    """The calls' inputs as Arrow columns (logged names, see ``safe_input_names``), and the
    record of the names as given (see ``_input_names``)."""
    first = frames[0]
    if len(frames) == 1:
        features = first
    elif len(first) > SMALL_CALL_ROWS:
        # Large calls with the same columns (see _groups): each column one chunk a call,
        # without a copy; a type that differs between calls raises, and they are converted
        # one by one.
        names, record = _named(first.columns)
        per_call = [_frame_columns(f, names) for f in frames]
        return {name: pa.chunked_array([c[name] for c in per_call]) for name in per_call[0]}, record
    elif all(_same_columns(first, f) for f in frames[1:]):
        # Many small calls: one 2-D array (no per-frame pandas concatenation).
        values = np.concatenate([f.to_numpy() for f in frames])
        names, record = _named(first.columns)
        if values.dtype.kind in "iuf":
            return _numeric_columns(values, names), record
        if values.dtype.kind == "b":
            return {name: pa.array(values[:, j]) for j, name in enumerate(names)}, record
        return {name: _object_column(values[:, j]) for j, name in enumerate(names)}, record
    else:
        # Aligned on the names they are logged under: pandas takes 1 and 1.0 for one label.
        frames = [f.frame() if isinstance(f, NumericRows) else f for f in frames]
        features = pd.concat(
            [f.set_axis(_named(f.columns)[0], axis=1) for f in frames],
            ignore_index=True,
        )
        inputs = _frame_columns(features, safe_input_names(features.columns))
        return inputs, _input_names(inputs, first.columns)
    names, record = _named(features.columns)
    return _frame_columns(features, names), record


def _frame_columns(features, names) -> dict:
    if isinstance(features, NumericRows):
        if features.values.dtype.kind in "iuf":
            return _numeric_columns(features.values, names)
        features = features.frame()
    dtypes = features.dtypes.tolist()
    if dtypes and all(isinstance(d, np.dtype) and d.kind in "iuf" for d in dtypes):
        if len(set(dtypes)) == 1:
            # One numeric block: no pandas per column.
            return _numeric_columns(features.to_numpy(), names)
    if features.columns.is_unique:
        return {name: _arrow(features[c]) for name, c in zip(names, features.columns, strict=False)}
    return {name: _arrow(features.iloc[:, j]) for j, name in enumerate(names)}


def _numeric_columns(values: np.ndarray, names) -> dict:
    """The columns of a 2-D array of numbers (rows x columns) as Arrow arrays.

    A frame's block is held column by column (Fortran order): each column is
    then taken as it is, without a copy. Otherwise the array is transposed in
    one numpy copy, which releases the GIL, instead of one pyarrow copy per
    column, which holds it.
    """
    if not values.dtype.isnative:
        values = values.astype(values.dtype.newbyteorder("="))
    if not values.flags.f_contiguous:
        values = np.asfortranarray(values)
    n_rows = len(values)
    kind = pa.from_numpy_dtype(values.dtype)
    memory = pa.py_buffer(values.reshape(-1, order="F"))
    width = n_rows * values.dtype.itemsize
    return {
        name: pa.Array.from_buffers(kind, n_rows, [None, memory.slice(j * width, width)])
        for j, name in enumerate(names)
    }


def _input_names(inputs: dict, columns) -> bytes:
    """``[[logged name, name as given], ...]`` as JSON, for the roller to rebuild the frame."""
    if len(inputs) != len(columns):  # repeated names: logged once, not given back to the model
        return b"null"
    pairs = [
        [logged, given if isinstance(given, (str, int, float, bool)) else str(given)]
        for logged, given in zip(inputs, columns, strict=True)
    ]
    return json.dumps(pairs).encode()


def _input_frame(table: pa.Table, names) -> pd.DataFrame:
    """The inputs of spooled rows as the model was given them (the roller's probabilities)."""
    if not names:
        raise ValueError("the spool does not name the model's inputs")
    columns = [table.column(logged) for logged, _ in names]
    given = [name for _, name in names]
    types = {c.type for c in columns}
    if (
        len(types) == 1
        and (pa.types.is_floating(columns[0].type) or pa.types.is_integer(columns[0].type))
        and not any(c.null_count for c in columns)
    ):
        # One numeric block, filled column by column in Fortran order: each column is one
        # contiguous copy, and pandas keeps the array as its block (no second copy).
        values = np.empty((table.num_rows, len(columns)), columns[0].type.to_pandas_dtype(), "F")
        for j, column in enumerate(columns):
            start = 0
            for chunk in column.chunks:
                values[start : start + len(chunk), j] = chunk.to_numpy()
                start += len(chunk)
        return pd.DataFrame(values, columns=given, copy=False)
    frame = pd.DataFrame({i: c.to_pandas() for i, c in enumerate(columns)})
    frame.columns = given
    return frame


def _object_column(values: np.ndarray) -> pa.Array:
    return _logged_type(pa.array(values, from_pandas=True))


def _arrow(series: pd.Series) -> pa.Array:
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return pa.array(series.to_numpy())
    return _logged_type(pa.Array.from_pandas(series))


VECTOR_TYPE = pa.list_(pa.float32())


def _logged_type(array: pa.Array) -> pa.Array:
    """Text as ``string``; numeric vectors (lists or arrays per row) as ``list<float32>``.

    One type per kind of column, whatever the calls sent (lists of ints, of
    doubles, numpy arrays), so that every call of an embedding column lands in
    the same spool segment and the same Parquet type.
    """
    kind = array.type
    if pa.types.is_large_string(kind):
        return array.cast(pa.string())
    if (
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    ) and (
        pa.types.is_floating(kind.value_type)
        or pa.types.is_integer(kind.value_type)
        or pa.types.is_null(kind.value_type)
    ):
        return array.cast(VECTOR_TYPE)
    return array


def _outputs(calls, sizes, n_rows: int) -> dict:
    arrays = []
    for call, size in zip(calls, sizes, strict=False):
        outputs = call[1]
        if isinstance(outputs, (pd.DataFrame, dict)):
            break
        array = outputs.to_numpy() if isinstance(outputs, pd.Series) else np.asarray(outputs)
        if array.ndim > 1 and array.shape[1:] != (1,) * (array.ndim - 1):
            break
        array = array.reshape(-1)
        if len(array) != size:
            break
        arrays.append(array)
    else:
        values = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        if values.dtype.kind in "iuf" and values.dtype.isnative and values.flags.c_contiguous:
            return {PREDICTION: _flat(values)}
        return {PREDICTION: _arrow(pd.Series(values, copy=False))}
    frame = pd.concat(
        [output_frame(c[1], int(size)) for c, size in zip(calls, sizes, strict=False)],
        ignore_index=True,
    )
    return {name: _arrow(frame[name]) for name in frame.columns}


def _queued_size(inputs, n_rows: int) -> int:
    """What a call's inputs hold in memory, estimated at 8 bytes a value (rows x columns)."""
    shape = getattr(inputs, "shape", None)
    if shape is not None and len(shape) >= 2:
        width = math.prod(shape[1:])  # a tuple: no numpy call on the request path
    elif isinstance(inputs, dict):
        width = len(inputs)
    else:
        width = 1
    return 8 * n_rows * max(width, 1)


def _as_frame(inputs):
    """A call's inputs as a frame (:class:`NumericRows` are kept: a frame's columns)."""
    if isinstance(inputs, _FRAMES):
        return inputs
    if isinstance(inputs, pd.Series):
        return inputs.to_frame()
    if isinstance(inputs, dict):
        return dict_input_frame(inputs)
    array = np.asarray(inputs)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    return pd.DataFrame(array, columns=[f"input_{i}" for i in range(array.shape[1])])


def _snapshot(value):
    """``value`` as it is now, safe from the caller changing it after ``predict`` returned.

    A numpy array is copied (one ``memcpy``; numpy arrays are not tracked by
    the garbage collector), a list copied (its items, numbers or text, cannot
    change). Anything else (a pandas object, whose copy would add objects for
    the garbage collector to visit on every call) is taken as it is.
    """
    if isinstance(value, np.ndarray):
        return value.copy(order="K")
    if isinstance(value, list):
        return list(value)
    return value


# Kept for the reader and older callers.
_filesystem = log_filesystem
