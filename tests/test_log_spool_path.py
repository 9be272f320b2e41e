"""The writer thread's spool path: what a call becomes in the spool, whatever its memory layout,
and what the caller does with its arrays after predict returns."""

import gc
import os
import weakref

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pyarrow import ipc

from mlflow_observe.logs.reader import read_logs
from mlflow_observe.logs.spool import Segment
from mlflow_observe.logs.writer import PredictionLogWriter


def _quiet_writer(root, **kwargs):
    """A writer that spools only when closed: whatever the caller does meanwhile, it sees."""
    return PredictionLogWriter(str(root), spool_seconds=60.0, flush_rows=10**9, **kwargs)


def test_changing_the_predictions_after_predict_does_not_change_the_log(tmp_path):
    rng = np.random.default_rng(0)
    numbers = rng.normal(size=(500, 3))
    scores = numbers.sum(axis=1)
    labels = list((numbers[:, 0] > 0).astype(int))
    writer = _quiet_writer(tmp_path)
    writer.submit(pd.DataFrame(numbers, columns=["a", "b", "c"]), scores, latency_seconds=0.0)
    writer.submit(pd.DataFrame(numbers, columns=["a", "b", "c"]), labels, latency_seconds=0.0)
    # What a caller does with the predictions it got back, before the writer spools them.
    scores[:] = np.nan
    np.clip(scores, 0, 1, out=scores)
    labels[0] = 7
    writer.close()
    logged = read_logs(str(tmp_path))
    np.testing.assert_array_equal(logged["prediction"].to_numpy()[:500], numbers.sum(axis=1))
    assert logged["prediction"].tolist()[500:] == (numbers[:, 0] > 0).astype(int).tolist()
    np.testing.assert_array_equal(logged[["a", "b", "c"]].to_numpy()[:500], numbers)


LAYOUTS = {
    # A frame from a 2-D array: pandas holds it column by column (taken without a copy).
    "frame from 2-D": lambda v: pd.DataFrame(v, columns=["a", "b", "c"]),
    # A frame from columns: one block or several, as pandas chose.
    "frame from columns": lambda v: pd.DataFrame({"a": v[:, 0], "b": v[:, 1], "c": v[:, 2]}),
    # A frame over memory laid out row by row (each column strided).
    "frame over rows": lambda v: pd.DataFrame(np.ascontiguousarray(v), copy=False),
    "C-ordered array": np.ascontiguousarray,
    "Fortran-ordered array": np.asfortranarray,
    "every other row of an array": lambda v: np.repeat(v, 2, axis=0)[::2],
    "big-endian array": lambda v: v.astype(v.dtype.newbyteorder(">")),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int32, np.uint8])
def test_the_log_holds_the_values_and_dtype_whatever_the_memory_layout(tmp_path, layout, dtype):
    rng = np.random.default_rng(1)
    values = (rng.normal(size=(1000, 3)) * 50).astype(dtype)
    if values.dtype.kind == "f":  # the numbers that break careless conversions
        values[:4, 0] = [np.nan, np.inf, -np.inf, -0.0]
    inputs = LAYOUTS[layout](values)
    writer = PredictionLogWriter(str(tmp_path))
    writer.submit(inputs, values[:, 0] * 2, latency_seconds=0.0)  # a large call, alone
    for i in range(10):  # small calls, converted together
        writer.submit(LAYOUTS[layout](values[i : i + 1]), values[i : i + 1, 0], latency_seconds=0.0)
    writer.close()
    assert writer.stats()["rows_written"] == 1010
    logged = read_logs(str(tmp_path))
    if layout == "frame over rows":
        names = ["0", "1", "2"]
    elif layout.startswith("frame"):
        names = ["a", "b", "c"]
    else:
        names = ["input_0", "input_1", "input_2"]
    expected = np.concatenate([values, values[:10]])
    got = logged[names].to_numpy()
    assert got.dtype == np.dtype(dtype)  # native byte order, the caller's type
    np.testing.assert_array_equal(got, expected)
    if values.dtype.kind == "f":
        assert np.signbit(got[3, 0])  # -0.0 stays -0.0
    np.testing.assert_array_equal(
        logged["prediction"].to_numpy(), np.concatenate([values[:, 0] * 2, values[:10, 0]])
    )


