"""Attributions of a uniform sample of served predictions, computed off the request path.

With ``MLFLOW_OBSERVE_EXPLAIN_RATE`` set to a fraction in ``(0, 1]`` (and a
prediction log configured), the served model hands each call, with that
probability, to an :class:`AttributionWorker`: a thread of its own, at a lower
scheduling priority (``WORKER_NICENESS`` more than the process's), with a
bounded queue. The flavor uses its subclass
:class:`~mlflow_observe.plugins.attribution_process.ProcessAttributionWorker`,
whose thread only hands the calls to a separate process that attributes them
(a thread here shares the interpreter with the requests); what follows
describes the thread that attributes in the process where it runs.
The request thread pays one random draw and, for a sampled call, a queue
append (and a request id when the caller gave none); it never waits for the
explainer and never sees its errors.

What the worker explains, with the model's baseline row sample as background
(:func:`serving_background`, at most ``MAX_BACKGROUND`` rows):

- a scikit-learn tree model with SHAP installed (the ``explain`` extra): SHAP's
  TreeExplainer, exact;
- any other model: sampled Shapley values
  (:func:`~mlflow_observe.core.explain.sampled_shapley`) with
  ``N_PERMUTATIONS`` orderings, so ``N_PERMUTATIONS * MAX_BACKGROUND *
  (n_features + 1)`` model predictions per attributed row (8 x 32 x 21 = 5,376
  on 20 features), made in one batch per ``CHUNK_ROWS`` rows.

A classifier's probability of its last class is explained; a regressor's (or a
scorer's) prediction otherwise.

Staying off the request path: the worker runs chunks of at most ``CHUNK_ROWS``
rows and after each sleeps as long as the chunk took (so it takes at most half
of a core and hands the interpreter back between chunks); while it runs, the
interpreter's switch interval is ``SWITCH_INTERVAL`` (1 ms, from Python's 5 ms),
so that a request thread waiting for the interpreter gets it sooner. When sampled calls
arrive faster than it explains them, its queue (``MAX_QUEUE_ROWS`` rows) fills:
the worker then halves its own sampling rate and keeps each queued call with
probability one half, as the log writer does; every row records the rate it
was sampled at (``explain_rate``), which doubles back once the queue has room.

Storage: every ``WRITE_SECONDS`` the computed rows are written to the sibling
stream ``<log>/attributions/`` (see :mod:`mlflow_observe.logs.attributions`),
keyed by the log rows' request ids. A clean stop (SIGTERM or SIGINT, with the
handlers of :func:`install_stop_handlers`, or the interpreter's exit)
attributes what is still queued, within ``STOP_SECONDS``, and writes it; a
crash loses the rows computed in the last ``WRITE_SECONDS`` and the queue.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import random
import signal
import sys
import threading
import time
import uuid
import weakref
from collections import deque

import numpy as np
import pandas as pd
import pyarrow as pa

from mlflow_observe.core.explain import Attributions, sampled_shapley
from mlflow_observe.core.profile.data_profile import DataProfile
from mlflow_observe.logs.attributions import write_attributions
from mlflow_observe.logs.schema import (
    ATTRIBUTION_PREFIX,
    EXPLAIN_BASE_VALUE,
    EXPLAIN_METHOD,
    EXPLAIN_OUTPUT,
    EXPLAIN_RATE,
    REQUEST_ID,
    TIMESTAMP,
    safe_input_names,
)
from mlflow_observe.logs.spool import request_ids
from mlflow_observe.tracking.explainers import baseline_background, tree_attributions, tree_model

_logger = logging.getLogger(__name__)

EXPLAIN_RATE_ENV = "MLFLOW_OBSERVE_EXPLAIN_RATE"
N_PERMUTATIONS = 8
MAX_BACKGROUND = 32
CHUNK_ROWS = 4
MAX_QUEUE_ROWS = 1_000
WRITE_SECONDS = 2.0
STOP_SECONDS = 10.0
WORKER_NICENESS = 10  # added to the process's own niceness (at most 19)
# While a worker runs, a thread waiting for the interpreter gets it within this (Python's
# default is 5 ms): a request thread that released it (socket reads, numpy) waits less.
SWITCH_INTERVAL = 0.001
MAX_EVENT_AHEAD = pd.Timedelta(days=1)
_WORKERS: weakref.WeakSet = weakref.WeakSet()


def explain_rate(value: str | None) -> float:
    """The sampling rate ``MLFLOW_OBSERVE_EXPLAIN_RATE`` asks for; 0.0 (off) when unset.

    An invalid value never stops a server from serving: it is logged as a
    warning naming the value, and attributions are off.

    >>> explain_rate("0.25"), explain_rate(None), explain_rate(""), explain_rate("1")
    (0.25, 0.0, 0.0, 1.0)
    >>> explain_rate("2")
    0.0
    """
    if value is None or not value.strip():
        return 0.0
    try:
        rate = float(value)
    except ValueError:
        rate = float("nan")
    if not 0.0 <= rate <= 1.0:  # NaN too
        _logger.warning(
            "%s must be a fraction in [0, 1] (e.g. 0.1 to explain one prediction in ten). "
            "Got %r instead: attributions are off.",
            EXPLAIN_RATE_ENV,
            value,
        )
        return 0.0
    return rate


def serving_background(profile: DataProfile, columns) -> pd.DataFrame:
    """The background rows a served model explains against: ``MAX_BACKGROUND`` of the
    baseline's row sample at most, drawn with a fixed seed (the same in every process)."""
    full = baseline_background(profile, list(columns))
    if len(full) > MAX_BACKGROUND:
        full = full.sample(n=MAX_BACKGROUND, random_state=0)
    return full.reset_index(drop=True)


