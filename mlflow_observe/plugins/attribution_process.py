"""Attributions of sampled served predictions, computed in a separate idle-priority process.

A thread that attributes predictions in the server's own process shares the
interpreter lock with the request threads: however low its scheduling
priority, a request waits while it holds the lock, which shows in the tail of
the latency (p99). :class:`ProcessAttributionWorker` keeps the request side of
:class:`~mlflow_observe.plugins.attribution.AttributionWorker` (the uniform
draw, the bounded queue, the thinning when it falls behind, the recorded
``explain_rate``) and moves the work to a child process::

    request thread   offer(): a random draw; for a sampled call, a queue append (a
                     frame of one numeric dtype kept as its column index and values,
                     about 3 us: see NumericRows)
    worker thread    at the server's priority: the taken calls' raw values (calls of
                     one numeric dtype, the common case: about 24 us of the thread's
                     CPU for a one-row call of 20 float columns, 9 us a call when
                     16 are taken together; benchmarks/explain_handover.py), else
                     Arrow tables (about 0.3 ms), written to the child's stdin (the
                     pipe write releases the interpreter lock)
    child process    python -c "...processes import attribution_main; ...", under
                     SCHED_IDLE: loads the wrapped model a second time (prediction
                     logging off), builds the flavor's ServingExplainer, attributes
                     CHUNK_ROWS rows at a time, writes <log>/attributions/ as the
                     thread did, and acknowledges each message (with what it
                     wrote) in one line on its stdout

Each message is a kind byte and its parts, each preceded by its length. A ``RAW``
message (calls of one numeric numpy dtype and string column names) holds a header
of the columns' names and dtype (built once per set of columns and cached), the
calls' request ids (JSON), row counts, day timestamps and rates, and the rows'
values as one C-ordered block: no Arrow message is built on the server's
interpreter. A ``BATCH`` message (any other input) holds Arrow IPC streams: the
keys, then the rows. Calls of different columns follow each other: one message per
set of columns. At most
``MAX_IN_FLIGHT_ROWS`` rows are sent and not yet acknowledged, so that a child
that falls behind fills the worker's queue, which samples down as before.

Scheduling: on Linux the child runs under ``SCHED_IDLE`` (set by its first line, before it
loads anything, and by the server at once; niceness 19 as well, the fallback where the OS
has no ``SCHED_IDLE`` or refuses it; see :func:`idle_scheduling`), in a session of its own
whose scheduling group has niceness 19. Where the kernel groups processes by session
(autogroups: ``/proc/sys/kernel/sched_autogroup_enabled``, on desktop and most VM kernels;
not for tasks in a container's cgroup), the CPU is first shared fairly between the groups,
and ``SCHED_IDLE`` only ranks a process within its own: in the server's session the child's
CPU counted against the server's whole group, whose requests then waited behind other
sessions' work (a p99 cost of 9 to 11% measured with an MLP). In its own group at niceness 19
it weighs 15 against a server's 1024. It then runs only on a
core nothing else wants, and the kernel preempts it at once when a request needs the core
(a niceness-19 process still gets a small share of a busy core, and is preempted only at the
scheduler's next decision). Under sustained full load it may get no CPU at all: the rows in
flight (``MAX_IN_FLIGHT_ROWS``) wait, the worker's queue fills and it samples down (counted
in ``rows_sampled_out``, the lower rate recorded with each kept row), predictions and log rows
are untouched, and the stop's bounds hold: ``drain`` returns False at its timeout, ``close``
kills the child at its deadline and counts what was queued or in flight in
``rows_lost_at_stop`` (named in its warning).

Stopping: a stop signal (see
:func:`~mlflow_observe.plugins.attribution.install_stop_handlers`) sends what
is queued and a flush; the child then writes each chunk at once, and
``drain`` returns when every row sent is acknowledged written. A call sampled
after the signal (the server still answers what is in flight) is sent before
``offer`` returns, since the server may die by the signal right after its
answer. ``close`` ends
the child's stdin and waits for it to exit, within ``STOP_SECONDS``, then kills
it. A stop signal does not stop the child (it may reach it, sent to the server's
process group before the child has left it): it ignores it while it imports, then writes
each chunk at once. It
finishes on its own: at the end of its stdin, or when its parent is gone
(killed), it writes what it has and exits, within ``STOP_SECONDS`` at most.
At the stop (``drain`` or ``close``) the server moves it out of ``SCHED_IDLE``
to niceness 19 where the OS allows it (see :func:`finishing_scheduling`), and
it exits without the interpreter's teardown: with every core busy and no
autogroups, an idle-priority child got no CPU for its last write and exit.

Failures: a child that cannot start or dies is reported once (a warning); the
calls sampled afterwards, and those it had not acknowledged, are counted in
``rows_failed``. It is not restarted and the work does not fall back to a
thread: a child that died for want of memory would die again, and a thread
would bring back the latency this process removes. Predictions never wait.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pyarrow as pa

from mlflow_observe.logs.compact import NumericRows, column_dtypes, numeric_rows, same_labels
from mlflow_observe.plugins.attribution import (
    CHUNK_ROWS,
    EXPLAIN_FAILED,
    EXPLAIN_RATE_ENV,
    STOP_SECONDS,
    WRITE_FAILED,
    AttributionFiles,
    AttributionWorker,
    attribution_frame,
    input_frame,
    keys_table,
)

MODULE = "mlflow_observe.plugins.attribution_process"
# The child's entry point loads the model through the flavor, which imports this module:
# it lives above both (see mlflow_observe.plugins.processes).
ENTRY_MODULE = "mlflow_observe.plugins.processes"
_logger = logging.getLogger(MODULE)  # the same name when the child runs main()
# The child's command: main() called, not the module run as __main__ (the package imports
# this module first, and runpy would warn of it). Its scheduling is set first, before it loads
# anything (see idle_scheduling), then it starts a session of its own (see "Scheduling"
# above). A stop signal sent to the server's process group before that must not kill it:
# main() then installs its own handlers. It leaves by os._exit once main() returns: its rows
# are written and acknowledged by then, and the interpreter's teardown of the model's modules
# costs about 0.7 s of CPU, which a process at idle priority on a busy machine may wait for
# past the stop's bound (the server would then kill it, and warn).
_BOOTSTRAP = (
    "import os, signal, sys\n"
    "try: os.setpriority(os.PRIO_PROCESS, 0, 19)\n"
    "except OSError: pass\n"
    "try: os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\n"
    "except (AttributeError, OSError): pass\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "try: os.setsid()\n"
    "except OSError: pass\n"
    "try:\n"
    "    with open('/proc/self/autogroup', 'w') as f: f.write('19')\n"
    "except OSError: pass\n"
    f"from {ENTRY_MODULE} import attribution_main\n"
    "code = attribution_main()\n"
    "sys.stdout.flush(); sys.stderr.flush()\n"
    "os._exit(code)"
)
PROCESS_NICENESS = 19
SEND_ROWS = 64  # rows taken from the queue and sent in one message at most
# How often the queue is handed over. Each hand-over costs the server's interpreter a fixed
# part (the thread's wake-up with cold caches, the pipe write that wakes the child, its
# acknowledgement read back) of about half a millisecond, shared by the calls it takes.
HAND_OVER_SECONDS = 1.0
MAX_IN_FLIGHT_ROWS = 128  # rows sent and not yet acknowledged, at most
PARENT_POLL_SECONDS = 0.2
BATCH, RAW, FLUSH = b"B", b"R", b"F"


def idle_scheduling(pid: int = 0) -> str:
    """Run process ``pid`` (0: this one) only on a core nothing else wants: ``SCHED_IDLE``
    where the OS has it, else niceness ``PROCESS_NICENESS``; the policy that took.

    Niceness 19 is set either way (it is the fallback, and what a platform that has
    ``SCHED_IDLE`` but refuses it keeps). Threads started afterwards inherit both.

    >>> import subprocess, sys
    >>> other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    >>> idle_scheduling(other.pid) in ("SCHED_IDLE", "niceness 19")
    True
    >>> other.kill(); other.wait()
    -9
    """
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, PROCESS_NICENESS)
    try:
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        return f"niceness {PROCESS_NICENESS}"
    return "SCHED_IDLE"


def finishing_scheduling(pid: int) -> bool:
    """At the stop, move process ``pid`` from ``SCHED_IDLE`` to the normal policy, still at
    niceness ``PROCESS_NICENESS``; whether the OS allowed it.

    Under ``SCHED_IDLE`` a process gets next to no CPU while every core is busy, and each
    of its wake-ups waits for a slice: its last write and its exit may then take longer
    than the stop's bound, and its rows are lost. At niceness 19 it still yields to every
    other process, but is sure of a small share. Leaving ``SCHED_IDLE`` takes a privilege
    (root, ``CAP_SYS_NICE``, or an ``RLIMIT_NICE`` of 1 or more); without it nothing
    changes.

    >>> import subprocess, sys
    >>> other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    >>> _ = idle_scheduling(other.pid)
    >>> finishing_scheduling(other.pid) == (os.sched_getscheduler(other.pid) == os.SCHED_OTHER)
    True
    >>> other.kill(); other.wait()
    -9
    """
    try:  # Linux schedules each thread apart: all of the child's threads are moved
        threads = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        threads = [pid]
    moved = False
    for thread in threads:
        try:
            os.sched_setscheduler(thread, os.SCHED_OTHER, os.sched_param(0))
        except (AttributeError, OSError):  # no privilege, or the thread has ended
            continue
        moved = True
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, thread, PROCESS_NICENESS)
    return moved


# -- the messages -------------------------------------------------------------------------------


def write_message(stream, kind: bytes, tables=()) -> None:
    """Write a message: ``kind`` (one byte), the number of tables, then each table as an
    Arrow IPC stream preceded by its length in bytes."""
    buffers = []
    for table in tables:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        buffers.append(sink.getvalue())
    write_parts(stream, kind, buffers)


def write_parts(stream, kind: bytes, buffers) -> None:
    """Write a message of raw parts (bytes-like): ``kind``, their number, then each part
    preceded by its length in bytes."""
    stream.write(kind + struct.pack("<I", len(buffers)))
    for buffer in buffers:
        stream.write(struct.pack("<Q", memoryview(buffer).nbytes))
        stream.write(buffer)
    stream.flush()


def read_message(stream):
    """``(kind, parts)`` of the next message, or None at the end of the stream: the parts
    as Arrow tables, or as bytes for a ``RAW`` message."""
    head = _read_exactly(stream, 5)
    if head is None:
        return None
    kind, (count,) = head[:1], struct.unpack("<I", head[1:])
    parts = []
    for _ in range(count):
        (size,) = struct.unpack("<Q", _read_exactly(stream, 8, inside=True))
        part = _read_exactly(stream, size, inside=True) if size else b""
        parts.append(part if kind == RAW else pa.ipc.open_stream(part).read_all())
    return kind, parts


# -- the numeric calls' raw path ------------------------------------------------------------------


def numeric_block(inputs):
    """``(names, values)`` of a frame (or :class:`NumericRows`) of one numeric numpy dtype with
    string column names, values a C-ordered 2-D array; None for any other input.

    >>> names, values = numeric_block(pd.DataFrame({"x": [1.5], "y": [2.0]}))
    >>> names, values.dtype.str, values.tolist()
    (('x', 'y'), '<f8', [[1.5, 2.0]])
    >>> numeric_block(pd.DataFrame({"x": [1.5], "y": [2]})) is None  # two dtypes
    True
    """
    rows = numeric_rows(inputs)
    if not isinstance(rows, NumericRows):
        return None
    if rows.columns.inferred_type != "string" or not len(rows.columns):
        return None
    return tuple(rows.columns.tolist()), np.ascontiguousarray(rows.values)


def raw_parts(header: bytes, calls, stamps, blocks) -> list:
    """The parts of a ``RAW`` message: the (cached) header of names and dtype, the calls'
    request ids, row counts, day timestamps and rates, then the values of every row."""
    sizes = np.array([len(block) for block in blocks], dtype=np.int64)
    values = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    return [
        header,
        json.dumps([call[1] for call in calls]).encode(),
        sizes,
        np.asarray(stamps, dtype=np.int64),
        np.array([float(call[4]) for call in calls]),
        values,
    ]


def raw_header(names, dtype: np.dtype) -> bytes:
    return json.dumps({"columns": list(names), "dtype": dtype.str}).encode()


def raw_frames(parts) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(keys, rows)`` of a ``RAW`` message's parts, as the Arrow path gives them.

    >>> header = raw_header(("x", "y"), np.dtype("<f8"))
    >>> call = [None, "order-42", None, 0, 1.0]
    >>> parts = raw_parts(header, [call], [0], [np.array([[1.5, 2.0]])])
    >>> keys, rows = raw_frames([memoryview(p).tobytes() for p in parts])
    >>> keys["request_id"].tolist(), rows.to_dict("records")
    (['order-42'], [{'x': 1.5, 'y': 2.0}])
    """
    header, ids, sizes, stamps, rates, values = parts
    meta = json.loads(header)
    sizes = np.frombuffer(sizes, dtype=np.int64)
    keys = keys_table(
        json.loads(ids), sizes, np.frombuffer(stamps, dtype=np.int64), np.frombuffer(rates)
    ).to_pandas()
    array = np.frombuffer(values, dtype=np.dtype(meta["dtype"]))
    rows = pd.DataFrame(array.reshape(int(sizes.sum()), len(meta["columns"])).copy())
    rows.columns = pd.Index(meta["columns"])
    return keys, rows


