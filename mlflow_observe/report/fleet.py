"""The fleet overview page: every monitored model version, worst first, one self-contained page."""

from __future__ import annotations

import html

import pandas as pd

from mlflow_observe._version import __version__
from mlflow_observe.report.html import _STYLE

# Row colours by status (the same reds and oranges as the drift report's badges).
_COLOURS = {
    "critical": ("#c62828", "#fdecea"),
    "warning": ("#ef6c00", "#fff4e5"),
    "ok": ("#2e7d32", "#ffffff"),
    "unmonitored": ("#757575", "#f5f5f5"),
}
_EXTRA_STYLE = (
    "tr.row td{background:var(--bg)} td.nowrap{white-space:nowrap}"
    " tr.err td{color:#c62828;background:var(--bg);border-bottom:1px solid #e5e5e5}"
)


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _number(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "&mdash;"
    return _e(format(float(value), spec))


def render_fleet(table: pd.DataFrame, *, links=None, generated=None) -> str:
    """Render the fleet table as one HTML page: cards, then one row per version, worst first.

    Parameters
    ----------
    table : pandas.DataFrame
        The fleet table: ``model``, ``version``, ``status``, ``aliases``,
        ``last_window``, ``rows_last_day``, ``drift_share``, ``headline``,
        ``headline_value``, ``headline_delta``, ``level``, ``gate`` and
        ``error`` (shown under its row), in the order to show.
    links : list of str or None, optional
        Per row, the URL of the version's monitor run (None: no link).
    generated : pandas.Timestamp, optional
        When the page was made (default: now).

    Returns
    -------
    str

    Examples
    --------
    >>> table = pd.DataFrame([{"model": "<churn>", "version": "1", "status": "critical",
    ...     "aliases": "champion", "last_window": "2026-11-26T06:00:00+00:00",
    ...     "rows_last_day": 1440.0, "drift_share": 0.67, "headline": None,
    ...     "headline_value": None, "headline_delta": None, "level": "critical",
    ...     "gate": None, "error": ""}])
    >>> page = render_fleet(table, links=["http://mlflow/#/experiments/1/runs/abc"])
    >>> "&lt;churn&gt;" in page and "<churn>" not in page and "runs/abc" in page
    True
    """
    generated = generated if generated is not None else pd.Timestamp.now(tz="UTC")
    links = list(links) if links is not None else [None] * len(table)
    counts = table["status"].value_counts() if len(table) else pd.Series(dtype=int)
    cards = "".join(
        f"<div class='card'><div class='v' style='color:{_COLOURS[s][0]}'>"
        f"{int(counts.get(s, 0))}</div><div class='k'>{_e(s)}</div></div>"
        for s in _COLOURS
    )
    header = (
        "<tr><th>model</th><th>version</th><th>status</th><th>aliases</th>"
        "<th>last window (UTC)</th><th>rows, last day</th><th>drift share</th>"
        "<th>headline</th><th>value</th><th>delta</th><th>gate</th><th>monitor run</th></tr>"
    )
    rows = [_row(row, link) for row, link in zip(table.to_dict("records"), links, strict=True)]
    if not rows:
        rows = ["<tr><td colspan='12'>No registered model version has a baseline.</td></tr>"]
    return "\n".join(
        [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>Fleet</title><style>{_STYLE}{_EXTRA_STYLE}</style></head><body>",
            "<h1>Fleet</h1>",
            f"<div class='meta'>{len(table)} model version(s) with a baseline, worst first "
            f"&middot; generated {_e(f'{generated:%Y-%m-%d %H:%M} UTC')} by mlflow-observe "
            f"{_e(__version__)}</div>",
            f"<div class='cards'>{cards}</div>",
            f"<table>{header}{''.join(rows)}</table>",
            "<p class='note'>Status: the alert level of the version's last monitored window "
            "(critical, warning), ok, or unmonitored (no window evaluated yet). Headline: the "
            "realised performance metric where labels arrived, else the estimate; delta: "
            "against the baseline.</p>",
            "</body></html>",
        ]
    )


def _row(row: dict, link) -> str:
    status = row.get("status") or "unmonitored"
    colour, background = _COLOURS.get(status, ("#555", "#ffffff"))
    run = (
        f"<a href='{_e(link)}' target='_blank' rel='noopener'>open</a>"
        if link and str(link).startswith(("http://", "https://"))  # no javascript: links
        else "&mdash;"
    )
    cells = [
        f"<td>{_e(row['model'])}</td>",
        f"<td class='num'>{_e(row['version'])}</td>",
        f"<td><span class='badge' style='background:{colour}'>{_e(status)}</span></td>",
        f"<td>{_e(row.get('aliases'))}</td>",
        f"<td class='nowrap'>{_e((row.get('last_window') or '')[:16].replace('T', ' '))}</td>",
        f"<td class='num'>{_number(row.get('rows_last_day'), '.0f')}</td>",
        f"<td class='num'>{_number(row.get('drift_share'), '.2f')}</td>",
        f"<td>{_e((row.get('headline') or '').removeprefix('degradation/'))}</td>",
        f"<td class='num'>{_number(row.get('headline_value'), '.3f')}</td>",
        f"<td class='num'>{_number(row.get('headline_delta'), '+.3f')}</td>",
        f"<td>{_e(row.get('gate'))}</td>",
        f"<td>{run}</td>",
    ]
    line = f"<tr class='row' style='--bg:{background}'>{''.join(cells)}</tr>"
    if row.get("error"):  # under its row, the whole width: errors are long
        line += (
            f"<tr class='err' style='--bg:{background}'><td></td>"
            f"<td colspan='11'>error: {_e(row['error'])}</td></tr>"
        )
    return line
