"""Degradation of a window counted batch by batch, in memory bounded by the batch.

:func:`~mlflow_observe.core.performance.degradation.compare_performance` needs every row's
label, prediction and probabilities. Here each batch is reduced to what the
metrics need, and the batch is dropped:

- **Exact counts.** Accuracy, precision, recall and F1 come from the confusion
  counts; log loss, the label counts (label shift), the rows whose
  probabilities do not sum to one, and the regression metrics (MAE, RMSE, R2
  with Chan et al.'s merge of the label variance, MAPE) from sums. The expected
  confusion matrix of confidence-based estimation (CBPE) is a sum of calibrated
  probabilities, so its accuracy, precision, recall and F1 are exact too.
- **ROC AUC in probability bins.** Realised and expected ROC AUC are computed
  from the counts (or, for the expectation, the summed calibrated probabilities)
  of each class in 10,000 equal bins of the model's scores in [0, 1], ties in a
  bin counted half, as the
  Mann-Whitney statistic counts tied scores. This is exact when no two
  different scores share a bin (for instance probabilities with four decimals);
  otherwise it is off by at most half the share of (positive, negative) pairs
  whose scores fall in one bin (below 1e-3 for probabilities spread over
  [0, 1]). Counts in fixed bins are exact and mergeable; a reservoir sample of
  (probability, label) pairs would add sampling error of order
  ``1 / sqrt(sample size)`` instead.
- **A bounded uniform sample** (:class:`~mlflow_observe.core.sample.RowSample`,
  20,000 rows by default, as the baseline's bootstrap) for what is not a sum:
  the estimation bands (quantiles over simulated labels, narrowed by
  ``sqrt(sample / window)`` around the exact value, as the baseline's bootstrap
  is) and the regressors' loss-model estimates (a mean over the sampled rows:
  unbiased, exact while the window fits in the sample).

The memory held is the bins (about 320 KB per class), the sample and one batch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlflow_observe.core.performance.degradation import (
    CLASSIFICATION,
    ESTIMATED,
    REALISED,
    DegradationError,
    DegradationResult,
    _estimated,
    _has_label,
    calibrated_probabilities,
    class_index,
    invalid_probabilities_finding,
    invalid_probability_rows,
    judge_parts,
    label_shift_finding,
    probability_matrix,
    unlabelled_finding,
)
from mlflow_observe.core.performance.labels import class_labels
from mlflow_observe.core.performance.metrics import _LOG_LOSS_EPS, _prf, average_prf
from mlflow_observe.core.performance.reference import ReferencePerformance
from mlflow_observe.core.sample import RowSample
from mlflow_observe.core.weights import check_weights

AUC_BINS = 10_000
SAMPLE_SIZE = 20_000
_ROW = "__observe_row"  # each sampled row's position in the window, to restore its order
_ESTIMABLE = "__observe_estimable"  # 1: no label and valid probabilities, estimated
_WEIGHT = "__observe_weight"  # the row's weight (1 unless the rows are weighted)
_MAX_NEW_LABELS = 1_000  # distinct unseen labels remembered for the finding


class StreamedPerformance:
    """A window's model performance, counted one batch at a time.

    Parameters
    ----------
    performance : ReferencePerformance
        The baseline's recorded performance (``DataProfile.performance``).
    predictions : str
        The prediction column of the batches.
    targets : str, optional
        The label column. Rows count as realised when any label has arrived in
        the window; otherwise performance is estimated, as in memory.
    sample_size : int, default=20000
        Rows kept for the estimation bands and the regressors' loss estimates.
    random_state : int, default=0

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mlflow_observe.core.performance.degradation import reference_performance
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 1000)
    >>> baseline = reference_performance(y, y)
    >>> window = pd.DataFrame({"label": y, "prediction": np.where(np.arange(1000) < 100, 1 - y, y)})
    >>> counted = StreamedPerformance(baseline, predictions="prediction", targets="label")
    >>> for start in range(0, 1000, 300):
    ...     counted.update(window.iloc[start:start + 300])
    >>> counted.n_rows, counted.result().metric("accuracy").value
    (1000, 0.9)
    """

    def __init__(
        self,
        performance: ReferencePerformance,
        *,
        predictions: str,
        targets: str | None = None,
        sample_size: int = SAMPLE_SIZE,
        random_state: int = 0,
    ):
        if performance is None:
            raise DegradationError(
                "The baseline was recorded without labels and predictions, so there is no "
                "performance to compare with."
            )
        self.performance = performance
        self.predictions, self.targets = predictions, targets
        self.random_state = random_state
        self.n_rows = 0
        self.n_labelled = 0
        # Sums of the weights and of their squares, (labelled, estimable, all); None unweighted.
        self._weight_sums: np.ndarray | None = None
        self._n_estimable = 0
        self._findings: dict[str, None] = {}  # in order of first appearance
        self._probabilities = list(performance.probabilities)
        self._has_probabilities = True
        self._features = list(performance.loss_features or ())
        self._rng = np.random.default_rng(random_state)
        self.n_invalid_probabilities = 0
        self._sample = RowSample(
            sample_size,
            [_ROW, _ESTIMABLE, _WEIGHT, predictions, *self._probabilities, *self._features],
        )
        self._classification: _ClassificationCounts | None = None
        self._expected: _ExpectedCounts | None = None
        self._regression: _RegressionSums | None = None
        if performance.task == CLASSIFICATION:
            self._classification = _ClassificationCounts(performance)
            self._expected = (
                _ExpectedCounts(performance) if performance.calibration is not None else None
            )
        else:
            self._regression = _RegressionSums()

    @property
    def kind(self) -> str:
        """``realised`` once a label has arrived, ``estimated`` before."""
        return REALISED if self.n_labelled else ESTIMATED

    def update(self, frame: pd.DataFrame, *, weights=None) -> None:
        """Count one batch of the window (a DataFrame with the columns named above).

        ``weights`` (one finite number > 0 a row) weighs each row, as
        :func:`~mlflow_observe.core.performance.degradation.compare_performance` does.
        """
        if self.predictions not in frame.columns:
            raise DegradationError(f"The window has no prediction column {self.predictions!r}.")
        if not len(frame):
            return
        y_pred = frame[self.predictions].to_numpy()
        n = len(frame)
        w = None if weights is None else check_weights(weights, n)
        self._has_probabilities &= all(c in frame.columns for c in self._probabilities) and bool(
            self._probabilities
        )
        proba = (
            frame[self._probabilities].to_numpy(dtype=float, na_value=np.nan)
            if self._has_probabilities
            else None
        )
        invalid = np.zeros(n, dtype=bool)
        if proba is not None and self.performance.task == CLASSIFICATION:
            proba = probability_matrix(proba, len(self.performance.classes or ()))
            invalid = invalid_probability_rows(proba)
            self.n_invalid_probabilities += int(invalid.sum())
        has_targets = bool(self.targets) and self.targets in frame.columns
        labelled = (
            _has_label(self.performance, frame[self.targets])
            if has_targets
            else np.zeros(n, dtype=bool)
        )
        self.n_labelled += int(labelled.sum())
        estimable = ~labelled & ~invalid
        if w is not None or self._weight_sums is not None:
            self._add_weights(np.ones(n) if w is None else w, labelled, estimable)
        findings: list[str] = []
        if labelled.any():
            y_true = frame[self.targets].to_numpy()[labelled]
            if self.performance.task == CLASSIFICATION:
                assert self._classification is not None  # set for every classifier
                self._classification.update(
                    y_true,
                    y_pred[labelled],
                    None if proba is None else proba[labelled],
                    findings,
                    valid=~invalid[labelled],
                    weights=None if w is None else w[labelled],
                )
            else:
                assert self._regression is not None  # set for every regressor
                self._regression.update(
                    y_true, y_pred[labelled], weights=None if w is None else w[labelled]
                )
        if self._expected is not None and proba is not None and estimable.any():
            self._expected.update(
                y_pred[estimable], proba[estimable], weights=None if w is None else w[estimable]
            )
        self._findings.update(dict.fromkeys(findings))
        rows = frame.assign(
            **{  # type: ignore[arg-type]  # pandas-stubs: column values, not objects
                _ROW: np.arange(self.n_rows, self.n_rows + n),
                _ESTIMABLE: estimable.astype(np.int8),
                _WEIGHT: 1.0 if w is None else w,
            }
        )
        self._sample.update(rows, rng=self._rng)
        self.n_rows += n
        self._n_estimable += int(estimable.sum())

    def _add_weights(self, w, labelled, estimable) -> None:
        if self._weight_sums is None:  # the rows so far each weighed 1
            counts = [self.n_labelled - int(labelled.sum()), self._n_estimable, self.n_rows]
            self._weight_sums = np.array([counts, counts], dtype=float)
        for j, rows in enumerate((labelled, estimable, slice(None))):
            self._weight_sums[0, j] += float(w[rows].sum())
            self._weight_sums[1, j] += float(np.sum(w[rows] ** 2))

    def _effective(self, j: int) -> float | None:
        """Kish's effective size of the labelled (0), estimable (1) or all (2) rows."""
        if self._weight_sums is None:
            return None
        total, squares = self._weight_sums[:, j]
        return total * total / squares if squares > 0 else 0.0

    def result(self, *, tolerance: float = 0.02) -> DegradationResult:
        """The window against the baseline (see :mod:`mlflow_observe.core.performance.degradation`)."""
        findings = list(self._findings)
        n_estimable = self.n_rows - self.n_labelled
        if self.n_invalid_probabilities:
            findings.append(
                invalid_probabilities_finding(self.n_invalid_probabilities, self.n_rows)
            )
        if self.n_labelled and self.n_labelled < self.n_rows:
            findings.append(unlabelled_finding(self.n_rows, self.n_labelled))
        parts: list = []
        if self.n_labelled:
            if self.performance.task == CLASSIFICATION:
                assert self._classification is not None  # built for a classifier
                values = self._classification.metrics(self._has_probabilities, findings)
            else:
                assert self._regression is not None  # built for a regressor
                values = self._regression.metrics()
            parts.append((REALISED, values, {}, self.n_labelled, self._effective(0)))
        if self.n_labelled < self.n_rows:
            try:
                bands, n_estimable = self._estimated_bands()
            except DegradationError as exc:
                if not self.n_labelled:
                    raise
                bands = {}
                findings.append(
                    f"the {self.n_rows - self.n_labelled} unlabelled rows are not estimated: {exc}"
                )
            if bands or not self.n_labelled:
                values = {name: band["value"] for name, band in bands.items()}
                parts.append((ESTIMATED, values, bands, n_estimable, self._effective(1)))
        return judge_parts(
            self.performance,
            parts,
            findings=findings,
            tolerance=tolerance,
            n_rows=self.n_rows,
            n_labelled=self.n_labelled,
            n_invalid_probabilities=self.n_invalid_probabilities,
            n_represented=(
                self.n_rows if self._weight_sums is None else float(self._weight_sums[0, 2])
            ),
        )

    def _estimated_bands(self) -> tuple[dict, int]:
        """Exact values where they are sums; the sample's bands, narrowed to the window.
        Also the number of rows estimated (unlabelled, with valid probabilities)."""
        estimable = self._sample.values(_ESTIMABLE).astype(np.int64) == 1
        positions = self._sample.values(_ROW).astype(np.int64)[estimable]
        order = np.flatnonzero(estimable)[np.argsort(positions, kind="stable")]
        y_pred = self._sample.values(self.predictions)[order]
        proba = (
            np.column_stack(
                [self._sample.values(c)[order].astype(float) for c in self._probabilities]
            )
            if self._has_probabilities
            else None
        )
        features = (
            pd.DataFrame({c: self._sample.values(c)[order] for c in self._features})
            if self._features
            else None
        )
        weights = (
            None if self._weight_sums is None else self._sample.values(_WEIGHT)[order].astype(float)
        )
        sampled = _estimated(self.performance, y_pred, proba, features, self.random_state, weights)
        exact = None
        n_estimable = self.n_rows - self.n_labelled
        if self._expected is not None and self._has_probabilities:
            exact = self._expected.metrics()
            n_estimable = self._expected.n_rows
        scale = np.sqrt(len(order) / max(n_estimable, 1))
        bands = {}
        for name, band in sampled.items():
            if exact is not None and name not in exact:
                continue
            value = band["value"] if exact is None else exact[name]
            bands[name] = {
                "value": value,
                "band_low": value + (band["band_low"] - band["value"]) * scale,
                "band_high": value + (band["band_high"] - band["value"]) * scale,
            }
        return bands, n_estimable


