"""The prediction log on S3: a real S3 API (moto's server mode) on loopback, started here."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from helpers import S3_CREDENTIALS, running_s3_server, s3_location

from mlflow_observe.logs.attributions import attributions_uri, write_attributions
from mlflow_observe.logs.compaction import compact_logs, expire_logs
from mlflow_observe.logs.reader import log_files, read_attributions, read_logs, scan_logs
from mlflow_observe.logs.writer import PredictionLogWriter

pytest.importorskip("moto")

# Starts processes (a moto S3 server, subprocesses): not in the fast subset.
pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.fixture(scope="module")
def s3_endpoint():
    with running_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_log(s3_endpoint, monkeypatch, tmp_path):
    """A fresh log location on the S3 server; credentials from the usual environment."""
    for key, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_OBSERVE_SPOOL_DIR", str(tmp_path / "spool"))
    return s3_location(s3_endpoint, f"run-{tmp_path.name}")


def test_two_replicas_write_one_s3_location_and_the_reader_merges_them(s3_log, tmp_path):
    writers = [
        PredictionLogWriter(s3_log, spool_dir=str(tmp_path / f"pod{k}"), flush_rows=25)
        for k in range(2)
    ]
    for i in range(100):
        for k, writer in enumerate(writers):
            writer.submit(
                pd.DataFrame({"x": [float(i)], "pod": [float(k)]}),
                [k],
                latency_seconds=0.0,
                request_id=f"pod{k}-{i}",
            )
    for writer in writers:
        writer.close()
    logs = read_logs(s3_log)
    assert len(logs) == 200 and logs["request_id"].is_unique
    assert logs["timestamp"].is_monotonic_increasing
    assert sorted(logs["request_id"]) == sorted(f"pod{k}-{i}" for k in range(2) for i in range(100))
    assert sum(b.num_rows for b in scan_logs(s3_log, batch_size=64)) == 200
    files = log_files(s3_log)
    assert len(files) >= 2 and len({f.rsplit("/", 1)[1] for f in files}) == len(files)
    # compaction on the object store: one file, the same rows once
    result = compact_logs(s3_log, finished_only=False, grace_seconds=0)
    assert result.files_written == 1 and result.files_merged == len(files)
    assert len(log_files(s3_log)) == 1
    again = read_logs(s3_log)
    assert sorted(again["request_id"]) == sorted(logs["request_id"])


def test_attributions_on_s3_are_compacted_and_expired_with_the_log(s3_log):
    old_day = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=25)
    writer = PredictionLogWriter(s3_log, flush_rows=10)
    for i in range(60):  # two days: an old one (its event time) and today
        writer.submit(
            pd.DataFrame({"x": [float(i)]}),
            [0],
            latency_seconds=0.0,
            request_id=f"r{i}",
            event_time=(old_day + pd.Timedelta(hours=1)).isoformat() if i < 30 else None,
        )
        writer.flush()
    writer.close()
    logs = read_logs(s3_log)
    sampled = logs.iloc[::2]
    for k in range(0, len(sampled), 5):  # five rows a file, as a worker writes them
        part = sampled.iloc[k : k + 5]
        write_attributions(
            s3_log,
            pd.DataFrame(
                {
                    "request_id": part["request_id"],
                    "timestamp": part["timestamp"],
                    "attribution_x": 2.0 * part["x"],
                }
            ),
            name=f"w-{k}",
        )
    # Beside the log, under its own prefix: never in the log's files, never read as log rows.
    files = log_files(s3_log)
    assert not [f for f in files if "/attributions/" in f]
    assert len(read_logs(s3_log)) == 60 and len(read_attributions(s3_log)) == 30
    assert len(log_files(attributions_uri(s3_log))) == 6
    before = read_logs(s3_log, with_attributions=True).sort_values("request_id")
    result = compact_logs(s3_log, finished_only=False, grace_seconds=0)
    assert (result.days, result.files_merged, result.files_written) == (2, len(files), 2)
    assert (result.attributions.days, result.attributions.files_merged) == (2, 6)
    assert (result.attributions.files_written, result.attributions.rows) == (2, 30)
    assert len(log_files(attributions_uri(s3_log))) == 2
    after = read_logs(s3_log, with_attributions=True).sort_values("request_id")
    pd.testing.assert_frame_equal(after[before.columns], before, check_dtype=False)
    assert (
        after["attribution_x"].dropna() == 2.0 * after["x"][after["attribution_x"].notna()]
    ).all()
    # Expiry removes the old day of both streams.
    expired = expire_logs(s3_log, "20d")
    assert expired.days == expired.attribution_days == (f"{old_day:%Y-%m-%d}",)
    left = read_logs(s3_log, with_attributions=True)
    assert sorted(left["request_id"]) == sorted(f"r{i}" for i in range(30, 60))
    assert left["attribution_x"].notna().sum() == 15


_KILLED = """
import sys, time
import pandas as pd
from mlflow_observe.logs.writer import PredictionLogWriter

writer = PredictionLogWriter(sys.argv[1], flush_seconds=0.5, spool_seconds=0.05)
i = 0
while True:
    writer.submit(pd.DataFrame({"x": [float(i)]}), [0], latency_seconds=0.0, request_id=f"r{i}")
    print(i, time.monotonic(), flush=True)
    i += 1
    time.sleep(0.001)
"""


def test_sigkill_of_a_writer_to_s3_is_recovered_from_its_local_spool(s3_log):
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED, s3_log], stdout=subprocess.PIPE, text=True
    )
    answered = []
    for line in child.stdout:
        i, at = line.split()
        answered.append((int(i), float(at)))
        if answered[-1][1] - answered[0][1] > 2.0:
            break
    child.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    child.wait(30)
    assert os.listdir(os.environ["MLFLOW_OBSERVE_SPOOL_DIR"])  # left behind, then recovered
    logs = read_logs(s3_log)
    assert logs["request_id"].is_unique
    old = {f"r{i}" for i, at in answered if at < killed - 0.5}
    assert len(old) > 100 and old <= set(logs["request_id"])
    spool = os.environ["MLFLOW_OBSERVE_SPOOL_DIR"]
    assert not [n for n in os.listdir(spool) if n.endswith(".arrows")]
    # each call's row carries what that call sent
    assert (logs["request_id"] == "r" + logs["x"].astype(int).astype(str)).all()