class ServingExplainer:
    """``frame -> (Attributions, output)`` for a served model, on its baseline's row sample.

    Parameters
    ----------
    profile : DataProfile
        The model's baseline (its row sample is the background).
    predict : callable
        The inner model's ``predict(frame)`` (never the logging wrapper's).
    predict_proba : callable, optional
        The inner model's class probabilities, when it has them.
    raw_model : object, optional
        The inner model object, explained by SHAP's TreeExplainer when it is a
        scikit-learn tree model and SHAP is installed.
    """

    def __init__(self, profile: DataProfile, predict, *, predict_proba=None, raw_model=None):
        self.profile = profile
        self.predict = predict
        self.predict_proba = predict_proba
        self.tree = tree_model(raw_model) if raw_model is not None else None
        classes = getattr(raw_model, "classes_", None)
        self.classes = [] if classes is None else list(classes)
        self._backgrounds: dict = {}

    def background(self, rows: pd.DataFrame) -> pd.DataFrame:
        key = tuple(rows.columns)
        if key not in self._backgrounds:
            background = serving_background(self.profile, key)
            for column, dtype in rows.dtypes.items():
                with contextlib.suppress(TypeError, ValueError):
                    background[column] = background[column].astype(dtype)
            self._backgrounds[key] = background
        return self._backgrounds[key]

    def __call__(self, rows: pd.DataFrame) -> tuple[Attributions, str]:
        background = self.background(rows)
        if self.tree is not None:
            output = "probability" if hasattr(self.tree, "predict_proba") else "prediction"
            return tree_attributions(
                self.tree, rows, background, output=output, max_background=MAX_BACKGROUND
            )
        function, output = self._function()
        attributions = sampled_shapley(
            function,
            rows,
            background,
            n_permutations=N_PERMUTATIONS,
            max_background=len(background),
            random_state=0,
        )
        return attributions, output

    def _function(self):
        if self.predict_proba is not None:
            positive = self.classes[-1] if self.classes else "the last class"

            def probability(frame):
                return np.asarray(self.predict_proba(frame))[:, -1]

            return probability, f"probability of {positive}"

        def prediction(frame):
            result = self.predict(frame)
            if isinstance(result, pd.DataFrame):
                result = result.iloc[:, 0]
            array = np.asarray(result)
            if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
                raise TypeError(
                    "The model predicts labels, not numbers, and gives no probabilities: its "
                    f"predictions cannot be split among features; unset {EXPLAIN_RATE_ENV}."
                )
            return array.astype(float)

        return prediction, "prediction"