class _ClassificationCounts:
    """Confusion counts, per-class score bins, and the sums of log loss."""

    def __init__(self, performance: ReferencePerformance):
        self.performance = performance
        assert performance.classes is not None  # a classifier's
        self.classes = list(performance.classes)
        k = len(self.classes)
        self.confusion = np.zeros((k + 1, k + 1), dtype=np.int64)  # last: not a known class
        # Counts, or sums of weights once weighted rows were counted.
        self.n_equal: float = 0  # y_true == y_pred, unknown classes included, as accuracy counts
        self.n_rows: float = 0
        self.new_labels: set[str] = set()
        self.distinct: set[str] = set()  # up to two label values: is ROC AUC defined
        self.n_off = 0  # rows whose probabilities do not sum to one
        self.positive_bins = np.zeros((k, AUC_BINS), dtype=np.int64)
        self.all_bins = np.zeros((k, AUC_BINS), dtype=np.int64)
        self.log_loss_sum = 0.0
        self.n_scored: float = 0  # rows with valid probabilities
        self.all_known = True
        self.weight_sq: float | None = None  # of the known labels; None while unweighted

    def _make_weighted(self) -> None:
        """Counts become sums of weights (the rows so far each weighed 1)."""
        if self.weight_sq is None:
            self.weight_sq = float(self.confusion[: len(self.classes)].sum())
            self.confusion = self.confusion.astype(float)
            self.positive_bins = self.positive_bins.astype(float)
            self.all_bins = self.all_bins.astype(float)

    def update(self, y_true, y_pred, proba, findings, *, valid=None, weights=None) -> None:
        """Count labelled rows; ``proba`` (checked) is read on the ``valid`` rows only."""
        if weights is not None:
            self._make_weighted()
        y_true, y_pred = class_labels(y_true), class_labels(y_pred)
        if len(self.new_labels) < _MAX_NEW_LABELS:
            self.new_labels |= {v for v in pd.unique(y_true) if v is not None} - set(self.classes)
        if len(self.distinct) < 2:
            self.distinct |= {repr(v) for v in pd.unique(y_true)[:2]}
        k = len(self.classes)
        true_index, pred_index = _indices(y_true, self.classes), _indices(y_pred, self.classes)
        np.add.at(
            self.confusion,
            (np.where(true_index < 0, k, true_index), np.where(pred_index < 0, k, pred_index)),
            1 if weights is None else weights,
        )
        if weights is None:
            self.n_equal += int(np.sum(y_true == y_pred))
            self.n_rows += len(y_true)
        else:
            self.n_equal += float(weights[y_true == y_pred].sum())
            self.n_rows += float(weights.sum())
            self.weight_sq = (self.weight_sq or 0.0) + float(np.sum(weights[true_index >= 0] ** 2))
        if self.weight_sq is not None and weights is None:
            self.weight_sq += float(np.count_nonzero(true_index >= 0))
        if proba is None:
            return
        valid = np.ones(len(y_true), dtype=bool) if valid is None else valid
        matrix, true_index = probability_matrix(proba, k)[valid], true_index[valid]
        w = None if weights is None else weights[valid]
        self.n_scored += len(matrix) if w is None else float(w.sum())
        self.n_off += int(np.sum(np.abs(matrix.sum(axis=1) - 1) > 1e-3))
        bins = _bin(matrix)
        for i in range(k):
            positive = true_index == i
            self.all_bins[i] += np.bincount(bins[:, i], weights=w, minlength=AUC_BINS)
            self.positive_bins[i] += np.bincount(
                bins[positive, i], weights=None if w is None else w[positive], minlength=AUC_BINS
            )
        if self.all_known and np.all(true_index >= 0):
            chosen = np.clip(matrix[np.arange(len(true_index)), true_index], _LOG_LOSS_EPS, 1.0)
            loss = -np.log(chosen)
            self.log_loss_sum += float(np.sum(loss) if w is None else np.sum(w * loss))
        else:
            self.all_known = False

    def metrics(self, with_probabilities: bool, findings: list) -> dict:
        """:func:`~mlflow_observe.core.performance.metrics.classification_metrics` from the counts,
        with the findings of the in-memory path, in its order."""
        new = sorted(self.new_labels, key=str)
        if new:
            findings.append(f"labels contain classes the baseline never saw: {new[:10]}")
        if with_probabilities and self.n_off:
            findings.append(f"{self.n_off} rows' probabilities do not sum to one.")
        if len(self.distinct) < 2:
            findings.append("only one class in the window's labels: ROC AUC is undefined.")
        k = len(self.classes)
        known = self.confusion[:k].sum(axis=1)
        n_effective = None
        if self.weight_sq is not None and self.weight_sq > 0:
            n_effective = float(known.sum()) ** 2 / self.weight_sq
        label_shift_finding(self.performance, known.tolist(), findings, n_current=n_effective)
        metrics = {"accuracy": self.n_equal / self.n_rows}
        per_class = []
        for i in range(k):
            tp = float(self.confusion[i, i])
            per_class.append(
                _prf(
                    tp, float(self.confusion[:, i].sum()) - tp, float(self.confusion[i].sum()) - tp
                )
            )
        metrics.update(average_prf(per_class))
        if not with_probabilities:
            return metrics
        aucs = [
            _binned_auc(self.positive_bins[i], self.all_bins[i] - self.positive_bins[i])
            for i in range(k)
        ]
        known = [a for a in aucs if a is not None]
        auc = aucs[1] if k == 2 else (float(np.mean(known)) if len(known) == k else None)
        if auc is not None:
            metrics["roc_auc"] = auc
        if self.all_known:
            metrics["log_loss"] = self.log_loss_sum / self.n_scored
        return metrics


