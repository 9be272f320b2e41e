"""The baseline's performance: what a later window's performance is judged against.

:func:`~mlflow_observe.core.performance.degradation.reference_performance`
computes it from the reference's labels and predictions, and a baseline
profile keeps it as ``DataProfile.performance``. It is a
:class:`ReferencePerformance`; its :meth:`~ReferencePerformance.to_dict` writes
the JSON layout every profile version has used, so profiles saved by earlier
versions load unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from mlflow_observe.core.performance.labels import canonical_class

CLASSIFICATION, REGRESSION = "classification", "regression"


class PerformanceMergeError(ValueError):
    """Two reference performances cannot be merged (see :meth:`ReferencePerformance.merge`)."""


@dataclass(frozen=True)
class ReferencePerformance:
    """The reference's model performance, its uncertainty, and what estimation needs.

    Attributes
    ----------
    task : {'classification', 'regression'}
    n_rows : int
        Labelled rows the performance was computed on.
    metrics : dict of str to float
        Each metric's value on the reference (``accuracy``, ``roc_auc``, ``mae``, ...).
    intervals : dict of str to (float, float)
        Each metric's 95% bootstrap interval, ``(ci_low, ci_high)``.
    probabilities : tuple of str
        The probability column names, remembered to find them in windows.
    classes : tuple or None
        Classifiers: the classes, sorted by their text.
    class_counts : tuple of int or None
        Classifiers: the reference's label count of each class.
    calibration : tuple of (x, y) or None
        Classifiers with probabilities: the isotonic calibration curves, each a
        pair of tuples of knots. Binary: one curve, of the positive class's
        probability; multiclass: one per class (one-vs-rest). A class whose
        scores calibrating does not improve on held-out rows has the identity,
        ``((0, 1), (0, 1))``.
    loss_features : tuple of str or None
        Regressors: the numeric features the loss models take, in order.
    loss_models : dict or None
        Regressors: the direct loss estimation models (absolute and squared
        error), as exported by :mod:`mlflow_observe.core.performance.dle`.

    Examples
    --------
    >>> from mlflow_observe.core.performance.degradation import reference_performance
    >>> performance = reference_performance([0, 1, 1, 0], [0, 1, 0, 0])
    >>> performance.task, performance.classes, performance.metrics["accuracy"]
    ('classification', (0, 1), 0.75)
    >>> ReferencePerformance.from_dict(performance.to_dict()) == performance
    True
    """

    task: str
    n_rows: int
    metrics: dict = field(default_factory=dict)
    intervals: dict = field(default_factory=dict)
    probabilities: tuple = ()
    classes: tuple | None = None
    class_counts: tuple | None = None
    calibration: tuple | None = None
    loss_features: tuple | None = None
    loss_models: dict | None = None

    @property
    def is_classification(self) -> bool:
        return self.task == CLASSIFICATION

    def interval(self, metric: str) -> tuple[float, float]:
        """The metric's bootstrap interval ``(ci_low, ci_high)``."""
        return self.intervals[metric]

    # -- merging --------------------------------------------------------------------------

    def merge(self, other: ReferencePerformance | None) -> ReferencePerformance:
        """The performance of both parts' rows, where that can be known from the parts.

        What would merge exactly from two parts is little: ``n_rows`` and
        ``class_counts`` add, and accuracy is a row-weighted mean. The rest cannot:
        precision, recall, F1, ROC AUC and the regression metrics are not means
        of the parts', and the bootstrap intervals, the isotonic calibration and
        the loss models are fitted on every row at once. So this merges only
        where the answer is exact:

        * both sides are the same reference (profiles of windows counted against
          one baseline carry its performance): that reference;
        * one side is ``None`` or has no rows: the other side;
        * otherwise it raises :class:`PerformanceMergeError`. Compute the
          reference performance on all the rows at once (``build_profile`` on
          the whole reference; the Spark engine collects a uniform sample).

        Examples
        --------
        >>> from mlflow_observe.core.performance.degradation import reference_performance
        >>> first = reference_performance([0, 1, 1, 0], [0, 1, 0, 0])
        >>> first.merge(first) is first, first.merge(None) is first
        (True, True)
        >>> first.merge(reference_performance([0, 1, 1], [0, 1, 1]))
        Traceback (most recent call last):
        ...
        mlflow_observe.core.performance.reference.PerformanceMergeError: Cannot merge the reference performance of two different sets of rows (4 and 3 rows): its bootstrap intervals, calibration and loss models are fitted on all the rows at once. Compute it on the whole reference instead.
        """  # noqa: E501
        if other is None or other.n_rows == 0 or self._same_as(other):
            return self
        if self.n_rows == 0:
            return other
        raise PerformanceMergeError(
            "Cannot merge the reference performance of two different sets of rows "
            f"({self.n_rows} and {other.n_rows} rows): its bootstrap intervals, calibration "
            "and loss models are fitted on all the rows at once. Compute it on the whole "
            "reference instead."
        )

    __add__ = merge

    def _same_as(self, other: ReferencePerformance) -> bool:
        # Copies (pickled to Spark executors, read from JSON) compare equal field by field,
        # or, with a NaN among the numbers (never equal to itself), by their JSON text.
        if other is self or other == self:
            return True
        return json.dumps(self.to_dict(), sort_keys=True) == json.dumps(
            other.to_dict(), sort_keys=True
        )

    # -- serialisation --------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The JSON layout of ``DataProfile.performance`` (profile format versions 1 and 2).

        The keys, in order: ``task``, ``probabilities``, ``n_rows``, then for
        classifiers ``classes``, ``class_counts``, ``metrics`` (each
        ``{"value", "ci_low", "ci_high"}``) and ``calibration`` (binary:
        ``{"x", "y"}``; multiclass: ``{"classes": [{"x", "y"}, ...]}``), for
        regressors ``metrics``, ``loss_features`` and ``loss_models``. Keys with
        nothing to say are left out.
        """
        record: dict = {
            "task": self.task,
            "probabilities": list(self.probabilities),
            "n_rows": self.n_rows,
        }
        if self.classes is not None:
            record["classes"] = list(self.classes)
        if self.class_counts is not None:
            record["class_counts"] = list(self.class_counts)
        record["metrics"] = {
            name: {"value": value, "ci_low": low, "ci_high": high}
            for name, value in self.metrics.items()
            for low, high in [self.intervals[name]]
        }
        if self.calibration is not None:
            curves = [{"x": list(x), "y": list(y)} for x, y in self.calibration]
            binary = self.classes is not None and len(self.classes) == 2
            record["calibration"] = curves[0] if binary else {"classes": curves}
        if self.loss_features is not None:
            record["loss_features"] = list(self.loss_features)
        if self.loss_models is not None:
            record["loss_models"] = self.loss_models
        return record

    @classmethod
    def from_dict(cls, payload: dict) -> ReferencePerformance:
        """Read :meth:`to_dict`'s layout (as every profile version wrote it)."""
        metrics = payload.get("metrics") or {}
        calibration = payload.get("calibration")
        if calibration is not None:
            curves = calibration.get("classes", [calibration])
            calibration = tuple((tuple(c["x"]), tuple(c["y"])) for c in curves)

        def optional_tuple(key):
            value = payload.get(key)
            return None if value is None else tuple(value)

        classes = optional_tuple("classes")
        if classes is not None:  # as the labels are normalised (earlier versions kept 0.0, True)
            classes = tuple(canonical_class(c) for c in classes)

        return cls(
            task=payload["task"],
            n_rows=int(payload["n_rows"]),
            metrics={name: m["value"] for name, m in metrics.items()},
            intervals={name: (m["ci_low"], m["ci_high"]) for name, m in metrics.items()},
            probabilities=tuple(payload.get("probabilities") or ()),
            classes=classes,
            class_counts=optional_tuple("class_counts"),
            calibration=calibration,
            loss_features=optional_tuple("loss_features"),
            loss_models=payload.get("loss_models"),
        )
