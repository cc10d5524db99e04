"""A model knows one camera's view: footage of another shape (another camera, a cropped or
stretched stream) is refused with a reason, in ``score``, ``watch`` and when learning footage as
normal; the same view at another resolution, or a sub-stream whose size rounds a little
differently, is scored as before.

The street model is the shipped default trained on 320x240 clips (aspect 1.33).
"""

from __future__ import annotations

import pytest

from tests.helpers import run_cli
from vlm_anomaly.synthetic import write_video

REFUSED = "do not have the shape of the view the model knows (aspect about 1.4)"


@pytest.mark.slow
def test_another_shape_is_refused_and_the_same_view_is_scored(tmp_path, default_street_model):
    """Scored as a 640x240 panorama, every frame of normal footage came out anomalous (and a tall
    one explained as "camera view moved"), without a word on why; now the wrong shape is an error
    naming both shapes. 160x120 (half size) and 344x240 (a 4 % wider crop, within a grid column)
    score as the view they are."""
    home = default_street_model.install(tmp_path / "home")
    for size in [(640, 240), (240, 320)]:
        src = write_video(tmp_path / f"wide{size[0]}.mp4", seconds=4, size=size, seed=0)
        r = run_cli("score", "street", src, home=home, timeout=300)
        assert r.returncode == 2, r.stdout + r.stderr
        assert f"{src.name}: its frames ({size[0]}x{size[1]}, aspect {size[0] / size[1]:.2f}) {REFUSED}" in r.stderr
        r = run_cli("normal", "add", "street", src, home=home, timeout=300)
        assert r.returncode == 2 and REFUSED in r.stderr, r.stdout + r.stderr
    r = run_cli("watch", "-m", "street", "-s", src, "--fast", home=home, timeout=300)
    assert "failed:" in r.stdout and REFUSED in r.stdout, r.stdout + r.stderr

    for size in [(160, 120), (344, 240)]:
        src = write_video(tmp_path / f"same{size[0]}.mp4", seconds=4, size=size, seed=0)
        r = run_cli("score", "street", src, home=home, timeout=300)
        assert r.returncode == 0 and "16 frames, 0 anomalous" in r.stdout, r.stdout + r.stderr
