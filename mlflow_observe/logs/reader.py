"""Reading the prediction log by time window, and joining labels that arrive later."""

from __future__ import annotations

import os
import uuid
import warnings
from datetime import date, datetime, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from mlflow_observe.logs.attributions import attributions_uri
from mlflow_observe.logs.compaction import replaced_files, replaced_path
from mlflow_observe.logs.schema import (
    DATE_PARTITION,
    LABEL,
    LABELED_AT,
    LABELS_DIR,
    MODEL_NAME,
    MODEL_VERSION,
    REQUEST_ID,
    TIMESTAMP,
)
from mlflow_observe.logs.spool import log_filesystem, recover_spools


def _recover(uri: str) -> None:
    """Recover dead writers' spools; a reader that cannot write the log reads it as it is."""
    try:
        recover_spools(uri)
    except Exception as exc:
        warnings.warn(f"Could not recover the prediction log spool of {uri}: {exc!r}", stacklevel=3)


class LogWindowError(ValueError):
    """A log window is empty or its bounds make no sense."""


def _as_utc(value, name: str):
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise LogWindowError(f"The {name!r} bound {value!r} is not a date or time.") from exc
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def log_files(uri: str, start=None, end=None) -> list[str]:
    """The complete Parquet files of the log whose day partition overlaps ``[start, end)``.

    Temporary (``.*.tmp``) and hidden files are skipped, so a file still being
    written is never read; so are files that a compaction has merged (see
    :mod:`mlflow_observe.logs.compaction`), so no row is read twice. Spool segments that a dead writer left on this
    machine are first recovered into the log (see
    :func:`~mlflow_observe.logs.spool.recover_spools`), so rows it answered are read once.
    """
    uri = os.fspath(uri)
    _recover(uri)
    return _listed_files(uri, start, end)


def _listed_files(uri: str, start, end) -> list[str]:
    """:func:`log_files` without recovering spools (the attribution stream has none)."""
    filesystem, base = log_filesystem(uri)
    start, end = _as_utc(start, "start"), _as_utc(end, "end")
    if start is not None and end is not None and start >= end:
        raise LogWindowError(f"The window start {start} is not before its end {end}.")
    info = filesystem.get_file_info(base)
    if info.type == pafs.FileType.NotFound:
        raise LogWindowError(f"No prediction log at {uri!r} (the directory does not exist).")
    files = []
    for entry in filesystem.get_file_info(pafs.FileSelector(base, recursive=False)):
        name = entry.base_name
        if entry.type != pafs.FileType.Directory or not name.startswith(f"{DATE_PARTITION}="):
            continue
        try:
            day = date.fromisoformat(name.split("=", 1)[1])
        except ValueError:
            continue
        if start is not None and day < start.date():
            continue
        if end is not None and datetime.combine(day, datetime.min.time(), timezone.utc) >= end:
            continue
        children = [
            child
            for child in filesystem.get_file_info(pafs.FileSelector(entry.path, recursive=False))
            if child.type == pafs.FileType.File
            and child.base_name.endswith(".parquet")
            and not child.base_name.startswith((".", "_"))
        ]
        # Files merged by a compaction are read through the merged file only.
        replaced = replaced_files(filesystem, entry.path, [c.base_name for c in children])
        files += [c.path for c in children if c.base_name not in replaced]
    return sorted(files)


def iter_log_batches(
    uri: str, start=None, end=None, *, model=None, columns=None, batch_size: int = 65_536
):
    """Yield the window's rows as Arrow record batches, file by file (bounded memory).

    A corrupt or half-written file is skipped with a warning that names it.
    """
    filesystem, _ = log_filesystem(uri)
    yield from _file_batches(
        filesystem,
        log_files(uri, start, end),
        start,
        end,
        model=model,
        columns=columns,
        batch_size=batch_size,
    )