def _read_exactly(stream, size: int, *, inside: bool = False):
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            if inside or chunks:
                raise EOFError("The attribution stream ended inside a message.")
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def arrow_table(frame: pd.DataFrame) -> pa.Table:
    """``frame`` as an Arrow table (no index), cheaply in the server's interpreter.

    A frame of one numeric dtype with string column names (the common served
    input) goes through one numpy array, about 5 times faster than
    ``pa.Table.from_pandas`` for a one-row call; any other frame through
    ``pa.Table.from_pandas``, whose metadata restores its dtypes and names.

    >>> arrow_table(pd.DataFrame({"x": [1.5], "y": [2.0]})).to_pandas()
         x    y
    0  1.5  2.0
    >>> arrow_table(pd.DataFrame({"x": [1.5], 2: ["a"]})).to_pandas()
         x  2
    0  1.5  a
    """
    dtypes = column_dtypes(frame)
    if (
        len(dtypes) == 1
        and isinstance(dtype := next(iter(dtypes)), np.dtype)
        and dtype.kind in "biuf"
        and all(isinstance(name, str) for name in frame.columns)
    ):
        values = frame.to_numpy()
        return pa.Table.from_arrays(
            [pa.array(values[:, j]) for j in range(values.shape[1])], names=list(frame.columns)
        )
    return pa.Table.from_pandas(frame, preserve_index=False)


