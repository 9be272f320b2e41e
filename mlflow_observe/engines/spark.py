"""The Spark engine: a profile's counts computed by Spark, merged on the driver.

Every statistic of a comparison comes from mergeable counts (bins, categories,
missing and infinite values, moments, min/max, a bounded sample). Spark hands
each partition's rows to a Python worker as Arrow record batches
(``mapInArrow``); the worker counts them into an empty copy of the baseline
with the very code the pandas engine runs (:meth:`DataProfile.update`: the
same bin search, guard bins, NaN/infinity handling and category labels), and
the partial profiles are merged: in groups on the executors when there are
many partitions, then on the driver. Counts therefore equal the pandas
engine's exactly, and the moments differ only by the rounding of the merge
order. A window costs one pass over the data.

**The sample**: each partition keeps a uniform priority sample of at most
``sample_size`` rows, with keys drawn from its own seed (``random_state`` and
the partition index); merging keeps the smallest keys, so the result is a
uniform sample without replacement of the whole window, and the whole window
when it is no larger (then the exact small-sample tests see every row, as
with pandas).

pyspark is imported here only, and only when a function runs: install the
extra with ``pip install 'mlflow-observe[spark]'`` (Spark needs Java 17 or
later). The executors import ``mlflow_observe`` too: install it there.
Partial profiles travel between Spark's processes pickled, as Spark moves any
Python object; a profile at rest is always JSON.
"""

from __future__ import annotations

import math
import pickle

import numpy as np

from mlflow_observe.core._validation import InstanceOf, Interval, checked
from mlflow_observe.core.explain import ImportanceCounter
from mlflow_observe.core.profile.columns import (
    CategoricalColumnProfile,
    NumericColumnProfile,
    category_counts,
    grid_levels,
)
from mlflow_observe.core.profile.data_profile import (
    BUILD_CONSTRAINTS,
    DataProfile,
    ProfileError,
    as_column_list,
    counting_reference,
    plan_profile,
    profile_performance,
)
from mlflow_observe.core.profile.embedding import EMBEDDING_SAMPLE_SIZE
from mlflow_observe.core.profile.kinds import CATEGORICAL, NUMERIC
from mlflow_observe.core.profile.text import TEXT_SAMPLE_SIZE
from mlflow_observe.core.weights import weights_or_none
from mlflow_observe.engines import is_spark_dataframe

INSTALL_HINT = (
    "Install it with: pip install 'mlflow-observe[spark]' (Spark also needs Java 17 "
    "or later on the machine)."
)
# The column of the Arrow batches that carries one pickled partial profile.
_PARTIAL = "partial"
_WEIGHTS = "__observe_weights"  # the row weights column, as it travels to the workers
# Rows counted at a time on a worker.
_CHUNK_ROWS = 65_536
# Above this many partitions, partial profiles are first merged in groups on the executors.
_DRIVER_FAN_IN = 16
# Rows whose kinds are inferred, as build_profile infers them (the distinct counts use every row).
HEAD_ROWS = 10_000
# A categorical column with more distinct labels than this cannot be ranked.
MAX_DISTINCT_LABELS = 100_000
# Rows (a uniform sample) the reference performance is computed from.
PERFORMANCE_ROWS = 200_000


class SparkUnavailableError(RuntimeError):
    """The Spark engine was asked for, and pyspark or a Spark session is not available."""


def require_pyspark():
    """Import pyspark, or raise :class:`SparkUnavailableError` saying how to install it.

    The error ends with :data:`INSTALL_HINT`:

    >>> print(INSTALL_HINT)
    Install it with: pip install 'mlflow-observe[spark]' (Spark also needs Java 17 or later on the machine).
    """  # noqa: E501
    try:
        import pyspark
    except ImportError as exc:
        raise SparkUnavailableError(
            f"The Spark engine needs pyspark, which is not installed. {INSTALL_HINT}"
        ) from exc
    return pyspark


