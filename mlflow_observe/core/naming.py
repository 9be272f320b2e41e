"""Column names made safe for MLflow metric keys.

MLflow accepts letters, digits, ``_ - . /``, spaces and (except on Windows)
colons in a metric key. Column names may hold anything, and a ``/`` inside one
would break the ``drift/<column>/<statistic>`` pattern, so every column gets a
key-safe ASCII name, unique within the table; the mapping is kept in the table.
"""

from __future__ import annotations

import re
import unicodedata

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\- ]+")
MAX_NAME_LENGTH = 120


def metric_safe_name(column) -> str:
    """Return an ASCII name for ``column`` that MLflow accepts inside a metric key.

    >>> metric_safe_name("income / month")
    'income _ month'
    >>> metric_safe_name("Größe")
    'Grosse'
    >>> metric_safe_name("..")
    '_'
    """
    text = str(column).replace("ß", "ss")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    if not text and str(column):  # e.g. a name written only in non-Latin letters
        text = "u" + "_".join(f"{ord(ch):x}" for ch in str(column))
    text = _UNSAFE.sub("_", text).strip()
    text = re.sub(r"_+", "_", text)
    if text.strip(".") == "":
        text = "_"
    return text[:MAX_NAME_LENGTH] or "_"


def assign_metric_names(columns) -> dict:
    """Map each column to a unique metric-safe name (a numeric suffix breaks ties).

    >>> assign_metric_names(["a/b", "a_b", "c"])
    {'a/b': 'a_b', 'a_b': 'a_b_2', 'c': 'c'}
    """
    names: dict = {}
    used: set[str] = set()
    for column in columns:
        base = metric_safe_name(column)
        candidate, suffix = base, 2
        while candidate in used:
            candidate = f"{base}_{suffix}"
            suffix += 1
        used.add(candidate)
        names[column] = candidate
    return names
