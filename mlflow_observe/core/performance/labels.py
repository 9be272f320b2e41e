"""Class labels, whatever their dtype: one normalisation used by every performance path.

A binary target arrives as ``int`` 0/1, as ``float`` 0.0/1.0 (pandas makes one
after a merge that met a missing id), as ``bool``, as text (``"1"``,
``"True"``), as a pandas nullable column (``Int64``, ``boolean``, ``string``)
or as a categorical; its predictions may arrive as another of these. They
denote the same two classes, so they must give the same metrics. Every value
is mapped to one canonical class before anything is counted:

* missing values (``None``, ``NaN``, ``pd.NA``) are ``None``: the row has no label;
* booleans are the integers 0 and 1, and so are the texts ``"true"`` and
  ``"false"`` (any case);
* whole numbers are ``int`` (``1.0``, ``np.int8(1)``, ``"1"`` and ``"1.0"`` are ``1``);
* other numbers are ``float``, other texts stay ``str`` (surrounding spaces removed);
* a categorical's values are normalised as its categories' values are.

The baseline's classes are stored normalised (in the order of their text,
as every profile version sorted them), so a window is matched against them
value by value, and no finding is made when the dtypes differ.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

_TRUE, _FALSE = "true", "false"


def canonical_class(value):
    """One label as its canonical class (see the module docstring); ``None`` when missing.

    Examples
    --------
    >>> [canonical_class(v) for v in (1.0, True, "1", " 1.0 ", "False", np.int8(0), "cat")]
    [1, 1, 1, 1, 0, 0, 'cat']
    >>> canonical_class(float("nan")) is None, canonical_class(0.5)
    (True, 0.5)
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if np.isnan(number):
            return None
        return int(number) if number.is_integer() else number
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value).strip()
    lowered = text.lower()
    if lowered in (_TRUE, _FALSE):
        return int(lowered == _TRUE)
    if lowered in ("nan", "none", "<na>", ""):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    if not np.isfinite(number):
        return text
    return int(number) if number.is_integer() else number


def class_labels(values) -> np.ndarray:
    """Labels of any dtype as an object array of canonical classes (``None``: missing).

    Each distinct value is normalised once (:func:`canonical_class`), so the
    cost is one factorisation of the column.

    Examples
    --------
    >>> import pandas as pd
    >>> class_labels(pd.Series([1.0, 0.0, None])).tolist()
    [1, 0, None]
    >>> class_labels(pd.array([True, False, pd.NA], dtype="boolean")).tolist()
    [1, 0, None]
    >>> class_labels(pd.Categorical(["yes", "no"])).tolist()
    ['yes', 'no']
    """
    if isinstance(values, pd.DataFrame):
        raise TypeError("Class labels must be one column; got a DataFrame.")
    if not isinstance(values, (pd.Series, pd.Index, pd.api.extensions.ExtensionArray)):
        values = np.asarray(values)
        if values.ndim != 1:
            values = values.reshape(-1)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    lookup = np.empty(len(uniques) + 1, dtype=object)
    lookup[:-1] = [canonical_class(v) for v in np.asarray(uniques, dtype=object)]
    lookup[-1] = None
    return lookup[codes]


def sorted_classes(labels) -> list:
    """The distinct classes of normalised labels, sorted by their text (missing left out).

    Examples
    --------
    >>> sorted_classes(class_labels([1.0, 0.0, True, "0"]))
    [0, 1]
    """
    return sorted(
        {v for v in pd.unique(np.asarray(labels, dtype=object)) if v is not None}, key=str
    )


def is_text(value) -> bool:
    return isinstance(value, str)


def check_same_classes(y_true, y_pred, *, names=("targets", "predictions")) -> None:
    """Raise ``ValueError`` when normalised labels and predictions cannot denote the same
    classes: one side numbers and the other text, or no class in common.

    Examples
    --------
    >>> check_same_classes(class_labels([0, 1]), class_labels(["no", "yes"]),
    ...                    names=("label", "prediction"))
    Traceback (most recent call last):
    ...
    ValueError: The targets 'label' and the predictions 'prediction' cannot denote the same classes: 'label' has [0, 1], 'prediction' has ['no', 'yes']. Map one onto the other (for example 'yes' -> 1) before recording the baseline.
    """
    true_classes, pred_classes = sorted_classes(y_true), sorted_classes(y_pred)
    if not true_classes or not pred_classes:
        return
    true_text = {is_text(v) for v in true_classes}
    pred_text = {is_text(v) for v in pred_classes}
    mixed = true_text != pred_text and len(true_text) == len(pred_text) == 1
    if mixed or not set(true_classes) & set(pred_classes):
        t, p = names
        raise ValueError(
            f"The targets {t!r} and the predictions {p!r} cannot denote the same classes: "
            f"{t!r} has {true_classes[:10]}, {p!r} has {pred_classes[:10]}. Map one onto the "
            f"other (for example {pred_classes[-1]!r} -> {true_classes[-1]!r}) before "
            "recording the baseline."
        )
