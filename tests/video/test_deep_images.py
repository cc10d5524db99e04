"""Frame folders from lab and machine-vision cameras: 10- to 16-bit samples in 16-bit PNG or TIFF.
Cut to their top 8 bits (OpenCV's own conversion), a 12-bit frame's values all lay under 16: the
picture was near black and the motion in it vanished. Each folder's 16-bit frames are brought to
8 bits by the depth its first frame uses, the same for all of them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vlm_anomaly.synthetic import write_frames
from vlm_anomaly.video import sample_frames
from vlm_anomaly.video.thumbnails import grab_frames


@pytest.mark.parametrize(("bits", "ext"), [(12, "png"), (10, "tif"), (16, "tiff")])
def test_deep_frames_are_read_as_their_8_bit_export(tmp_path, bits, ext):
    eight = write_frames(tmp_path / "eight", n=12, size=(160, 120), seed=0)
    deep = tmp_path / f"deep{bits}"
    deep.mkdir()
    for f in sorted(eight.glob("*.png")):
        gray = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE).astype(np.uint16)
        # the camera's samples: the 8-bit picture with (bits - 8) more bits of detail below it
        cv2.imwrite(str(deep / f"{f.stem}.{ext}"), (gray << (bits - 8)) + (gray >> (16 - bits)))
    a = [f.image for f in sample_frames(eight, interval_ms=0)]
    b = [f.image for f in sample_frames(deep, interval_ms=0)]
    assert len(a) == len(b) == 12 and b[0].dtype == np.uint8 and b[0].shape == (120, 160, 3)
    for x, y in zip(a, b):
        gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)
        assert np.abs(y[..., 0].astype(int) - gray).max() <= 1  # the same picture, not a near-black one
    thumb = grab_frames(deep, [3])[3]  # the dashboard's thumbnails
    assert abs(float(thumb.mean()) - float(b[3].mean())) < 1.0
