"""Rolling the spool in a process of its own: the writer's side and the roller process's loop.

The roller's work (class probabilities, a second pass of a Python-heavy model,
and Parquet encoding) competes with the requests for the interpreter's lock
when it runs on a thread of the serving process; niceness does not help
against that lock. A :class:`RollerProcess` runs it in a child process at a
lower scheduling priority instead, started from a command the caller gives
(the model flavor gives one that loads the model, see
:mod:`mlflow_observe.plugins.log_roller`), which runs :func:`serve_rolls`.

The two talk over a Unix socket pair (``SOCK_SEQPACKET``: one JSON message per
packet), the child's end being its standard input. A closed segment is handed
over *with its locked descriptor* (``SCM_RIGHTS``): the child rolls it under
the writer's own ``flock``, which the writer keeps until the answer, so no
recovering reader can take the segment in between, and a child that dies
mid-roll leaves it locked by the writer, which rolls it itself (rolling twice
writes the same file with the same rows, see :mod:`~mlflow_observe.logs.spool`).

Messages, writer to roller: ``start`` (log location, spool, the writer's
model identity, the stop bound), ``roll`` (a segment, with its descriptor),
``recover`` (the segments that dead writers left), ``cancel`` (a stop's
deadline has come: cut the current roll short). Roller to writer: ``ready``,
a ``result`` per request (``done``, ``failed`` or ``deferred``, with the rows
written), and a heartbeat every ``HEARTBEAT_SECONDS`` carrying a count of the
batches rolled so far. A roller that keeps beating but rolls no batch of the
segment it was given for ``STALLED_SECONDS`` (its model hangs in
``predict_proba``, a lock is never released) is given up like a silent one.

The roller process stops when its standard input closes (the writer closes
it, or its process is gone): it finishes the roll in progress within the
stop bound and leaves the rest in the spool, recovered later. SIGTERM and
SIGINT (a process group's stop) only start that bound: the writer goes on
handing it the segments of its own stop until then.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import threading
import time
import weakref

from mlflow_observe.logs.spool import RollCancelled, recover_spools, roll_segment

_logger = logging.getLogger(__name__)

# The roller process tells it is alive this often; silent for ANSWER_SECONDS, it is replaced.
HEARTBEAT_SECONDS = 2.0
ANSWER_SECONDS = 60.0
# Alive but rolling no batch of the segment it was given for this long, it is replaced too
# (generous: a batch at niceness 10 on a machine loaded many times over is slow, not hung).
STALLED_SECONDS = 300.0
# Loading the model in the roller process may take this long before the writer rolls itself.
READY_SECONDS = 300.0
# After a stop's deadline, the roll in progress has this long to stop between two batches.
CANCEL_SECONDS = 2.0
_PACKET = 1 << 16
_STARTED: weakref.WeakSet = weakref.WeakSet()
# In the roller process: when its stop must be over (set by a stop signal or its writer's end).
_STOP_BY: list[float] = []
_STOP_SECONDS = [10.0]


class RollerUnavailable(Exception):
    """The roller process could not start, died, or stopped answering."""


class RollerProcess:
    """The writer's side of a roller process: start it, hand it segments, stop it.

    Parameters
    ----------
    command : list of str
        The command that runs :func:`serve_rolls` on its standard input.
    start : dict
        The ``start`` message: ``root``, ``spool_dir``, ``identity`` (the
        writer's model, as spooled in the segments' metadata) and ``stop_seconds``.
    """

    def __init__(self, command, start: dict):
        self.command = list(command)
        self.start = dict(start)
        self.process: subprocess.Popen | None = None
        self.pid: int | None = None
        self.has_probabilities = False
        self._channel: socket.socket | None = None
        self._owner = os.getpid()
        self._next_id = 0
        self._heard = time.monotonic()

    def launch(self, cancelled) -> None:
        """Start the process and wait for it to be ready (its model loaded).

        Raises :class:`RollerUnavailable` when it cannot start, exits, or is not
        ready in ``READY_SECONDS`` or before ``cancelled()`` is true.
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                self.command, stdin=theirs, stdout=subprocess.DEVNULL, close_fds=True
            )
        except Exception as exc:
            ours.close()
            raise RollerUnavailable(f"cannot start {self.command!r}: {exc!r}") from exc
        finally:
            theirs.close()
        self.pid = self.process.pid
        self._channel = ours
        _STARTED.add(self)
        self._send({"op": "start", **self.start})
        answer = self._receive(cancelled, READY_SECONDS)
        if answer.get("op") != "ready":
            raise RollerUnavailable(f"unexpected answer {answer!r}")
        self.has_probabilities = bool(answer.get("probabilities"))

    def roll(self, path: str, lock_fd: int, token: str, sequence: int, cancelled) -> dict:
        """Have the process roll a closed segment; its answer (``result``, ``rows``, ``error``).

        The caller keeps ``lock_fd`` (and so the segment's lock) until this returns.
        """
        message = {"op": "roll", "path": path, "token": token, "sequence": sequence}
        return self._request(message, cancelled, fds=[lock_fd])

    def recover(self, cancelled) -> dict:
        """Have the process roll the segments that dead writers left."""
        return self._request({"op": "recover"}, cancelled)

    def stop(self, timeout: float) -> None:
        """Close its standard input and wait for it (killed after ``timeout``): no zombie."""
        if os.getpid() != self._owner:
            return  # a forked copy: the process is its parent's
        if self._channel is not None:
            with contextlib.suppress(OSError):
                self._channel.close()
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL it and reap it (it stopped answering)."""
        if self._channel is not None:
            with contextlib.suppress(OSError):
                self._channel.close()
        if self.process is not None and os.getpid() == self._owner:
            with contextlib.suppress(OSError):
                self.process.kill()
            with contextlib.suppress(Exception):
                self.process.wait(10)

    def _request(self, message: dict, cancelled, fds=()) -> dict:
        self._next_id += 1
        request_id = self._next_id
        self._send({**message, "id": request_id}, fds)
        cancel_sent: list[float] = []

        def cancel():
            if cancelled() and not cancel_sent:
                cancel_sent.append(time.monotonic())
                self._send({"op": "cancel"})
            # A cancelled roll answers (deferred) after its current batch; not in time, the
            # process is given up (and the segment stays in the spool, whole).
            return bool(cancel_sent) and time.monotonic() - cancel_sent[0] > CANCEL_SECONDS

        while True:
            answer = self._receive(cancel, ANSWER_SECONDS, stalled=STALLED_SECONDS)
            if answer.get("id") == request_id:
                return answer

    def _send(self, message: dict, fds=()) -> None:
        data = json.dumps(message).encode()
        try:
            if fds:
                socket.send_fds(self._channel, [data], list(fds))
            else:
                self._channel.send(data)
        except (OSError, AttributeError) as exc:
            raise RollerUnavailable(f"the roller process is gone: {exc!r}") from exc

    def _receive(self, cancelled, silence: float, stalled: float | None = None) -> dict:
        """The next message other than a heartbeat; raises when the process is gone or silent,
        or, given ``stalled``, when its heartbeats report no batch rolled for that long."""
        self._heard = moved = time.monotonic()
        progress = None
        self._channel.settimeout(0.1)
        while True:
            if stalled is not None and time.monotonic() - moved > stalled:
                raise RollerUnavailable(
                    f"the roller process rolled nothing for {stalled:.0f} s while alive "
                    "(its model's predict_proba may hang)"
                )
            try:
                data = self._channel.recv(_PACKET)
            except TimeoutError:
                if cancelled():
                    raise RollerUnavailable("stopped while waiting") from None
                if time.monotonic() - self._heard > silence:
                    raise RollerUnavailable(
                        f"the roller process said nothing for {silence:.0f} s"
                    ) from None
                if self.process.poll() is not None:
                    raise RollerUnavailable(
                        f"the roller process exited with {self.process.returncode}"
                    ) from None
                continue
            except OSError as exc:
                raise RollerUnavailable(f"the roller process is gone: {exc!r}") from exc
            if not data:
                raise RollerUnavailable("the roller process closed its end")
            self._heard = time.monotonic()
            message = json.loads(data)
            if message.get("op") != "alive":
                return message
            if message.get("progress") != progress:
                progress, moved = message.get("progress"), self._heard


def _forget_after_fork() -> None:
    """In a forked child, close the copies of the channels: EOF must reach a roller whose
    writer's process is gone, whatever that process forked."""
    for roller in list(_STARTED):
        if roller._channel is not None:
            with contextlib.suppress(OSError):
                roller._channel.close()
            roller._channel = None
    _STARTED.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


