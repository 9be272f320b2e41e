"""Text and embedding inputs through the prediction log: writer, spool, Parquet, reader."""

import glob
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlflow_observe.logs.compaction import compact_logs
from mlflow_observe.logs.reader import log_files, read_logs, scan_logs
from mlflow_observe.logs.schema import dict_input_frame
from mlflow_observe.logs.writer import PredictionLogWriter

DIM = 16


def _calls(n_calls, rows, seed=0):
    """Calls with a text column and a 16-dimensional embedding column (numpy arrays per row)."""
    rng = np.random.default_rng(seed)
    for c in range(n_calls):
        vectors = rng.normal(size=(rows, DIM))
        yield pd.DataFrame(
            {
                "review": [f"call {c} row {r} " + "word " * (r % 7) for r in range(rows)],
                "embedding": list(vectors),
                "x": rng.normal(size=rows),
            }
        )


def _written(root, frames, **options):
    writer = PredictionLogWriter(str(root), **options)
    for i, frame in enumerate(frames):
        writer.submit(frame, np.zeros(len(frame)), latency_seconds=0.0, request_id=f"c{i}")
    writer.close()
    assert writer.stats()["rows_dropped_write_failed"] == 0
    return writer


def _by_id(logs):
    return logs.set_index("request_id")


def _expected(frames):
    rows = {}
    for i, frame in enumerate(frames):
        for r in range(len(frame)):
            rows[f"c{i}" if len(frame) == 1 else f"c{i}-{r}"] = frame.iloc[r]
    return rows


def _parquet_types(root):
    types = {}
    for path in glob.glob(f"{root}/date=*/*.parquet"):
        for field in pq.read_schema(path):
            kind = field.type
            if pa.types.is_list(kind):  # Parquet names the item "element": compare the types
                kind = pa.list_(kind.value_type)
            types.setdefault(field.name, set()).add(kind)
    return types


@pytest.mark.parametrize("rows", [1, 3, 200])  # runs of small calls, and large calls alone
def test_texts_and_vectors_read_back_exactly_as_string_and_list_of_float32(tmp_path, rows):
    frames = list(_calls(40, rows))
    _written(tmp_path, frames)
    types = _parquet_types(tmp_path)
    assert types["review"] == {pa.string()}
    assert types["embedding"] == {pa.list_(pa.float32())}
    logs = _by_id(read_logs(str(tmp_path)))
    expected = _expected(frames)
    assert len(logs) == len(expected) == 40 * rows
    for rid, row in expected.items():
        assert logs.at[rid, "review"] == row["review"]
        got = logs.at[rid, "embedding"]
        assert got.dtype == np.float32 and got.shape == (DIM,)
        np.testing.assert_array_equal(got, row["embedding"].astype(np.float32))
        assert logs.at[rid, "x"] == row["x"]


def test_lists_of_ints_doubles_and_arrays_share_one_type_and_one_segment(tmp_path):
    frames = [
        pd.DataFrame({"e": [[1, 2, 3]]}),  # list<int64>
        pd.DataFrame({"e": [[0.5, 1.5, 2.5]]}),  # list<double>
        pd.DataFrame({"e": [np.array([1.0, 2.0, 3.0], dtype=np.float32)]}),
        pd.DataFrame({"e": [(4.0, 5.0, 6.0)]}),  # tuples
    ]
    writer = _written(tmp_path, frames)
    assert writer.stats()["files_written"] == 1  # one schema: one segment, one file
    logs = _by_id(read_logs(str(tmp_path)))
    assert [logs.at[f"c{i}", "e"].tolist() for i in range(4)] == [
        [1, 2, 3],
        [0.5, 1.5, 2.5],
        [1, 2, 3],
        [4, 5, 6],
    ]


def test_a_dict_input_with_a_2d_array_is_a_column_of_vectors(tmp_path):
    vectors = np.arange(12, dtype=np.float64).reshape(3, 4)
    writer = PredictionLogWriter(str(tmp_path))
    inputs = dict_input_frame({"emb": vectors, "text": ["a", "b", "c"]})
    writer.submit(inputs, [0, 1, 2], latency_seconds=0.0)
    writer.close()
    logs = read_logs(str(tmp_path))
    assert _parquet_types(tmp_path)["emb"] == {pa.list_(pa.float32())}
    np.testing.assert_array_equal(np.stack(logs["emb"]), vectors)
    assert logs["text"].tolist() == ["a", "b", "c"]