# -- the server's side -----------------------------------------------------------------------


class ProcessAttributionWorker(AttributionWorker):
    """An :class:`~mlflow_observe.plugins.attribution.AttributionWorker` whose attributions
    are computed by a child process under ``SCHED_IDLE`` (else at niceness 19).

    Parameters
    ----------
    log_uri : str
        The prediction log; attributions go to ``<log_uri>/attributions/``.
    model_root : str
        The local directory of the wrapped model (``MLmodel``, ``inner_model/``, its
        baseline), loaded again by the child.
    rate : float
        The share of calls to attribute, in ``(0, 1]``.
    max_event_age_days : float or None, default=30
        As the log writer's.

    Examples
    --------
    A model directory that cannot be loaded: the child exits, which is reported
    once, and the sampled call is counted as failed (or as lost at the stop, on
    a machine so busy that the idle-priority child got no CPU before it); the
    caller is not delayed.

    >>> import tempfile, pandas as pd
    >>> root = tempfile.mkdtemp()
    >>> worker = ProcessAttributionWorker(root, root, rate=1.0)
    >>> worker.offer(pd.DataFrame({"a": [3.0]}), "order-42", None)
    'order-42'
    >>> worker.close()
    >>> stats = worker.stats()
    >>> stats["rows_failed"] + stats["rows_lost_at_stop"], stats["rows_written"]
    (1, 0)
    """

    take_rows = SEND_ROWS
    wake_seconds = HAND_OVER_SECONDS

    def __init__(self, log_uri: str, model_root: str, *, rate: float, max_event_age_days=30.0):
        self.model_root = model_root
        self.process: subprocess.Popen | None = None
        self._acks = threading.Condition()
        self._sent = 0  # rows sent to the child
        self._acked = 0  # rows the child attributed or failed on
        self._unwritten = 0  # rows attributed, not yet written
        self._dead = False
        self._ending = False
        self._flushed = False
        self._deadline: float | None = None
        self._owner = os.getpid()
        self._reader: threading.Thread | None = None
        self._loaded = threading.Event()
        self._error: Exception | None = None
        self._headers: dict = {}  # (names, dtype) -> the raw messages' header
        self._columns: pd.Index | None = None  # the last sampled call's columns, shared
        super().__init__(log_uri, None, rate=rate, max_event_age_days=max_event_age_days)

    def _kept(self, inputs):
        """A sampled frame of one numeric dtype is kept as its columns and values; columns
        equal to the last call's are replaced by those (4 us): each request's own index
        holds 8 tracked objects (pandas' string columns), which a queue kept for up to a
        second brings to the collector's oldest generation."""
        rows = numeric_rows(inputs)
        if isinstance(rows, NumericRows):
            last = self._columns
            if last is not None and same_labels(last, rows.columns):
                rows.columns = last
            else:
                self._columns = rows.columns
        return rows

    @property
    def child_pid(self) -> int | None:
        """The process id of the child, once started."""
        return self.process.pid if self.process is not None else None

    def wait_loaded(self, timeout: float | None = None) -> bool:
        """Wait until the child has loaded the model and explains; False after ``timeout``.

        It imports the package and loads the model at idle priority: seconds on a busy machine.
        """
        return self._loaded.wait(timeout)

    # -- the steps of the worker thread

    def _begin(self) -> None:
        # Unlike the attributing thread, this one stays at the server's priority (its work is
        # short, and a thread descheduled while it holds the interpreter makes a request wait
        # for it: a priority inversion), and leaves the switch interval as the server has it.
        environment = {k: v for k, v in os.environ.items() if k != EXPLAIN_RATE_ENV}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, "--model", self.model_root]
                + ["--log", self.log_uri, "--token", self._files.token]
                + ["--parent", str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=environment,
            )
        except Exception as exc:
            self._died(f"it could not start: {exc!r}")
            return
        # At once, in case the child has not yet run its first line, which sets it too.
        idle_scheduling(self.process.pid)
        self._reader = threading.Thread(
            target=self._read_acks, name="mlflow-observe-explainer-acks", daemon=True
        )
        self._reader.start()

    def _ready(self) -> bool:
        """Room for more rows in flight (waits for it, a quarter of a second at a time)."""
        with self._acks:
            while not self._dead and self._sent - self._acked >= MAX_IN_FLIGHT_ROWS:
                self._acks.wait(0.25)
                if self._deadline is not None and time.monotonic() > self._deadline:
                    return False
        return True

    def _process(self, calls) -> None:
        """Send the calls, one message per set of input columns: their raw values for calls of
        one numeric dtype (a cached header names the columns), Arrow tables otherwise (a call
        whose inputs Arrow cannot hold is counted as failed alone)."""
        groups: dict = {}
        blocks: dict = {}
        for call in calls:
            try:
                inputs = call[0]
                if not isinstance(inputs, NumericRows):
                    inputs = input_frame(inputs)
                if not len(inputs):
                    continue
                block = numeric_block(inputs)
                if block is None:
                    frame = inputs.frame() if isinstance(inputs, NumericRows) else inputs
            except Exception as exc:
                self._failed(len(call[0]), exc)
                continue
            if block is not None:
                key = (block[0], block[1].dtype)
                blocks.setdefault(key, []).append((call, block[1]))
            else:
                groups.setdefault(tuple(frame.columns), []).append((call, frame))
        for (names, dtype), members in blocks.items():
            self._send_raw(names, dtype, members)
        for group in groups.values():
            tables = self._tables(group)
            if tables is None and len(group) > 1:
                for member in group:
                    self._send_rows([member], self._tables([member]))
            else:
                self._send_rows(group, tables)

    def _tables(self, group):
        try:
            # Call by call, then joined by Arrow: cheaper than pandas' concat of small frames.
            tables = [arrow_table(frame) for _, frame in group]
            rows = (
                tables[0]
                if len(tables) == 1
                else pa.concat_tables(tables, promote_options="permissive")
            )
            return [self._keys([call for call, _ in group]), rows]
        except Exception as exc:  # an input Arrow cannot hold
            self._error = exc
            return None

    def _send_raw(self, names, dtype, members) -> None:
        n_rows = sum(len(values) for _, values in members)
        if self._dead:
            self._failed(n_rows, None)
            return
        header = self._headers.get((names, dtype))
        if header is None:
            header = self._headers[(names, dtype)] = raw_header(names, dtype)
        calls = [call for call, _ in members]
        stamps = [self._stamp_ns(call) for call in calls]
        parts = raw_parts(header, calls, stamps, [values for _, values in members])
        with self._acks:
            self._sent += n_rows
        assert self.process is not None and self.process.stdin is not None
        try:
            write_parts(self.process.stdin, RAW, parts)
        except (OSError, ValueError) as exc:  # the child is gone: its pipe is broken
            self._died(f"its input is closed: {exc!r}")

    def _send_rows(self, group, tables) -> None:
        n_rows = sum(len(frame) for _, frame in group)
        if tables is None or self._dead:
            self._failed(n_rows, None if self._dead else self._error)
            return
        with self._acks:
            self._sent += n_rows
        self._send(BATCH, tables)

    def _failed(self, n_rows: int, error) -> None:
        with self._acks:
            self._stats["rows_failed"] += n_rows
        if error is not None:
            self._warn_once("explain", EXPLAIN_FAILED, error)

    def _flush(self, *, force: bool) -> None:
        if self._stopping and not self._flushed and not self._dead:
            self._flushed = True
            self._send(FLUSH)

    def _send(self, kind: bytes, tables=()) -> None:
        assert self.process is not None and self.process.stdin is not None
        try:
            write_message(self.process.stdin, kind, tables)
        except (OSError, ValueError) as exc:  # the child is gone: its pipe is broken
            self._died(f"its input is closed: {exc!r}")

    def _idle(self) -> bool:
        with self._acks:
            return self._dead or (self._sent == self._acked and not self._unwritten)

    def _end(self) -> None:
        """The end of the child's input: it writes what it has and exits, by the deadline."""
        self._ending = True
        if self.process is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self.process.stdin.close()  # type: ignore[union-attr]
        deadline = self._deadline or time.monotonic() + STOP_SECONDS
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(max(0.0, deadline - time.monotonic()))
        self._stop_child()
        if self._reader is not None:  # its last acknowledgements counted
            self._reader.join(max(1.0, deadline - time.monotonic()))

    # -- the child's acknowledgements, read in a thread of their own

    def _read_acks(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            try:
                ack = json.loads(line)
            except ValueError:
                continue
            if ack.get("ready"):
                self._loaded.set()
            with self._acks:
                for key in ("attributed", "failed", "written", "write_failed"):
                    self._stats["rows_" + key] += int(ack.get(key, 0))
                self._acked += int(ack.get("attributed", 0)) + int(ack.get("failed", 0))
                self._unwritten += int(ack.get("attributed", 0))
                self._unwritten -= int(ack.get("written", 0)) + int(ack.get("write_failed", 0))
                self._acks.notify_all()
        code = self.process.wait()  # reaped: never a zombie
        if self._ending and code == 0:
            with self._acks:
                self._stats["rows_lost_at_stop"] += self._sent - self._acked + self._unwritten
                self._dead = True
                self._acks.notify_all()
            return
        self._died(f"it exited with code {code}")

    def _died(self, reason: str) -> None:
        """One warning; what was sent and not acknowledged is counted as failed."""
        with self._acks:
            if self._dead:
                return
            self._dead = True
            self._stats["rows_failed"] += self._sent - self._acked
            self._stats["rows_write_failed"] += self._unwritten
            self._acked, self._unwritten = self._sent, 0
            self._acks.notify_all()
        if not self._ending:
            self._warn_once(
                "process",
                "The attribution process stopped (%s): sampled predictions are counted in "
                "rows_failed from now on, and predictions go on; see the process's own "
                "messages above, and restart the server to attribute again.",
                reason,
            )

    def _stop_child(self) -> None:
        """Kill the child if it still runs (past the deadline), and reap it."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with self._acks:
            self._stats["rows_lost_at_stop"] += self._sent - self._acked + self._unwritten
            self._acked, self._unwritten = self._sent, 0
            self._dead = True
        with contextlib.suppress(OSError):
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5.0)

    # -- control

    def close(self, timeout: float = STOP_SECONDS) -> None:
        """Send what is queued, end the child's input and wait for it to write and exit, within
        ``timeout`` in all; past it, the child is killed and the rest counted as lost."""
        if os.getpid() != self._owner:  # a forked copy: the child belongs to the original
            return
        self._deadline = time.monotonic() + timeout
        self._finish_soon()
        with self._lock:
            self._closed = True
        self._wake.set()
        if threading.current_thread() is self._thread:
            return
        self._thread.join(timeout)
        if self._thread.is_alive() or (self.process and self.process.poll() is None):
            self._abandon(timeout)

    def drain(self, timeout: float = STOP_SECONDS) -> bool:
        """As the thread's; past ``timeout``, the child is also killed and what it had not
        written counted as lost (as ``close`` does at its deadline).

        A drain comes from a stop signal, and the server may then die by the signal's
        default action (uvicorn re-raises it after its graceful shutdown), where no exit
        handler runs: a child starved of CPU (or stopped) would outlive it, and its rows go
        uncounted. Calls sampled afterwards are counted in ``rows_lost_at_stop`` too.
        """
        if os.getpid() == self._owner:
            self._finish_soon()
        if super().drain(timeout):
            return True
        if os.getpid() == self._owner:
            self._deadline = time.monotonic()
            with self._lock:
                self._closed = True
            self._wake.set()
            if threading.current_thread() is not self._thread:
                self._abandon(timeout)
        return False

    def _finish_soon(self) -> None:
        """The stop has come: the child leaves ``SCHED_IDLE`` where the OS allows it (see
        :func:`finishing_scheduling`), so that a busy machine does not starve its last rows."""
        if self.process is not None and self.process.poll() is None:
            finishing_scheduling(self.process.pid)

    def _abandon(self, timeout: float) -> None:
        """Past the stop's bound: count what is queued or in flight as lost, kill the child."""
        with self._lock:
            queued, self._queued_rows = self._queued_rows, 0
            self._release(self._queue)
            self._queue.clear()
        with self._acks:
            self._stats["rows_lost_at_stop"] += queued
        lost = queued + self._sent - self._acked + self._unwritten
        self._stop_child()
        self._thread.join(1.0)
        self._warn_once(
            "stop",
            "The attribution process did not finish within %.0f s of the stop: %d rows "
            "left without attributions.",
            timeout,
            lost,
        )

    def stats(self) -> dict:
        with self._acks:
            return super().stats()


# -- the child's side ----------------------------------------------------------------------------


class _Child:
    """The child's state: its acknowledgements, its files, whether to write at once."""

    def __init__(self, log_uri: str, token: str, acks):
        self.files = AttributionFiles(log_uri, f"{token}-p")
        self.acks = acks
        self.stopping = False
        self.warned: set[str] = set()
        self.received = 0  # rows read from the server
        self.settled = 0  # rows failed, written or failed to write

    def unwritten(self) -> int:
        """Rows received and not yet written (or counted as failed)."""
        return self.received - self.settled

    def ack(self, **counts) -> None:
        """One line of counts for the server (nothing when there is nothing to say)."""
        counts = {key: value for key, value in counts.items() if value}
        if not counts:
            return
        self.settled += sum(counts.get(k, 0) for k in ("failed", "written", "write_failed"))
        with contextlib.suppress(OSError, ValueError):  # the parent is gone: nobody listens
            self.acks.write(json.dumps(counts) + "\n")
            self.acks.flush()

    def attribute(self, explainer, keys, rows) -> None:
        """Attribute a message's rows chunk by chunk, and acknowledge them in one line.

        Each line wakes a thread of the server, which then takes the server's interpreter from
        a request: one line per message (at most ``SEND_ROWS`` rows, one message per wake of
        the server's worker) rather than one per chunk, which a slow explainer spread over the
        requests. After a stop signal each chunk is written and acknowledged at once.
        """
        self.received += len(rows)
        attributed = failed = 0
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = rows.iloc[start : start + CHUNK_ROWS].reset_index(drop=True)
            chunk_keys = keys.iloc[start : start + CHUNK_ROWS].reset_index(drop=True)
            try:
                attributions, output = explainer(chunk)
                frame = attribution_frame(chunk, attributions, output, chunk_keys)
            except Exception as exc:
                failed += len(chunk)
                self.warn("explain", EXPLAIN_FAILED, exc)
            else:
                self.files.add(frame)
                attributed += len(chunk)
            if self.stopping:
                self.write(force=True, attributed=attributed, failed=failed)
                attributed = failed = 0
        self.write(force=self.stopping, attributed=attributed, failed=failed)

    def write(self, *, force: bool, **counts) -> None:
        """Write the attributions when due, and acknowledge ``counts`` with what was written."""
        error = None
        if self.files.ready(force=force):
            counts["written"], counts["write_failed"], error = self.files.write()
        self.ack(**counts)
        if error is not None:
            self.warn("write", WRITE_FAILED, self.files.log_uri, error)

    def warn(self, kind: str, message: str, *args) -> None:
        if kind not in self.warned:
            self.warned.add(kind)
            _logger.warning(message, *args)


def _watch_parent(parent: int, child: _Child) -> None:
    """When the parent is gone (killed), exit within ``STOP_SECONDS`` whatever the work left;
    what is left is named (nobody else can count it any more)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        time.sleep(STOP_SECONDS - 1.0)
        with contextlib.suppress(Exception):
            if child.unwritten() > 0:
                _logger.warning(
                    "The server is gone and its attribution process stops at the bound "
                    "(%.0f s): %d rows left without attributions.",
                    STOP_SECONDS,
                    child.unwritten(),
                )
        os._exit(0)

    threading.Thread(target=watch, name="mlflow-observe-parent-watch", daemon=True).start()


def main(argv, load_explainer) -> int:
    """The child: attribute the calls read on stdin, acknowledge on stdout, until its end.

    ``load_explainer(model_dir)`` gives the explainer of the wrapped model saved there
    (the flavor's :func:`~mlflow_observe.plugins.flavor.load_serving_explainer`).
    """
    idle_scheduling()
    parser = argparse.ArgumentParser(prog=MODULE, description=main.__doc__)
    parser.add_argument("--model", required=True, help="the wrapped model's local directory")
    parser.add_argument("--log", required=True, help="the prediction log's location")
    parser.add_argument("--token", required=True, help="makes the file names unique")
    parser.add_argument("--parent", type=int, help="the server process (default: the parent)")
    args = parser.parse_args(argv)
    # The acknowledgements keep stdout to themselves: what the model prints goes to stderr.
    acks = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    source = os.fdopen(os.dup(0), "rb", buffering=0)  # unbuffered: select() sees every byte
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    if not logging.getLogger("mlflow_observe").handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("mlflow_observe").addHandler(handler)
    child = _Child(args.log, args.token, acks)
    _watch_parent(args.parent or os.getppid(), child)  # before the model loads, which is slow

    def stop(signum, frame) -> None:  # the server stops: write each chunk at once
        child.stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)

    from mlflow_observe.logs.writer import no_prediction_logs

    with no_prediction_logs():
        try:
            explainer = load_explainer(args.model)
        except Exception as exc:
            _logger.warning(
                "Attributions are off: the attribution process cannot load the model at %s: %r",
                args.model,
                exc,
            )
            return 1
        child.ack(ready=True)
        while True:
            if not select.select([source], [], [], 0.25)[0]:
                child.write(force=child.stopping)
                continue
            message = read_message(source)
            if message is None:  # the parent closed it, or is gone
                break
            kind, parts = message
            if kind == FLUSH:
                child.stopping = True
                child.write(force=True)
            else:
                keys, rows = (
                    raw_frames(parts) if kind == RAW else (table.to_pandas() for table in parts)
                )
                child.attribute(explainer, keys, rows)
        child.write(force=True)
    return 0
