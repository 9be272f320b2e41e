"""Text and embedding drift in the core: the held-out AUC test, descriptors, detectors.

Text detectors are checked on real corpora (Guardian headlines before and during
the first months of 2020's pandemic; Rotten Tomatoes critics' snippets against
plot summaries), embeddings on synthetic vectors with a known mean shift, a
known correlation-only change and no change.
"""

from __future__ import annotations

import math
import re
import unicodedata

import numpy as np
import pandas as pd
import pytest
from corpora import guardian_headlines, rotten_tomatoes
from scipy import stats
from sklearn.metrics import roc_auc_score

from mlflow_observe.core.drift.multivariate import WindowTooSmallError
from mlflow_observe.core.drift.unstructured import (
    TextVocabulary,
    embedding_drift,
    text_descriptors,
    text_domain_drift,
)
from mlflow_observe.core.drift.unstructured.embedding import as_vectors
from mlflow_observe.core.stats.auc import held_out_auc

# -- the held-out AUC test ---------------------------------------------------------------


def test_held_out_auc_agrees_with_sklearn_and_the_mann_whitney_null():
    rng = np.random.default_rng(3)
    labels = [rng.permutation(np.repeat([0, 1], [120, 80])) for _ in range(5)]
    scores = [y * 0.3 + rng.normal(size=len(y)) for y in labels]
    result = held_out_auc(labels, scores, alpha=0.01, min_margin=0.0)
    expected = [roc_auc_score(y, s) for y, s in zip(labels, scores, strict=True)]
    assert result.fold_statistics == pytest.approx(expected)
    assert result.statistic == pytest.approx(np.mean(expected))
    # The null variance of one fold's AUC is (n + 1) / (12 n0 n1); five folds widen it by
    # 1/5 + 1/4 (Nadeau and Bengio).
    se_null = math.sqrt((1 / 5 + 1 / 4) * (201 / (12 * 120 * 80)))
    assert result.pvalue == pytest.approx(stats.norm.sf((result.statistic - 0.5) / se_null))
    assert result.band[1] == pytest.approx(0.5 + stats.norm.ppf(0.99) * se_null)
    assert result.interval[0] < result.statistic < result.interval[1]


def test_held_out_auc_stays_in_its_band_on_noise_and_refuses_one_class_folds():
    rng = np.random.default_rng(4)
    drifted = 0
    for _ in range(300):
        labels = [rng.permutation(np.repeat([0, 1], 100)) for _ in range(5)]
        result = held_out_auc(labels, [rng.normal(size=200) for _ in labels], min_margin=0.0)
        drifted += result.drifted
    assert drifted <= 3  # alpha = 0.001: about 0.3 expected in 300
    with pytest.raises(ValueError, match="both reference"):
        held_out_auc([np.zeros(10), np.r_[np.zeros(5), np.ones(5)]], [np.ones(10)] * 2)
    with pytest.raises(ValueError, match="at least 2 folds"):
        held_out_auc([np.r_[0, 1]], [np.r_[0.1, 0.2]])


# -- text descriptors ---------------------------------------------------------------------


