"""Moved to :mod:`vlm_anomaly.atomic` (a low layer every module may use); this name stays importable."""

from ..atomic import atomic_save_npy, atomic_write_bytes, atomic_write_json, atomic_write_text, file_lock

__all__ = ["atomic_save_npy", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "file_lock"]
