"""Drift on free-text columns: per-row descriptors and a TF-IDF domain classifier.

The descriptors (:func:`text_descriptors`) and the baseline's vocabulary
(:class:`TextVocabulary`) belong to the profile and are described in
:mod:`mlflow_observe.core.profile.text`; they are imported here too, so that
the text detectors have one home.

**Domain classifier** (:func:`text_domain_drift`). A TF-IDF representation (words
and word pairs, sublinear term frequency) of both samples feeds a logistic
regression trained to tell window texts from reference texts, with stratified
K-fold cross-validation; the held-out ROC AUC is judged against the same null
band as the multivariate domain classifier (:mod:`mlflow_observe.core.stats.auc`).
The representation is fitted on both samples' texts without their labels, so
no label leaks into it. The terms whose coefficients separate the samples most
(in a model fitted on all rows) are the *why*: the words and word pairs much
more frequent on one side, with the share of texts holding each on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlflow_observe.core._validation import InstanceOf, Interval, checked
from mlflow_observe.core.drift.multivariate import MIN_ROWS, WindowTooSmallError
from mlflow_observe.core.profile.text import (
    MAX_VOCABULARY,
    TEXT_DESCRIPTORS,
    TOKEN_PATTERN,
    TextVocabulary,
    as_texts,
    descriptor_column,
    text_descriptors,
)
from mlflow_observe.core.stats.auc import held_out_auc

MAX_CLASSIFIER_ROWS = 10_000  # texts a side in the domain classifier (see text_domain_drift)

__all__ = [
    "MAX_CLASSIFIER_ROWS",
    "MAX_VOCABULARY",
    "TEXT_DESCRIPTORS",
    "TOKEN_PATTERN",
    "TextDriftResult",
    "TextVocabulary",
    "descriptor_column",
    "text_descriptors",
    "text_domain_drift",
]


@dataclass(frozen=True)
class TextDriftResult:
    """How well a classifier on TF-IDF tells the window's texts from the reference's.

    Attributes
    ----------
    statistic : float
        The mean held-out ROC AUC over the folds (0.5: inseparable).
    pvalue : float
        One-sided p-value of the AUC against 0.5.
    interval, band : tuple of float
        95% interval of the AUC, and the band inside which the samples count as alike.
    drifted : bool
        True when the AUC is above the band.
    separating_terms : tuple of dict
        The terms that separate the samples most, the most telling first: ``term``,
        ``side`` (``"window"`` or ``"reference"``: where the term is more frequent),
        ``weight`` (its coefficient), ``reference_share`` and ``current_share``
        (the share of texts holding it on each side).
    fold_statistics : tuple of float
        Each fold's held-out AUC.
    n_reference, n_current : int
        Texts compared on each side.
    """

    statistic: float
    pvalue: float
    interval: tuple
    band: tuple
    drifted: bool
    separating_terms: tuple
    fold_statistics: tuple
    n_reference: int
    n_current: int

    @property
    def threshold(self) -> float:
        """The AUC above which the window drifts: the band's upper edge."""
        return self.band[1]


