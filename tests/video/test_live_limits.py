"""The live reader refuses frames over the pixel limit from the header, as the file sampler does."""

from __future__ import annotations

import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import av
import pytest

from vlm_anomaly.errors import VideoTooLongError
from vlm_anomaly.video import sample_frames
from vlm_anomaly.video.decode import MAX_PIXELS
from vlm_anomaly.video.live import LiveSource
from vlm_anomaly.video.sources import CvReader

SIDE = 8200  # 8200 x 8200 = 67.2 MP, just over the 8192 x 8192 limit


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def huge_video(tmp_path_factory):
    """Two black 8200x8200 H.264 frames: 14 kB on disk, ~200 MB per frame once decoded to RGB."""
    path = tmp_path_factory.mktemp("huge") / "huge.mp4"
    assert SIDE * SIDE > MAX_PIXELS
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=10)
        st.width, st.height, st.pix_fmt = SIDE, SIDE, "yuv420p"
        st.options = {"preset": "ultrafast"}
        for _ in range(2):
            for pkt in st.encode(av.VideoFrame(SIDE, SIDE, "yuv420p")):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return path


@pytest.fixture(scope="module")
def http_url(huge_video):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(huge_video.parent)))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/{huge_video.name}"
    srv.shutdown()
    srv.server_close()


def test_file_sampler_and_live_file_refuse_the_same_frame_size(huge_video):
    with pytest.raises(VideoTooLongError, match="8200x8200 is over the limit"):
        list(sample_frames(huge_video, interval_ms=0))
    with pytest.raises(VideoTooLongError, match="8200x8200 is over the limit"):
        list(LiveSource(str(huge_video), interval_ms=0, realtime=False))


def test_live_stream_is_refused_from_its_header_not_retried(http_url):
    src = LiveSource(http_url, interval_ms=0, backoff_initial_s=0.05, stall_timeout_s=2)
    got: list = []

    def consume() -> None:  # in a thread, so that a source that never ends cannot hang the test
        try:
            for item in src:  # a stream would reconnect for ever; a size over the limit is final
                got.append(item)
                src.stop()
        except Exception as exc:  # noqa: BLE001 - what the source raised is the result
            got.append(exc)

    th = threading.Thread(target=consume, daemon=True)
    t0 = time.monotonic()
    th.start()
    th.join(30)
    src.stop()
    assert len(got) == 1 and isinstance(got[0], VideoTooLongError), got
    assert "8200x8200 is over the limit" in str(got[0])
    assert time.monotonic() - t0 < 10


def test_opencv_reader_refuses_it_too(huge_video):
    with pytest.raises(VideoTooLongError, match="over the limit"):
        CvReader(str(huge_video))