def test_a_queued_call_keeps_none_of_the_callers_frame(tmp_path):
    """A served call's frame, kept in the queue until the writer thread takes it, would bring
    its tracked objects to the garbage collector's oldest generation: the queue keeps a
    numeric frame's values and columns, and the frame itself is freed at once."""
    writer = _quiet_writer(tmp_path)
    frames = [pd.DataFrame([[float(i), 2.0 * i]], columns=["a", "b"]) for i in range(3)]
    frames.append(pd.DataFrame({"a": [3.0], "b": [True]}))  # two dtypes: kept as it is
    kept = [weakref.ref(frame) for frame in frames]
    for frame in frames:
        writer.submit(frame, np.array([0.0]), latency_seconds=0.0)
    del frame, frames
    gc.collect()
    assert [ref() is None for ref in kept] == [True, True, True, False]
    writer.close()
    logged = read_logs(str(tmp_path))
    assert logged["a"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert logged["b"].tolist() == [0.0, 2.0, 4.0, 1.0]


@pytest.mark.parametrize("dtype", [bool, np.float64, np.float32, np.int64, np.uint8])
@pytest.mark.parametrize("labels", [["a", "b"], [0, 1]])
def test_small_calls_of_one_dtype_keep_their_type_and_labels(tmp_path, dtype, labels):
    """Calls of up to 64 rows are queued as their values: alone (one call in a spool
    cycle) or together, they are logged as a frame would be."""
    rng = np.random.default_rng(2)
    values = (rng.normal(size=(7, 2)) * 50).astype(dtype)
    for together in (False, True):
        root = tmp_path / str(together)
        writer = _quiet_writer(root) if together else PredictionLogWriter(str(root))
        for start, stop in ((0, 1), (1, 4), (4, 7)):
            frame = pd.DataFrame(values[start:stop], columns=labels)
            writer.submit(frame, values[start:stop, 0], latency_seconds=0.0)
            if not together:
                writer.flush()
        writer.close()
        logged = read_logs(str(root))
        names = [str(label) for label in labels]
        assert logged[names].dtypes.tolist() == [np.dtype(dtype)] * 2, together
        np.testing.assert_array_equal(logged[names].to_numpy(), values)


def test_mixed_dtypes_keep_each_columns_type(tmp_path):
    inputs = pd.DataFrame(
        {
            "n": np.arange(100, dtype=np.int64),
            "x": np.linspace(0, 1, 100),
            "flag": np.arange(100) % 2 == 0,
            "plan": ["a", "b"] * 50,
        }
    )
    writer = PredictionLogWriter(str(tmp_path))
    writer.submit(inputs, np.arange(100) % 3, latency_seconds=0.0)
    writer.close()
    logged = read_logs(str(tmp_path))
    assert logged["n"].dtype == np.int64 and logged["n"].tolist() == list(range(100))
    assert logged["x"].dtype == np.float64 and logged["flag"].dtype == bool
    assert logged["flag"].tolist() == (np.arange(100) % 2 == 0).tolist()
    assert logged["plan"].tolist() == ["a", "b"] * 50
    assert logged["prediction"].tolist() == (np.arange(100) % 3).tolist()


def test_empty_and_one_row_calls_never_cost_the_calls_beside_them(tmp_path):
    writer = PredictionLogWriter(str(tmp_path))
    writer.submit(pd.DataFrame({"x": np.array([], float)}), np.array([]), latency_seconds=0.0)
    writer.submit(pd.DataFrame({"x": [1.0]}), np.array([1]), latency_seconds=0.0)
    writer.submit(pd.DataFrame({"x": np.array([], float)}), np.array([]), latency_seconds=0.0)
    writer.submit(pd.DataFrame({"x": [2.0, 3.0]}), np.array([2, 3]), latency_seconds=0.0)
    writer.submit(pd.DataFrame({"x": np.arange(100.0)}), np.zeros(100), latency_seconds=0.0)
    writer.close()
    stats = writer.stats()
    assert stats["rows_written"] == 103 and stats["rows_dropped_write_failed"] == 0
    logged = read_logs(str(tmp_path))
    assert logged["x"].tolist()[:3] == [1.0, 2.0, 3.0]
    assert logged["batch_id"].nunique() == 3  # one per call that had rows


def test_columns_renamed_between_calls_are_logged_under_their_new_names(tmp_path):
    # The writer remembers the last columns' names: a change, even to the same text in
    # another type, must be seen.
    writer = PredictionLogWriter(str(tmp_path))
    writer.submit(
        pd.DataFrame(np.ones((100, 2)), columns=["a", "b"]), np.zeros(100), latency_seconds=0.0
    )
    writer.submit(
        pd.DataFrame(np.ones((100, 2)), columns=["a", "c"]), np.zeros(100), latency_seconds=0.0
    )
    writer.submit(
        pd.DataFrame(np.ones((100, 2)), columns=[1, 2]), np.zeros(100), latency_seconds=0.0
    )
    writer.submit(
        pd.DataFrame(np.ones((100, 2)), columns=[1.0, 2.0]), np.zeros(100), latency_seconds=0.0
    )
    writer.close()
    logged = read_logs(str(tmp_path))
    for names in (["a", "b"], ["a", "c"], ["1", "2"], ["1.0", "2.0"]):
        assert logged[names].notna().all(axis=1).sum() == 100, names


@pytest.mark.parametrize("rows", [1, 100])
def test_equal_labels_of_other_types_taken_together_keep_their_names(tmp_path, rows):
    # 1 == 1.0 and "a" != 1: calls converted together (small ones into one block, large
    # ones a chunk a call) share their names only when the labels' types match too.
    writer = PredictionLogWriter(str(tmp_path), flush_rows=10**9, spool_seconds=3600)
    for columns in ([1, 2], [1.0, 2.0], ["a", 1], ["a", 1.0], [1, 2]):
        frame = pd.DataFrame(np.ones((rows, 2)), columns=pd.Index(columns, dtype=object))
        writer.submit(frame, np.zeros(rows), latency_seconds=0.0)
    writer.close()
    logged = read_logs(str(tmp_path))
    assert len(logged) == 5 * rows
    for names, calls in ((["1", "2"], 2), (["1.0", "2.0"], 1), (["a", "1"], 1), (["a", "1.0"], 1)):
        assert logged[names].notna().all(axis=1).sum() == calls * rows, names


def test_an_appended_batch_is_in_the_file_before_append_returns(tmp_path):
    """The spool's durability point: another reader of the file sees every appended row."""
    table = pa.table({"x": np.arange(50_000.0), "y": np.arange(50_000)})
    segment = Segment(str(tmp_path), "a" * 32, 1, table.schema)
    for i in range(3):
        segment.append(table.slice(i * 10_000, 10_000))
        with pa.memory_map(segment.path) as source:  # another handle: what the OS holds
            reader = ipc.open_stream(source)
            batches = []
            while True:
                try:
                    batches.append(reader.read_next_batch())
                except StopIteration:
                    break
        seen = pa.Table.from_batches(batches, schema=table.schema)
        assert seen.equals(table.slice(0, (i + 1) * 10_000))
    segment.close()
    os.close(segment.lock_fd)
    with pa.memory_map(segment.path) as source:
        assert ipc.open_stream(source).read_all().equals(table.slice(0, 30_000))