class _ExpectedCounts:
    """CBPE's expected confusion sums, and the calibrated probabilities summed in bins of
    the model's own scores (the ranking of the realised ROC AUC)."""

    def __init__(self, performance: ReferencePerformance):
        self.performance = performance
        assert performance.classes is not None  # a classifier's
        self.k = k = len(performance.classes)
        self.n_rows = 0
        self.total: float = 0  # rows, or the sum of their weights
        self.sums = np.zeros((k, 3))  # expected TP, FP, FN of each class (binary: class 1)
        self.expected_correct = 0.0
        self.positive_weight = np.zeros((k, AUC_BINS))
        self.negative_weight = np.zeros((k, AUC_BINS))

    def update(self, y_pred, proba, *, weights=None) -> None:
        calibrated = calibrated_probabilities(self.performance, proba)
        raw = probability_matrix(proba, self.k)
        predicted = class_index(y_pred, self.performance.classes)
        n = len(predicted)
        # Each row's share of every sum: 1, or its weight.
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        if self.k == 2:
            p = np.clip(calibrated, 0.0, 1.0)
            chosen = predicted == 1
            if weights is None:
                tp, fp, fn = p[chosen].sum(), (1 - p[chosen]).sum(), p[~chosen].sum()
                self.expected_correct += tp + (1 - p[~chosen]).sum()
            else:
                tp = (w * p)[chosen].sum()
                fp, fn = (w * (1 - p))[chosen].sum(), (w * p)[~chosen].sum()
                self.expected_correct += tp + (w * (1 - p))[~chosen].sum()
            self.sums[1] += (tp, fp, fn)
            # Rows are binned by the model's own scores; each counts positive by p.
            share, scores = p[:, None], raw[:, 1:]
            columns: list[int] | range = [1]
        else:
            p = calibrated
            # Indexed as the in-memory estimate indexes (an unknown prediction, -1, is the last
            # class).
            onehot = np.zeros((n, self.k), dtype=bool)
            onehot[np.arange(n), predicted] = True
            weighted = p if weights is None else p * w[:, None]
            self.expected_correct += weighted[np.arange(n), predicted].sum()
            for c in range(self.k):
                chosen = onehot[:, c]
                self.sums[c] += (
                    weighted[chosen, c].sum(),
                    ((1 - p[chosen, c]) * w[chosen]).sum(),
                    weighted[~chosen, c].sum(),
                )
            share, scores = p, raw
            columns = range(self.k)
        bins = _bin(scores)
        for j, c in enumerate(columns):
            self.positive_weight[c] += np.bincount(
                bins[:, j], weights=share[:, j] * w, minlength=AUC_BINS
            )
            self.negative_weight[c] += np.bincount(
                bins[:, j], weights=(1 - share[:, j]) * w, minlength=AUC_BINS
            )
        self.n_rows += n
        self.total += n if weights is None else float(w.sum())

    def metrics(self) -> dict:
        if not self.n_rows:
            return {}
        metrics = {"accuracy": float(self.expected_correct / self.total)}
        if self.k == 2:
            scores = [(), _prf(*self.sums[1])]
            aucs = [_expected_binned_auc(self.positive_weight[1], self.negative_weight[1])]
        else:
            scores = [_prf(*self.sums[c]) for c in range(self.k)]
            aucs = [
                _expected_binned_auc(self.positive_weight[c], self.negative_weight[c])
                for c in range(self.k)
            ]
        metrics.update(average_prf(scores))
        defined = [a for a in aucs if a is not None]
        if len(defined) == len(aucs):
            metrics["roc_auc"] = float(np.mean(defined))
        return metrics


