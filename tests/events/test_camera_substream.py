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


def test_two_sources_that_make_one_camera_name_say_so(tmp_path):
    """Two different files given as bare sources whose made-up names collide: the error names
    both and says how to tell them apart (it said "camera ... is listed twice")."""
    settings = load_settings(overrides={"home": tmp_path, "watch_model": "street"})
    with pytest.raises(ConfigError, match=r"/srv/a/intr\.mp4 and /srv/a_intr\.mp4 both make the camera name "
                                          r"srv_a_intr_mp4: name them in the settings' cameras list"):
        resolve_cameras(settings, sources=["/srv/a/intr.mp4", "/srv/a_intr.mp4"])
    with pytest.raises(ConfigError, match="camera srv_a_intr_mp4 is listed twice"):
        resolve_cameras(settings, sources=["/srv/a/intr.mp4", "/srv/a/intr.mp4"])
