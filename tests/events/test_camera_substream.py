"""A camera's sub-stream: a camera of the settings file that names a ``detect_source`` beside its
``source`` is read and scored from the sub-stream, the main stream is never opened (local MJPEG
cameras record which streams were asked for)."""

import pytest

from tests.events.streams import MjpegCameras
from vlm_anomaly.cameras import resolve_cameras
from vlm_anomaly.config import load_settings
from vlm_anomaly.errors import ConfigError
from vlm_anomaly.service import watch_cameras


def test_camera_with_a_detect_source_is_watched_on_that_stream_only(default_home, clips, tmp_path):
    """Two cameras in worker processes (the default), one with a sub-stream, one without."""
    main, sub = MjpegCameras(clips[0][0]), MjpegCameras(clips[0][0])
    try:
        settings = load_settings(overrides={
            "home": default_home, "interval_ms": 500, "events_db_url": f"sqlite:///{tmp_path}/ev.db",
            "events_dir": str(tmp_path / "ev"), "watch_processes": 2, "watch_model": "street",
            "cameras": [{"name": "porch", "source": f"{main.base}/porch-main.mjpg",
                         "detect_source": f"{sub.base}/porch-sub.mjpg"},
                        {"name": "yard", "source": f"{main.base}/yard.mjpg"}]})
        cams, _ = resolve_cameras(settings)
        assert [(c.name, c.source, c.main_source) for c in cams] == [
            ("porch", f"{sub.base}/porch-sub.mjpg", f"{main.base}/porch-main.mjpg"),
            ("yard", f"{main.base}/yard.mjpg", None)]
        rows, _ = watch_cameras(settings, cams, max_seconds=6)
    finally:
        main.close()
        sub.close()
    assert set(sub.paths) == {"/porch-sub.mjpg"}
    assert set(main.paths) == {"/yard.mjpg"}  # porch's main stream costs nothing: never connected to
    got = {r["camera"]: r for r in rows}
    assert got["porch"]["source"] == f"{sub.base}/porch-sub.mjpg" and got["porch"]["frames"] >= 2
    assert got["yard"]["source"] == f"{main.base}/yard.mjpg" and got["yard"]["frames"] >= 2


def test_detect_source_needs_the_camera_source():
    with pytest.raises(ConfigError, match="detect_source is a sub-stream of the camera's source"):
        load_settings(overrides={"cameras": [{"name": "porch", "detect_source": "rtsp://cam/sub"}]})