class _RegressionSums:
    """Sums of the errors, and the labels' mean and squared deviations (Chan et al.)."""

    def __init__(self):
        self.n: float = 0  # rows, or the sum of their weights
        self.abs_error = self.squared_error = 0.0
        self.mean = self.m2 = 0.0
        self.relative_error, self.n_nonzero = 0.0, 0.0

    def update(self, y_true, y_pred, *, weights=None) -> None:
        y_true = np.asarray(y_true, dtype=float)
        error = np.asarray(y_pred, dtype=float) - y_true
        nonzero = y_true != 0
        if weights is not None:
            self._update_weighted(y_true, error, nonzero, np.asarray(weights, dtype=float))
            return
        self.abs_error += float(np.sum(np.abs(error)))
        self.squared_error += float(np.sum(error**2))
        self.relative_error += float(np.sum(np.abs(error[nonzero] / y_true[nonzero])))
        self.n_nonzero += int(nonzero.sum())
        n, mean = len(y_true), float(y_true.mean())
        m2 = float(np.sum((y_true - mean) ** 2))
        self._add_moments(n, mean, m2)

    def _update_weighted(self, y_true, error, nonzero, w) -> None:
        self.abs_error += float(np.sum(w * np.abs(error)))
        self.squared_error += float(np.sum(w * error**2))
        self.relative_error += float(np.sum(w[nonzero] * np.abs(error[nonzero] / y_true[nonzero])))
        self.n_nonzero += float(w[nonzero].sum())
        n = float(w.sum())
        mean = float(np.sum(w * y_true) / n)
        self._add_moments(n, mean, float(np.sum(w * (y_true - mean) ** 2)))

    def _add_moments(self, n: float, mean: float, m2: float) -> None:
        total = self.n + n
        delta = mean - self.mean
        self.m2 += m2 + delta**2 * self.n * n / total
        self.mean += delta * n / total
        self.n = total

    def metrics(self) -> dict:
        """:func:`~mlflow_observe.core.performance.metrics.regression_metrics` from the sums."""
        metrics = {
            "mae": self.abs_error / self.n,
            "rmse": float(np.sqrt(self.squared_error / self.n)),
        }
        if self.m2 > 0:
            metrics["r2"] = 1 - self.squared_error / self.m2
        if self.n_nonzero:
            metrics["mape"] = self.relative_error / self.n_nonzero
        return metrics