def scan_logs(
    uri: str, start=None, end=None, *, model=None, columns=None, batch_size: int = 65_536
):
    """A window of the prediction log as a lazy stream of Arrow record batches.

    ``mo.evaluate_drift(mo.scan_logs(dir, start, end), baseline=...)`` counts the
    window one batch at a time, so memory is bounded by a batch and the
    profile, not by the window. Only the files' footers are read up front, to
    check that their schemas can be read together; the rows are read as the
    stream is consumed (by :func:`iter_log_batches`), once.

    Parameters
    ----------
    uri, start, end, model, columns
        As for :func:`read_logs`.
    batch_size : int, default=65536
        Rows per record batch at most.

    Returns
    -------
    iterator of pyarrow.RecordBatch

    Raises
    ------
    LogSchemaError
        When a file has a column of a type that cannot be read with the earlier
        files' (text where they had numbers, say); the message names the file
        and the column. Integers widening to floats, and columns added or
        dropped between files, are read as :func:`read_logs` reads them: every
        batch has every column of the window, missing ones as nulls.

    Examples
    --------
    >>> import os, tempfile, pandas as pd
    >>> log = tempfile.mkdtemp()
    >>> os.makedirs(f"{log}/date=2026-11-25")
    >>> pd.DataFrame({"timestamp": pd.to_datetime(["2026-11-25 10:00"] * 3, utc=True),
    ...               "x": [1.5, 2.5, 3.5]}).to_parquet(f"{log}/date=2026-11-25/part-0.parquet")
    >>> [batch.num_rows for batch in scan_logs(log, start="2026-11-25", batch_size=2)]
    [2, 1]
    """
    uri = os.fspath(uri)
    filesystem, _ = log_filesystem(uri)
    files = log_files(uri, start, end)
    schema = _window_schema(filesystem, files)
    if columns is not None:
        wanted = dict.fromkeys([*columns, TIMESTAMP, MODEL_NAME, MODEL_VERSION])
        schema = pa.schema([f for f in schema if f.name in wanted])
    batches = _file_batches(
        filesystem, files, start, end, model=model, columns=columns, batch_size=batch_size
    )
    return (_conformed(batch, schema) for batch in batches)


class LogSchemaError(LogWindowError):
    """Files of one log window have column types that cannot be read together."""


def _window_schema(filesystem, paths) -> pa.Schema:
    """The schema every file can be read as; LogSchemaError at the first one that cannot."""
    unified, seen_in = pa.schema([]), {}
    for path in paths:
        try:
            schema = pq.ParquetFile(_open(filesystem, path)).schema_arrow
        except (OSError, pa.ArrowInvalid):
            continue  # skipped, with a warning, when the rows are read
        schema = pa.schema([_utc_field(f) for f in schema])
        for field in schema:
            seen_in.setdefault(field.name, path)
            if field.name not in unified.names:
                continue
            earlier = unified.field(field.name)
            try:
                pa.unify_schemas(
                    [pa.schema([earlier]), pa.schema([field])], promote_options="permissive"
                )
            except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
                raise LogSchemaError(
                    f"The prediction log file {path} cannot be read with the window's other "
                    f"files: its column {field.name!r} is {field.type}, where "
                    f"{seen_in[field.name]} has {earlier.type}. Read the files apart, or "
                    "narrow the window to exclude it."
                ) from exc
        unified = pa.unify_schemas(
            [unified, schema.remove_metadata()], promote_options="permissive"
        )
    return unified


def _open(filesystem, path: str):
    """Open a listed log file; one merged by a compaction since is found under ``_replaced/``."""
    try:
        return filesystem.open_input_file(path)
    except FileNotFoundError:
        return filesystem.open_input_file(replaced_path(path))