class AttributionWorker:
    """Attributes a uniform sample of prediction calls in a thread of its own.

    Parameters
    ----------
    log_uri : str
        The prediction log; attributions go to ``<log_uri>/attributions/``.
    explainer : callable
        ``frame -> (Attributions, output description)``, such as :class:`ServingExplainer`.
    rate : float
        The share of calls to attribute, in ``(0, 1]``.
    max_event_age_days : float or None, default=30
        As the log writer's: an older (or unreadable) ``event_time`` is not used
        for the day partition, the time of the call is.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from mlflow_observe.core.explain import Attributions
    >>> def explainer(rows):
    ...     values = rows.astype(float) - 1.0
    ...     return Attributions(values, 1.0, values.sum(axis=1).to_numpy() + 1.0, "demo"), "x"
    >>> root = tempfile.mkdtemp()
    >>> worker = AttributionWorker(root, explainer, rate=1.0)
    >>> worker.offer(pd.DataFrame({"a": [3.0]}), "order-42", None)
    'order-42'
    >>> worker.close()
    >>> worker.stats()["rows_written"]
    1
    """

    def __init__(self, log_uri: str, explainer, *, rate: float, max_event_age_days=30.0):
        self.log_uri = log_uri
        self.explainer = explainer
        self.rate = float(rate)
        self.max_event_age_days = max_event_age_days
        self.max_queue_rows = MAX_QUEUE_ROWS
        self._factor = 1.0  # the worker's own sampling down, when it falls behind
        self._last_factor_change = time.monotonic()
        self._queue: deque = deque()
        self._queued_rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._stopping = False  # a stop signal came: work at full speed, write at once
        self._stop_deadline = 0.0  # the stop's bound (monotonic), once a stop signal came
        self._busy = False
        self._random = random.Random(os.urandom(16)).random
        self._files = AttributionFiles(log_uri, uuid.uuid4().hex)
        self._warned: set[str] = set()
        self._stats = {
            "calls_sampled": 0,
            "rows_sampled_out": 0,
            "rows_attributed": 0,
            "rows_failed": 0,
            "rows_written": 0,
            "rows_write_failed": 0,
            "rows_lost_at_stop": 0,
        }
        self._thread = threading.Thread(
            target=self._run, name="mlflow-observe-explainer", daemon=True
        )
        self._thread.start()
        _WORKERS.add(self)
        atexit.register(self.close)

    # -- the request path ---------------------------------------------------------------

    def offer(self, inputs, request_id, event_time):
        """Maybe queue a call for attribution; the request id to log the call under.

        A sampled call without a request id is given one (32 hex digits), so
        that its attribution joins its log rows. Never raises. Never waits,
        except after a stop signal (:meth:`drain`): then it returns once the
        call is handed over (attributed and written here; sent to the
        attribution process there), within the stop's bound, because the
        server may die by the signal as soon as it has answered.
        """
        try:
            if self._random() >= self.rate * self._factor:
                return request_id
            n_rows = len(inputs)
            request_id = request_id or uuid.uuid4().hex
            received = time.time_ns()
            kept = self._kept(inputs)
            with self._lock:
                if self._closed:  # answered after the stop gave up: unattributed, counted
                    self._stats["rows_lost_at_stop"] += n_rows
                    self._warn_once(
                        "late",
                        "A call answered after the explainer stopped is not attributed "
                        "(counted in rows_lost_at_stop).",
                    )
                    return request_id
                weight = self._admit(n_rows)
                if weight is None:
                    return request_id
                call = [kept, str(request_id), event_time, received, weight]
                # After a stop signal the server may die by it as soon as it has answered
                # (uvicorn re-raises it), so the call is handed over before it returns.
                handed = threading.Event() if self._stopping else None
                if handed is not None:
                    call.append(handed)
                self._queue.append(call)
                self._queued_rows += n_rows
                self._stats["calls_sampled"] += 1
            if handed is not None:
                self._wake.set()
                handed.wait(max(0.0, self._stop_deadline - time.monotonic()))
            return request_id
        except Exception as exc:  # explaining must never break a prediction
            self._warn_once("offer", "Could not queue a prediction for attribution: %r", exc)
            return request_id

    def _kept(self, inputs):
        """What the queue keeps of a sampled call's inputs until the hand-over."""
        return inputs

    def _admit(self, n_rows: int):
        """The rate the call is sampled at, or None when the full queue sampled it out."""
        if n_rows > self.max_queue_rows:  # no thinning makes room: leave the queue alone
            self._stats["rows_sampled_out"] += n_rows
            return None
        # Halve the rate until the call fits, as the log writer does: each halving keeps
        # every queued call and this one with probability 1/2.
        while self._queued_rows + n_rows > self.max_queue_rows:
            self._thin()
            if self._random() >= 0.5:
                self._stats["rows_sampled_out"] += n_rows
                return None
        return self.rate * self._factor

    @staticmethod
    def _release(calls) -> None:
        """Let the callers waiting for these calls' hand-over (during a stop) return."""
        for call in calls:
            if len(call) > 5:
                call[5].set()

    def _thin(self) -> None:
        self._factor /= 2.0
        self._last_factor_change = time.monotonic()
        kept, rows = deque(), 0
        for call in self._queue:
            if self._random() < 0.5:
                call[4] /= 2.0
                kept.append(call)
                rows += len(call[0])
            else:
                self._stats["rows_sampled_out"] += len(call[0])
                self._release([call])
        self._queue, self._queued_rows = kept, rows
        self._warn_once(
            "behind",
            "The explainer falls behind the sampled predictions: sampling down to rate "
            "%.3g (recorded in explain_rate); lower %s for a steadier sample.",
            self.rate * self._factor,
            EXPLAIN_RATE_ENV,
        )

    # -- the worker thread ----------------------------------------------------------------

    def _run(self) -> None:
        self._begin()
        while True:
            self._wake.wait(self.wake_seconds)
            self._wake.clear()
            while self._ready():
                calls = self._take(self.take_rows)
                if not calls:
                    break
                try:
                    self._process(calls)
                finally:
                    self._busy = False
                    self._release(calls)
            self._raise_factor()
            with self._lock:
                closed = self._closed and not self._queue
            self._flush(force=closed or self._stopping)
            if closed:
                self._end()
                return

    # The steps of the loop, which a worker that attributes elsewhere replaces.

    take_rows = CHUNK_ROWS  # rows taken from the queue at a time
    wake_seconds = 0.25  # the thread looks at the queue this often (at once after a stop signal)

    def _begin(self) -> None:
        """At the start of the thread: lower its priority, shorten the switch interval."""
        # Linux schedules threads apart, so this niceness is the worker's alone.
        with contextlib.suppress(Exception):
            thread = threading.get_native_id()
            niceness = os.getpriority(os.PRIO_PROCESS, thread) + WORKER_NICENESS
            os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness))
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)

    def _ready(self) -> bool:
        """Whether to take more calls from the queue now."""
        return True

    def _process(self, calls) -> None:
        """Attribute taken calls in this thread, then hand the interpreter back as long."""
        started = time.perf_counter()
        self._attribute(calls)
        self._flush(force=self._stopping)
        if not (self._closed or self._stopping):
            time.sleep(time.perf_counter() - started)

    def _flush(self, *, force: bool) -> None:
        self._write(force=force)

    def _end(self) -> None:
        """When the worker is closed and its queue is empty."""

    def _idle(self) -> bool:
        """Nothing computed is left unwritten."""
        return not self._files.pending

    def _take(self, max_rows: int) -> list:
        calls, rows = [], 0
        with self._lock:
            while self._queue and (not calls or rows + len(self._queue[0][0]) <= max_rows):
                call = self._queue.popleft()
                calls.append(call)
                rows += len(call[0])
            self._queued_rows -= rows
            self._busy = bool(calls)
        return calls

    def _attribute(self, calls) -> None:
        n_rows = sum(len(c[0]) for c in calls)
        try:
            rows = self._rows(calls)
            attributions, output = self.explainer(rows)
            frame = attribution_frame(rows, attributions, output, self._keys(calls).to_pandas())
        except Exception as exc:  # counted and logged once; the served answers are not touched
            self._stats["rows_failed"] += n_rows
            self._warn_once("explain", EXPLAIN_FAILED, exc)
            return
        self._stats["rows_attributed"] += n_rows
        self._files.add(frame)

    @staticmethod
    def _rows(calls) -> pd.DataFrame:
        """The inputs of taken calls, one frame."""
        frames = [input_frame(c[0]) for c in calls]
        rows = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        return rows.reset_index(drop=True)

    def _keys(self, calls) -> pa.Table:
        """Per row of taken calls: its request id (numbered like the log's), its day's
        timestamp and the rate it was sampled at."""
        return keys_table(
            [c[1] for c in calls],
            np.array([len(c[0]) for c in calls]),
            np.array([self._stamp_ns(c) for c in calls], dtype=np.int64),
            np.array([float(c[4]) for c in calls]),
        )

    def _stamp_ns(self, call) -> int:
        """:meth:`_stamp` in nanoseconds; the time of the call at once when it has no
        event_time (the common case, without a Timestamp built)."""
        return int(call[3]) if call[2] is None else self._stamp(call).value

    def _stamp(self, call) -> pd.Timestamp:
        """The call's day for the partition: its event_time when the writer would take it."""
        received = pd.Timestamp(call[3], unit="ns", tz="UTC")
        if call[2] is None:
            return received
        try:
            stamp = pd.Timestamp(call[2])
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
            oldest = (
                received - pd.Timedelta(days=self.max_event_age_days)
                if self.max_event_age_days is not None
                else pd.Timestamp("1970-01-01", tz="UTC")
            )
            return stamp if oldest <= stamp <= received + MAX_EVENT_AHEAD else received
        except (TypeError, ValueError, OverflowError):
            return received

    def _write(self, *, force: bool) -> None:
        """Write the computed rows when forced, when the oldest waited ``WRITE_SECONDS``, or
        when they are many."""
        if not self._files.ready(force=force):
            return
        written, failed, error = self._files.write()
        self._stats["rows_written"] += written
        self._stats["rows_write_failed"] += failed
        if error is not None:
            self._warn_once("write", WRITE_FAILED, self.log_uri, error)

    def _raise_factor(self) -> None:
        """Double the worker's own rate back (at most once a second) while its queue has room."""
        if self._factor >= 1.0 or time.monotonic() - self._last_factor_change < 1.0:
            return
        with self._lock:
            if self._queued_rows <= self.max_queue_rows // 4:
                self._factor = min(1.0, self._factor * 2.0)
                self._last_factor_change = time.monotonic()

    # -- control --------------------------------------------------------------------------

    def drain(self, timeout: float = STOP_SECONDS) -> bool:
        """Attribute and write everything queued so far, at full speed; False after ``timeout``.

        Called on a stop signal: the worker goes on taking calls afterwards (a
        server's graceful shutdown still answers some), writing each chunk at once.
        """
        deadline = time.monotonic() + timeout
        self._stop_deadline = deadline
        self._stopping = True
        self._wake.set()
        while time.monotonic() < deadline and self._thread.is_alive():
            with self._lock:
                if not self._queue and not self._busy and self._idle():
                    return True
            time.sleep(0.01)
        return False

    def close(self, timeout: float = STOP_SECONDS) -> None:
        """Attribute what is queued and write it (within ``timeout``); stop the thread."""
        with self._lock:
            self._closed = True
        self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                with self._lock:
                    self._stats["rows_lost_at_stop"] += self._queued_rows
                self._warn_once(
                    "stop",
                    "The explainer did not finish within %.0f s of the stop: %d queued rows "
                    "left without attributions.",
                    timeout,
                    self._queued_rows,
                )

    def stats(self) -> dict:
        """Calls sampled; rows sampled out, attributed, failed, written, lost; the current rate."""
        return {**self._stats, "rate": self.rate * self._factor}

    def _warn_once(self, kind: str, message: str, *args) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            _logger.warning(message, *args)