def _indices(values: np.ndarray, classes) -> np.ndarray:
    """Each value's class position (-1: none), matched with ``==`` as the metrics match."""
    index = np.full(len(values), -1, dtype=np.int64)
    for i, c in enumerate(classes):
        index[np.asarray(values == c, dtype=bool) & (index < 0)] = i
    return index


def _bin(scores: np.ndarray) -> np.ndarray:
    """The bin of each score in [0, 1] (outside: the end bins; NaN: the first)."""
    scaled = np.nan_to_num(np.asarray(scores, dtype=float) * AUC_BINS, nan=0.0)
    return np.clip(scaled, 0, AUC_BINS - 1).astype(np.int64)


def _binned_auc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """Mann-Whitney ROC AUC from per-bin counts (scores in one bin are ties)."""
    if positive.dtype.kind == "f":  # sums of weights
        total_pos, total_neg = float(positive.sum()), float(negative.sum())
        if total_pos <= 0 or total_neg <= 0:
            return None
        below = np.cumsum(negative) - negative
        return float(np.sum(positive * (below + negative / 2)) / (total_pos * total_neg))
    n_pos, n_neg = int(positive.sum()), int(negative.sum())
    if n_pos == 0 or n_neg == 0:
        return None
    below = np.cumsum(negative) - negative
    wins = 2 * int(np.dot(positive, below)) + int(np.dot(positive, negative))
    return wins / (2 * n_pos * n_neg)


def _expected_binned_auc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """The expected AUC's trapezoid, from the top bin down (the in-memory curve's points
    within one bin are collinear when the bin holds one score)."""
    total_pos, total_neg = positive.sum(), negative.sum()
    if total_pos <= 0 or total_neg <= 0:
        return None
    tpr_step, fpr_step = positive[::-1] / total_pos, negative[::-1] / total_neg
    tpr_before = np.cumsum(tpr_step) - tpr_step
    return float(np.sum(fpr_step * (tpr_before + tpr_step / 2)))
