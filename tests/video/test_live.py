"""Live sources against a real local HTTP MJPEG server that the test interrupts, and real files."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from vlm_anomaly.errors import InvalidVideoError
from vlm_anomaly.synthetic import write_video
from vlm_anomaly.video import sample_frames
from vlm_anomaly.video.live import Gap, LiveSource


class MjpegHandler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        srv = self.server
        if time.monotonic() < srv.down_until:
            self.send_response(503)
            self.end_headers()
            return
        srv.connections += 1
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        i = 0
        try:
            while not srv.closing:
                img = np.full((96, 128, 3), (i * 9) % 255, np.uint8)
                jpg = cv2.imencode(".jpg", img)[1].tobytes()
                self.wfile.write(
                    b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
                    + jpg
                    + b"\r\n"
                )
                self.wfile.flush()
                i += 1
                time.sleep(0.05)
                if srv.drop_after and i >= srv.drop_after:  # hang up, refuse for a while
                    srv.drop_after = 0
                    srv.down_until = time.monotonic() + srv.down_s
                    return
                if srv.stall_after and i >= srv.stall_after:  # keep the socket, send nothing
                    srv.stall_after = 0
                    time.sleep(srv.down_s)
                    return
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def mjpeg():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), MjpegHandler)
    srv.daemon_threads = True
    srv.down_until, srv.drop_after, srv.stall_after, srv.down_s = 0.0, 0, 0, 1.5
    srv.connections, srv.closing = 0, False
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/stream.mjpg"
    yield srv
    srv.closing = True
    srv.shutdown()
    srv.server_close()


def collect(src, seconds):
    items, t0 = [], time.monotonic()
    for it in src:
        items.append(it)
        if time.monotonic() - t0 > seconds:
            src.stop()
    return items


@pytest.mark.slow
def test_dropped_stream_reconnects_with_backoff_and_reports_gap(mjpeg):
    mjpeg.drop_after = 15  # ~0.75 s of video, then 1.5 s of HTTP 503
    drops = []  # told at the moment of the drop, before any reconnection
    src = LiveSource(
        mjpeg.url, interval_ms=100, stall_timeout_s=1.0, backoff_initial_s=0.1, backoff_max_s=0.4,
        on_drop=lambda t, why: drops.append((t, why)),
    )
    items = collect(src, 4.0)
    gaps = [g for g in items if isinstance(g, Gap)]
    frames = [f for f in items if not isinstance(f, Gap)]
    assert len(gaps) == 1, gaps
    g = gaps[0]
    assert drops == [(g.start_time, g.reason)]
    assert g.reconnects >= 2  # refused at least once: back-off retries
    assert 1.3 <= g.missed_s <= 2.6, g
    assert g.missed_samples(100) >= 10
    before = [f for f in frames if f.timestamp <= g.start_time]
    after = [f for f in frames if f.timestamp >= g.end_time]
    assert len(before) >= 4 and len(after) >= 4  # frames resume after the gap
    assert mjpeg.connections == 2
    ts = [f.timestamp for f in frames]
    assert ts == sorted(ts)  # source time keeps running across the reconnection


@pytest.mark.slow
def test_stalled_stream_is_detected_by_the_watchdog(mjpeg):
    mjpeg.stall_after, mjpeg.down_s = 10, 3.0  # connection stays open but silent for 3 s
    src = LiveSource(mjpeg.url, interval_ms=100, stall_timeout_s=0.8, backoff_initial_s=0.1)
    items = collect(src, 3.0)
    gaps = [g for g in items if isinstance(g, Gap)]
    assert gaps and gaps[0].reason.startswith("stalled")
    assert 0.8 <= gaps[0].missed_s < 2.5  # reconnected long before the server woke up
    assert mjpeg.connections >= 2
    assert not isinstance(items[-1], Gap)


@pytest.mark.slow
def test_unreachable_stream_gives_up_after_max_reconnects():
    src = LiveSource(
        "http://127.0.0.1:9/none.mjpg", interval_ms=100, backoff_initial_s=0.05, max_reconnects=3
    )
    t0 = time.monotonic()
    items = list(src)
    assert time.monotonic() - t0 < 5
    assert len(items) == 1 and isinstance(items[0], Gap) and "gave up" in items[0].reason
    assert items[0].reconnects == 4
    assert [src.backoff(i) for i in (1, 2, 3)] == [0.05, 0.1, 0.2]


@pytest.mark.slow
def test_file_fast_equals_offline_sampler_and_realtime_paces(tmp_path):
    video = write_video(tmp_path / "v.mp4", seconds=2, fps=10, size=(96, 64))
    offline = [(f.index, f.timestamp) for f in sample_frames(video, interval_ms=200)]
    fast = list(LiveSource(str(video), interval_ms=200, realtime=False))
    assert [(f.index, f.timestamp) for f in fast] == offline
    t0 = time.monotonic()
    live = list(LiveSource(str(video), interval_ms=200, realtime=True))
    assert time.monotonic() - t0 >= 1.7  # played at its own rate (2 s of video)
    assert len(live) == len(offline)
    with pytest.raises(InvalidVideoError):
        list(LiveSource(str(tmp_path / "missing.mp4")))


def test_live_source_reads_as_the_sampling_section_says(tmp_path):
    from vlm_anomaly.config import load_settings

    video = write_video(tmp_path / "v.mp4", seconds=1, fps=10, size=(160, 120))
    sampling = load_settings(overrides={"sampling": {"interval_ms": 200, "max_side": 80,
                                                     "stream_stall_timeout_s": 1.5,
                                                     "stream_backoff_initial_s": 0.2,
                                                     "stream_backoff_max_s": 3.0}}).sampling
    src = LiveSource.from_settings(str(video), sampling, realtime=False)
    assert (src.interval_ms, src.stall_timeout_s, src.backoff_initial_s, src.backoff_max_s) == (200, 1.5, 0.2, 3.0)
    frames = list(src)
    assert [f.index for f in frames] == [0, 2, 4, 6, 8]
    assert max(frames[0].image.shape[:2]) == 80  # downscaled to max_side
    # the caller's interval (the model's own) wins over the section's
    assert [f.index for f in LiveSource.from_settings(str(video), sampling, interval_ms=500, realtime=False)] == [0, 5]


def test_frame_folder_source(tmp_path):
    from vlm_anomaly.synthetic import write_frames

    folder = write_frames(tmp_path / "f", n=10, fps=10)
    frames = list(LiveSource(str(folder), interval_ms=200, realtime=False, folder_fps=10))
    assert [f.index for f in frames] == [0, 2, 4, 6, 8]


def test_opencv_reader_reads_the_same_stream(mjpeg):
    """The webcam path (cv2.VideoCapture) also opens URLs; here it reads the local MJPEG stream."""
    from vlm_anomaly.video.sources import CvReader

    src = LiveSource(mjpeg.url, interval_ms=100, reader_factory=lambda: CvReader(mjpeg.url))
    frames = [f for f in collect(src, 1.5) if not isinstance(f, Gap)]
    assert len(frames) >= 5 and frames[0].image.shape == (96, 128, 3)
    with pytest.raises(InvalidVideoError):
        CvReader("http://127.0.0.1:9/nothing.mjpg")


def test_live_reader_decodes_each_camera_on_one_thread_on_a_small_machine(tmp_path):
    """A box watches several cameras: on a small machine each camera's decoder and colour conversion
    get one thread (FFmpeg's own choice starts one per core each, costing CPU for the same pixels);
    the pixels (and so the scores) stay what FFmpeg's own thread counts give."""
    import os

    from vlm_anomaly.video.sources import open_reader

    def threads() -> int:
        return len(os.listdir("/proc/self/task"))

    video = write_video(tmp_path / "v.mp4", seconds=1, fps=10, size=(320, 240), codec="libx264")
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(cpus)[:2])  # a 2-core box (FFmpeg and the library count usable cores)
    try:
        before = threads()
        reader = open_reader(str(video))
        try:
            frames = reader.frames()
            first = [next(frames)[1]() for _ in range(3)]
            during = threads()
        finally:
            reader.close()
    finally:
        os.sched_setaffinity(0, cpus)
    assert during == before  # no decoder or scaler threads beside the reading thread
    import av

    with av.open(str(video)) as c:  # FFmpeg's own thread counts, as the reader decoded before: the same pixels
        st = c.streams.video[0]
        st.thread_type = "AUTO"
        before_change = [f.to_ndarray(format="rgb24") for _, f in zip(range(3), c.decode(st))]
    assert all(np.array_equal(a, b) for a, b in zip(first, before_change, strict=True))


@pytest.mark.parametrize("spec", ["²", "٣"])
def test_only_ascii_digits_name_a_camera(spec, tmp_path, monkeypatch):
    """"²" and "٣" are digits to str.isdigit(): as a source they are a file name (here: missing), not
    a camera index ("²" crashed in int(), "٣" opened camera 3)."""
    from vlm_anomaly.video.sources import check_source

    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidVideoError, match=f"{spec}: no such file"):
        check_source(spec)