# -- the roller process -------------------------------------------------------------------


def defer_stop_signals(seconds: float = 10.0) -> None:
    """Make SIGTERM and SIGINT start the roller process's bounded stop, not end it at once.

    Called first thing in the roller process (before it loads its model): the
    signal its process group gets when the server stops must not cost the
    segments its writer hands over during its own stop.
    """
    _STOP_SECONDS[0] = seconds

    def on_signal(signum, frame):
        _begin_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)


def _begin_stop() -> None:
    if not _STOP_BY:
        _STOP_BY.append(time.monotonic() + _STOP_SECONDS[0])


def serve_rolls(channel: socket.socket, enrich_for, *, probabilities: bool = False) -> int:
    """Roll the segments a writer hands over ``channel`` until it closes; returns an exit code.

    ``enrich_for(identity)`` returns the ``enrich`` callable of
    :func:`~mlflow_observe.logs.spool.roll_segment` for a writer of that model
    identity (or None). ``probabilities`` is told to the writer (whether rolls
    add class probabilities).
    """
    parent = os.getppid()
    inbox: queue.Queue = queue.Queue()
    cancel = threading.Event()
    stop_by = _STOP_BY  # the deadline of a stop, once one has begun
    send_lock = threading.Lock()
    defer_stop_signals(_STOP_SECONDS[0])

    def send(message: dict) -> None:
        with send_lock, contextlib.suppress(OSError):
            channel.send(json.dumps(message).encode())

    def listen() -> None:
        channel.settimeout(0.5)
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(channel, _PACKET, 4)
            except TimeoutError:
                if os.getppid() != parent:  # the writer's process is gone (SIGKILL, OOM)
                    break
                continue
            except OSError:
                break
            if not data:
                break
            message = json.loads(data)
            if message.get("op") == "cancel":
                cancel.set()
            else:
                inbox.put((message, fds))
        _begin_stop()
        inbox.put(None)

    def watch() -> None:
        while True:
            time.sleep(min(HEARTBEAT_SECONDS, 0.25))
            if stop_by:
                left = stop_by[0] - time.monotonic()
                if left <= 0:
                    cancel.set()  # the roll in progress stops between two batches
                if left <= -2.0:
                    os._exit(0)  # one batch did not end in time: the segment stays whole
            if time.monotonic() - last_beat[0] >= HEARTBEAT_SECONDS:
                last_beat[0] = time.monotonic()
                send({"op": "alive", "progress": rolled_batches[0]})

    last_beat = [time.monotonic()]
    rolled_batches = [0]

    def cancelled() -> bool:
        # Asked between two batches of a roll: each call is progress, told in the heartbeat.
        rolled_batches[0] += 1
        return cancel.is_set()

    threading.Thread(target=listen, name="mlflow-observe-roller-listen", daemon=True).start()
    threading.Thread(target=watch, name="mlflow-observe-roller-watch", daemon=True).start()
    enrich = None
    start: dict = {}
    while True:
        item = inbox.get()
        if item is None:
            return 0
        message, fds = item
        op = message.get("op")
        if op == "start":
            start = message
            _STOP_SECONDS[0] = float(message.get("stop_seconds", 10.0))
            enrich = enrich_for(message.get("identity", "").encode())
            send({"op": "ready", "probabilities": probabilities})
            continue
        answer = {"op": "result", "id": message.get("id"), "rows": 0}
        try:
            if op == "roll" and fds:
                fd, extra = fds[0], fds[1:]
                for other in extra:
                    os.close(other)
                if cancel.is_set():
                    os.close(fd)
                    answer["result"] = "deferred"
                else:
                    answer["rows"] = roll_segment(
                        message["path"],
                        fd,
                        start["root"],
                        message["token"],
                        int(message["sequence"]),
                        enrich=enrich,
                        cancel=cancelled,
                    )
                    answer["result"] = "done"
            elif op == "recover":
                answer["rows"] = recover_spools(
                    start["root"], start.get("spool_dir"), enrich=enrich, cancel=cancelled
                )
                answer["result"] = "done"
            else:
                for fd in fds:
                    os.close(fd)
                answer.update(result="failed", error=f"unknown request {op!r}")
        except RollCancelled:
            answer["result"] = "deferred"
        except Exception as exc:
            answer.update(result="failed", error=repr(exc))
        send(answer)
