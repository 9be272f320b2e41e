"""A free-text column in the profile: descriptors, the baseline's vocabulary, a text sample.

**Descriptors** (:func:`text_descriptors`). Each text becomes a few numbers that
users read at a glance and that the ordinary per-column rules judge like any
numeric column: its length in characters and in words (whitespace-separated),
its number of sentences, the share of its characters that are not letters
(digits, punctuation, symbols, spaces) and the share of its words that the
baseline's vocabulary does not hold (*out-of-vocabulary share*). A missing text
has missing descriptors; an empty one has length 0 and no shares.

**Vocabulary** (:class:`TextVocabulary`). The baseline keeps the document
frequency of its most frequent words (``max_size`` of them, 20,000 by
default), which bounds its size. Words are lower-cased runs of two or more
word characters, scikit-learn's default token pattern, so the vocabulary and
the TF-IDF representation agree. Two vocabularies merge by adding their counts
and keeping the ``max_size`` most frequent words: exact while neither was cut,
an approximation of the rarest words' counts otherwise.

**The profile part** (:class:`TextColumnProfile`). The vocabulary is the part's
*layout*, learned from the reference like bin edges; its *counts* are the texts
seen and missing, and a uniform sample of at most ``sample_size`` texts (2,000
by default), each cut to ``MAX_TEXT_CHARACTERS`` (1,000) characters, for the
domain classifier. Two parts with the same vocabulary merge exactly (the
sample is a priority sample, :class:`~mlflow_observe.core.sample.RowSample`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlflow_observe.core.profile._characters import text_counts, token_counts
from mlflow_observe.core.sample import RowSample

TOKEN_PATTERN = r"(?u)\b\w\w+\b"
TEXT_DESCRIPTORS = (
    "length_characters",
    "length_words",
    "sentence_count",
    "non_letter_share",
    "oov_share",
)
MAX_VOCABULARY = 20_000
# Texts kept in a text column's sample, and the characters kept of each.
TEXT_SAMPLE_SIZE = 2_000
MAX_TEXT_CHARACTERS = 1_000
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_SENTENCE_END = r"[.!?]+(?:\s|$)"  # counted by ``text_counts`` (see ``_characters``)
_SPACE = r"\s"


@dataclass(frozen=True)
class TextVocabulary:
    """The baseline's most frequent words and the number of texts holding each.

    Attributes
    ----------
    document_frequency : dict of str to int
        Texts holding each word, at most ``max_size`` words.
    n_documents : int
        Texts counted.
    max_size : int
        The cap on the number of words kept.
    truncated : bool
        True when words were left out to respect the cap (merges are then approximate).
    """

    document_frequency: dict = field(default_factory=dict)
    n_documents: int = 0
    max_size: int = MAX_VOCABULARY
    truncated: bool = False

    @classmethod
    def fit(cls, texts, *, max_size: int = MAX_VOCABULARY) -> TextVocabulary:
        """Count the words of ``texts`` (missing texts are skipped).

        Examples
        --------
        >>> vocabulary = TextVocabulary.fit(["The cat sat", "the dog sat down", None])
        >>> vocabulary.document_frequency["sat"], vocabulary.n_documents
        (2, 2)
        """
        texts = as_texts(texts).dropna()
        counts: dict[str, int] = {}
        pattern = re.compile(TOKEN_PATTERN)
        for text in texts:
            for word in set(pattern.findall(text.lower())):
                counts[word] = counts.get(word, 0) + 1
        return cls._capped(counts, len(texts), max_size, truncated=False)

    @classmethod
    def _capped(cls, counts: dict, n_documents: int, max_size: int, truncated: bool):
        if len(counts) > max_size:
            kept = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:max_size]
            counts, truncated = dict(kept), True
        return cls(
            document_frequency=dict(sorted(counts.items())),
            n_documents=int(n_documents),
            max_size=int(max_size),
            truncated=truncated,
        )

    def merge(self, other: TextVocabulary) -> TextVocabulary:
        """The vocabulary of both parts' texts (exact unless a part was cut to its cap)."""
        counts = dict(self.document_frequency)
        for word, count in other.document_frequency.items():
            counts[word] = counts.get(word, 0) + count
        return self._capped(
            counts,
            self.n_documents + other.n_documents,
            max(self.max_size, other.max_size),
            truncated=self.truncated or other.truncated,
        )

    @property
    def words(self) -> frozenset:
        return frozenset(self.document_frequency)

    def to_dict(self) -> dict:
        return {
            "document_frequency": self.document_frequency,
            "n_documents": self.n_documents,
            "max_size": self.max_size,
            "truncated": self.truncated,
        }

    @classmethod
    def from_dict(cls, data: dict) -> TextVocabulary:
        frequency = data.get("document_frequency")
        if not isinstance(frequency, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in frequency.items()
        ):
            raise ValueError(
                "A text vocabulary's 'document_frequency' must map words to counts >= 0; "
                "the profile is corrupt: record the baseline again."
            )
        return cls(
            document_frequency=dict(frequency),
            n_documents=int(data.get("n_documents", 0)),
            max_size=int(data.get("max_size", MAX_VOCABULARY)),
            truncated=bool(data.get("truncated", False)),
        )


