"""What the hand-over of sampled calls to the attribution process costs the server's
interpreter: thread CPU time per one-row call of 20 float columns, by hand (no timed test).

    .venv/bin/python benchmarks/explain_handover.py

The worker thread's steps for a batch of taken calls, from the queue to the bytes written on
the child's stdin (here a pipe to ``/dev/null``-like sink that a thread empties), timed with
``time.thread_time`` (the CPU of this thread only, so other load on the machine does not
count), for batches of 1 and of 16 one-row calls, as the queue keeps them (a frame of one
numeric dtype as its column index and values, taken on the request thread by
``numeric_rows``, whose time is given first).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

import numpy as np
import pandas as pd

from mlflow_observe.plugins.attribution_process import ProcessAttributionWorker, numeric_rows

N_COLUMNS = 20


class _Sink:
    """The child's stdin: a pipe whose other end a thread reads and discards."""

    def __init__(self):
        read, write = os.pipe()
        self.stdin = os.fdopen(write, "wb")
        self._source = os.fdopen(read, "rb", buffering=0)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        while self._source.read(1 << 16):
            pass


def _worker() -> ProcessAttributionWorker:
    """A worker whose thread never starts a child: its steps are called by hand."""
    worker = ProcessAttributionWorker.__new__(ProcessAttributionWorker)
    root = tempfile.mkdtemp()
    worker.model_root = root
    worker.process = _Sink()  # type: ignore[assignment]
    worker._acks = threading.Condition()
    worker._sent = worker._acked = worker._unwritten = 0
    worker._dead = False
    worker.log_uri = root
    worker.max_event_age_days = 30.0
    worker._stats = {"rows_failed": 0}
    worker._warned = set()
    worker._headers = {}
    return worker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="one-row calls timed")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        rng.normal(size=(1, N_COLUMNS)), columns=[f"f{i:02d}" for i in range(N_COLUMNS)]
    )
    started = time.thread_time()
    for _ in range(args.calls):
        numeric_rows(frame)
    per_call = (time.thread_time() - started) / args.calls
    print(f"the request thread's share (numeric_rows): {per_call * 1e6:8.1f} us a call")
    worker = _worker()
    kept = numeric_rows(frame)
    for batch in (1, 16):
        calls = [[kept, f"order-{i}", None, time.time_ns(), 1.0] for i in range(batch)]
        for _ in range(200):  # warm-up
            worker._process(calls)
        rounds = max(1, args.calls // batch)
        started = time.thread_time()
        for _ in range(rounds):
            worker._process(calls)
        per_call = (time.thread_time() - started) / (rounds * batch)
        print(f"batches of {batch:>2} one-row calls: {per_call * 1e6:8.1f} us of thread CPU a call")


if __name__ == "__main__":
    main()