@checked(
    {
        "n_splits": [Interval(int, 2, 20)],
        "alpha": [Interval(float, 0, 1, closed="neither")],
        "min_margin": [Interval(float, 0, 0.5, closed="left")],
        "max_features": [Interval(int, 1, None)],
        "n_terms": [Interval(int, 0, None)],
        "random_state": [Interval(int, 0, None)],
        "ngram_range": [InstanceOf(tuple)],
        "max_rows": [Interval(int, 100, None), None],
    }
)
def text_domain_drift(
    reference,
    current,
    *,
    n_splits: int = 5,
    alpha: float = 0.001,
    min_margin: float = 0.02,
    max_features: int = 20_000,
    ngram_range: tuple = (1, 2),
    n_terms: int = 10,
    random_state: int = 0,
    max_rows: int | None = MAX_CLASSIFIER_ROWS,
) -> TextDriftResult:
    """Detect text drift with a TF-IDF classifier trained to tell window texts from reference texts.

    Parameters
    ----------
    reference, current : array_like of str
        The two samples of texts (missing texts are left out).
    n_splits : int, default=5
        Cross-validation folds.
    alpha : float, default=0.001
        One-sided level of the band's statistical half-width.
    min_margin : float, default=0.02
        The band's smallest half-width.
    max_features : int, default=20000
        The TF-IDF representation keeps this many terms at most (the most frequent).
    ngram_range : tuple of int, default=(1, 2)
        Words, and word pairs.
    n_terms : int, default=10
        Separating terms reported on each side.
    random_state : int, default=0
        Seed of the folds and of the samples.
    max_rows : int or None, default=10000
        Each side keeps this many texts at most, drawn at random without
        replacement (None keeps them all). The held-out AUC test is valid at any
        size; beyond ten thousand texts a side it gains little power and its cost
        grows with every text (the representation, five fits).

    Returns
    -------
    TextDriftResult

    Raises
    ------
    WindowTooSmallError
        When either sample has fewer than ``MIN_ROWS`` (100) texts.

    Examples
    --------
    Reviews that start talking about delivery:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> words = ["good", "great", "food", "service", "price", "staff", "table", "menu"]
    >>> def texts(extra, n=300):
    ...     return [" ".join(rng.choice(words + extra, 8)) for _ in range(n)]
    >>> result = text_domain_drift(texts([]), texts(["delivery", "late", "courier"]))
    >>> result.drifted, result.separating_terms[0]["side"]
    (True, 'window')
    >>> sorted(t["term"] for t in result.separating_terms[:3])
    ['courier', 'delivery', 'late']
    >>> text_domain_drift(texts([]), texts([])).drifted
    False
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    reference = as_texts(reference).dropna().astype(str).reset_index(drop=True)
    current = as_texts(current).dropna().astype(str).reset_index(drop=True)
    if max_rows is not None:
        reference = _at_most(reference, max_rows, random_state)
        current = _at_most(current, max_rows, random_state + 1)
    for side, texts, hint in (
        ("reference", reference, "Use a larger reference (or baseline sample_size)."),
        ("window", current, "Use a longer window."),
    ):
        if len(texts) < MIN_ROWS:
            raise WindowTooSmallError(
                f"The text domain classifier needs at least {MIN_ROWS} texts in the {side} "
                f"sample; it has {len(texts)}. {hint}"
            )
    vectorizer = TfidfVectorizer(
        token_pattern=TOKEN_PATTERN,
        ngram_range=tuple(ngram_range),
        max_features=max_features,
        sublinear_tf=True,
        dtype=np.float32,
    )
    try:
        x = vectorizer.fit_transform(pd.concat([reference, current], ignore_index=True))
    except ValueError:  # no text holds a word: nothing separates them on words
        x = None
    y = np.r_[np.zeros(len(reference), dtype=int), np.ones(len(current), dtype=int)]

    def model():
        return LogisticRegression(C=1.0, class_weight="balanced", solver="liblinear")

    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    fold_labels, fold_scores = [], []
    for train, test in folds.split(np.zeros(len(y)), y):
        fold_labels.append(y[test])
        if x is None:
            fold_scores.append(np.zeros(len(test)))
            continue
        fold_scores.append(model().fit(x[train], y[train]).decision_function(x[test]))
    judged = held_out_auc(fold_labels, fold_scores, alpha=alpha, min_margin=min_margin)
    terms: tuple = ()
    if x is not None and n_terms:
        terms = _separating_terms(model().fit(x, y), vectorizer, x, y, n_terms)
    return TextDriftResult(
        statistic=judged.statistic,
        pvalue=judged.pvalue,
        interval=judged.interval,
        band=judged.band,
        drifted=judged.drifted,
        separating_terms=terms,
        fold_statistics=judged.fold_statistics,
        n_reference=len(reference),
        n_current=len(current),
    )


def _at_most(texts: pd.Series, n: int, seed: int) -> pd.Series:
    """``texts``, or ``n`` of them drawn at random (in their order) when there are more."""
    if len(texts) <= n:
        return texts
    rows = np.sort(np.random.default_rng(seed).choice(len(texts), n, replace=False))
    return texts.iloc[rows].reset_index(drop=True)


def _separating_terms(model, vectorizer, x, y, n_terms: int) -> tuple:
    names = vectorizer.get_feature_names_out()
    weights = model.coef_.ravel()
    holds = x > 0
    reference_share = np.asarray(holds[y == 0].mean(axis=0)).ravel()
    current_share = np.asarray(holds[y == 1].mean(axis=0)).ravel()
    order = np.argsort(weights)
    window_side = [i for i in order[::-1][:n_terms] if weights[i] > 0]
    reference_side = [i for i in order[:n_terms] if weights[i] < 0]
    chosen = sorted(window_side + reference_side, key=lambda i: -abs(weights[i]))
    return tuple(
        {
            "term": str(names[i]),
            "side": "window" if weights[i] > 0 else "reference",
            "weight": float(weights[i]),
            "reference_share": float(reference_share[i]),
            "current_share": float(current_share[i]),
        }
        for i in chosen
    )
