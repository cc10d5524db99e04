"""Persistence: named models, embedding cache, results - all written atomically, nothing pickled.

(The dashboard's training set, a workflow over the pipeline, is :mod:`vlm_anomaly.training_set`.)
"""

from ..atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, file_lock
from .embeddings import CachedEmbeddings, EmbeddingCache
from .models import ModelInfo, ModelStore, validate_name

__all__ = [
    "CachedEmbeddings",
    "EmbeddingCache",
    "ModelInfo",
    "ModelStore",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "file_lock",
    "validate_name",
]
