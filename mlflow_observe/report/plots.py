"""Reference-versus-current distribution plots, drawn from the profiles' counts alone."""

from __future__ import annotations

import io

import numpy as np

from mlflow_observe.core.profile.kinds import NUMERIC

MAX_CATEGORIES_SHOWN = 15


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display: render to files
    import matplotlib.pyplot as plt

    return plt


def plot_column(reference, current, *, title: str):
    """A bar chart of the reference and current shares in the reference's bins.

    Parameters
    ----------
    reference, current : column profiles of the same column (same layout).
    title : str

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> from mlflow_observe.core.profile.data_profile import build_profile
    >>> baseline = build_profile(pd.DataFrame({"x": [v % 7 * 1.5 for v in range(100)]}))
    >>> png = figure_to_png(plot_column(baseline.columns["x"], baseline.columns["x"], title="x"))
    >>> png[:4] == b"\\x89PNG"
    True
    """
    plt = _pyplot()
    labels, ref_counts, cur_counts = (
        _numeric_bars(reference, current)
        if reference.kind == NUMERIC
        else _categorical_bars(reference, current)
    )
    ref_share = ref_counts / max(ref_counts.sum(), 1)
    cur_share = cur_counts / max(cur_counts.sum(), 1)
    positions = np.arange(len(labels))
    width = 0.4
    figure, axes = plt.subplots(figsize=(max(6.0, 0.55 * len(labels) + 2), 3.6))
    axes.bar(positions - width / 2, ref_share, width, label="reference", color="#4c72b0")
    axes.bar(positions + width / 2, cur_share, width, label="current", color="#dd8452")
    axes.set_xticks(positions)
    axes.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
    axes.set_ylabel("share of rows")
    axes.set_title(plain_text(title), fontsize=10)
    axes.legend(frameon=False)
    figure.tight_layout()
    return figure


def _numeric_bars(reference, current):
    edges = reference.bin_edges
    labels = [f"< {edges[0]:.3g}"]
    if len(edges) == 1:
        labels.append(f"= {edges[0]:.3g}")
    else:
        labels += [f"[{lo:.3g}, {hi:.3g})" for lo, hi in zip(edges[:-2], edges[1:-1], strict=True)]
        labels.append(f"[{edges[-2]:.3g}, {edges[-1]:.3g}]")
    labels.append(f"> {edges[-1]:.3g}")
    return labels, reference.coarse_counts().astype(float), current.coarse_counts().astype(float)


def _categorical_bars(reference, current):
    order = np.argsort(-(reference.counts + current.counts), kind="stable")
    numbers = _as_numbers(reference.categories)
    if numbers is not None and len(order) <= MAX_CATEGORIES_SHOWN:
        # Numbers judged as categories (a 0/1 flag, ratings): in their numeric order.
        order = np.argsort(numbers, kind="stable")
    shown = order[:MAX_CATEGORIES_SHOWN]
    labels = [_short(reference.categories[i]) for i in shown]
    ref_counts = reference.counts[shown].astype(float)
    cur_counts = current.counts[shown].astype(float)
    rest = order[MAX_CATEGORIES_SHOWN:]
    if len(rest):
        labels.append("(other reference categories)")
        ref_counts = np.append(ref_counts, reference.counts[rest].sum())
        cur_counts = np.append(cur_counts, current.counts[rest].sum())
    if current.n_unseen or reference.n_unseen:
        labels.append("(unseen)")
        ref_counts = np.append(ref_counts, reference.n_unseen)
        cur_counts = np.append(cur_counts, current.n_unseen)
    return labels, ref_counts, cur_counts


def _as_numbers(labels):
    try:
        return np.array([float(label) for label in labels])
    except ValueError:
        return None