def descriptor_column(column: str, descriptor: str) -> str:
    """The name of a text column's descriptor column, e.g. ``review.length_words``."""
    return f"{column}.{descriptor}"


def as_texts(values) -> pd.Series:
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    missing = series.isna()
    texts = series.astype(object).where(missing, series.astype(str))
    return texts.where(~missing, None)


def text_descriptors(
    texts, vocabulary: TextVocabulary | None = None, *, leave_one_out: bool = False
) -> pd.DataFrame:
    """Per-text descriptors: lengths, sentences, non-letter share, out-of-vocabulary share.

    Parameters
    ----------
    texts : array_like of str
        The texts; missing values (None, NaN) give missing descriptors, and
        other values are read as their string form.
    vocabulary : TextVocabulary, optional
        The baseline's vocabulary; without it ``oov_share`` is missing.
    leave_one_out : bool, default=False
        The texts are those the vocabulary was learned from: a word counts as
        known only when another text holds it too (its document frequency is at
        least 2), so that the reference's out-of-vocabulary shares are measured
        as a window's are, against a vocabulary learned without the text itself.

    Returns
    -------
    pandas.DataFrame
        One row per text, the columns of ``TEXT_DESCRIPTORS`` (floats).

    Examples
    --------
    >>> vocabulary = TextVocabulary.fit(["good service", "bad service"])
    >>> table = text_descriptors(["Good service!", "Awful wait. Never again", None], vocabulary)
    >>> table["length_words"].tolist()
    [2.0, 4.0, nan]
    >>> table["oov_share"].tolist()
    [0.0, 1.0, nan]
    >>> table["sentence_count"].tolist()
    [1.0, 2.0, nan]
    """
    texts = as_texts(texts)
    present = texts.notna().to_numpy()
    # Object dtype: Python's regular expressions (Unicode letters), not Arrow's (ASCII).
    strings = pd.Series(texts[present].astype(str).tolist(), dtype=object)
    table = pd.DataFrame(np.nan, index=range(len(texts)), columns=list(TEXT_DESCRIPTORS))
    if not present.any():
        return table
    counts = text_counts(strings.tolist(), _LETTER.pattern, _SPACE)
    characters, words = counts["characters"], counts["words"]
    with np.errstate(invalid="ignore", divide="ignore"):
        non_letter = np.where(characters > 0, 1 - counts["letters"] / characters, np.nan)
    # Words after the last full stop (or with none at all) make one more sentence.
    sentences = counts["sentence_ends"] + ((words > 0) & (counts["finished"] == 0))
    rows = np.flatnonzero(present)
    table.loc[rows, "length_characters"] = characters
    table.loc[rows, "length_words"] = words
    table.loc[rows, "sentence_count"] = sentences
    table.loc[rows, "non_letter_share"] = non_letter
    if vocabulary is not None:
        table.loc[rows, "oov_share"] = _oov_shares(strings, vocabulary, leave_one_out)
    return table


def _oov_shares(strings: pd.Series, vocabulary: TextVocabulary, leave_one_out=False) -> np.ndarray:
    least = 2 if leave_one_out else 1
    known_words = {w for w, count in vocabulary.document_frequency.items() if count >= least}
    tokens, known = token_counts(strings.tolist(), r"\w", known_words)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tokens > 0, 1 - known / tokens, np.nan)


