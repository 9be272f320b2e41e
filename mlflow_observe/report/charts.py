"""Charts over windows: a model's performance on one time axis, and drift per column and window.

Both take plain tables (one row per window, as the monitor records them) and
return a matplotlib figure; :func:`mlflow_observe.report.plots.figure_to_png`
renders it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlflow_observe.report.plots import _pyplot, plain_text

REALISED_COLOUR = "#4c72b0"
ESTIMATED_COLOUR = "#dd8452"
# Columns a performance table may have, beside the window start.
PERFORMANCE_COLUMNS = ("realised", "estimated", "estimated_low", "estimated_high")


def plot_performance_over_windows(
    table: pd.DataFrame,
    *,
    metric: str,
    reference: float | None = None,
    threshold: float | None = None,
    threshold_label: str = "alert threshold",
    title: str | None = None,
):
    """Realised and estimated performance over windows, the estimate's band, reference and threshold.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per window: ``start`` (the window start) and any of
        ``realised``, ``estimated``, ``estimated_low``, ``estimated_high``
        (NaN where a window has no such value).
    metric : str
        The metric's name, for the axis label (``accuracy``).
    reference : float, optional
        The baseline's value: a horizontal line.
    threshold : float, optional
        Where an alert fires: a dashed horizontal line.
    threshold_label : str, default='alert threshold'
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from mlflow_observe.report.plots import figure_to_png
    >>> table = pd.DataFrame({
    ...     "start": pd.date_range("2026-11-26", periods=3, freq="h", tz="UTC"),
    ...     "realised": [0.91, float("nan"), float("nan")],
    ...     "estimated": [0.9, 0.88, 0.8],
    ...     "estimated_low": [0.87, 0.85, 0.76],
    ...     "estimated_high": [0.93, 0.91, 0.84],
    ... })
    >>> figure = plot_performance_over_windows(table, metric="accuracy", reference=0.9,
    ...                                        threshold=0.85)
    >>> figure_to_png(figure)[:4] == b"\\x89PNG"
    True
    """
    plt = _pyplot()
    table = _with_columns(table, PERFORMANCE_COLUMNS).sort_values("start")
    x = pd.to_datetime(table["start"]).dt.tz_localize(None)  # matplotlib draws naive UTC
    figure, axes = plt.subplots(figsize=(9.0, 4.2))
    low, high = table["estimated_low"].to_numpy(float), table["estimated_high"].to_numpy(float)
    banded = np.isfinite(low) & np.isfinite(high)
    if banded.any():
        axes.fill_between(
            x,
            np.where(banded, low, np.nan),
            np.where(banded, high, np.nan),
            color=ESTIMATED_COLOUR,
            alpha=0.2,
            linewidth=0,
            label="estimate's 95% band",
        )
    for column, colour, marker, label in (
        ("estimated", ESTIMATED_COLOUR, "s", "estimated (no labels)"),
        ("realised", REALISED_COLOUR, "o", "realised (labels)"),
    ):
        values = table[column].to_numpy(float)
        if np.isfinite(values).any():
            axes.plot(x, values, marker=marker, color=colour, label=label, markersize=4)
    if reference is not None and np.isfinite(reference):
        axes.axhline(reference, color="#555555", linewidth=1, label=f"reference ({reference:.3g})")
    if threshold is not None and np.isfinite(threshold):
        axes.axhline(
            threshold,
            color="#c62828",
            linewidth=1.2,
            linestyle="--",
            label=f"{plain_text(threshold_label)} ({threshold:.3g})",
        )
    axes.set_ylabel(plain_text(metric))
    axes.set_xlabel("window start (UTC)")
    axes.set_title(plain_text(title or f"{metric}: realised and estimated, by window"), fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(frameon=False, fontsize=8, loc="best")
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


def plot_drift_heatmap(table: pd.DataFrame, *, title: str = "Drift by column and window"):
    """Columns x windows, coloured by each column's drift in each window.

    Parameters
    ----------
    table : pandas.DataFrame
        Index: the window starts; columns: the data columns; values in [0, 1]
        (1 drifted, 0 not; a share or a normalised distance reads the same
        way), NaN where a column was not compared (drawn grey).
    title : str

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from mlflow_observe.report.plots import figure_to_png
    >>> starts = pd.date_range("2026-11-26", periods=4, freq="h", tz="UTC")
    >>> table = pd.DataFrame({"tenure": [0, 0, 1, 1], "spend": [0, float("nan"), 0, 1]},
    ...                      index=starts)
    >>> figure_to_png(plot_drift_heatmap(table))[:4] == b"\\x89PNG"
    True
    """
    plt = _pyplot()
    from matplotlib.colors import LinearSegmentedColormap

    table = table.sort_index()
    values = table.to_numpy(float).T  # rows: columns of the data; columns: windows
    colours = LinearSegmentedColormap.from_list(
        "drift", ["#e8f1e4", "#f6c85f", "#c62828"]
    ).with_extremes(bad="#d9d9d9")
    n_columns, n_windows = values.shape
    figure, axes = plt.subplots(
        figsize=(min(max(6.0, 0.35 * n_windows + 2.5), 16.0), 0.32 * max(n_columns, 1) + 1.8)
    )
    image = axes.imshow(
        np.ma.masked_invalid(values), aspect="auto", cmap=colours, vmin=0.0, vmax=1.0
    )
    axes.set_yticks(np.arange(n_columns))
    axes.set_yticklabels([plain_text(c) for c in table.columns], fontsize=8)
    step = max(1, int(np.ceil(n_windows / 24)))  # at most about 24 labels on the time axis
    ticks = np.arange(0, n_windows, step)
    axes.set_xticks(ticks)
    axes.set_xticklabels(
        [pd.Timestamp(table.index[i]).strftime("%m-%d %H:%M") for i in ticks],
        rotation=45,
        ha="right",
        fontsize=7,
    )
    axes.set_xlabel("window start (UTC)")
    axes.set_title(plain_text(title), fontsize=10)
    bar = figure.colorbar(image, ax=axes, fraction=0.03, pad=0.02)
    bar.set_ticks([0.0, 1.0])
    bar.set_ticklabels(["no drift", "drift"])
    figure.tight_layout()
    return figure


def _with_columns(table: pd.DataFrame, columns) -> pd.DataFrame:
    table = table.copy()
    for column in columns:
        if column not in table.columns:
            table[column] = np.nan
    return table
