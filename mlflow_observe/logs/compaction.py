"""Compaction and retention of the prediction log: few large files per day, old days removed.

The log stays plain Parquet in hive-style day partitions (``date=YYYY-MM-DD``)
with one schema, so Spark, DuckDB, Polars and ``pyarrow.dataset`` read it
as it is; no table format or transaction log is needed for the two operations
the log needs:

- **Compaction** merges a day's files into one ``compact-<token>.parquet``
  whose footer lists the files it replaces (``mlflow_observe.replaces``,
  every file it took the rows of, directly or through an earlier compaction).
  It is written under a hidden name and renamed when complete; then its
  sources are moved to ``date=.../_replaced/``, which Spark, DuckDB, Polars
  and ``pyarrow.dataset`` skip (a leading underscore). Readers of this
  package also skip every file a merged file lists, so from the rename on
  they read the merged file and never its sources: no row is seen twice. A
  reader that listed a source just before it was moved opens it under
  ``_replaced/``, where it stays for ``grace_seconds`` (10 minutes): no row is
  missed by a read that opens its files within the grace period. A later
  compaction (or expiry) removes them. (Other engines listing the folder in
  the moment between the rename and the moves can see a source twice; on an
  object store, where a move is a copy, that moment is longer.)
- **Expiry** removes whole day partitions older than a cutoff.

Both run while writers write: a writer only adds ``part-*`` files, which a
compaction either lists (and merges) or leaves for the next one.

Both cover the log's attribution stream too (``<log>/attributions/``, see
:mod:`mlflow_observe.logs.attributions`): its day partitions are compacted
the same way, one stream after the other, and expire with the log's days.
The ``attributions`` folder is not a ``date=`` partition, so neither stream
is ever taken for the other. The attribution stream has no spool (its files
are written whole), so nothing is recovered into it.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from mlflow_observe.logs.attributions import attributions_uri
from mlflow_observe.logs.schema import DATE_PARTITION
from mlflow_observe.logs.spool import log_filesystem, recover_spools

_logger = logging.getLogger(__name__)

REPLACES_KEY = b"mlflow_observe.replaces"
REPLACED_DIR = "_replaced"
COMPACT_PREFIX = "compact-"
GRACE_SECONDS = 600.0
TARGET_ROWS = 8_000_000  # rows per merged file at most
ABANDONED_SECONDS = 3600.0  # a hidden temporary file this old was left by a dead process


@dataclass(frozen=True)
class CompactionResult:
    """What one compaction did: the prediction log's counts, and its attribution stream's.

    Attributes
    ----------
    days : int
        Day partitions looked at.
    files_merged : int
        Files whose rows went into new merged files.
    files_written : int
        Merged files written.
    rows : int
        Rows in the new merged files.
    files_removed : int
        Replaced files (past their grace period) and abandoned temporary files removed.
    rows_recovered : int
        Rows recovered from dead writers' spools first.
    attributions : CompactionResult or None
        The same counts for the attribution stream (``<log>/attributions/``),
        None when the log has none.
    """

    days: int
    files_merged: int
    files_written: int
    rows: int
    files_removed: int
    rows_recovered: int
    attributions: CompactionResult | None = None

    def counts(self) -> dict:
        """This stream's counts, by name (the attribution stream's apart)."""
        return {k: v for k, v in self.__dict__.items() if k != "attributions"}

    def metrics(self) -> dict:
        """The counts as floats; the attribution stream's prefixed ``attributions/``."""
        metrics = {k: float(v) for k, v in self.counts().items()}
        if self.attributions is not None:
            metrics.update({f"attributions/{k}": v for k, v in self.attributions.metrics().items()})
        return metrics

    def to_records(self) -> list[dict]:
        """One row per stream: ``stream`` is ``"log"`` or ``"attributions"``."""
        records = [{"stream": "log", **self.counts()}]
        if self.attributions is not None:
            records.append({"stream": "attributions", **self.attributions.counts()})
        return records