def plot_impact(impact, *, top: int = 10):
    """Bars of impact x drift for the top features, and the share of prediction shift explained.

    Examples
    --------
    >>> from mlflow_observe.core.drift.root_cause import DriftImpact, ImpactRank
    >>> ranking = [
    ...     ImpactRank("x1", 0.9, 4.0, 3.6, True, 0.8),
    ...     ImpactRank("x2", 0.1, 4.0, 0.4, True),
    ... ]
    >>> figure_to_png(plot_impact(DriftImpact(ranking)))[:4] == b"\\x89PNG"
    True
    """
    plt = _pyplot()
    rows = impact.ranking[:top]
    figure, (left, right) = plt.subplots(
        1, 2, sharey=True, figsize=(8.0, 0.4 * max(len(rows), 1) + 1.6)
    )
    positions = np.arange(len(rows))
    labels = [_short(r.column) for r in rows]
    left.barh(positions, [r.score for r in rows], color="#4c72b0")
    left.set_yticks(positions)
    left.set_yticklabels(labels, fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("importance x min(severity, 10)")
    right.barh(positions, [r.explained or 0.0 for r in rows], color="#dd8452")
    right.set_xlabel("share of prediction shift explained")
    figure.suptitle("Drift impact", fontsize=10)
    figure.tight_layout()
    return figure


def plot_attribution(result, *, top: int = 12):
    """Baseline against window: each feature's share of the global importance, side by side.

    Examples
    --------
    >>> from mlflow_observe.core.explain import attribution_drift
    >>> result = attribution_drift({"a": 0.6, "b": 0.4}, {"a": 0.2, "b": 0.8})
    >>> figure_to_png(plot_attribution(result))[:4] == b"\\x89PNG"
    True
    """
    plt = _pyplot()
    features = list(result.share_change)[:top]
    figure, axis = plt.subplots(figsize=(7.0, 0.45 * max(len(features), 1) + 1.6))
    positions = np.arange(len(features))
    height = 0.4
    axis.barh(
        positions - height / 2,
        [result.baseline_share.get(f, 0.0) for f in features],
        height,
        label="baseline",
        color="#4c72b0",
    )
    axis.barh(
        positions + height / 2,
        [result.current_share.get(f, 0.0) for f in features],
        height,
        label="window",
        color="#dd8452",
    )
    axis.set_yticks(positions)
    axis.set_yticklabels([_short(f) for f in features], fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("share of global importance (mean |attribution|)")
    axis.legend(fontsize=8, loc="lower right")
    verdict = "drifted" if result.drifted else "ok"
    axis.set_title(
        f"Attribution drift: nDCG {result.ndcg:.3f}, {verdict} (largest moves first)", fontsize=10
    )
    figure.tight_layout()
    return figure


def _short(label: str, limit: int = 24) -> str:
    label = label if len(label) <= limit else label[: limit - 1] + "…"
    return plain_text(label)


def plain_text(text: str) -> str:
    """Escape ``$`` so that matplotlib shows the text as it is, not as math."""
    return str(text).replace("$", r"\$")


def figure_to_png(figure) -> bytes:
    """Render a figure to PNG bytes and close it."""
    plt = _pyplot()
    try:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()
    finally:
        plt.close(figure)


def _span(low, value, high):
    """Error-bar lengths around ``value``; a bootstrap interval may miss its point (e.g. at 1.0)."""
    return [[max(value - low, 0.0)], [max(high - value, 0.0)]]


def plot_performance(result, *, title: str = "Performance: baseline against window"):
    """Each metric's baseline (with its interval) beside the window's value (with its band).

    Examples
    --------
    >>> from mlflow_observe.core.performance.degradation import DegradationResult, MetricDegradation
    >>> row = MetricDegradation("accuracy", "realised", 0.9, 0.88, 0.92, 0.8, None, None,
    ...                         -0.1, -0.11, 0.03, True)
    >>> figure = plot_performance(DegradationResult("classification", "realised", [row],
    ...                                            True, 100, []))
    >>> figure_to_png(figure)[:4] == b"\\x89PNG"
    True
    """
    plt = _pyplot()
    rows = result.metric_results
    figure, axes = plt.subplots(figsize=(7.0, 0.55 * max(len(rows), 1) + 1.4))
    positions = np.arange(len(rows))
    for i, m in enumerate(rows):
        axes.errorbar(
            m.baseline,
            i + 0.15,
            xerr=_span(m.baseline_low, m.baseline, m.baseline_high),
            fmt="o",
            color="#4c72b0",
            label="baseline (95% interval)" if i == 0 else None,
        )
        band = None if m.band_low is None else _span(m.band_low, m.value, m.band_high)
        axes.errorbar(
            m.value,
            i - 0.15,
            xerr=band,
            fmt="s",
            color="#c62828" if m.degraded else "#dd8452",
            label=f"window ({m.kind})" if i == 0 else None,
        )
    axes.set_yticks(positions)
    axes.set_yticklabels(
        [plain_text(m.metric if m.kind == result.kind else f"{m.metric} ({m.kind})") for m in rows]
    )
    axes.invert_yaxis()
    axes.set_title(plain_text(title), fontsize=10)
    axes.legend(frameon=False, fontsize=8)
    figure.tight_layout()
    return figure
