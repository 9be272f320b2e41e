"""Per-text character counts in numpy: texts as code points, classes looked up in tables.

The descriptors of :mod:`.text` count letters, words, sentence ends and tokens of
every text of a window. Counting them with a regular expression per text costs
about a minute per million texts; here a chunk of texts is joined, encoded as
UTF-32 (one integer per code point, lone surrogates kept) and each class of
character is a lookup in a table of every code point. The tables are built from
the very regular expressions (and ``str.split``'s whitespace) that define the
descriptors, so the counts are the same as theirs.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd

CHUNK_CHARACTERS = 1 << 23  # about 32 MB of UTF-32 at a time
PUNCTUATION_ENDS = ".!?"


BASIC_PLANE = 0x10000  # tables cover it; rarer code points are looked up as they come


@functools.lru_cache(maxsize=8)
def class_table(pattern: str) -> np.ndarray:
    """A boolean per code point of the basic plane: whether it matches ``pattern`` alone."""
    everything = "".join(map(chr, range(BASIC_PLANE)))
    table = np.zeros(BASIC_PLANE, dtype=bool)
    table[[m.start() for m in re.finditer(pattern, everything)]] = True
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=1)
def split_space_table() -> np.ndarray:
    """The basic-plane characters ``str.split()`` splits on (``str.isspace``)."""
    table = np.fromiter((chr(i).isspace() for i in range(BASIC_PLANE)), bool, BASIC_PLANE)
    table.flags.writeable = False
    return table


def _member(codes: np.ndarray, table: np.ndarray, test) -> np.ndarray:
    """``table`` looked up for each code; codes beyond it are tested one distinct code at a time."""
    found = table[np.minimum(codes, BASIC_PLANE - 1)]
    high = codes >= BASIC_PLANE
    if high.any():
        distinct, where = np.unique(codes[high], return_inverse=True)
        found[high] = np.array([test(chr(c)) for c in distinct], dtype=bool)[where]
    return found


def _matcher(pattern: str):
    compiled = re.compile(pattern)
    return lambda character: compiled.fullmatch(character) is not None


def _chunks(strings: list):
    """Slices of ``strings`` of about ``CHUNK_CHARACTERS`` characters (a long text alone)."""
    start, size = 0, 0
    for i, text in enumerate(strings):
        size += len(text)
        if size >= CHUNK_CHARACTERS:
            yield start, i + 1
            start, size = i + 1, 0
    if start < len(strings):
        yield start, len(strings)


def _codes(texts: list) -> tuple[np.ndarray, np.ndarray]:
    """The texts' code points joined, and each text's ``[start, end)`` offsets (n + 1)."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return codes, offsets


def _per_text(flags: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The number of true flags within each text."""
    where = np.flatnonzero(flags)
    return np.diff(np.searchsorted(where, offsets)).astype(float)


def _run_starts(member: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Where a run of members begins (a member after a non-member or at a text's start)."""
    previous = np.empty_like(member)
    previous[0:1] = False
    previous[1:] = member[:-1]
    previous[offsets[:-1][offsets[:-1] < len(member)]] = False
    return member & ~previous


def text_counts(strings: list, letter_pattern: str, space_pattern: str) -> dict:
    """Per text: ``characters``, ``letters``, ``words``, ``sentence_ends``, ``finished``.

    ``letters`` counts characters matching ``letter_pattern``; ``words`` the
    runs that ``str.split()`` returns; ``sentence_ends`` the runs of ``.!?``
    followed by a character matching ``space_pattern`` or by the end of the
    text; ``finished`` is 1.0 where the last character that is not ``str.split``
    whitespace is one of ``.!?``.
    """
    n = len(strings)
    out = {k: np.zeros(n) for k in ("characters", "letters", "words", "sentence_ends", "finished")}
    letters, space, split_space = (
        class_table(letter_pattern),
        class_table(space_pattern),
        split_space_table(),
    )
    is_letter, is_space = _matcher(letter_pattern), _matcher(space_pattern)
    ends = np.zeros(BASIC_PLANE, dtype=bool)
    ends[[ord(c) for c in PUNCTUATION_ENDS]] = True
    for a, b in _chunks(strings):
        codes, offsets = _codes(strings[a:b])
        out["characters"][a:b] = np.diff(offsets)
        if not len(codes):
            continue
        out["letters"][a:b] = _per_text(_member(codes, letters, is_letter), offsets)
        blank = _member(codes, split_space, str.isspace)
        out["words"][a:b] = _per_text(_run_starts(~blank, offsets), offsets)
        # A sentence end: one of .!? followed by a space, or the text's last character.
        punctuation = ends[np.minimum(codes, BASIC_PLANE - 1)]
        followed = np.zeros(len(codes), dtype=bool)
        followed[:-1] = _member(codes[1:], space, is_space)
        followed[offsets[1:][offsets[1:] > 0] - 1] = True
        out["sentence_ends"][a:b] = _per_text(punctuation & followed, offsets)
        # The last non-blank character of each text (-1 when none).
        positions = np.where(blank, -1, np.arange(len(codes)))
        nonempty = np.flatnonzero(np.diff(offsets) > 0)
        last = np.full(b - a, -1)
        if len(nonempty):
            last[nonempty] = np.maximum.reduceat(positions, offsets[nonempty])
        found = last >= offsets[:-1]
        finished = np.zeros(b - a)
        finished[found] = punctuation[last[found]]
        out["finished"][a:b] = finished
    return out


def token_counts(strings: list, word_pattern: str, vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """Per text: tokens (lower-cased runs of two or more word characters) and known tokens.

    The same tokens as scikit-learn's ``CountVectorizer(token_pattern=r"(?u)\\b\\w\\w+\\b")``
    on lower-cased texts; a token is known when ``vocabulary`` holds it.
    """
    n = len(strings)
    tokens, known = np.zeros(n), np.zeros(n)
    word, is_word = class_table(word_pattern), _matcher(word_pattern)
    finder = re.compile(r"(?u)\b\w\w+\b")
    for a, b in _chunks(strings):
        lowered = [t.lower() for t in strings[a:b]]
        codes, offsets = _codes(lowered)
        if not len(codes):
            continue
        member = _member(codes, word, is_word)
        starts = _run_starts(member, offsets)
        # A run's length: from its start to the next non-member (or the text's end).
        run_starts = np.flatnonzero(starts)
        # A run ends where the next character is not a member or starts another text.
        following = np.zeros_like(member)
        following[:-1] = member[1:]
        following[offsets[1:-1][offsets[1:-1] > 0] - 1] = False
        run_ends = np.flatnonzero(member & ~following)
        long_runs = run_starts[run_ends - run_starts >= 1]
        flags = np.zeros(len(codes), dtype=bool)
        flags[long_runs] = True
        tokens[a:b] = _per_text(flags, offsets)
        # The tokens in text order, one separator between texts (a non-word character).
        found = finder.findall("\x00".join(lowered))
        if len(found) != len(long_runs):  # not expected: count text by text instead
            known[a:b] = [sum(t in vocabulary for t in finder.findall(text)) for text in lowered]
            continue
        # Each distinct token looked up once.
        codes_of_tokens, distinct = pd.factorize(pd.Series(found, dtype=object), sort=False)
        held = np.fromiter((t in vocabulary for t in distinct), dtype=bool, count=len(distinct))
        hits = held[codes_of_tokens]
        owner = np.searchsorted(offsets, long_runs, side="right") - 1
        known[a:b] = np.bincount(owner[hits], minlength=b - a)
    return tokens, known
