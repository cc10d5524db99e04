"""Uploaded videos live in a temp folder: reused while in use, deleted once stale."""

from __future__ import annotations

import os
import tempfile
import time

import pytest

from vlm_anomaly.ui import state


@pytest.fixture()
def tmp_uploads(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return state.upload_dir()


def test_stale_uploads_are_pruned_and_fresh_ones_kept(tmp_uploads):
    old, fresh = tmp_uploads / "aaaa", tmp_uploads / "bbbb"
    for d in (old, fresh):
        d.mkdir()
        (d / "clip.mp4").write_bytes(b"x" * 100)
    past = time.time() - state.UPLOAD_MAX_AGE_S - 60
    os.utime(old, (past, past))
    assert state.prune_uploads() == 1
    assert not old.exists() and (fresh / "clip.mp4").is_file()


class _Upload:
    """What Streamlit's file_uploader hands over (name, size, id, bytes)."""

    def __init__(self, name: str, data: bytes):
        self.name, self.size, self.file_id, self._data = name, len(data), f"id-{name}", data

    def getbuffer(self) -> memoryview:
        return memoryview(self._data)


def test_save_upload_names_by_content_and_prunes(tmp_uploads):
    stale = tmp_uploads / "cccc"
    stale.mkdir()
    past = time.time() - state.UPLOAD_MAX_AGE_S - 60
    os.utime(stale, (past, past))
    p = state.save_upload(_Upload("walk.mp4", b"\x00" * 64), max_mb=1)
    assert p.read_bytes() == b"\x00" * 64 and p.name == "walk.mp4"
    assert not stale.exists()
    with pytest.raises(state.InvalidVideoError, match="not a video"):
        state.save_upload(_Upload("notes.txt", b"hi"), max_mb=1)
