"""The write-ahead spool: local append-only Arrow IPC files, rolled into the log's Parquet files.

A writer appends every micro-batch it takes off its queue to its current
*segment*, ``<spool>/<token>-<sequence>.arrows`` (an Arrow IPC stream; a batch
is gathered in a buffer and handed to the operating system in a few
``write(2)`` calls before the append returns, so that it survives the process
being killed). The segment is
locked (``flock``) by its writer for as long as it exists. Rolling a segment
writes its rows as ``date=<day>/part-<token>-<sequence>.parquet`` (under a
hidden name, renamed when complete), then deletes the segment, then releases
the lock.

A segment whose lock can be taken belongs to a dead process: :func:`recover_spools`
rolls it the same way. A new segment is created under a hidden name and locked before it
is renamed; between its creation and its lock it is unlocked, so recovery removes a hidden
segment only when it is older than ``ABANDONED_AFTER_SECONDS`` (its writer died there). The Parquet names depend only on the segment, so a
segment rolled twice (its writer died between the rename and the delete)
rewrites the same file with the same rows: no row is ever read twice, and a
torn last batch (the process died during the append) is left out, having never
been acknowledged.

The spool holds the rows as the caller gave them; what costs CPU (a second
model pass for class probabilities, Parquet encoding) is done when a segment is
rolled, by the ``enrich`` callable given to :func:`roll_segment` and
:func:`recover_spools`. A roll can be cut short (``cancel``): the segment then
stays in the spool, whole, for a later roll.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import os
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs as pafs
from pyarrow import ipc

from mlflow_observe.logs.schema import DATE_PARTITION, REQUEST_ID, TIMESTAMP

_logger = logging.getLogger(__name__)

SPOOL_SUFFIX = ".arrows"
SPOOL_DIR_ENV = "MLFLOW_OBSERVE_SPOOL_DIR"
LOCAL_SPOOL = "_spool"  # under a local log directory; readers only list date=... folders


def log_filesystem(root: str):
    """``(pyarrow filesystem, base path)`` of a log location (a directory or a URI)."""
    root = os.fspath(root)
    if "://" in root:  # file://, s3://, gs://, hdfs://... as pyarrow.fs knows them
        return pafs.FileSystem.from_uri(root)
    return pafs.LocalFileSystem(), os.path.abspath(root).replace(os.sep, "/")


def default_spool_dir(root: str) -> str:
    """Where a writer of ``root`` spools: ``MLFLOW_OBSERVE_SPOOL_DIR``, or a local folder.

    ``<root>/_spool`` for a local log; for an object store, a folder of the
    system's temporary directory named after the location, so that the next
    process on the same machine (and volume) recovers what a dead one left.

    >>> default_spool_dir("/var/log/churn")
    '/var/log/churn/_spool'
    """
    root = os.fspath(root)
    if os.environ.get(SPOOL_DIR_ENV):
        return os.environ[SPOOL_DIR_ENV]
    if "://" not in root or root.startswith("file://"):
        _, base = log_filesystem(root)
        return f"{base}/{LOCAL_SPOOL}"
    digest = hashlib.sha256(root.encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), "mlflow-observe-spool", digest)


def part_name(token: str, sequence: int) -> str:
    """The Parquet file name of a segment's rows (the same in every day partition)."""
    return f"part-{token}-{sequence:08d}.parquet"


# A batch's buffers (two per column, and padding) are gathered and written in calls of about
# this size: one write(2) per buffer costs the writer thread about 1.6x the CPU.
APPEND_BUFFER_BYTES = 1 << 20


