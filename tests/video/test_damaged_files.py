"""A file with a few damaged kilobytes in the middle (a bad sector, a flaky card, a copy
interrupted and resumed): the decoder refuses some packets. Players carry on from the next
keyframe; so must scoring and watching, saying what was skipped, instead of stopping at the
damage and dropping the rest of the file.

The file is a real H.264 MP4 of the synthetic street with 2 % of its bytes overwritten half way.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from vlm_anomaly.errors import InvalidVideoError
from vlm_anomaly.synthetic import write_video
from vlm_anomaly.video import Frame, sample_frames
from vlm_anomaly.video.live import LiveSource

SECONDS = 12.0


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("damaged")
    src = write_video(folder / "whole.mp4", seconds=SECONDS, fps=10, size=(160, 120))
    data = bytearray(src.read_bytes())
    n = len(data) // 50
    data[len(data) // 2: len(data) // 2 + n] = np.random.default_rng(0).bytes(n)
    out = folder / "damaged.mp4"
    out.write_bytes(bytes(data))
    return out


def test_scoring_reads_past_the_damage_and_says_what_it_skipped(damaged, caplog):
    with caplog.at_level(logging.WARNING):
        frames = list(sample_frames(str(damaged), interval_ms=500))
    # the damage sits half way; before, sampling stopped there (last frame at 4.5 s of 12)
    assert frames[-1].timestamp >= SECONDS - 1.0
    assert len(frames) >= 0.8 * SECONDS * 2
    said = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert any("damaged packet(s) skipped" in m and "damaged.mp4" in m for m in said), said


def test_watching_reads_past_the_damage(damaged):
    got = [i for i in LiveSource(str(damaged), interval_ms=500, realtime=False) if isinstance(i, Frame)]
    assert got[-1].timestamp >= SECONDS - 1.0


def test_a_file_where_nothing_decodes_is_refused_with_the_reason(tmp_path):
    # the middle third of a stream without its headers: no packet can be decoded
    src = write_video(tmp_path / "whole.ts", seconds=6, fps=10, size=(160, 120))
    data = src.read_bytes()
    start = (len(data) // 3 // 188) * 188  # cut on a transport-stream packet boundary
    headless = tmp_path / "headless.ts"
    headless.write_bytes(data[start:])
    with pytest.raises(InvalidVideoError, match="headless.ts: cannot decode"):
        list(sample_frames(str(headless), interval_ms=500))