@dataclass(frozen=True)
class ExpiryResult:
    """What one expiry removed: the day partitions of the log and of its attribution stream.

    Attributes
    ----------
    days : tuple of str
        The log's days removed (``YYYY-MM-DD``), in order.
    attribution_days : tuple of str
        The attribution stream's days removed.
    """

    days: tuple[str, ...]
    attribution_days: tuple[str, ...] = ()

    def metrics(self) -> dict:
        return {
            "days": float(len(self.days)),
            "attribution_days": float(len(self.attribution_days)),
        }

    def to_records(self) -> list[dict]:
        """One row per day removed, with its ``stream`` (``"log"`` or ``"attributions"``)."""
        return [{"stream": "log", "day": d} for d in self.days] + [
            {"stream": "attributions", "day": d} for d in self.attribution_days
        ]


def replaced_files(filesystem, folder: str, names) -> set[str]:
    """The names that the merged files among ``names`` in ``folder`` replace."""
    replaced: set[str] = set()
    for name in names:
        if name.startswith(COMPACT_PREFIX):
            replaced |= _replaces(filesystem, f"{folder}/{name}")
    return replaced


def _replaces(filesystem, path: str) -> set[str]:
    try:
        metadata = pq.ParquetFile(filesystem.open_input_file(path)).schema_arrow.metadata or {}
    except (OSError, pa.ArrowInvalid):
        return set()
    raw = metadata.get(REPLACES_KEY)
    return set(json.loads(raw)) if raw else set()


def compact_logs(
    uri: str,
    *,
    day=None,
    finished_only: bool = True,
    grace_seconds: float = GRACE_SECONDS,
    target_rows: int = TARGET_ROWS,
) -> CompactionResult:
    """Merge each day's files of the prediction log (and of its attributions) into a few large ones.

    The attribution stream beside the log (``<log>/attributions/``) is
    compacted after the log, day by day, with the same guarantees.

    Parameters
    ----------
    uri : str
        The log directory or URI.
    day : str or date, optional
        Only this day (``YYYY-MM-DD``).
    finished_only : bool, default=True
        Leave today's partition (UTC), where writers still add files, alone.
    grace_seconds : float, default=600
        How long replaced files stay for readers that listed them before the merge.
    target_rows : int, default=8_000_000
        Rows per merged file at most.

    Returns
    -------
    CompactionResult
        The log's counts; ``attributions`` holds the attribution stream's.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from mlflow_observe.logs.writer import PredictionLogWriter
    >>> from mlflow_observe.logs.reader import log_files, read_logs
    >>> root = tempfile.mkdtemp()
    >>> for i in range(3):
    ...     writer = PredictionLogWriter(root)
    ...     writer.submit(pd.DataFrame({"x": [float(i)]}), [0], latency_seconds=0.0)
    ...     writer.close()
    >>> result = compact_logs(root, finished_only=False)
    >>> (result.files_merged, result.files_written, len(read_logs(root)), result.attributions)
    (3, 1, 3, None)
    >>> compact_logs(root, finished_only=False, grace_seconds=0).files_removed  # past grace
    3
    >>> [f.rsplit("/", 1)[1].split("-")[0] for f in log_files(root)]
    ['compact']
    """
    uri = os.fspath(uri)
    recovered = recover_spools(uri)
    wanted = date.fromisoformat(str(day)[:10]) if day is not None else None
    options = dict(
        wanted=wanted,
        finished_only=finished_only,
        grace_seconds=grace_seconds,
        target_rows=target_rows,
    )
    counts = _compact_stream(uri, **options)
    attributions = None
    filesystem, base = log_filesystem(attributions_uri(uri))
    if filesystem.get_file_info(base).type != pafs.FileType.NotFound:
        # Written whole, without a spool: nothing to recover into this stream.
        attributions = CompactionResult(
            **_compact_stream(attributions_uri(uri), **options), rows_recovered=0
        )
    return CompactionResult(**counts, rows_recovered=recovered, attributions=attributions)