def spark_session():
    """The active Spark session, or one started from the machine's Spark configuration.

    Raises :class:`SparkUnavailableError` (a ``RuntimeError``) when pyspark is
    missing or no session can start, saying how to install or configure it:

    >>> issubclass(SparkUnavailableError, RuntimeError)
    True
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        return session
    try:
        return SparkSession.builder.appName("mlflow-observe").getOrCreate()
    except Exception as exc:  # no Java, a bad master URL, an unreachable cluster...
        raise SparkUnavailableError(
            f"Could not start a Spark session ({exc}). Configure Spark (spark-defaults.conf, "
            f"SPARK_HOME, or SPARK_REMOTE for Spark Connect) or check Java. {INSTALL_HINT}"
        ) from exc


def _check_spark_frame(frame, caller: str) -> None:
    if not is_spark_dataframe(frame):
        kind = f"{type(frame).__module__.split('.')[0]}.{type(frame).__name__}"
        raise TypeError(
            f"{caller} takes a Spark DataFrame. Got {kind}; count pandas or Arrow "
            "data with mlflow_observe.compare or DataProfile.update."
        )
    require_pyspark()


# -- a window --------------------------------------------------------------------------------


def count_window(baseline: DataProfile, frame, *, weights: str | None = None) -> DataProfile:
    """Count a Spark DataFrame into ``baseline.empty_like()``, on the cluster.

    Only the baseline's columns travel to the Python workers. Equal to counting
    ``frame``'s rows with :meth:`DataProfile.update` (see the module notes).
    ``weights`` names a column of row weights (the log's ``sample_weight``):
    each row counts that many times, as ``update(..., weights=...)`` counts it.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlflow_observe.core.profile.data_profile import build_profile
    >>> baseline = build_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    >>> count_window(baseline, pd.DataFrame({"x": [2.0]}))
    Traceback (most recent call last):
    ...
    TypeError: count_window takes a Spark DataFrame. Got pandas.DataFrame; count pandas or Arrow data with mlflow_observe.compare or DataProfile.update.
    """  # noqa: E501
    _check_spark_frame(frame, "count_window")
    layout = baseline.empty_like()
    from pyspark.sql import functions as F

    # Text and embedding columns travel too: the workers compute the descriptors.
    wanted = set(layout.input_columns)
    counted = [name for name in frame.columns if name in wanted]
    weighted = weights is not None and weights in frame.columns and weights not in layout.columns
    # With no baseline column, only the rows are counted (as update() does).
    selected = frame.select(
        *([F.col(_quoted(name)) for name in counted] or [F.lit(True).alias("_row")]),
        *([F.col(_quoted(weights)).alias(_WEIGHTS)] if weighted else []),
    )
    counter = _partition_counter(layout, _WEIGHTS if weighted else None)
    partials = selected.mapInArrow(counter, f"{_PARTIAL} binary")
    partials = _merged_in_groups(partials, _partition_count(selected))
    profile = layout
    for row in partials.collect():
        profile = profile + pickle.loads(row[_PARTIAL])
    return profile


def count_importance(frame, columns: dict) -> ImportanceCounter:
    """Global importance counted by Spark: per feature, the sum and count of finite ``|value|``.

    ``columns`` maps a feature to the column of ``frame`` holding its
    attributions (the log's ``attribution_<feature>``). The same counts as
    :meth:`ImportanceCounter.update` on the rows: a null, NaN, infinite or
    non-numeric value is not counted. One aggregation, one pass over the data.
    """
    _check_spark_frame(frame, "count_importance")
    counter = ImportanceCounter()
    if not columns:
        return counter
    from pyspark.sql import functions as F

    aggregates = []
    for k, column in enumerate(columns.values()):
        value = F.abs(F.col(_quoted(column)).cast("double"))
        finite = value.isNotNull() & ~F.isnan(value) & (value != F.lit(float("inf")))
        aggregates += [
            F.sum(F.when(finite, value)).alias(f"s{k}"),
            F.count(F.when(finite, F.lit(1))).alias(f"n{k}"),
        ]
    row = frame.agg(*aggregates).collect()[0]
    for k, feature in enumerate(columns):
        counter.sums[str(feature)] = float(row[f"s{k}"] or 0.0)
        counter.counts[str(feature)] = int(row[f"n{k}"])
    return counter


def iter_pandas_batches(frame, columns, batch_size: int = _CHUNK_ROWS):
    """The ``columns`` of a Spark DataFrame as pandas DataFrames of ``batch_size`` rows.

    The rows come to the driver one partition at a time (``toLocalIterator``), so
    memory is bounded by a partition and a batch, not by the window. This is how
    degradation reads a Spark window: it needs a few columns (predictions,
    labels, probabilities), and its counts are kept by
    :class:`~mlflow_observe.core.performance.streamed.StreamedPerformance`.

    Examples
    --------
    >>> callable(iter_pandas_batches)
    True
    """
    import pandas as pd

    _check_spark_frame(frame, "iter_pandas_batches")
    columns = [str(c) for c in columns]
    rows = []
    for row in frame.select(*[_quoted(c) for c in columns]).toLocalIterator():
        rows.append(tuple(row))
        if len(rows) >= batch_size:
            yield pd.DataFrame.from_records(rows, columns=columns)
            rows = []
    if rows:
        yield pd.DataFrame.from_records(rows, columns=columns)


def _partition_counter(layout: DataProfile, weights: str | None = None):
    def count(batches):
        from pyspark import TaskContext

        context = TaskContext.get()
        part = context.partitionId() if context is not None else 0
        partial = layout.empty_like()
        for chunk in _chunks(batches):
            rows = chunk.to_pandas()
            row_weights = None if weights is None else weights_or_none(rows.pop(weights))
            partial.update(rows, weights=row_weights, n_jobs=1, part=part)
        yield _as_batch(partial)

    return count


def _chunks(batches):
    """Spark's small Arrow batches (10,000 rows by default) joined into tables of about
    65,536 rows: each update has a fixed cost (the sample's, mostly)."""
    import pyarrow as pa

    pending, rows = [], 0
    for batch in batches:
        if batch.num_rows:
            pending.append(batch)
            rows += batch.num_rows
        if rows >= _CHUNK_ROWS:
            yield pa.Table.from_batches(pending)
            pending, rows = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _merge_partials(batches):
    merged = None
    for batch in batches:
        for blob in batch.column(0).to_pylist():
            partial = pickle.loads(blob)
            merged = partial if merged is None else merged + partial
    if merged is not None:
        yield _as_batch(merged)


def _as_batch(value):
    import pyarrow as pa

    blob = pa.array([pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)], type=pa.binary())
    return pa.RecordBatch.from_arrays([blob], names=[_PARTIAL])


def _partition_count(frame) -> int | None:
    try:
        return frame.rdd.getNumPartitions()
    except Exception:  # Spark Connect has no RDDs: merge every partial on the driver
        return None


def _merged_in_groups(partials, n_partitions: int | None):
    """Merge many partial profiles in about sqrt(n) groups on the executors first."""
    if n_partitions is None or n_partitions <= _DRIVER_FAN_IN:
        return partials
    groups = math.ceil(math.sqrt(n_partitions))
    return partials.repartition(groups).mapInArrow(_merge_partials, f"{_PARTIAL} binary")


def _quoted(name: str) -> str:
    """A column reference Spark reads literally (dots and spaces included)."""
    return "`" + str(name).replace("`", "``") + "`"


def select_as(frame, names: dict):
    """``frame`` with the columns ``names`` maps to (``{new name: column of frame}``), in order."""
    from pyspark.sql import functions as F

    return frame.select(*[F.col(_quoted(old)).alias(new) for new, old in names.items()])


def timestamp_bounds(frame, column: str):
    """The first and last instant of a timestamp column, in UTC, or None when it has none."""
    import pandas as pd
    from pyspark.sql import functions as F

    micros = F.expr(f"unix_micros(CAST({_quoted(column)} AS TIMESTAMP))")
    row = frame.agg(F.min(micros).alias("low"), F.max(micros).alias("high")).first()
    if row is None or row["low"] is None:
        return None
    return tuple(pd.Timestamp(row[k], unit="us", tz="UTC") for k in ("low", "high"))


# -- a baseline ------------------------------------------------------------------------------

_SPARK_CONSTRAINTS = {
    **{k: v for k, v in BUILD_CONSTRAINTS.items() if k != "n_jobs"},
    "data": [InstanceOf(object, description="a Spark DataFrame")],
    "relative_error": [Interval(float, 0.0, 1.0, closed="right")],
}


@checked(_SPARK_CONSTRAINTS)
def build_profile_spark(
    data,
    *,
    targets: str | None = None,
    predictions: str | None = None,
    columns=None,
    exclude=None,
    kinds: dict | None = None,
    n_bins: int = 10,
    grid_size: int = 1000,
    max_categories: int = 100,
    sample_size: int = 5000,
    random_state: int = 0,
    probabilities=None,
    task: str | None = None,
    text_columns: bool = True,
    embeddings: dict | None = None,
    text_sample_size: int = TEXT_SAMPLE_SIZE,
    embedding_sample_size: int = EMBEDDING_SAMPLE_SIZE,
    relative_error: float = 1e-4,
) -> DataProfile:
    """Learn a baseline profile from a Spark DataFrame (a reference too large for one machine).

    Takes the options of :func:`~mlflow_observe.core.profile.data_profile.build_profile`
    (which calls this for a Spark DataFrame), and makes three passes:

    1. the numeric columns' quantiles at the fine grid's and the bins' levels,
       with Spark's ``percentile_approx`` at ``relative_error``, and their exact
       minimum and maximum (the guard bins start exactly at the reference range);
    2. the labels of each categorical column, counted exactly;
    3. the counts in those bins and categories, as for a window (:func:`count_window`).

    Parameters
    ----------
    relative_error : float, default=1e-4
        The quantiles' rank error: an edge at level ``p`` is the value of some
        row whose rank lies within ``relative_error * n`` of ``p * n``. The
        default is a tenth of a fine-grid cell (1000 levels). The pandas engine
        computes exact (interpolated) quantiles, so the **edges are approximate**
        here; every count against them is exact.

    Notes
    -----
    Column kinds are inferred as ``build_profile`` infers them, from the
    first 10,000 rows, except that a text column is categorical only if it has
    at most ``max_categories`` distinct values over all rows. Decimal columns
    are read as doubles. With ``targets`` and ``predictions``, the reference
    performance is computed on a uniform sample of at most 200,000 rows
    collected to the driver (every row below that). A text column's vocabulary
    and its descriptors' bin edges are learned from those first 10,000 rows
    (their out-of-vocabulary shares leave each text out, as on pandas, which
    slightly overstates the share of the rows after them); every count, the
    text and vector samples and the embeddings' moments use every row.

    Returns
    -------
    DataProfile

    Examples
    --------
    Without Spark, the input is refused before any work:

    >>> build_profile_spark([[1.0]])
    Traceback (most recent call last):
    ...
    TypeError: build_profile_spark takes a Spark DataFrame. Got builtins.list; count pandas or Arrow data with mlflow_observe.compare or DataProfile.update.
    """  # noqa: E501
    _check_spark_frame(data, "build_profile_spark")
    data = _decimals_as_doubles(data)
    head = data.limit(HEAD_ROWS).toPandas()
    plan = plan_profile(
        head,
        targets=targets,
        predictions=predictions,
        columns=columns,
        exclude=exclude,
        kinds=kinds,
        n_bins=n_bins,
        grid_size=grid_size,
        max_categories=max_categories,
        sample_size=sample_size,
        random_state=random_state,
        text_columns=text_columns,
        embeddings=embeddings,
        text_sample_size=text_sample_size,
        embedding_sample_size=embedding_sample_size,
    )
    kept = plan.kept
    layouts = {}
    label_counts = _label_counts(
        data, {name: d.kind for name, d in kept.items() if d.kind == CATEGORICAL}
    )
    for name, counts in label_counts.items():
        user_set = name in (kinds or {})
        if counts is not None and (user_set or len(counts) <= max_categories):
            layouts[name] = CategoricalColumnProfile.from_counts(
                name, counts, kind=CATEGORICAL, max_categories=max_categories
            )
        elif user_set:
            raise ProfileError(
                f"Column {name!r} has more than {MAX_DISTINCT_LABELS} distinct values: too many "
                "to rank its categories on Spark. Exclude it or treat it as numeric."
            )
        else:
            plan = plan.excluding(
                name,
                f"high-cardinality text (more than {max_categories} distinct values over "
                f"all rows > max_categories={max_categories}); pass kinds={{column: "
                "'categorical'} to compare it anyway",
            )
    layouts.update(
        _numeric_layouts(
            data,
            [n for n, d in kept.items() if d.kind == NUMERIC],
            n_bins,
            grid_size,
            relative_error,
        )
    )
    for name, decision in kept.items():
        if decision.kind not in (NUMERIC, CATEGORICAL):
            layouts[name] = CategoricalColumnProfile.from_counts(
                name, {}, kind=decision.kind, max_categories=max_categories
            )
    layout = plan.layout(layouts, targets=targets, predictions=predictions)
    with counting_reference(layout):  # the flag travels to the workers with the layout
        profile = count_window(layout, data)
    profile.metadata = {
        **layout.metadata,
        "engine": "spark",
        "quantile_relative_error": relative_error,
    }
    if profile.targets is not None and profile.predictions is not None:
        fraction = min(1.0, PERFORMANCE_ROWS / max(profile.n_rows, 1))
        rows = data if fraction >= 1.0 else data.sample(False, fraction, seed=random_state)
        profile.performance = profile_performance(
            rows.toPandas(),
            profile.targets,
            profile.predictions,
            as_column_list(probabilities),
            task,
            random_state,
        )
    return profile


def _decimals_as_doubles(frame):
    from pyspark.sql import functions as F
    from pyspark.sql.types import DecimalType

    decimals = {f.name for f in frame.schema.fields if isinstance(f.dataType, DecimalType)}
    if not decimals:
        return frame
    return frame.select(
        *[
            F.col(_quoted(n)).cast("double").alias(n) if n in decimals else F.col(_quoted(n))
            for n in frame.columns
        ]
    )


def _label_counts(frame, kinds: dict) -> dict:
    """``{column: {label: count}}`` over every row (None for a column with too many labels)."""
    if not kinds:
        return {}
    from pyspark.sql import functions as F

    selected = frame.select(*[F.col(_quoted(name)) for name in kinds])
    totals: dict = {name: {} for name in kinds}
    for row in selected.mapInArrow(_label_counter(kinds), f"{_PARTIAL} binary").collect():
        for name, counts in pickle.loads(row[_PARTIAL]).items():
            totals[name] = _add_counts(totals[name], counts)
    return totals


def _label_counter(kinds: dict):
    def count(batches):
        totals: dict = {name: {} for name in kinds}
        for batch in batches:
            frame = batch.to_pandas()
            for name, kind in kinds.items():
                totals[name] = _add_counts(totals[name], category_counts(frame[name], kind=kind))
        yield _as_batch(totals)

    return count


def _add_counts(total, counts):
    if total is None or counts is None:
        return None
    for label, n in counts.items():
        total[label] = total.get(label, 0) + n
    return total if len(total) <= MAX_DISTINCT_LABELS else None


def _numeric_layouts(frame, names, n_bins, grid_size, relative_error) -> dict:
    """Grid and bin edges of each numeric column from one aggregation over every row."""
    if not names:
        return {}
    from pyspark.sql import functions as F

    fine_levels = grid_levels(grid_size)
    coarse_levels = np.linspace(0.0, 1.0, n_bins + 1)
    levels = np.unique(np.concatenate([fine_levels, coarse_levels]))
    accuracy = max(1, round(1.0 / relative_error))
    aggregates = []
    for i, name in enumerate(names):
        value = _finite_double(name)
        aggregates += [
            F.percentile_approx(value, levels.tolist(), accuracy).alias(f"q{i}"),
            F.min(value).alias(f"low{i}"),
            F.max(value).alias(f"high{i}"),
        ]
    row = frame.agg(*aggregates).first()
    layouts = {}
    for i, name in enumerate(names):
        if row[f"q{i}"] is None:  # no finite value at all
            layouts[name] = NumericColumnProfile(name, grid=[], coarse_positions=[])
            continue
        quantiles = np.asarray(row[f"q{i}"], dtype=float)
        quantiles[0], quantiles[-1] = row[f"low{i}"], row[f"high{i}"]
        layouts[name] = NumericColumnProfile.from_quantiles(
            name,
            fine=quantiles[np.searchsorted(levels, fine_levels)],
            coarse=quantiles[np.searchsorted(levels, coarse_levels)],
        )
    return layouts


def _finite_double(name: str):
    """The column as a double, null where it is missing, NaN, infinite or not a number."""
    from pyspark.sql import functions as F

    value = F.expr(f"try_cast({_quoted(name)} AS DOUBLE)")
    return F.when(F.isnan(value) | (F.abs(value) == F.lit(float("inf"))), F.lit(None)).otherwise(
        value
    )