class TextColumnProfile:
    """A free-text column's profile part: the baseline's vocabulary and a sample of texts.

    The descriptors (:func:`text_descriptors`) are ordinary numeric columns of the
    profile, named ``<column>.<descriptor>``; this part holds what they cannot:
    the vocabulary the out-of-vocabulary share is measured against (the layout,
    learned once from the reference) and the texts the domain classifier reads.

    Parameters
    ----------
    name : str
    vocabulary : TextVocabulary
    sample_size : int, default=2000
        Texts kept in the sample (each cut to ``MAX_TEXT_CHARACTERS``).

    Examples
    --------
    >>> import pandas as pd
    >>> part = TextColumnProfile.fit("review", pd.Series(["good food", "slow service", None]))
    >>> part.count, part.n_missing, sorted(part.vocabulary.words)
    (2, 1, ['food', 'good', 'service', 'slow'])
    >>> sorted(part.texts())
    ['good food', 'slow service']
    """

    kind = "text"

    def __init__(
        self, name: str, vocabulary: TextVocabulary, *, sample_size: int = TEXT_SAMPLE_SIZE
    ):
        self.name = name
        self.vocabulary = vocabulary
        self.sample_size = int(sample_size)
        # True while the rows the vocabulary was learned from are counted (leave-one-out OOV).
        self.counting_reference = False
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.n_missing = 0
        self.sample = RowSample(self.sample_size, [self.name])

    @classmethod
    def fit(
        cls,
        name: str,
        texts,
        *,
        max_vocabulary: int = MAX_VOCABULARY,
        sample_size: int = TEXT_SAMPLE_SIZE,
        rng: np.random.Generator | None = None,
    ) -> TextColumnProfile:
        """Learn the vocabulary of ``texts`` and count them."""
        part = cls(
            name, TextVocabulary.fit(texts, max_size=max_vocabulary), sample_size=sample_size
        )
        part.update(texts, rng=rng or np.random.default_rng(0))
        return part

    def empty_like(self) -> TextColumnProfile:
        part = TextColumnProfile(self.name, self.vocabulary, sample_size=self.sample_size)
        part.counting_reference = self.counting_reference  # a Spark partition of the reference
        return part

    def descriptors(self, texts) -> pd.DataFrame:
        """The descriptors of ``texts``, named ``<column>.<descriptor>``."""
        table = text_descriptors(texts, self.vocabulary, leave_one_out=self.counting_reference)
        table.columns = [descriptor_column(self.name, d) for d in table.columns]
        return table

    @property
    def descriptor_columns(self) -> list[str]:
        return [descriptor_column(self.name, d) for d in TEXT_DESCRIPTORS]

    def update(self, texts, *, rng: np.random.Generator) -> None:
        """Count ``texts`` and offer them to the sample (cut to ``MAX_TEXT_CHARACTERS``)."""
        texts = as_texts(texts)
        present = texts.dropna()
        self.count += len(present)
        self.n_missing += len(texts) - len(present)
        kept = present.str.slice(0, MAX_TEXT_CHARACTERS)
        self.sample.update(pd.DataFrame({self.name: kept.to_numpy(dtype=object)}), rng=rng)

    def texts(self) -> list[str]:
        """The sampled texts."""
        return [str(t) for t in self.sample.values(self.name) if isinstance(t, str)]

    def merge(self, other: TextColumnProfile) -> TextColumnProfile:
        """Both parts' counts and samples; the two must share their vocabulary."""
        if self.vocabulary != other.vocabulary:
            raise ValueError(
                f"Cannot merge the text profiles of column {self.name!r}: their vocabularies "
                "differ (count both parts with the same baseline's empty_like())."
            )
        merged = self.empty_like()
        merged.count = self.count + other.count
        merged.n_missing = self.n_missing + other.n_missing
        merged.sample = self.sample.merge(other.sample)
        return merged

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "vocabulary": self.vocabulary.to_dict(),
            "sample_size": self.sample_size,
            "count": self.count,
            "n_missing": self.n_missing,
            "sample": self.sample.to_dict(),
        }

    @classmethod
    def from_dict(cls, name: str, payload: dict) -> TextColumnProfile:
        part = cls(
            name,
            TextVocabulary.from_dict(payload["vocabulary"]),
            sample_size=payload["sample_size"],
        )
        part.count = int(payload["count"])
        part.n_missing = int(payload["n_missing"])
        part.sample = RowSample.from_dict(payload["sample"])
        return part
