"""A self-contained HTML drift report: no scripts, no network, every value escaped."""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone

from mlflow_observe._version import __version__

# The key of the impact plot in ``plots`` (shown in the impact section, not with the columns).
IMPACT_PLOT = "(drift impact)"
# The key of the attribution drift plot in ``plots`` (shown in its own section).
ATTRIBUTION_PLOT = "(attribution drift)"
_SECTION_PLOTS = (IMPACT_PLOT, ATTRIBUTION_PLOT)

_STATUS_COLOURS = {
    "ok": "#2e7d32",
    "warning": "#ef6c00",
    "drift": "#c62828",
    "skipped": "#757575",
    "degraded": "#c62828",
}

_STYLE = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px}
.meta{color:#666;font-size:13px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:140px}
.card .v{font-size:20px;font-weight:600} .card .k{font-size:12px;color:#666}
table{border-collapse:collapse;font-size:13px;margin-top:8px}
th,td{border-bottom:1px solid #e5e5e5;padding:5px 9px;text-align:left;vertical-align:top}
th{background:#fafafa} td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}
.plots img{max-width:100%;border:1px solid #eee;margin:6px 0}
.note{color:#666;font-size:12px}
"""


def _e(value) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape("" if value is None else str(value), quote=True)


def _number(value, digits: int = 4) -> str:
    if value is None:
        return "&mdash;"
    return _e(f"{value:.{digits}g}") if isinstance(value, float) else _e(value)


def _band(low, high) -> str:
    return "" if low is None else f"[{_number(low)}, {_number(high)}]"


def _badge(status: str) -> str:
    colour = _STATUS_COLOURS.get(status, "#555")
    return f'<span class="badge" style="background:{colour}">{_e(status)}</span>'


def render_report(
    comparison, *, baseline, options, baseline_label: str, plots: dict, title: str = "Drift report"
) -> str:
    """Render a :class:`~mlflow_observe.core.drift.window.WindowComparison` as one HTML page.

    Parameters
    ----------
    comparison : WindowComparison
    baseline : DataProfile
        The baseline compared with (for category shares and excluded columns).
    options : DriftOptions
        The options used, stated in the report's rules section.
    baseline_label : str
        Where the baseline came from (a run id or URI), shown in the header.
    plots : dict of str to bytes
        Column name to PNG bytes, embedded as data URIs.
    title : str

    Returns
    -------
    str

    Examples
    --------
    >>> import pandas as pd
    >>> from mlflow_observe.comparison import compare
    >>> from mlflow_observe.core.drift.options import DriftOptions
    >>> from mlflow_observe.core.profile.data_profile import build_profile
    >>> baseline = build_profile(pd.DataFrame({"<b>": ["x", "y"] * 20}))
    >>> page = render_report(compare(baseline, pd.DataFrame({"<b>": ["x"] * 40})),
    ...                      baseline=baseline, options=DriftOptions(),
    ...                      baseline_label="runs:/abc", plots={})
    >>> "&lt;b&gt;" in page and "<b>" not in page
    True
    """
    drift = comparison.drift
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)} {_badge(drift.status)}</h1>",
        f"<div class='meta'>Baseline: {_e(baseline_label)} &middot; generated {_e(created)} "
        f"by mlflow-observe {_e(__version__)}</div>",
        _cards(drift),
        _drift_table(drift),
        _unstructured(drift),
        _multivariate(getattr(comparison, "multivariate", None)),
        _impact(getattr(comparison, "impact", None), plots.get(IMPACT_PLOT)),
        _attribution(getattr(comparison, "attribution", None), plots.get(ATTRIBUTION_PLOT)),
        _drifted_segments(getattr(comparison, "segments", None)),
        _detectors(getattr(comparison, "detectors", None)),
        _findings(comparison.integrity),
        _category_changes(comparison, baseline),
        _plots({k: v for k, v in plots.items() if k not in _SECTION_PLOTS}),
        _excluded(baseline.excluded),
        _rules(options),
        "</body></html>",
    ]
    return "\n".join(parts)


def _cards(drift) -> str:
    cards = [
        ("dataset drift", "yes" if drift.dataset_drift else "no"),
        ("drifted columns", f"{drift.n_drifted} of {drift.n_evaluated}"),
        ("share drifted", f"{drift.share_drifted:.0%}"),
        ("prediction drift", {None: "n/a", True: "yes", False: "no"}[drift.prediction_drift]),
        ("target drift", {None: "n/a", True: "yes", False: "no"}[drift.target_drift]),
        ("rows (reference / current)", f"{drift.n_reference:,} / {drift.n_current:,}"),
    ]
    if drift.n_current_logged is not None and drift.n_current_logged != drift.n_current:
        # Load was shed by sampling: the current rows are weighted counts.
        cards.append(
            (
                "current rows logged / represented",
                f"{drift.n_current_logged:,} / {drift.n_current:,}",
            )
        )
    body = "".join(
        f"<div class='card'><div class='v'>{_e(v)}</div><div class='k'>{_e(k)}</div></div>"
        for k, v in cards
    )
    return f"<div class='cards'>{body}</div>"


def _drift_table(drift) -> str:
    rows = []
    order = sorted(
        drift.columns,
        key=lambda c: (
            {"drift": 0, "warning": 1, "ok": 2}.get(c.status, 3),
            c.role != "feature",
            -c.severity,
            c.column,
        ),
    )
    for c in order:
        rows.append(
            "<tr>"
            f"<td>{_e(c.column)}</td><td>{_e(c.role)}</td><td>{_e(c.kind)}</td>"
            f"<td>{_e(c.method or '')}</td><td class='num'>{_number(c.statistic)}</td>"
            f"<td>{_e(c.test or '')}</td><td class='num'>{_number(c.pvalue)}</td>"
            f"<td class='num'>{_number(c.pvalue_adjusted)}</td>"
            f"<td class='num'>{_number(c.threshold)}</td><td>{_e(c.decided_by or '')}</td>"
            f"<td>{_badge(c.status)}</td><td class='note'>{_e(c.note or '')}</td>"
            "</tr>"
        )
    return (
        "<h2>Columns</h2><table><tr><th>column</th><th>role</th><th>kind</th><th>method</th>"
        "<th>statistic</th><th>test</th><th>p-value</th><th>adjusted p-value</th>"
        "<th>threshold</th><th>decided by</th><th>status</th><th>note</th></tr>"
        + "".join(rows)
        + "</table><p class='note'>Every column gets its kind's test and distance. The "
        "p-values of all compared columns are adjusted together for multiple testing "
        "(the adjusted p-value is what a test compares with its threshold); a column "
        "decided by a distance (<code>wasserstein+ks</code>) drifts when the distance reaches "
        "its threshold and its adjusted p-value is below alpha.</p>"
    )


def _unstructured(drift) -> str:
    """Text columns with the terms that separate the window, embeddings with every method."""
    rows = [c for c in drift.columns if c.kind in ("text", "embedding")]
    if not rows:
        return ""
    parts = ["<h2>Text and embedding columns</h2>"]
    for c in rows:
        heading = f"<h3>{_e(c.column)} ({_e(c.kind)}) {_badge(c.status)}</h3>"
        if c.statistic is None:
            parts.append(heading + f"<p class='note'>Not compared: {_e(c.note or '')}</p>")
            continue
        domain = c.statistics[c.method]
        low, high = domain["interval"]
        summary = (
            f"<p>Domain classifier: held-out ROC AUC {_number(c.statistic)} "
            f"(95% interval [{_number(low)}, {_number(high)}]); drifts above "
            f"{_number(c.threshold)}. {_number(domain['n_reference'], 0)} reference and "
            f"{_number(domain['n_current'], 0)} window samples.</p>"
        )
        parts.append(heading + summary)
        if c.kind == "text":
            parts.append(_separating_terms(c.statistics.get("separating_terms", [])))
            parts.append(
                "<p class='note'>Its descriptors (lengths, sentences, non-letter and "
                f"out-of-vocabulary shares) are the columns {_e(c.column)}.&lt;descriptor&gt; "
                "of the drift table and of the plots.</p>"
            )
        else:
            parts.append(_embedding_methods(c.statistics))
    parts.append(
        "<p class='note'>Text: a logistic regression on TF-IDF words and word pairs tells "
        "window texts from reference texts; embeddings: on the vectors and the squares of "
        "random projections. The value is the mean held-out ROC AUC of a stratified 5-fold "
        "cross-validation, judged against the band of the multivariate domain classifier. "
        "A text or embedding column counts once in the share of drifted columns.</p>"
    )
    return "".join(parts)


def _separating_terms(terms) -> str:
    if not terms:
        return "<p class='note'>No term separates the samples.</p>"
    rows = "".join(
        f"<tr><td>{_e(t['term'])}</td><td>{_e(t['side'])}</td>"
        f"<td class='num'>{t['reference_share']:.1%}</td>"
        f"<td class='num'>{t['current_share']:.1%}</td>"
        f"<td class='num'>{_number(t['weight'])}</td></tr>"
        for t in terms
    )
    return (
        "<table><tr><th>term</th><th>more frequent in</th><th>texts holding it (reference)"
        "</th><th>texts holding it (window)</th><th>weight</th></tr>" + rows + "</table>"
    )


def _embedding_methods(statistics: dict) -> str:
    rows = []
    for key, label in (
        ("euclidean", "mean vectors, Euclidean"),
        ("cosine", "mean vectors, cosine"),
    ):
        r = statistics[key]
        rows.append(
            f"<tr><td>{label}</td><td class='num'>{_number(r['statistic'])}</td>"
            f"<td class='num'>{_number(r['pvalue'])}</td><td class='num'>above "
            f"{_number(r['threshold'])}</td><td>{_badge('drift' if r['drifted'] else 'ok')}</td></tr>"
        )
    share = statistics["share_drifted_components"]
    rows.append(
        f"<tr><td>share of drifted components (of {statistics['dimension']})</td>"
        f"<td class='num'>{share:.1%}</td><td></td><td class='num'>above 20%</td>"
        f"<td>{_badge('drift' if statistics['components_drifted'] else 'ok')}</td></tr>"
    )
    return (
        "<table><tr><th>method</th><th>value</th><th>p-value</th><th>drifts when</th>"
        "<th>status</th></tr>" + "".join(rows) + "</table>"
    )


def _multivariate(result) -> str:
    """The multivariate detectors, and the columns that separate the window from the reference."""
    if result is None:
        return ""
    rows = []
    for record in result.to_records():
        statistics = record["statistics"]
        if record["statistic"] is None:
            interval = limit = "&mdash;"
        else:
            low, high = statistics["interval"]
            interval = f"[{_number(low)}, {_number(high)}]"
            limit = (
                f"above {_number(statistics['band'][1])}"
                if "band" in statistics
                else f"above {_number(statistics['threshold'])}"
            )
        rows.append(
            f"<tr><td>{_e(record['column'])}</td><td>{_e(record['method'])}</td>"
            f"<td class='num'>{_number(record['statistic'])}</td><td class='num'>{interval}</td>"
            f"<td class='num'>{limit}</td><td>{_badge(record['status'])}</td>"
            f"<td class='note'>{_e(record['note'] or '')}</td></tr>"
        )
    parts = [
        "<h2>Multivariate drift</h2>",
        f"<p class='note'>Over {len(result.columns)} feature columns, on the baseline's and "
        "the window's row samples.</p>",
        "<table><tr><th>detector</th><th>statistic</th><th>value</th><th>95% interval</th>"
        "<th>drifts when</th><th>status</th><th>note</th></tr>" + "".join(rows) + "</table>",
    ]
    if result.domain is not None:
        ranked = "".join(
            f"<tr><td class='num'>{rank}</td><td>{_e(column)}</td>"
            f"<td class='num'>{_number(value)}</td></tr>"
            for rank, (column, value) in enumerate(result.domain.importances.items(), start=1)
        )
        parts.append(
            "<h3>Columns that separate the window from the reference</h3>"
            "<table><tr><th>rank</th><th>column</th><th>importance (held-out AUC drop)</th>"
            f"</tr>{ranked}</table>"
        )
    if result.reconstruction is not None:
        r = result.reconstruction
        parts.append(
            f"<p class='note'>PCA: {r.n_components} of {r.n_dimensions} encoded dimensions "
            f"kept ({r.variance_kept:.0%} of the reference variance); reference error "
            f"{_number(r.reference_error)} (rows scored by models that did not see them).</p>"
        )
    parts.append(
        "<p class='note'>Domain classifier: gradient-boosted trees tell window rows from "
        "reference rows; the value is the mean held-out ROC AUC of a stratified cross-validation. "
        "The window drifts when it is above the band around 0.5, of half-width the "
        "larger of 0.02 and z(0.999) times the AUC's standard error under no drift "
        "(Mann-Whitney, corrected for the folds' shared training rows). "
        "Importance: the held-out AUC "
        "lost when a column is shuffled. PCA reconstruction: the window's mean distance to its "
        "projection on the reference's leading components; it drifts above the mean error of "
        "left-out reference chunks plus the larger of z(0.999) standard errors and 2%.</p>"
    )
    return "".join(parts)


def _impact(impact, png: bytes | None, top: int = 15) -> str:
    """Features ranked by impact x drift, with the share of prediction drift each explains."""
    if impact is None:
        return ""
    rows = "".join(
        f"<tr><td>{i}</td><td>{_e(r.column)}</td><td class='num'>{r.importance:.1%}</td>"
        f"<td class='num'>{_number(r.severity, 3)}</td><td class='num'>{_number(r.score, 3)}</td>"
        f"<td>{'yes' if r.drifted else 'no'}</td>"
        f"<td class='num'>{'&mdash;' if r.explained is None else _e(f'{r.explained:.0%}')}</td>"
        "</tr>"
        for i, r in enumerate(impact.ranking[:top], start=1)
    )
    shift = (
        ""
        if impact.prediction_shift is None
        else f"<p>Prediction shift ({_e(impact.shift_method)}, reference predictions against "
        f"window predictions on the row samples): {_number(impact.prediction_shift)}.</p>"
    )
    notes = "".join(f"<li>{_e(k)}: {_e(v)}</li>" for k, v in impact.notes.items())
    image = (
        ""
        if png is None
        else (
            f"<div class='plots'><img alt='drift impact' src='data:image/png;base64,"
            f"{base64.b64encode(png).decode('ascii')}'></div>"
        )
    )
    return (
        "<h2>Drift impact</h2>"
        + shift
        + "<table><tr><th>rank</th><th>feature</th><th>importance</th><th>severity</th>"
        "<th>impact x drift</th><th>drifted</th><th>prediction shift explained</th></tr>"
        f"{rows}</table>"
        + image
        + (f"<ul class='note'>{notes}</ul>" if notes else "")
        + "<p class='note'>Importance: the feature's share of the model's permutation importance "
        "on the reference (how much shuffling it moves the predictions). Impact x drift = "
        "importance x min(severity, 10), severity being the column's statistic over its "
        "threshold (or threshold over p-value). Explained: the share of the prediction shift "
        "that goes away when that feature alone is resampled from the reference.</p>"
    )


def _attribution(result, png: bytes | None, top: int = 15) -> str:
    """Attribution drift: baseline against window share per feature, nDCG and the verdict."""
    if result is None:
        return ""
    if not hasattr(result, "share_change"):  # skipped, with its reason
        record = result.to_records()[0]
        return (
            f"<h2>Attribution drift {_badge('skipped')}</h2>"
            f"<p class='note'>Not measured: {_e(record['note'])}.</p>"
        )
    rows = "".join(
        f"<tr><td>{_e(r['feature'])}</td><td class='num'>{r['baseline_share']:.1%}</td>"
        f"<td class='num'>{r['current_share']:.1%}</td>"
        f"<td class='num'>{100 * r['share_change']:+.1f}</td>"
        f"<td class='num'>{_e(r['baseline_rank'])} &rarr; {_e(r['current_rank'])}</td></tr>"
        for r in result.feature_records()[:top]
    )
    image = (
        ""
        if png is None
        else (
            f"<div class='plots'><img alt='attribution drift' src='data:image/png;base64,"
            f"{base64.b64encode(png).decode('ascii')}'></div>"
        )
    )
    source = {
        "logged": "attributions logged with the predictions",
        "computed": "attributions computed on the window's row sample",
    }.get(result.source or "", "attributions")
    return (
        f"<h2>Attribution drift {_badge('drift' if result.drifted else 'ok')}</h2>"
        f"<p>nDCG of the top {result.top_k} features: {_number(result.ndcg, 3)} "
        f"(drifts below {_number(result.threshold, 3)}); largest share move "
        f"{max((abs(v) for v in result.share_change.values()), default=0.0):.1%} "
        f"(drifts above {result.max_share_change:.0%}); {_e(result.n_current)} rows, "
        f"{_e(source)} ({_e(result.method or 'method not recorded')}).</p>"
        "<table><tr><th>feature</th><th>baseline share</th><th>window share</th>"
        f"<th>change (points)</th><th>rank</th></tr>{rows}</table>"
        + image
        + "<p class='note'>A feature's share is its mean absolute attribution over the sum of "
        "all features' (the model's global importance), on the baseline's sample and on the "
        "window. The window drifts when the nDCG of its top features, each worth its baseline "
        "importance, falls below the threshold, or when one feature's share moves by more "
        "than the largest share move allowed. A feature can move here while its own "
        "distribution is calm: the model leans on it more or less because another feature "
        "changed.</p>"
    )


def _drifted_segments(segments, top: int = 15) -> str:
    """The segments that drifted most (each against the whole baseline)."""
    if segments is None:
        return ""
    if not segments:
        return "<h2>Segments</h2><p class='note'>No segment has enough rows (min_segment_size).</p>"
    rows = "".join(
        f"<tr><td>{_e(s.column)}</td><td>{_e(s.value)}</td><td class='num'>{s.n_rows:,}</td>"
        f"<td class='num'>{s.drift.n_drifted} of {s.drift.n_evaluated}</td>"
        f"<td class='num'>{_number(s.score, 3)}</td>"
        f"<td>{_e(', '.join(s.drift.drifted_columns[:8]) or '-')}</td>"
        f"<td>{_badge(s.drift.status)}</td></tr>"
        for s in list(segments)[:top]
    )
    return (
        "<h2>Segments that drifted most</h2><table><tr><th>column</th><th>segment</th>"
        "<th>rows</th><th>drifted columns</th><th>mean severity</th><th>which</th>"
        f"<th>status</th></tr>{rows}</table><p class='note'>Each segment of the window is "
        "compared with the whole baseline; small values are pooled into (other).</p>"
    )


def _detectors(result) -> str:
    """The alibi-detect detectors asked for: one row each, with its verdict."""
    if result is None:
        return ""
    rows = "".join(
        f"<tr><td>{_e(r['column'])}</td><td>{_e(r['kind'])}</td>"
        f"<td class='num'>{_number(r['statistic'])}</td>"
        f"<td class='num'>{_number(r['pvalue'])}</td>"
        f"<td class='num'>{_number(r['threshold'])}</td>"
        f"<td class='num'>{_e(r['n_reference'] or '')} / {_e(r['n_current'] or '')}</td>"
        f"<td>{_badge(r['status'])}</td><td class='note'>{_e(r['note'] or '')}</td></tr>"
        for r in result.to_records()
    )
    return (
        "<h2>alibi-detect detectors</h2><table><tr><th>detector</th><th>kind</th>"
        "<th>distance</th><th>p-value</th><th>drifts below</th><th>sample rows</th>"
        "<th>status</th><th>note</th></tr>" + rows + "</table>"
        "<p class='note'>Run by alibi-detect on the baseline's and the window's row samples. "
        "Feature-wise detectors test each column and show the smallest p-value, judged "
        "against alibi-detect's Bonferroni-corrected threshold; <code>alibi:mmd:&lt;column&gt;"
        "</code> is MMD on an embedding column's own vector samples. These detectors do not "
        "change the columns' or the dataset's verdict above.</p>"
    )


def _findings(integrity) -> str:
    if not integrity.findings:
        return "<h2>Data integrity</h2><p>No findings.</p>"
    rows = "".join(
        f"<tr><td>{_e(f.severity)}</td><td>{_e(f.check)}</td><td>{_e(f.column or '')}</td>"
        f"<td>{_e(f.message)}</td></tr>"
        for f in integrity.findings
    )
    return (
        "<h2>Data integrity</h2><table><tr><th>severity</th><th>check</th><th>column</th>"
        f"<th>finding</th></tr>{rows}</table>"
    )


def _category_changes(comparison, baseline, top: int = 5) -> str:
    """For categorical columns that drifted or warn, the categories whose share moved most."""
    blocks = []
    for c in comparison.drift.columns:
        if c.kind not in ("categorical", "boolean") or c.status not in ("drift", "warning"):
            continue
        ref, cur = baseline.columns[c.column], comparison.current.columns[c.column]
        labels = [*ref.categories, "(unseen)"]
        ref_share = [*(ref.counts / max(ref.count, 1)), ref.n_unseen / max(ref.count, 1)]
        cur_share = [*(cur.counts / max(cur.count, 1)), cur.n_unseen / max(cur.count, 1)]
        moves = sorted(
            zip(labels, ref_share, cur_share, strict=True), key=lambda m: -abs(m[2] - m[1])
        )[:top]
        rows = "".join(
            f"<tr><td>{_e(label)}</td><td class='num'>{r:.1%}</td><td class='num'>{k:.1%}</td>"
            f"<td class='num'>{k - r:+.1%}</td></tr>"
            for label, r, k in moves
        )
        blocks.append(
            f"<h3>{_e(c.column)}</h3><table><tr><th>category</th><th>reference</th>"
            f"<th>current</th><th>change</th></tr>{rows}</table>"
        )
    if not blocks:
        return ""
    return "<h2>Largest category changes</h2>" + "".join(blocks)


def _plots(plots: dict, heading: str = "Distributions (most drifted first)") -> str:
    if not plots:
        return ""
    images = "".join(
        f"<div><img alt='{_e(name)}' src='data:image/png;base64,"
        f"{base64.b64encode(png).decode('ascii')}'></div>"
        for name, png in plots.items()
    )
    return f"<h2>{_e(heading)}</h2><div class='plots'>{images}</div>"


def _excluded(excluded: dict) -> str:
    if not excluded:
        return ""
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in excluded.items())
    return (
        f"<h2>Columns not compared</h2><table><tr><th>column</th><th>reason</th></tr>{rows}</table>"
    )


def _rules(options) -> str:
    from mlflow_observe.core.drift.options import DEFAULT_THRESHOLDS

    def limit(method):
        return options.threshold if options.threshold is not None else DEFAULT_THRESHOLDS[method]

    method = (
        f"Every column uses {options.method!r}."
        if options.method != "auto"
        else f"When the reference or the window has fewer than {options.small_sample_size} "
        "values in a column, it gets a hypothesis test: Kolmogorov-Smirnov for numbers, "
        "the two-proportion Z-test for two categories, "
        f"chi-square otherwise; a column drifts at p &lt; {limit('ks'):g}. Larger samples get "
        f"distances: Wasserstein-1 divided by the reference standard deviation "
        f"&ge; {limit('wasserstein'):g} for numbers, Jensen-Shannon distance "
        f"&ge; {limit('js'):g} for categories."
    )
    overrides = ""
    if options.methods or options.thresholds:
        overrides = (
            f" Per-column overrides: methods {_e(dict(options.methods))}, "
            f"thresholds {_e(dict(options.thresholds))}."
        )
    correction = {
        "bh": "Benjamini-Hochberg",
        "bonferroni": "Bonferroni",
        "none": "no",
    }[options.effective_correction]
    guarded = (
        None
        if options.require_significance is False
        else "A distance counts"
        if options.guards("wasserstein")
        else "A Jensen-Shannon distance or PSI counts"
    )
    guard = (
        f" {guarded} only when the column's adjusted p-value is also below {options.alpha:g}"
        + (
            "."
            if options.guards("wasserstein")
            else "; the Wasserstein distance counts once past its own sampling noise (the "
            f"Kolmogorov-Smirnov test or Welch's t-test on the means below {options.alpha:g}, "
            "uncorrected)."
        )
        if guarded
        else ""
    )
    suggestive = (
        f" with an adjusted p-value below {options.alpha:g}"
        if options.require_significance is not False
        else ""
    )
    dataset = (
        f"The dataset drifts when at least {options.drift_share:.0%} of the feature columns drift."
        if options.dataset_method == "share"
        else "The dataset drifts when any feature column drifts."
    )
    return (
        f"<h2>How columns are judged</h2><p class='note'>{method}{overrides} The p-values of "
        f"all compared columns get {correction} correction for multiple testing, and tests "
        f"compare the adjusted p-values with their thresholds.{guard} A warning is a "
        f"distance at {options.warning_ratio:g} of its threshold or more{suggestive}, or an adjusted "
        f"p-value below {options.pvalue_warning_ratio:g} times its threshold. {dataset}</p>"
    )


def render_degradation_report(
    result,
    *,
    baseline_label: str,
    plot: bytes | None = None,
    segments=(),
    errors=None,
    title: str = "Performance report",
) -> str:
    """Render a degradation result as one HTML page.

    The result is a :class:`~mlflow_observe.core.performance.degradation.DegradationResult`.

    Examples
    --------
    >>> from mlflow_observe.core.performance.degradation import DegradationResult
    >>> page = render_degradation_report(DegradationResult("classification", "realised", [],
    ...                                  False, 0, ["<new class>"]), baseline_label="runs:/abc")
    >>> "&lt;new class&gt;" in page
    True
    """
    status = "degraded" if result.degraded else "ok"
    rows = "".join(
        f"<tr><td>{_e(m.metric)}</td><td>{_e(m.kind)}</td>"
        f"<td class='num'>{'' if m.n_rows is None else f'{m.n_rows:,}'}</td>"
        f"<td class='num'>{_number(m.baseline)}</td>"
        f"<td class='num'>[{_number(m.baseline_low)}, {_number(m.baseline_high)}]</td>"
        f"<td class='num'>{_number(m.value)}</td>"
        f"<td class='num'>{_band(m.band_low, m.band_high)}</td>"
        f"<td class='num'>{_number(m.delta)}</td><td class='num'>{_number(m.margin)}</td>"
        f"<td>{_badge('degraded' if m.degraded else 'ok')}</td></tr>"
        for m in result.metric_results
    )
    findings = "".join(f"<li>{_e(f)}</li>" for f in result.findings)
    assumptions = (
        "<p class='note'>Estimated without labels (confidence-based performance estimation): "
        "it assumes the baseline's calibrated probabilities stay calibrated, that is, no "
        "concept drift (the relation between features and labels is unchanged). Once labels "
        "arrive, compare the realised metrics: a gap means the assumption broke.</p>"
        if any(m.kind == "estimated" for m in result.metric_results)
        else ""
    )
    counted = (
        ""
        if result.n_labelled is None
        else f" ({result.n_labelled:,} labelled, {result.n_rows - result.n_labelled:,} unlabelled)"
    )
    if result.n_represented is not None and result.n_represented != result.n_rows:
        counted += f", standing for {result.n_represented:,.0f} rows of traffic (sampled, weighted)"
    return "\n".join(
        [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{_e(title)} {_badge(status)}</h1>",
            f"<div class='meta'>Baseline: {_e(baseline_label)} &middot; {_e(result.kind)} "
            f"{_e(result.task)} metrics on {result.n_rows:,} rows{counted} &middot; mlflow-observe "
            f"{_e(__version__)}</div>",
            "<h2>Metrics</h2><table><tr><th>metric</th><th>kind</th><th>rows</th><th>baseline</th>"
            "<th>baseline interval</th><th>window</th><th>band</th><th>delta</th>"
            f"<th>margin</th><th>status</th></tr>{rows}</table>",
            f"<h2>Findings</h2><ul>{findings}</ul>" if findings else "",
            _worst_segments(segments),
            _error_features(errors),
            _plots({"baseline against window": plot}, "Baseline against window") if plot else "",
            assumptions,
            "<p class='note'>A metric is degraded when it is worse than the baseline by more "
            "than the margin: the half-width of the baseline's 95% bootstrap interval on the "
            "worse side, widened by sqrt(1 + reference rows / window rows) for the window's own "
            "sampling noise, "
            "plus the tolerance times the baseline value.</p>",
            "</body></html>",
        ]
    )


def _error_features(errors, top: int = 10) -> str:
    """The features the model leaned on more where it erred (attributions, wrong vs right)."""
    if errors is None:
        return ""
    good, bad = errors.groups
    if not errors.features:
        return f"<h2>Features behind the errors</h2><p class='note'>Not measured: {_e(errors.note)}.</p>"
    rows = "".join(
        f"<tr><td>{_e(r['feature'])}</td><td class='num'>{r['good_share']:.1%}</td>"
        f"<td class='num'>{r['bad_share']:.1%}</td>"
        f"<td class='num'>{100 * r['share_difference']:+.1f}</td>"
        f"<td class='num'>{_number(r['good_importance'], 3)}</td>"
        f"<td class='num'>{_number(r['bad_importance'], 3)}</td></tr>"
        for r in errors.features[:top]
    )
    return (
        "<h2>Features behind the errors</h2>"
        f"<p>Attributions on {errors.n_bad:,} {_e(bad)} and {errors.n_good:,} {_e(good)} rows "
        f"({_e(errors.source or '')}): the features whose share of the attributions rises most "
        f"on the {_e(bad)} rows first.</p>"
        f"<table><tr><th>feature</th><th>share, {_e(good)}</th><th>share, {_e(bad)}</th>"
        "<th>difference (points)</th><th>mean |attribution|, "
        f"{_e(good)}</th><th>mean |attribution|, {_e(bad)}</th></tr>{rows}</table>"
        "<p class='note'>A feature's share is its mean absolute attribution over the sum of "
        "all features', within each group. A rise on the wrong (high-error) rows means the "
        "model leaned on that feature where it erred: a broken or shifted input, or a relation "
        "to the label that changed. A feature the model ignores cannot show here; the worst "
        "segments above may.</p>"
    )


def _worst_segments(segments, top: int = 10) -> str:
    if not segments:
        return ""
    rows = "".join(
        f"<tr><td>{_e(s.column)}</td><td>{_e(s.value)}</td><td class='num'>{s.n_rows:,}</td>"
        f"<td>{_e(', '.join(m.metric for m in s.result.metric_results if m.degraded) or '-')}</td>"
        f"<td class='num'>{s.worst_change():.1%}</td>"
        f"<td>{_badge('degraded' if s.result.degraded else 'ok')}</td></tr>"
        for s in list(segments)[:top]
    )
    return (
        "<h2>Worst segments</h2><table><tr><th>column</th><th>segment</th><th>rows</th>"
        "<th>degraded metrics</th><th>worst relative change</th><th>status</th></tr>"
        f"{rows}</table>"
    )