def _conformed(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with every column of ``schema``, in its order and types (nulls where absent)."""
    if batch.schema.remove_metadata() == schema:
        return batch
    arrays = [
        batch.column(f.name).cast(f.type)
        if f.name in batch.schema.names
        else pa.nulls(batch.num_rows, f.type)
        for f in schema
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _file_batches(filesystem, paths, start, end, *, model, columns, batch_size):
    start_utc, end_utc = _as_utc(start, "start"), _as_utc(end, "end")
    for path in paths:
        try:
            # Without pre-buffering: pre-buffered reads keep every row group read so far
            # until the file is closed, so memory would grow with the file, not the batch.
            parquet = pq.ParquetFile(_open(filesystem, path), pre_buffer=False)
            wanted = None
            if columns is not None:
                names = set(parquet.schema_arrow.names)
                wanted = [
                    c
                    for c in dict.fromkeys([*columns, TIMESTAMP, MODEL_NAME, MODEL_VERSION])
                    if c in names
                ]
            for batch in parquet.iter_batches(batch_size=batch_size, columns=wanted):
                batch = _filter(_utc_timestamps(batch), start_utc, end_utc, model)
                if batch.num_rows:
                    yield batch
        except (OSError, pa.ArrowInvalid) as exc:
            warnings.warn(f"Skipping unreadable prediction log file {path}: {exc}", stacklevel=2)


def _utc_field(field: pa.Field) -> pa.Field:
    """The log's ``timestamp`` field, naive values read as UTC (as the writer means them)."""
    if field.name == TIMESTAMP and pa.types.is_timestamp(field.type) and field.type.tz is None:
        return field.with_type(pa.timestamp(field.type.unit, tz="UTC"))
    return field


def _utc_timestamps(batch: pa.RecordBatch) -> pa.RecordBatch:
    if TIMESTAMP not in batch.schema.names:
        return batch
    index = batch.schema.get_field_index(TIMESTAMP)
    field = batch.schema.field(index)
    utc = _utc_field(field)
    if utc is field:
        return batch
    return batch.set_column(index, utc, batch.column(index).cast(utc.type))


def _filter(batch: pa.RecordBatch, start, end, model) -> pa.RecordBatch:
    import pyarrow.compute as pc

    mask = None

    def both(a, b):
        return b if a is None else pc.and_(a, b)

    stamps = batch.column(batch.schema.get_field_index(TIMESTAMP))
    if start is not None:
        mask = both(
            mask, pc.greater_equal(stamps, pa.scalar(start.to_pydatetime(), type=stamps.type))
        )
    if end is not None:
        mask = both(mask, pc.less(stamps, pa.scalar(end.to_pydatetime(), type=stamps.type)))
    if model is not None:
        name, _, version = str(model).partition("/")
        names = batch.column(batch.schema.get_field_index(MODEL_NAME))
        mask = both(mask, pc.equal(names, name))
        if version:
            versions = batch.column(batch.schema.get_field_index(MODEL_VERSION))
            mask = both(mask, pc.equal(pc.cast(versions, pa.string()), version))
    return batch if mask is None else batch.filter(pc.fill_null(mask, False))


def read_logs(
    uri: str,
    start=None,
    end=None,
    *,
    model=None,
    columns=None,
    with_labels: bool = False,
    with_attributions: bool = False,
) -> pd.DataFrame:
    """Read a window of the prediction log into a DataFrame, in time order.

    Parameters
    ----------
    uri : str
        The log directory (``MLFLOW_OBSERVE_LOG_DIR`` of the server) or a
        ``pyarrow.fs`` URI.
    start, end : str, date or datetime, optional
        The window ``[start, end)``; naive values are UTC. Partitions outside it
        are not opened.
    model : str, optional
        Only rows of this model name, or ``"name/version"``.
    columns : list of str, optional
        Only these columns (plus ``timestamp``).
    with_labels : bool, default=False
        Join the labels logged with :func:`log_labels` on ``request_id`` (a
        ``label`` column, null where none arrived yet).
    with_attributions : bool, default=False
        Join the attributions of sampled served predictions (see
        :mod:`mlflow_observe.logs.attributions`) on ``request_id``: the
        ``attribution_<input column>`` columns and ``explain_base_value``,
        ``explain_rate``, ``explain_method``, ``explain_output``, null on the
        rows that were not sampled. Without any attribution in the window, the
        frame has none of these columns.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    LogWindowError
        When the directory does not exist, ``start`` is not before ``end``, or
        the window has no rows.
    """
    batches = list(iter_log_batches(uri, start, end, model=model, columns=columns))
    if not batches:
        raise LogWindowError(
            f"No predictions in the log {uri!r} between {start or 'the beginning'} and "
            f"{end or 'now'}" + (f" for model {model!r}" if model else "") + "."
        )
    table = (
        pa.Table.from_batches(batches)
        if len({b.schema for b in batches}) == 1
        else pa.concat_tables(
            [pa.Table.from_batches([b]) for b in batches], promote_options="permissive"
        )
    )
    frame = table.to_pandas().sort_values(TIMESTAMP, kind="stable").reset_index(drop=True)
    if with_labels:
        frame = frame.merge(read_labels(uri), on=REQUEST_ID, how="left")
    if with_attributions:
        attributions = read_attributions(uri, start, end)
        if not attributions.empty:
            added = [c for c in attributions.columns if c not in frame.columns]
            frame = frame.merge(attributions[[REQUEST_ID, *added]], on=REQUEST_ID, how="left")
    return frame


def read_attributions(uri: str, start=None, end=None) -> pd.DataFrame:
    """The attributions of sampled served predictions logged at ``uri``, one row per request id.

    Rows of the days around ``[start, end)`` (a day either side, so that a
    prediction near midnight finds its attribution); the latest attribution of a
    request id written twice. An empty frame when there are none.

    Examples
    --------
    >>> import tempfile
    >>> read_attributions(tempfile.mkdtemp()).columns.tolist()
    ['request_id']
    """
    location = attributions_uri(uri)
    filesystem, base = log_filesystem(location)
    empty = pd.DataFrame({REQUEST_ID: pd.Series(dtype=str)})
    if filesystem.get_file_info(base).type == pafs.FileType.NotFound:
        return empty
    margin = pd.Timedelta(days=1)
    start, end = _as_utc(start, "start"), _as_utc(end, "end")
    start = None if start is None else start - margin
    end = None if end is None else end + margin
    # Not log_files: recovering spools here would roll the log's own segments (a shared
    # MLFLOW_OBSERVE_SPOOL_DIR) into the attribution stream.
    files = _listed_files(location, start, end)
    batches = list(
        _file_batches(filesystem, files, start, end, model=None, columns=None, batch_size=65_536)
    )
    if not batches:
        return empty
    table = pa.concat_tables(
        [pa.Table.from_batches([b]) for b in batches], promote_options="permissive"
    )
    frame = table.to_pandas().sort_values(TIMESTAMP, kind="stable")
    frame = frame.drop(columns=[c for c in (TIMESTAMP, DATE_PARTITION) if c in frame.columns])
    return frame.drop_duplicates(REQUEST_ID, keep="last").reset_index(drop=True)


def log_labels(uri: str, labels: pd.DataFrame, *, key: str = REQUEST_ID, label: str = LABEL) -> int:
    """Record labels that arrived after the predictions, keyed by ``request_id``.

    Parameters
    ----------
    uri : str
        The log directory.
    labels : pandas.DataFrame
        With the ``key`` column and the ``label`` column.
    key, label : str
        Column names in ``labels``.

    Returns
    -------
    int
        Rows recorded.

    Notes
    -----
    A label logged twice for the same request: the later one wins when read.
    """
    missing = [c for c in (key, label) if c not in labels.columns]
    if missing:
        raise ValueError(f"log_labels needs the columns {missing}; got {list(labels.columns)}.")
    frame = pd.DataFrame(
        {
            REQUEST_ID: labels[key].astype(str).to_numpy(),
            LABEL: labels[label].to_numpy(),
            LABELED_AT: pd.Timestamp.now(tz="UTC"),
        }
    )
    filesystem, base = log_filesystem(uri)
    folder = f"{base}/{LABELS_DIR}"
    filesystem.create_dir(folder, recursive=True)
    name = f"labels-{uuid.uuid4().hex}"
    temporary, final = f"{folder}/.{name}.tmp", f"{folder}/{name}.parquet"
    with filesystem.open_output_stream(temporary) as stream:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), stream)
    filesystem.move(temporary, final)
    return len(frame)


def read_labels(uri: str) -> pd.DataFrame:
    """The latest label of each request id (columns ``request_id``, ``label``)."""
    filesystem, base = log_filesystem(uri)
    folder = f"{base}/{LABELS_DIR}"
    if filesystem.get_file_info(folder).type == pafs.FileType.NotFound:
        return pd.DataFrame({REQUEST_ID: pd.Series(dtype=str), LABEL: pd.Series(dtype=object)})
    frames = []
    for entry in filesystem.get_file_info(pafs.FileSelector(folder)):
        if entry.base_name.endswith(".parquet") and not entry.base_name.startswith("."):
            try:
                frames.append(pq.read_table(filesystem.open_input_file(entry.path)).to_pandas())
            except (OSError, pa.ArrowInvalid) as exc:
                warnings.warn(f"Skipping unreadable label file {entry.path}: {exc}", stacklevel=2)
    if not frames:
        return pd.DataFrame({REQUEST_ID: pd.Series(dtype=str), LABEL: pd.Series(dtype=object)})
    labels = pd.concat(frames, ignore_index=True).sort_values(LABELED_AT, kind="stable")
    return labels.drop_duplicates(REQUEST_ID, keep="last")[[REQUEST_ID, LABEL]]