class Segment:
    """One spool file being appended to, locked by its writer until it is rolled."""

    def __init__(self, directory: str, token: str, sequence: int, schema: pa.Schema):
        os.makedirs(directory, exist_ok=True)
        self.token, self.sequence = token, sequence
        self.path = os.path.join(directory, f"{token}-{sequence:08d}{SPOOL_SUFFIX}")
        hidden = os.path.join(directory, f".{token}-{sequence:08d}.new")
        # Locked under a hidden name first, so that a recovering process never takes the
        # segment for a dead writer's; the hidden file is unlocked between its creation
        # and the flock, which is why recovery leaves young hidden files alone.
        self.lock_fd = os.open(hidden, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(hidden, self.path)
        except OSError as exc:
            os.close(self.lock_fd)
            raise OSError(
                exc.errno, f"Could not lock and rename the new spool segment {hidden}: {exc}"
            ) from exc
        self._file = pa.OSFile(self.path, "wb")
        self._sink = pa.BufferedOutputStream(self._file, APPEND_BUFFER_BYTES)
        self._stream = ipc.new_stream(self._sink, schema)
        self._sink.flush()
        self.schema = schema
        self.rows = 0
        self.bytes = 0
        self.opened = time.monotonic()

    def append(self, table: pa.Table) -> None:
        """Append rows; they are in the operating system when this returns."""
        self._stream.write_table(table)
        self._sink.flush()  # releases the GIL, as write_table does
        self.rows += table.num_rows
        self.bytes += table.nbytes

    def close(self) -> None:
        """Stop appending (the lock is kept until the segment is rolled)."""
        try:
            self._stream.close()
        finally:
            try:
                self._sink.close()
            finally:
                self._file.close()


class RollCancelled(Exception):
    """A roll cut short by its ``cancel`` callable: the segment stays in the spool, whole."""


def roll_segment(
    path: str,
    lock_fd: int,
    root: str,
    token: str,
    sequence: int,
    *,
    enrich=None,
    cancel=None,
) -> int:
    """Write a closed or orphaned segment's rows to the log, delete it, release its lock.

    ``enrich(table, metadata)``, when given, returns the rows to write (with
    columns added, e.g. class probabilities), ``metadata`` being the segment's
    schema metadata. ``cancel()``, when given, is asked between batches whether
    to stop: then :class:`RollCancelled` is raised, nothing is written and the
    segment is kept.

    Returns the number of rows written. Raises (keeping the segment, unlocked)
    when the log cannot be written; the segment is then recovered later.
    """
    try:
        rows = _write_parquet(path, root, part_name(token, sequence), enrich, cancel)
        os.unlink(path)
        return rows
    finally:
        os.close(lock_fd)


def _read_complete_batches(path: str):
    """The segment's schema metadata, then its complete record batches (a torn last one left out)."""
    with pa.memory_map(path) as source:
        try:
            reader = ipc.open_stream(source)
        except (pa.ArrowInvalid, OSError):
            return  # empty, or the schema itself was torn: nothing was appended
        yield reader.schema.metadata or {}
        while True:
            try:
                yield reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowInvalid, OSError):
                _logger.warning("Spool %s ends with a torn batch (left out).", path)
                return


ROW_GROUP_ROWS = 512 * 1024
# Strings that repeat within a file; other strings (request ids) are not dictionary-encoded.
_DICTIONARY_COLUMNS = ("batch_id", "model_name", "model_version", "model_uri")