def keys_table(prefixes, sizes: np.ndarray, stamps: np.ndarray, rates: np.ndarray) -> pa.Table:
    """Per row of calls (their request ids, row counts, day timestamps in ns and rates): its
    request id numbered like the log's, its timestamp and the rate it was sampled at.

    >>> keys_table(["a", "b"], np.array([1, 2]), np.array([0, 1]), np.array([1.0, 0.5]))[
    ...     "request_id"
    ... ].to_pylist()
    ['a', 'b-0', 'b-1']
    """
    return pa.table(
        {
            REQUEST_ID: request_ids(list(prefixes), sizes),
            TIMESTAMP: pa.array(np.repeat(stamps, sizes), pa.timestamp("ns", tz="UTC")),
            EXPLAIN_RATE: pa.array(np.repeat(np.asarray(rates, dtype=float), sizes)),
        }
    )


EXPLAIN_FAILED = (
    "Could not attribute sampled predictions (counted in rows_failed; predictions go on): %r"
)
WRITE_FAILED = "Could not write attributions under %s (predictions go on): %r"


def attribution_frame(
    rows: pd.DataFrame, attributions: Attributions, output: str, keys: pd.DataFrame
) -> pd.DataFrame:
    """The stored rows of the attribution stream: ``keys`` (request id, timestamp, rate per
    row), one ``attribution_<input>`` column per input, the base value, method and output."""
    values = attributions.values.reset_index(drop=True)
    frame = pd.DataFrame(
        {
            ATTRIBUTION_PREFIX + name: values.iloc[:, j].to_numpy(dtype=float)
            for j, name in enumerate(safe_input_names(rows.columns))
        }
    )
    frame.insert(0, REQUEST_ID, keys[REQUEST_ID].to_numpy())
    frame.insert(1, TIMESTAMP, keys[TIMESTAMP].to_numpy())
    frame[EXPLAIN_BASE_VALUE] = float(attributions.base_value)
    frame[EXPLAIN_RATE] = keys[EXPLAIN_RATE].to_numpy(dtype=float)
    frame[EXPLAIN_METHOD] = attributions.method
    frame[EXPLAIN_OUTPUT] = output
    return frame