def test_adversarial_texts_and_vectors_are_kept_as_sent(tmp_path):
    long_text = "ünïcödé 字 🙂 " * 50_000  # 1.3 MB of UTF-8
    odd = ["", " ", "\x00nul inside", "\ud7ff\ue000\U0010ffff", "\t\n\r", None, "é" * 3]
    frames = [
        # ragged vectors, None and NaN in a vector column
        pd.DataFrame({"text": ["ragged", "short", "none"], "e": [[1.0, 2.0, 3.0], [1.0], None]}),
        pd.DataFrame({"text": [long_text], "e": [[float("nan"), float("inf"), -0.0]]}),
        pd.DataFrame({"text": odd, "e": [[]] * len(odd)}),  # empty vectors
        pd.DataFrame({"text": [None], "e": [None]}),  # an all-null call: null types
        pd.DataFrame({"text": ["after"], "e": [[7.0, 8.0, 9.0]]}),  # later calls unharmed
    ]
    _written(tmp_path, frames)
    logs = _by_id(read_logs(str(tmp_path)))
    assert len(logs) == 3 + 1 + len(odd) + 1 + 1
    assert logs.at["c0-0", "e"].tolist() == [1, 2, 3]
    assert logs.at["c0-1", "e"].tolist() == [1]
    assert logs.at["c0-2", "e"] is None
    assert logs.at["c1", "text"] == long_text and len(long_text.encode()) > 1_000_000
    special = logs.at["c1", "e"]
    assert np.isnan(special[0]) and special[1] == np.inf and np.signbit(special[2])
    texts = [logs.at[f"c2-{r}", "text"] for r in range(len(odd))]
    assert [None if pd.isna(t) else t for t in texts] == odd  # a null text reads as missing
    assert all(len(logs.at[f"c2-{r}", "e"]) == 0 for r in range(len(odd)))
    assert pd.isna(logs.at["c3", "text"]) and logs.at["c3", "e"] is None
    assert logs.at["c4", "e"].tolist() == [7, 8, 9]
    # Every file holds the embedding as a list of float32 (or nulls only): read together.
    assert _parquet_types(tmp_path)["e"] <= {pa.list_(pa.float32()), pa.null()}


def test_scan_logs_streams_vectors_in_bounded_batches(tmp_path):
    frames = list(_calls(5, 1000))
    _written(tmp_path, frames)
    batches = list(scan_logs(str(tmp_path), batch_size=700))
    assert max(b.num_rows for b in batches) <= 700 and sum(b.num_rows for b in batches) == 5000
    kinds = {b.schema.field("embedding").type for b in batches}
    assert all(pa.types.is_list(k) and k.value_type == pa.float32() for k in kinds)
    vectors = np.concatenate(
        [b.column("embedding").values.to_numpy(zero_copy_only=False) for b in batches]
    )
    expected = np.concatenate([np.stack(f["embedding"]) for f in frames]).astype(np.float32)
    assert vectors.size == expected.size
    # the same multiset of rows (files are read in name order, calls in time order)
    np.testing.assert_array_equal(
        np.sort(vectors.reshape(-1, DIM), axis=0), np.sort(expected, axis=0)
    )


@pytest.mark.server
def test_compaction_keeps_list_columns(tmp_path):
    day = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=1)
    stamp = (day + pd.Timedelta(hours=12)).isoformat()
    frames = list(_calls(30, 4, seed=3))
    writer = PredictionLogWriter(str(tmp_path), flush_seconds=3600)
    for i, frame in enumerate(frames):
        writer.submit(
            frame, np.zeros(len(frame)), latency_seconds=0.0, request_id=f"c{i}", event_time=stamp
        )
        writer.flush()
    writer.close()
    before = _by_id(read_logs(str(tmp_path)))
    assert len(log_files(str(tmp_path))) == 30
    result = compact_logs(str(tmp_path), grace_seconds=0)
    assert (result.files_merged, result.files_written) == (30, 1)
    assert _parquet_types(tmp_path)["embedding"] == {pa.list_(pa.float32())}
    after = _by_id(read_logs(str(tmp_path))).loc[before.index]
    assert (after["review"] == before["review"]).all()
    np.testing.assert_array_equal(np.stack(after["embedding"]), np.stack(before["embedding"]))


_KILLED_WRITER = """
import sys, time
import numpy as np, pandas as pd
from mlflow_observe.logs.writer import PredictionLogWriter
writer = PredictionLogWriter(sys.argv[1], flush_seconds=3600, spool_seconds=0.05)
i = 0
while True:
    vector = np.full(16, float(i))
    writer.submit(pd.DataFrame({"text": [f"text {i} \u00e9"], "e": [vector]}), [0],
                  latency_seconds=0.0, request_id=f"call{i}")
    print(i, time.monotonic(), flush=True)
    i += 1
    time.sleep(0.001)
"""


@pytest.mark.server
def test_spool_recovery_after_sigkill_keeps_texts_and_vectors(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    answered = []
    for line in child.stdout:
        i, at = line.split()
        answered.append((int(i), float(at)))
        if answered[-1][1] - answered[0][1] > 1.0:
            break
    child.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    child.wait(timeout=30)
    assert not glob.glob(f"{tmp_path}/date=*/*.parquet")  # nothing rolled: all in the spool
    logs = read_logs(str(tmp_path))  # recovers the dead writer's spool
    assert logs["request_id"].is_unique
    old = {f"call{i}" for i, at in answered if at < killed - 0.5}
    assert len(old) > 50 and old <= set(logs["request_id"])
    assert _parquet_types(tmp_path)["e"] == {pa.list_(pa.float32())}
    for rid, text, vector in logs[["request_id", "text", "e"]].itertuples(index=False):
        i = int(rid.removeprefix("call"))
        assert text == f"text {i} \u00e9"
        assert vector.tolist() == [float(np.float32(i))] * 16