def _write_parquet(path: str, root: str, name: str, enrich=None, cancel=None) -> int:
    filesystem, base = log_filesystem(root)
    # date -> [ParquetWriter or None, stream, temporary, final, pending batches, rows]
    files: dict = {}
    rows = 0
    metadata: dict = {}

    def write_pending(entry):
        if not entry[4]:
            return
        table = pa.Table.from_batches(entry[4])
        entry[4], entry[5] = [], 0
        if enrich is not None:
            table = enrich(table, metadata)
        if entry[0] is None:  # the first rows of the file (enriched) set its schema
            dictionary = [c for c in _DICTIONARY_COLUMNS if c in table.schema.names]
            entry[0] = pq.ParquetWriter(
                entry[1], table.schema.remove_metadata(), use_dictionary=dictionary or False
            )
        entry[0].write_table(conform(table, entry[0].schema), row_group_size=ROW_GROUP_ROWS)

    try:
        batches = _read_complete_batches(path)
        metadata = next(batches, None) or {}
        for batch in batches:
            if cancel is not None and cancel():
                raise RollCancelled(path)
            batch = decode_runs(batch)
            rows += batch.num_rows
            for date, part in _split_by_date(batch):
                if date not in files:
                    folder = f"{base}/{DATE_PARTITION}={date}"
                    filesystem.create_dir(folder, recursive=True)
                    temporary = f"{folder}/.{name}.{os.getpid()}.tmp"
                    stream = filesystem.open_output_stream(temporary)
                    files[date] = [None, stream, temporary, f"{folder}/{name}", [], 0]
                entry = files[date]
                entry[4].append(part)
                entry[5] += part.num_rows
                if entry[5] >= ROW_GROUP_ROWS:
                    write_pending(entry)
        for entry in files.values():
            write_pending(entry)
            if cancel is not None and cancel():
                raise RollCancelled(path)
        for entry in files.values():
            entry[0].close()
            entry[1].close()
            filesystem.move(entry[2], entry[3])
        files.clear()
    finally:
        for writer, stream, temporary, *_ in files.values():  # failed half-way
            try:
                if writer is not None:
                    writer.close()
                stream.close()
                filesystem.delete_file(temporary)
            except Exception:
                pass
    return rows


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly the columns of ``schema``, in its order (nulls where absent).

    >>> t = pa.table({"b": [1.0], "c": [2.0]})
    >>> conform(t, pa.schema([("a", pa.float64()), ("b", pa.float64())])).to_pydict()
    {'a': [None], 'b': [1.0]}
    """
    if table.schema.remove_metadata().equals(schema):
        return table
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.schema.names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def decode_runs(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with its run-end encoded columns (per-call values in the spool) expanded.

    A call's ``request_id`` names its only row, or is numbered ``<id>-<row>``
    for the rows of a larger call.

    >>> runs = pa.RunEndEncodedArray.from_arrays([2, 3], pa.array(["a", "b"]))
    >>> decoded = decode_runs(pa.record_batch({"batch_id": runs, "request_id": runs}))
    >>> decoded.column(0).to_pylist(), decoded.column(1).to_pylist()
    (['a', 'a', 'b'], ['a-0', 'a-1', 'b'])
    """
    if not any(pa.types.is_run_end_encoded(field.type) for field in batch.schema):
        return batch
    columns = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if not pa.types.is_run_end_encoded(column.type):
            columns.append(column)
        elif name == REQUEST_ID and len(column.run_ends) < len(column):
            sizes = np.diff(column.run_ends.to_numpy(), prepend=0)
            columns.append(request_ids(column.values.to_pylist(), sizes))
        else:
            columns.append(pc.run_end_decode(column))
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def request_ids(prefixes, sizes) -> pa.Array:
    """``prefix`` for a one-row call, ``prefix-0``, ``prefix-1``... for the rows of a larger one."""
    if (sizes == 1).all():
        return pa.array(prefixes, pa.string())
    return pa.concat_arrays(
        [
            pa.array([prefix], pa.string()) if size == 1 else _numbered(prefix, int(size))
            for prefix, size in zip(prefixes, sizes, strict=False)
        ]
    )


def _numbered(prefix: str, n: int) -> pa.Array:
    """``[f"{prefix}-{i}" for i in range(n)]`` built in numpy (no Python string per row)."""
    head = np.frombuffer(f"{prefix}-".encode(), dtype=np.uint8)
    digit_blocks = _digits(n)
    lengths = np.concatenate([np.full(len(b), len(head) + b.shape[1]) for b in digit_blocks])
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    data = np.empty(int(offsets[-1]), dtype=np.uint8)
    start = 0
    for digits in digit_blocks:
        rows, width = digits.shape
        block = data[offsets[start] : offsets[start + rows]].reshape(rows, len(head) + width)
        block[:, : len(head)] = head
        block[:, len(head) :] = digits
        start += rows
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


