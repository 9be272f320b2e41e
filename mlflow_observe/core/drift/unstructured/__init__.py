"""Drift on unstructured columns: free text and embedding vectors.

:mod:`.text` turns a text column into per-row descriptors (numeric columns the
ordinary rules judge) and runs a domain classifier on a TF-IDF representation;
:mod:`.embedding` judges a column of vectors three ways (a domain classifier,
the distance between mean vectors, the share of drifted components). Both take
samples and return result objects, like the multivariate detectors.
"""

from mlflow_observe.core.drift.unstructured.embedding import (
    EmbeddingDriftResult,
    MeanDistanceResult,
    embedding_drift,
)
from mlflow_observe.core.drift.unstructured.text import (
    TEXT_DESCRIPTORS,
    TextDriftResult,
    TextVocabulary,
    text_descriptors,
    text_domain_drift,
)

__all__ = [
    "TEXT_DESCRIPTORS",
    "EmbeddingDriftResult",
    "MeanDistanceResult",
    "TextDriftResult",
    "TextVocabulary",
    "embedding_drift",
    "text_descriptors",
    "text_domain_drift",
]
