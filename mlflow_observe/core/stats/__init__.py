"""Two-sample drift statistics, each computed from counts (or exact on small samples).

Every function returns a frozen dataclass with ``statistic`` and ``pvalue``
(None for distances) and named extras, after ``scipy.stats``.
"""

from mlflow_observe.core.stats.categorical import chi_square, proportions_ztest
from mlflow_observe.core.stats.correction import benjamini_hochberg, bonferroni
from mlflow_observe.core.stats.distances import jensen_shannon, psi
from mlflow_observe.core.stats.numeric import (
    ks_binned,
    ks_exact,
    wasserstein_binned,
    wasserstein_exact,
    welch_ttest,
)
from mlflow_observe.core.stats.result import StatisticResult

__all__ = [
    "StatisticResult",
    "benjamini_hochberg",
    "bonferroni",
    "chi_square",
    "jensen_shannon",
    "ks_binned",
    "ks_exact",
    "proportions_ztest",
    "psi",
    "wasserstein_binned",
    "wasserstein_exact",
    "welch_ttest",
]