def _compact_stream(uri: str, *, wanted, finished_only, grace_seconds, target_rows) -> dict:
    """Compact the day partitions of one stream (the log, or its attributions); its counts."""
    filesystem, base = log_filesystem(uri)
    today = datetime.now(timezone.utc).date()
    totals = dict(days=0, files_merged=0, files_written=0, rows=0, files_removed=0)
    for folder, partition_day in _partitions(filesystem, base):
        if wanted is not None and partition_day != wanted:
            continue
        if finished_only and wanted is None and partition_day >= today:
            continue
        totals["days"] += 1
        merged, written, rows, removed = _compact_partition(
            filesystem, folder, grace_seconds, target_rows
        )
        totals["files_merged"] += merged
        totals["files_written"] += written
        totals["rows"] += rows
        totals["files_removed"] += removed
    return totals


def _partitions(filesystem, base):
    if filesystem.get_file_info(base).type == pafs.FileType.NotFound:
        return
    for entry in filesystem.get_file_info(pafs.FileSelector(base)):
        if entry.type != pafs.FileType.Directory or not entry.base_name.startswith(
            f"{DATE_PARTITION}="
        ):
            continue
        try:
            yield entry.path, date.fromisoformat(entry.base_name.split("=", 1)[1])
        except ValueError:
            continue


def _compact_partition(filesystem, folder: str, grace_seconds: float, target_rows: int):
    entries = _files(filesystem, folder)
    moved = _files(filesystem, f"{folder}/{REPLACED_DIR}")
    now = time.time()
    removed = 0
    for name, entry in entries.items():  # temporary files of dead processes
        if name.startswith(".") and name.endswith(".tmp") and _age(entry, now) > ABANDONED_SECONDS:
            removed += _delete(filesystem, entry.path)
    names = [n for n in entries if n.endswith(".parquet") and not n.startswith((".", "_"))]
    covered: dict[str, float] = {}  # replaced name -> age of the newest file replacing it
    for name in names:
        if name.startswith(COMPACT_PREFIX):
            for source in _replaces(filesystem, f"{folder}/{name}"):
                covered[source] = min(covered.get(source, float("inf")), _age(entries[name], now))
    for name in names:  # merged by a compaction that stopped before moving them
        if name in covered:
            _move_aside(filesystem, folder, name)
    for name, entry in moved.items():
        if covered.get(name, _age(entry, now)) >= grace_seconds:
            removed += _delete(filesystem, entry.path)
    live = sorted(n for n in names if n not in covered)
    if len(live) < 2:
        return 0, 0, 0, removed
    schema = _common_schema(filesystem, folder, live)
    if schema is None:
        return 0, 0, 0, removed
    merged = written = rows = 0
    for group in _by_rows(filesystem, folder, live, target_rows):
        if len(group) < 2:
            continue
        rows += _merge(filesystem, folder, group, schema)
        for name in group:
            _move_aside(filesystem, folder, name)
        merged += len(group)
        written += 1
    if grace_seconds <= 0:
        for name in _files(filesystem, f"{folder}/{REPLACED_DIR}"):
            removed += _delete(filesystem, f"{folder}/{REPLACED_DIR}/{name}")
    return merged, written, rows, removed


def _files(filesystem, folder: str) -> dict:
    try:
        return {
            e.base_name: e
            for e in filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
            if e.type == pafs.FileType.File
        }
    except (OSError, FileNotFoundError):
        return {}


def _move_aside(filesystem, folder: str, name: str) -> None:
    """Move a merged file under ``_replaced/``, where late readers still find it."""
    filesystem.create_dir(f"{folder}/{REPLACED_DIR}", recursive=True)
    try:
        filesystem.move(f"{folder}/{name}", f"{folder}/{REPLACED_DIR}/{name}")
    except (OSError, FileNotFoundError):
        pass  # moved by a compaction running at the same time


def replaced_path(path: str) -> str:
    """Where a file merged by a compaction waits out its grace period."""
    folder, _, name = path.rpartition("/")
    return f"{folder}/{REPLACED_DIR}/{name}"


def _age(entry, now: float) -> float:
    mtime = entry.mtime
    return now - mtime.timestamp() if mtime is not None else float("inf")


def _delete(filesystem, path: str) -> int:
    try:
        filesystem.delete_file(path)
        return 1
    except (OSError, FileNotFoundError):
        return 0


