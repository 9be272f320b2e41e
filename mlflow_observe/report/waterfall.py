"""A waterfall of one prediction: from the base value, feature by feature, to the prediction."""

from __future__ import annotations

import numpy as np

from mlflow_observe.report.plots import _pyplot, plain_text


def plot_waterfall(
    attributions: dict,
    *,
    base_value: float,
    prediction: float,
    values: dict | None = None,
    title: str = "Why this prediction",
    top: int = 10,
):
    """Horizontal steps: the largest attributions each on a bar, the rest summed on one.

    Examples
    --------
    >>> from mlflow_observe.report.plots import figure_to_png
    >>> figure = plot_waterfall({"age": 0.3, "plan": -0.1}, base_value=0.2, prediction=0.4)
    >>> figure_to_png(figure)[:4] == b"\\x89PNG"
    True
    """
    plt = _pyplot()
    ranked = sorted(attributions.items(), key=lambda item: -abs(item[1]))
    shown, rest = ranked[:top], ranked[top:]
    labels = []
    for name, _ in shown:
        value = (values or {}).get(name)
        labels.append(plain_text(f"{name} = {_short_value(value)}" if values else name))
    steps = [float(v) for _, v in shown]
    if rest:
        labels.append(f"{len(rest)} other features")
        steps.append(float(sum(v for _, v in rest)))
    # Draw from the bottom up: base value first, the prediction last.
    labels, steps = labels[::-1], steps[::-1]
    starts = base_value + np.concatenate([[0.0], np.cumsum(steps)[:-1]])
    figure, axes = plt.subplots(figsize=(7.5, 0.42 * len(steps) + 1.6))
    colours = ["#c44e52" if step > 0 else "#4c72b0" for step in steps]
    positions = np.arange(len(steps))
    axes.barh(positions, steps, left=starts, color=colours)
    for position, start, step in zip(positions, starts, steps, strict=True):
        axes.text(
            start + step,
            position,
            f" {step:+.3g}",
            va="center",
            ha="left" if step >= 0 else "right",
            fontsize=8,
        )
    axes.set_yticks(positions)
    axes.set_yticklabels(labels, fontsize=8)
    axes.axvline(base_value, color="grey", linewidth=0.8, linestyle="--")
    axes.axvline(prediction, color="black", linewidth=0.8)
    axes.set_xlabel(f"base value {base_value:.3g}  ->  prediction {prediction:.3g}")
    axes.set_title(plain_text(title), fontsize=10)
    figure.tight_layout()
    return figure


def _short_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 20 else text[:19] + "…"