class AttributionFiles:
    """Computed attribution rows kept until written, in one file per ``WRITE_SECONDS``.

    Parameters
    ----------
    log_uri : str
        The prediction log; files go to ``<log_uri>/attributions/``.
    token : str
        Makes the file names of this writer unique (``part-<token>-<sequence>``).
    """

    def __init__(self, log_uri: str, token: str):
        self.log_uri = log_uri
        self.token = token
        self._frames: list[pd.DataFrame] = []
        self._since = time.monotonic()
        self._sequence = 0

    @property
    def pending(self) -> bool:
        """Whether rows wait to be written."""
        return bool(self._frames)

    def add(self, frame: pd.DataFrame) -> None:
        if not self._frames:
            self._since = time.monotonic()
        self._frames.append(frame)

    def ready(self, *, force: bool) -> bool:
        """Rows wait, and it is forced, or the oldest waited ``WRITE_SECONDS``, or they are many."""
        if not self._frames:
            return False
        due = time.monotonic() - self._since >= WRITE_SECONDS
        return force or due or sum(len(f) for f in self._frames) >= MAX_QUEUE_ROWS

    def write(self) -> tuple[int, int, Exception | None]:
        """Write the waiting rows: the rows written, the rows that failed, the error."""
        frames, self._frames = self._frames, []
        if not frames:
            return 0, 0, None
        frame = pd.concat(frames, ignore_index=True)
        self._sequence += 1
        try:
            name = f"{self.token}-{self._sequence:06d}"
            return write_attributions(self.log_uri, frame, name=name), 0, None
        except Exception as exc:
            return 0, len(frame), exc