def _common_schema(filesystem, folder: str, names):
    schemas = []
    for name in names:
        try:
            schemas.append(pq.read_schema(filesystem.open_input_file(f"{folder}/{name}")))
        except (OSError, pa.ArrowInvalid) as exc:
            _logger.warning("Not compacting %s: %s is unreadable (%r).", folder, name, exc)
            return None
    try:
        return pa.unify_schemas(
            [s.remove_metadata() for s in schemas], promote_options="permissive"
        )
    except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
        _logger.warning("Not compacting %s: its files' columns conflict (%r).", folder, exc)
        return None


def _by_rows(filesystem, folder: str, names, target_rows: int):
    group, rows = [], 0
    for name in names:
        n = pq.ParquetFile(filesystem.open_input_file(f"{folder}/{name}")).metadata.num_rows
        if group and rows + n > target_rows:
            yield group
            group, rows = [], 0
        group.append(name)
        rows += n
    if group:
        yield group


def _merge(filesystem, folder: str, names, schema: pa.Schema) -> int:
    replaces = set(names)
    for name in names:
        if name.startswith(COMPACT_PREFIX):
            replaces |= _replaces(filesystem, f"{folder}/{name}")
    final_name = f"{COMPACT_PREFIX}{uuid.uuid4().hex}.parquet"
    temporary = f"{folder}/.{final_name}.tmp"
    schema = schema.with_metadata({REPLACES_KEY: json.dumps(sorted(replaces)).encode()})
    rows = 0
    with filesystem.open_output_stream(temporary) as stream:
        with pq.ParquetWriter(stream, schema, compression="zstd") as writer:
            for name in names:
                parquet = pq.ParquetFile(filesystem.open_input_file(f"{folder}/{name}"))
                for i in range(parquet.num_row_groups):
                    table = parquet.read_row_group(i)
                    table = _conform(table, schema)
                    writer.write_table(table)
                    rows += table.num_rows
    filesystem.move(temporary, f"{folder}/{final_name}")
    return rows


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.schema.names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def expire_logs(uri: str, older_than) -> ExpiryResult:
    """Remove the day partitions that ended more than ``older_than`` ago, attributions with them.

    Parameters
    ----------
    uri : str
        The log directory or URI.
    older_than : str or pandas.Timedelta
        ``30d``, ``12w``... A day is removed once all of it is older.

    Returns
    -------
    ExpiryResult
        The days removed from the log and from its attribution stream
        (``<log>/attributions/``), which expires at the same cutoff.

    Examples
    --------
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(f"{root}/date=2020-01-01")
    >>> os.makedirs(f"{root}/attributions/date=2020-01-01")
    >>> expire_logs(root, "30d")
    ExpiryResult(days=('2020-01-01',), attribution_days=('2020-01-01',))
    """
    import pandas as pd

    try:
        # pandas deprecates the lower-case day unit ('30d'): spell it as pandas wants.
        text = older_than.strip() if isinstance(older_than, str) else older_than
        if (
            isinstance(text, str)
            and text[-1:] in ("d", "w")
            and text[:-1].strip().replace(".", "", 1).isdigit()
        ):
            text = text[:-1] + text[-1].upper()
        age = pd.Timedelta(text)
    except ValueError as exc:
        raise ValueError(
            f"The 'older_than' parameter of expire_logs must be a duration such as '30d'. "
            f"Got {older_than!r} instead."
        ) from exc
    if age <= pd.Timedelta(0):
        raise ValueError(
            f"The 'older_than' parameter of expire_logs must be positive. Got {older_than!r} "
            "instead."
        )
    cutoff = pd.Timestamp.now(tz="UTC") - age
    uri = os.fspath(uri)
    days = _expire_stream(uri, cutoff)
    return ExpiryResult(days=days, attribution_days=_expire_stream(attributions_uri(uri), cutoff))


def _expire_stream(uri: str, cutoff) -> tuple[str, ...]:
    """Remove the day partitions of one stream that ended before ``cutoff``; their days."""
    import pandas as pd

    filesystem, base = log_filesystem(uri)
    removed = []
    for folder, day in list(_partitions(filesystem, base)):
        end = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
        if end <= cutoff:
            filesystem.delete_dir(folder)
            removed.append(day.isoformat())
    return tuple(sorted(removed))
