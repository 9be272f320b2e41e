"""Drift decisions: which statistic each column gets, and when it counts as drifted.

The defaults follow what users of other drift tools know:

* *small* samples (the reference or the window has fewer than
  ``small_sample_size`` = 1000 values in the column) get hypothesis tests at
  ``p < 0.05``: Kolmogorov-Smirnov for numeric columns, the two-proportion
  Z-test for columns with two categories, chi-square for other categorical ones;
* larger ones get distances, whose size means something whatever the sample
  size: Wasserstein-1 normalised by the reference standard deviation ``>= 0.1``
  for numeric columns, Jensen-Shannon distance ``>= 0.1`` for categorical ones.

Other tools choose by the reference size alone. A distance measured on a small
window is mostly sampling noise (a 200-row window from the reference
distribution often has a normalised Wasserstein distance above 0.1), so here the
smaller of the two sizes decides.

Every column gets both a test p-value and a distance, whatever decides. The
test p-values of all compared columns are corrected together for multiple
testing (``correction``, Benjamini-Hochberg by default), and a column decided
by a test compares its *adjusted* p-value with its threshold. A column decided
by a distance drifts when the distance reaches its threshold and, for the
Jensen-Shannon distance and PSI (``require_significance='auto'``, the default),
its adjusted p-value is also below ``alpha``: their noise on calm data grows
with the number of categories, so a distance alone could false-alarm. The
normalised Wasserstein distance decides without the corrected test, as in
Evidently: from 1000 values a side its calm-data noise stays below 0.1, and the
Kolmogorov-Smirnov test that would guard it is weak on what it sees best, a
shift of an integer column or of a long tail's scale. It only has to be past
its own sampling noise: on a long tail a few values far out can carry it past
the threshold on calm data, so it drifts when the Kolmogorov-Smirnov test or
Welch's t-test on the means rejects at ``alpha`` (each on its own, uncorrected).

Every column can have its own method and threshold. The dataset drifts when the
share of drifted feature columns is at least ``drift_share`` (0.5), or, with
``dataset_method='bonferroni'`` or ``'bh'`` (which also sets the correction),
when any feature column drifts. Each column and the whole run get a three-level
status: ``ok``, ``warning`` (a distance at least ``warning_ratio`` = half of its
threshold with an adjusted p-value below ``alpha``, or an adjusted p-value below
``pvalue_warning_ratio`` = 1.5 times its threshold) or ``drift``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from mlflow_observe.core._validation import (
    InstanceOf,
    Interval,
    Options,
    validate_params,
)
from mlflow_observe.core.profile.kinds import NUMERIC

# Detectors of the optional backends (``mlflow_observe.backends``), by name. Names
# only: the core validates options with them and never imports a backend.
BACKEND_DETECTORS = (
    "alibi:mmd",
    "alibi:lsdd",
    "alibi:classifier",  # multivariate: one test on all columns
    "alibi:ks",
    "alibi:cvm",
    "alibi:chi2",
    "alibi:fet",
    "alibi:tabular",  # one test a column
)
PVALUE_METHODS = ("ks", "chi2", "ztest")
DISTANCE_METHODS = ("wasserstein", "js", "psi")
CORRECTIONS = ("bh", "bonferroni", "none")
NUMERIC_METHODS = ("ks", "wasserstein", "psi", "js")
CATEGORICAL_METHODS = ("chi2", "ztest", "js", "psi")
METHODS = ("auto", "ks", "wasserstein", "psi", "js", "chi2", "ztest")
DEFAULT_THRESHOLDS = {
    "ks": 0.05,
    "chi2": 0.05,
    "ztest": 0.05,
    "wasserstein": 0.1,
    "js": 0.1,
    "psi": 0.2,
}
# Evidently's floor for the normalising standard deviation, so that a constant
# reference column still gives a finite distance.
MIN_NORMALISING_STD = 0.001

FEATURE, PREDICTION, TARGET = "feature", "prediction", "target"
# Class-probability outputs: judged like the prediction, never counted as features.
PROBABILITY = "probability"
# A text column's descriptors: judged like numeric columns, counted in the verdict through
# their text column only.
DESCRIPTOR = "descriptor"
# The statistics of text and embedding columns: decided by their detectors, not by _judge.
UNSTRUCTURED_METHODS = ("text_domain_auc", "embedding_domain_auc")
# The other statistics an embedding logs, beside its domain classifier's AUC.
EMBEDDING_STATISTICS = (
    "embedding_euclidean_distance",
    "embedding_cosine_distance",
    "embedding_share_drifted_components",
)
OK, WARNING, DRIFT, SKIPPED = "ok", "warning", "drift", "skipped"


@dataclass(frozen=True)
class DriftOptions:
    """How columns are compared and judged.

    Parameters
    ----------
    method : {'auto', 'ks', 'wasserstein', 'psi', 'js', 'chi2', 'ztest'}, default='auto'
        The method for every column where it applies; 'auto' picks by kind and
        reference size (see the module docstring).
    methods : dict of str to str, default={}
        Per-column methods, overriding ``method``.
    threshold : float, optional
        One threshold for every column (default: the method's own, see
        ``DEFAULT_THRESHOLDS``). For tests it is the p-value below which a
        column drifts; for distances the value at or above which it drifts.
    thresholds : dict of str to float, default={}
        Per-column thresholds.
    small_sample_size : int, default=1000
        When the reference or the window has fewer values than this in a
        column, the column gets a hypothesis test instead of a distance.
    drift_share : float, default=0.5
        Share of drifted feature columns at which the dataset drifts.
    dataset_method : {'share', 'bonferroni', 'bh'}, default='share'
        How the dataset verdict is reached: 'share' by ``drift_share``;
        'bonferroni' or 'bh' when any feature column drifts, its p-values
        corrected by that method (this overrides ``correction``).
    correction : {'bh', 'bonferroni', 'none'}, default='bh'
        The multiple-testing correction over the test p-values of every
        compared column (features, prediction, label and probabilities) of a
        window: Benjamini-Hochberg, Bonferroni, or none.
    alpha : float, default=0.05
        The level a distance-decided column's adjusted p-value must be below
        (see ``require_significance``).
    require_significance : {'auto', True, False}, default='auto'
        Whether a column decided by a distance drifts only when its test also
        rejects (adjusted p-value below ``alpha``). True: every distance;
        'auto': the Jensen-Shannon distance and PSI, and the normalised
        Wasserstein distance only with ``dataset_method='bh'`` or
        ``'bonferroni'`` (otherwise it needs only the Kolmogorov-Smirnov test
        or Welch's t-test on the means to reject at ``alpha``, uncorrected: a
        distance carried by a few far values does not drift); False: no
        distance, as in other tools. Unless False, a distance's warning also
        needs the adjusted p-value below ``alpha``.
    warning_ratio : float, default=0.5
        A distance at this fraction of its threshold (see
        ``require_significance``) is a warning.
    pvalue_warning_ratio : float, default=1.5
        A column decided by a test is a warning when its adjusted p-value is
        below this multiple of its threshold (0.075 for 0.05). With
        Benjamini-Hochberg the chance that any column of a calm window gets an
        adjusted p-value below a level is at most about that level, so 2
        (0.1) would make about 10% of calm windows of under
        ``small_sample_size`` rows warnings; 1.5 keeps them near 7.5%.
    missing_rate_tolerance : float, default=0.05
        Integrity: a rise in a column's missing rate above this is a finding.
    multivariate : bool, default=False
        Also run the multivariate detectors (a domain classifier and PCA
        reconstruction error, see :mod:`mlflow_observe.core.multivariate`) on
        the baseline's and the window's row samples.
    segment_by : list of str, default=()
        Also compare each segment of the window (the rows sharing a value of
        one of these columns) with the whole baseline (see
        :mod:`mlflow_observe.core.drift.segments`).
    min_segment_size : int, default=200
        Segment values with fewer rows are pooled into one ``(other)`` segment
        per column, skipped when it is still smaller.
    max_segments : int, default=50
        Values of a segment column counted on their own (the first seen); the
        rest share ``(other)``.
    detectors : sequence of str, default=()
        Other libraries' detectors to run on the same row samples, by name:
        ``'alibi:mmd'``, ``'alibi:lsdd'``, ``'alibi:classifier'``, ``'alibi:ks'``,
        ``'alibi:cvm'``, ``'alibi:chi2'``, ``'alibi:fet'``, ``'alibi:tabular'``
        (extra ``alibi``, see :mod:`mlflow_observe.backends.alibi`). Each adds one
        record to the table and ``drift/alibi/<detector>/...`` metrics; none
        changes the columns' or the dataset's verdict.
    attribution_threshold : float, default=0.9
        Attribution drift (see :mod:`mlflow_observe.core.explain.importance`):
        the window drifts when the nDCG of its top features falls below this...
    attribution_max_share_change : float, default=0.1
        ... or when one feature's share of the global importance moves by more.
    attribution_min_rows : int, default=100
        Attributed rows a window needs for attribution drift (fewer: skipped,
        with the reason in the table).

    Examples
    --------
    >>> options = DriftOptions(methods={"age": "psi"}, drift_share=0.3)
    >>> options.method_for("age", "numeric", n_reference=50_000, n_current=9000, n_categories=0)
    'psi'
    >>> options.method_for("plan", "categorical", n_reference=50_000, n_current=200, n_categories=3)
    'chi2'
    >>> options.threshold_for("age", "psi")
    0.2
    >>> test_for("numeric", 0), distance_for("categorical")
    ('ks', 'js')
    """

    method: str = "auto"
    methods: dict = field(default_factory=dict)
    threshold: float | None = None
    thresholds: dict = field(default_factory=dict)
    small_sample_size: int = 1000
    drift_share: float = 0.5
    dataset_method: str = "share"
    correction: str = "bh"
    alpha: float = 0.05
    require_significance: bool | str = "auto"
    warning_ratio: float = 0.5
    pvalue_warning_ratio: float = 1.5
    missing_rate_tolerance: float = 0.05
    multivariate: bool = False
    segment_by: tuple = ()
    min_segment_size: int = 200
    max_segments: int = 50
    detectors: tuple = ()
    attribution_threshold: float = 0.9
    attribution_max_share_change: float = 0.1
    attribution_min_rows: int = 100

    _constraints: ClassVar[dict[str, list[Any]]] = {
        "method": [Options(*METHODS)],
        "methods": [InstanceOf(dict)],
        "threshold": [InstanceOf(type(None)), Interval(float, 0, None)],
        "thresholds": [InstanceOf(dict)],
        "small_sample_size": [Interval(int, 0, None)],
        "drift_share": [Interval(float, 0, 1, closed="right")],
        "dataset_method": [Options("share", "bonferroni", "bh")],
        "correction": [Options(*CORRECTIONS)],
        "alpha": [Interval(float, 0, 1, closed="neither")],
        "require_significance": [Options("auto"), InstanceOf(bool)],
        "warning_ratio": [Interval(float, 0, 1, closed="right")],
        "pvalue_warning_ratio": [Interval(float, 1, None)],
        "missing_rate_tolerance": [Interval(float, 0, 1)],
        "multivariate": [InstanceOf(bool)],
        "segment_by": [InstanceOf(list, tuple, description="a list of column names")],
        "min_segment_size": [Interval(int, 1, None)],
        "max_segments": [Interval(int, 1, None)],
        "detectors": [InstanceOf(list, tuple)],
        "attribution_threshold": [Interval(float, 0, 1)],
        "attribution_max_share_change": [Interval(float, 0, 1)],
        "attribution_min_rows": [Interval(int, 1, None)],
    }

    def __post_init__(self):
        if isinstance(self.segment_by, str):  # one column named on its own
            object.__setattr__(self, "segment_by", (self.segment_by,))
        validate_params(self._constraints, asdict(self), "DriftOptions")
        object.__setattr__(self, "segment_by", tuple(str(c) for c in self.segment_by))
        for column, method in self.methods.items():
            validate_params(
                {"method": [Options(*METHODS)]},
                {"method": method},
                f"DriftOptions (methods[{column!r}])",
            )
        for detector in self.detectors:
            validate_params(
                {"detector": [Options(*BACKEND_DETECTORS)]},
                {"detector": detector},
                "DriftOptions (detectors)",
            )
        # A list from a config becomes a tuple: options stay hashable and frozen.
        object.__setattr__(self, "detectors", tuple(dict.fromkeys(self.detectors)))
        for column, threshold in self.thresholds.items():
            validate_params(
                {"threshold": [Interval(float, 0, None)]},
                {"threshold": threshold},
                f"DriftOptions (thresholds[{column!r}])",
            )

    @classmethod
    def from_config(cls, config: dict | None) -> DriftOptions:
        """Build options from an evaluator config, ignoring the keys that are not options."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (config or {}).items() if k in names})

    def method_for(
        self, column: str, kind: str, n_reference: int, n_current: int, n_categories: int
    ) -> str:
        method = self.methods.get(column, self.method)
        if method != "auto":
            allowed = NUMERIC_METHODS if kind == NUMERIC else CATEGORICAL_METHODS
            if method not in allowed:
                raise ValueError(
                    f"Method {method!r} does not apply to the {kind} column {column!r}; "
                    f"choose one of {', '.join(allowed)}."
                )
            return method
        small = min(n_reference, n_current) < self.small_sample_size
        if kind == NUMERIC:
            return "ks" if small else "wasserstein"
        if small:
            return "ztest" if n_categories == 2 else "chi2"
        return "js"

    def guards(self, method: str) -> bool:
        """Whether a column decided by the distance ``method`` needs its test to reject too.

        >>> DriftOptions().guards("js"), DriftOptions().guards("wasserstein")
        (True, False)
        >>> DriftOptions(require_significance=True).guards("wasserstein")
        True
        >>> DriftOptions(dataset_method="bh").guards("wasserstein")
        True
        """
        if self.require_significance == "auto":
            # A verdict by 'bh' or 'bonferroni' promises a bounded rate of false
            # flags: every flag must then be a rejection of the corrected test.
            return method != "wasserstein" or self.dataset_method != "share"
        return bool(self.require_significance)

    @property
    def effective_correction(self) -> str:
        """The correction applied: ``dataset_method``'s when it names one, else ``correction``."""
        return self.correction if self.dataset_method == "share" else self.dataset_method

    def threshold_for(self, column: str, method: str) -> float:
        if column in self.thresholds:
            return float(self.thresholds[column])
        if self.threshold is not None:
            return float(self.threshold)
        return DEFAULT_THRESHOLDS[method]


def test_for(kind: str, n_categories: int) -> str:
    """The test every column of this kind gets (its ``<test>_pvalue`` metric).

    >>> test_for("numeric", 0), test_for("boolean", 2), test_for("categorical", 5)
    ('ks', 'ztest', 'chi2')
    """
    if kind == NUMERIC:
        return "ks"
    return "ztest" if n_categories == 2 else "chi2"


def distance_for(kind: str) -> str:
    """The distance every column of this kind gets: Wasserstein (numeric) or Jensen-Shannon.

    >>> distance_for("numeric"), distance_for("boolean")
    ('wasserstein', 'js')
    """
    return "wasserstein" if kind == NUMERIC else "js"
