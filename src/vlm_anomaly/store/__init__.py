"""Persistence: named models, embedding cache, results - all written atomically, nothing pickled."""

from .atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, file_lock
from .embeddings import CachedEmbeddings, EmbeddingCache
from .models import ModelInfo, ModelStore, validate_name
from .training_set import TrainingItem, TrainingSet

__all__ = [
    "CachedEmbeddings",
    "EmbeddingCache",
    "ModelInfo",
    "ModelStore",
    "TrainingItem",
    "TrainingSet",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "file_lock",
    "validate_name",
]