@functools.lru_cache(maxsize=32)
def _digits(n: int) -> tuple:
    """The ASCII digits of ``0 .. n-1``, one 2-D block per number of digits (calls repeat sizes)."""
    blocks = []
    for d in range(1, len(str(n - 1)) + 1):
        low, high = (0 if d == 1 else 10 ** (d - 1)), min(n, 10**d)
        rows = np.arange(low, high)
        block = np.empty((high - low, d), dtype=np.uint8)
        for k in range(d):
            block[:, k] = rows // 10 ** (d - 1 - k) % 10 + 48
        block.flags.writeable = False
        blocks.append(block)
    return tuple(blocks)


def _split_by_date(batch: pa.RecordBatch):
    """``(YYYY-MM-DD, rows)`` for each UTC day of the batch's timestamps."""
    stamps = batch.column(TIMESTAMP)
    days = stamps.cast(pa.timestamp(stamps.type.unit)).cast(pa.date32())
    bounds = pc.min_max(days)
    if bounds["min"] == bounds["max"]:
        yield bounds["min"].as_py().isoformat(), batch
        return
    for day in pc.unique(days).to_pylist():
        yield day.isoformat(), batch.filter(pc.equal(days, pa.scalar(day, pa.date32())))


def recover_spools(root: str, spool_dir: str | None = None, *, enrich=None, cancel=None) -> int:
    """Roll the spool segments that dead writers left; returns the rows recovered.

    A segment locked by a live writer is left alone; a segment that another
    process is recovering at the same time is rolled by one of them only.
    ``enrich`` and ``cancel`` are passed on to :func:`roll_segment`: a reader
    recovers without ``enrich``, so rows spooled by a writer that computed
    class probabilities at the roll are written without them (see
    :class:`~mlflow_observe.logs.writer.PredictionLogWriter`).

    Examples
    --------
    >>> import tempfile
    >>> recover_spools(tempfile.mkdtemp())
    0
    """
    spool_dir = spool_dir or default_spool_dir(root)
    try:
        names = sorted(os.listdir(spool_dir))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    recovered = 0
    for name in names:
        path = os.path.join(spool_dir, name)
        if name.startswith("."):
            _remove_abandoned(path)
            continue
        if not name.endswith(SPOOL_SUFFIX):
            continue
        token, _, sequence = name[: -len(SPOOL_SUFFIX)].rpartition("-")
        fd = _claim(path)
        if fd is None:
            continue
        try:
            rows = roll_segment(path, fd, root, token, int(sequence), enrich=enrich, cancel=cancel)
        except RollCancelled:
            return recovered
        except Exception as exc:
            _logger.warning("Could not recover the spool %s (kept for later): %r", path, exc)
            continue
        recovered += rows
        if rows:
            _logger.info("Recovered %d prediction log rows from %s.", rows, path)
    return recovered


def _claim(path: str):
    """An open, locked descriptor of ``path`` if no live process holds it, else None."""
    try:
        fd = os.open(path, os.O_RDWR)
    except (FileNotFoundError, PermissionError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(path).st_ino != os.fstat(fd).st_ino:
            raise FileNotFoundError(path)  # rolled and replaced meanwhile
        return fd
    except (BlockingIOError, FileNotFoundError, PermissionError):
        os.close(fd)
        return None


# A writer holds a new segment's hidden name for microseconds; one older than this was
# left by a writer that died between the creation and the rename.
ABANDONED_AFTER_SECONDS = 60.0


def _remove_abandoned(path: str) -> None:
    """A hidden segment left between its creation and its rename: empty, so removed.

    A young one is left alone: its writer may not have locked it yet.
    """
    try:
        if time.time() - os.stat(path).st_mtime < ABANDONED_AFTER_SECONDS:
            return
    except FileNotFoundError:
        return
    fd = _claim(path)
    if fd is not None:
        try:
            if os.fstat(fd).st_size == 0:
                os.unlink(path)
        finally:
            os.close(fd)
