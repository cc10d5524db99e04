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
    main, sub = MjpegCameras(clips[0][0]), MjpegCameras(clips[0][0])
    try:
        settings = load_settings(overrides={
            "home": default_home, "interval_ms": 500, "events_db_url": f"sqlite:///{tmp_path}/ev.db",
            "events_dir": str(tmp_path / "ev"),
            "cameras": [{"name": "porch", "model": "street", "source": f"{main.base}/main.mjpg",
                         "detect_source": f"{sub.base}/sub.mjpg"}]})
        cams, _ = resolve_cameras(settings)
        assert [(c.name, c.source, c.main_source) for c in cams] == [
            ("porch", f"{sub.base}/sub.mjpg", f"{main.base}/main.mjpg")]
        rows, _ = watch_cameras(settings, cams, max_seconds=4)
    finally:
        main.close()
        sub.close()
    assert sub.paths and set(sub.paths) == {"/sub.mjpg"}
    assert main.paths == []  # the main stream costs nothing: it is not even connected to
    (row,) = rows
    assert row["camera"] == "porch" and row["source"] == f"{sub.base}/sub.mjpg" and row["frames"] >= 4


def test_detect_source_needs_the_camera_source():
    with pytest.raises(ConfigError, match="detect_source is a sub-stream of the camera's source"):
        load_settings(overrides={"cameras": [{"name": "porch", "detect_source": "rtsp://cam/sub"}]})