def _reference_descriptors(text, vocabulary):
    """A plain Python statement of each descriptor, letter by letter."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return [math.nan] * 5
    text = str(text)
    letters = sum(unicodedata.category(ch).startswith("L") for ch in text)
    words = text.split()
    ends = len(re.findall(r"[.!?]+(?:\s|$)", text))
    if words and not text.rstrip().endswith((".", "!", "?")):
        ends += 1
    tokens = re.findall(r"(?u)\b\w\w+\b", text.lower())
    oov = sum(t not in vocabulary for t in tokens) / len(tokens) if tokens else math.nan
    non_letter = 1 - letters / len(text) if text else math.nan
    return [len(text), len(words), ends, non_letter, oov]


def test_descriptors_match_a_letter_by_letter_reference_on_awkward_texts():
    vocabulary = TextVocabulary.fit(["the service was good", "café au lait", "naïve 42"])
    texts = [
        "The service was GOOD!",
        "Café au lait… naïve? Très bien.",
        "",
        "   ",
        "42 42 42",
        "emoji only 🙂🙂",
        None,
        float("nan"),
        12345,
        "Ends without a stop",
        "Two. Sentences here",
        "tab\tseparated\nlines",
    ]
    table = text_descriptors(pd.Series(texts, dtype=object), vocabulary)
    expected = [_reference_descriptors(t, vocabulary.words) for t in texts]
    assert table.shape == (len(texts), 5)
    np.testing.assert_allclose(table.to_numpy(dtype=float), np.array(expected), equal_nan=True)


def _regex_descriptors(strings: pd.Series, vocabulary) -> np.ndarray:
    """The descriptors by one regular expression per text (what the code-point tables replace)."""
    from sklearn.feature_extraction.text import CountVectorizer

    characters = strings.str.len().to_numpy(dtype=float)
    letters = strings.str.count(r"[^\W\d_]").to_numpy(dtype=float)
    words = strings.str.split().str.len().to_numpy(dtype=float)
    sentences = strings.str.count(r"[.!?]+(?:\s|$)").to_numpy(dtype=float)
    unfinished = ~strings.str.rstrip().str.contains(r"[.!?]$", regex=True).to_numpy(dtype=bool)
    sentences = sentences + ((words > 0) & unfinished)
    counter = CountVectorizer(token_pattern=r"(?u)\b\w\w+\b")
    counts = counter.fit_transform(strings)
    tokens = np.asarray(counts.sum(axis=1), dtype=float).ravel()
    kept = [i for i, w in enumerate(counter.get_feature_names_out()) if w in vocabulary]
    known = np.asarray(counts[:, kept].sum(axis=1), dtype=float).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        non_letter = np.where(characters > 0, 1 - letters / characters, np.nan)
        oov = np.where(tokens > 0, 1 - known / tokens, np.nan)
    return np.column_stack([characters, words, sentences, non_letter, oov])


def test_descriptors_equal_the_regular_expressions_on_a_corpus_and_odd_unicode(
    tomatoes, monkeypatch
):
    from mlflow_observe.core.profile import _characters

    rng = np.random.default_rng(0)
    corpus = tomatoes["text"].sample(3000, random_state=0).tolist()
    odd = [
        "",
        "\x00",
        "İstanbul İİ",  # lower-cases to more characters
        "e\u0301te\u0301 combining",
        "\ud7ff\ue000 around the surrogates.",
        "\U0010ffff\ue000 private \U0001d400\U0001d401 \U0001f642. \U0001d7ce\U0001d7cf",
        "x" * 5000 + ". " + "y",
        "\x1c\x1d\x1e\x1f\x85\u2028 separators!",
        "end!?!",
        "a.b.c",
        "_under_score_ 2x x2 ²³ ½",
        "\u3000ideographic\u3000space\u3002",
        "!!! ... ???",
    ]
    texts = corpus + odd + ["".join(rng.choice(list(" .!?aé字_1\n\t"), 40)) for _ in range(300)]
    vocabulary = TextVocabulary.fit(corpus[:1500])
    expected = _regex_descriptors(pd.Series(texts, dtype=object), vocabulary.words)
    for chunk in (1 << 23, 997):  # one chunk, and many (a chunk boundary inside the texts)
        monkeypatch.setattr(_characters, "CHUNK_CHARACTERS", chunk)
        table = text_descriptors(pd.Series(texts, dtype=object), vocabulary)
        np.testing.assert_allclose(table.to_numpy(dtype=float), expected, equal_nan=True)


def test_descriptors_without_vocabulary_leave_oov_missing_and_keep_pandas_strings():
    texts = pd.Series(["a b", None, "c"], dtype="string")
    table = text_descriptors(texts)
    assert table["oov_share"].isna().all()
    assert table["length_words"].tolist()[0] == 2 and math.isnan(table["length_words"][1])


def test_vocabulary_merges_exactly_until_cut_and_refuses_corrupt_dicts():
    first, second = ["red apple", "green apple pie"], ["apple tart", "red wine", None]
    merged = TextVocabulary.fit(first).merge(TextVocabulary.fit(second))
    whole = TextVocabulary.fit(first + second)
    assert merged == whole and not merged.truncated
    assert TextVocabulary.from_dict(whole.to_dict()) == whole
    small = TextVocabulary.fit(first + second, max_size=2)
    assert small.truncated and set(small.document_frequency) == {"apple", "red"}
    with pytest.raises(ValueError, match="document_frequency"):
        TextVocabulary.from_dict({"document_frequency": {"apple": -1}})
    with pytest.raises(ValueError, match="document_frequency"):
        TextVocabulary.from_dict({"document_frequency": ["apple"]})


# -- text domain classifier on real corpora ----------------------------------------------


@pytest.fixture(scope="module")
def headlines():
    return guardian_headlines()


@pytest.fixture(scope="module")
def tomatoes():
    return rotten_tomatoes()


def test_headlines_drift_when_the_news_changed_and_the_words_say_why(headlines):
    before = headlines.loc[headlines["date"] < "2020-03-01", "text"]
    during = headlines.loc[headlines["date"].between("2020-04-01", "2020-05-31"), "text"]
    result = text_domain_drift(before, during)
    assert result.drifted and result.statistic > 0.75
    window_terms = {t["term"] for t in result.separating_terms if t["side"] == "window"}
    assert window_terms & {"coronavirus", "lockdown", "covid", "covid 19", "19"}
    top = next(t for t in result.separating_terms if t["side"] == "window")
    assert top["current_share"] > top["reference_share"]


def test_headlines_of_one_period_split_at_random_do_not_drift(headlines):
    before = headlines.loc[headlines["date"] < "2020-03-01", "text"].sample(frac=1, random_state=0)
    half = len(before) // 2
    result = text_domain_drift(before.iloc[:half], before.iloc[half:])
    assert not result.drifted
    assert result.band[0] < result.statistic < result.band[1] or result.statistic < 0.5


def test_critics_snippets_against_plot_summaries_drift_in_words_and_descriptors(tomatoes):
    reviews = tomatoes.loc[tomatoes["category"] != "plot", "text"].sample(2000, random_state=0)
    plots = tomatoes.loc[tomatoes["category"] == "plot", "text"]
    assert text_domain_drift(reviews.iloc[:1000], plots).statistic > 0.9
    vocabulary = TextVocabulary.fit(reviews.iloc[:1000])
    before = text_descriptors(reviews.iloc[1000:], vocabulary)
    after = text_descriptors(plots, vocabulary)
    # Plot summaries are several sentences long: the length descriptors move, as the
    # ordinary per-column test would say (checked here with SciPy's KS directly).
    assert stats.ks_2samp(before["length_words"], after["length_words"]).pvalue < 1e-10
    assert after["sentence_count"].median() > before["sentence_count"].median()


def test_calm_windows_of_critics_snippets_rarely_drift(tomatoes):
    reviews = tomatoes.loc[tomatoes["category"] != "plot", "text"].reset_index(drop=True)
    rng = np.random.default_rng(0)
    drifted = 0
    for seed in range(12):
        rows = rng.permutation(len(reviews))
        drifted += text_domain_drift(
            reviews.iloc[rows[:600]], reviews.iloc[rows[600:1000]], random_state=seed
        ).drifted
    assert drifted <= 1  # alpha = 0.001 with a 0.02 floor: about 0 expected in 12


def test_text_domain_drift_refuses_small_samples_and_survives_texts_without_words():
    with pytest.raises(WindowTooSmallError, match="at least 100 texts in the window"):
        text_domain_drift(["a b c"] * 200, ["a b c"] * 99)
    result = text_domain_drift(["!!!"] * 150, ["???"] * 150)
    assert not result.drifted and result.separating_terms == ()


# -- embeddings ---------------------------------------------------------------------------


def _pairs_correlated(rng, n, d, rho):
    """Dimensions (0, 1), (2, 3)... correlated by rho; every dimension stays N(0, 1)."""
    x = rng.normal(size=(n, d))
    mixed = x.copy()
    mixed[:, 1::2] = rho * x[:, 0::2] + math.sqrt(1 - rho**2) * x[:, 1::2]
    return mixed


def test_embeddings_with_a_moved_mean_drift_by_every_view():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(1500, 32)) + 1.0
    moved = rng.normal(size=(1500, 32)) + 1.0
    moved[:, :4] += 0.5
    result = embedding_drift(reference, moved)
    assert result.drifted and result.euclidean.drifted and result.cosine.drifted
    assert result.euclidean.statistic == pytest.approx(
        np.linalg.norm(reference.mean(axis=0) - moved.mean(axis=0))
    )
    # 4 of 32 components moved by 0.5 sd, each flagged by its KS test.
    assert result.share_drifted_components == pytest.approx(4 / 32)
    assert set(result.metrics("drift/doc/")) >= {
        "drift/doc/embedding_domain_auc",
        "drift/doc/embedding_euclidean_distance",
        "drift/doc/drifted",
    }


def test_a_correlation_only_change_is_caught_by_the_domain_classifier_alone():
    rng = np.random.default_rng(1)
    reference = _pairs_correlated(rng, 2000, 32, 0.0)
    changed = _pairs_correlated(rng, 2000, 32, 0.6)
    for j in range(32):  # the marginals did not move
        assert stats.ks_2samp(reference[:, j], changed[:, j]).pvalue > 1e-4
    result = embedding_drift(reference, changed)
    assert result.drifted and result.domain.statistic > 0.6
    assert not result.euclidean.drifted and not result.components_drifted


def test_calm_embeddings_false_alarm_rates():
    rng = np.random.default_rng(2)
    alarms = {"domain": 0, "euclidean": 0, "cosine": 0, "components": 0}
    runs = 15
    for seed in range(runs):
        reference = rng.normal(size=(600, 24)) + 0.5
        window = rng.normal(size=(400, 24)) + 0.5
        result = embedding_drift(reference, window, random_state=seed, n_permutations=100)
        alarms["domain"] += result.drifted
        alarms["euclidean"] += result.euclidean.drifted
        alarms["cosine"] += result.cosine.drifted
        alarms["components"] += result.components_drifted
    assert alarms["domain"] <= 1 and alarms["components"] == 0
    assert alarms["euclidean"] <= 1 and alarms["cosine"] <= 1


def test_embedding_inputs_lists_missing_rows_and_shape_errors():
    rng = np.random.default_rng(5)
    vectors = [list(v) for v in rng.normal(size=(150, 4))] + [None, [np.nan, 0, 0, 0]]
    assert as_vectors(vectors).shape == (150, 4)
    with pytest.raises(ValueError, match="different lengths"):
        as_vectors([[1.0, 2.0], [1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="a new encoder"):
        embedding_drift(rng.normal(size=(150, 4)), rng.normal(size=(150, 5)))
    with pytest.raises(WindowTooSmallError, match="at least 100 complete vectors in the window"):
        embedding_drift(rng.normal(size=(150, 4)), vectors[:99])


def test_wasserstein_columns_equal_scipy_column_by_column():
    from mlflow_observe.core.drift.unstructured.embedding import wasserstein_columns

    rng = np.random.default_rng(5)
    for n, m in ((1, 1), (3, 7), (200, 1000), (1000, 1000), (997, 20_011)):
        a = rng.normal(size=(n, 5))
        b = np.round(rng.standard_t(3, size=(m, 5)) + 0.3, 1)  # ties, heavy tails
        expected = [stats.wasserstein_distance(a[:, j], b[:, j]) for j in range(5)]
        np.testing.assert_allclose(wasserstein_columns(a, b, block=2), expected, rtol=1e-9)