def install_stop_handlers(signals=(signal.SIGTERM, signal.SIGINT)) -> bool:
    """Make SIGTERM and SIGINT attribute and write what the workers have queued first.

    Each handler is chained in front of the one in place (the prediction log's,
    a server's, the default action): it drains the workers of this process,
    within ``STOP_SECONDS`` in all, then calls the previous handler, or, for
    the default action, stops the process with the same signal. A server that
    re-raises the signal after its graceful shutdown (uvicorn does) reaches it
    after its last answer. Returns False (and installs nothing) outside the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    for sig in signals:
        previous = signal.getsignal(sig)
        if getattr(previous, "func", None) is _on_stop_signal:
            continue
        signal.signal(sig, functools.partial(_on_stop_signal, previous))
    return True


def _on_stop_signal(previous, signum, frame) -> None:
    deadline = time.monotonic() + STOP_SECONDS
    for worker in list(_WORKERS):
        with contextlib.suppress(Exception):  # never stands in the way of the stop
            worker.drain(max(0.0, deadline - time.monotonic()))
    if callable(previous):
        previous(signum, frame)
    elif previous in (signal.SIG_DFL, None):
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


def input_frame(inputs) -> pd.DataFrame:
    """A call's inputs as a frame (named tensors and arrays get ``input_<i>`` columns)."""
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
