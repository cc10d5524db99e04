"""The embedding cache on its own: keyed by content + sampling + encoder, never a failure."""

from __future__ import annotations

import logging

import numpy as np

from vlm_anomaly.store import CachedEmbeddings, EmbeddingCache


def _item(n: int = 6, d: int = 8) -> CachedEmbeddings:
    rng = np.random.default_rng(n)
    return CachedEmbeddings(np.arange(n) * 5, np.arange(n) * 0.5, rng.normal(size=(n, d)).astype(np.float32))


def test_round_trip(tmp_path):
    cache = EmbeddingCache(tmp_path)
    key = EmbeddingCache.key("a" * 64, "enc1", 500, 1920, 0)
    assert cache.get(key, 8) is None
    item = _item()
    cache.put(key, item)
    got = cache.get(key, 8)
    np.testing.assert_array_equal(got.embeddings, item.embeddings)
    np.testing.assert_array_equal(got.indices, item.indices)
    np.testing.assert_array_equal(got.timestamps, item.timestamps)
    assert got.embeddings.dtype == np.float32
    assert [p.name for p in (tmp_path / "embeddings").iterdir()] == [f"{key}.npz"]
    assert cache.get(key, 16) is None  # another dimension is another encoder


def test_key_depends_on_every_part():
    base = ("a" * 64, "enc1", 500, 1920, 0)
    keys = {EmbeddingCache.key(*base)}
    for i, other in enumerate(["b" * 64, "enc2", 250, 640, 100]):
        changed = list(base)
        changed[i] = other
        keys.add(EmbeddingCache.key(*changed))
    assert len(keys) == 6


def test_disabled_cache_stores_nothing(tmp_path):
    cache = EmbeddingCache(tmp_path, enabled=False)
    cache.put("k", _item())
    assert cache.get("k", 8) is None and not (tmp_path / "embeddings").exists()
    assert EmbeddingCache(None).get("k", 8) is None


def test_broken_entries_are_ignored(tmp_path, caplog):
    cache = EmbeddingCache(tmp_path)
    cache.put("whole", _item())
    data = (tmp_path / "embeddings" / "whole.npz").read_bytes()
    broken = {"garbage": b"PK\x03\x04 not really a zip", "truncated": data[: len(data) // 2],
              "empty": b"", "tail_cut": data[:-30]}
    for name, content in broken.items():
        (tmp_path / "embeddings" / f"{name}.npz").write_bytes(content)
    with caplog.at_level(logging.WARNING):
        for name in broken:
            assert cache.get(name, 8) is None, name
    assert "garbage.npz" in caplog.text
    assert cache.get("whole", 8) is not None


def test_unwritable_cache_degrades_to_no_cache(tmp_path, caplog):
    blocker = tmp_path / "home"
    blocker.write_text("a file where the cache folder should be")
    cache = EmbeddingCache(blocker)
    with caplog.at_level(logging.WARNING):
        cache.put("k", _item())
        cache.put("k2", _item())
    assert not cache.enabled
    assert caplog.text.count("embedding cache disabled") == 1
