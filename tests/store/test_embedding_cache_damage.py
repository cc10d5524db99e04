"""A damaged embedding-cache entry costs a re-encode, never a failure (the cache is only a speed-up)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from vlm_anomaly.store import CachedEmbeddings, EmbeddingCache


def _npz_with_header(header: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("indices.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)
    return buf.getvalue()


@pytest.mark.parametrize("content", [
    b"", b"garbage" * 10, _npz_with_header(b"{'descr': '<f8', 'shape': (3,\n"),  # numpy raises TokenError
])
def test_damaged_entries_read_as_missing(tmp_path, content):
    cache = EmbeddingCache(tmp_path)
    good = CachedEmbeddings(np.arange(3), np.arange(3) / 2, np.ones((3, 4), np.float32))
    cache.put("k", good)
    assert cache.get("k", 4) is not None
    (tmp_path / "embeddings" / "k.npz").write_bytes(content)
    assert cache.get("k", 4) is None  # re-encode, no exception
    cache.put("k", good)
    np.testing.assert_array_equal(cache.get("k", 4).embeddings, good.embeddings)
