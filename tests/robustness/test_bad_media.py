"""Bad media: every malformed input gives a clear error or a correct (partial) result - never a
hang, a crash or a traceback - in the library and in the CLI."""

from __future__ import annotations

import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import finish, start_cli
from vlm_anomaly.errors import InvalidVideoError, VideoTooLongError, VlmAnomalyError
from vlm_anomaly.synthetic import write_frames, write_video
from vlm_anomaly.video import probe, sample_frames

from .conftest import assert_one_line_error
from .corpus import encode

PER_INPUT_TIMEOUT_S = 60


def run_bounded(fn, timeout: float = PER_INPUT_TIMEOUT_S):
    """Run ``fn`` in a thread; fail the test (not hang it) if it does not return in time."""
    box: dict = {}

    def work():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - inspected by the caller
            box["error"] = exc

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        pytest.fail(f"hang: no answer within {timeout} s")
    return box


def test_corpus_of_malformed_inputs(corpus, capfd):
    """>= 50 generated inputs: each one an InvalidVideoError naming the file, or valid frames."""
    assert len(corpus) >= 50
    handled, report = 0, []
    for case in corpus:
        box = run_bounded(lambda c=case: list(sample_frames(c.path, interval_ms=0, max_side=1920)))
        err = box.get("error")
        if err is not None:
            assert isinstance(err, InvalidVideoError), f"{case.name}: {type(err).__name__}: {err}"
            msg = str(err)
            assert str(case.path) in msg and ": " in msg and "\n" not in msg, msg
            assert case.expect in ("error", "either"), f"{case.name}: unexpected error {msg}"
            report.append(f"{case.name}: error: {msg}")
        else:
            frames = box["value"]
            assert case.expect in ("frames", "either"), f"{case.name}: expected an error"
            assert case.min_frames <= len(frames) <= (case.max_frames or 10**9), case.name
            ts = [f.timestamp for f in frames]
            assert ts == sorted(ts) and len(set(ts)) == len(ts), f"{case.name}: timestamps {ts}"
            for f in frames:
                assert f.image.dtype == np.uint8 and f.image.ndim == 3 and f.image.shape[2] == 3
                assert max(f.image.shape[:2]) <= 1920
            report.append(f"{case.name}: {len(frames)} frame(s)")
        handled += 1
    # nothing from FFmpeg or OpenCV leaks onto stderr (the CLI prints exactly one line)
    assert "WARN" not in capfd.readouterr().err
    errors = sum(r.split(": ", 1)[1].startswith("error") for r in report)
    with capfd.disabled():  # shown with -s: the figures of the corpus
        print(f"\nmalformed inputs tried: {len(corpus)}, handled: {handled} "
              f"({errors} clear errors, {handled - errors} correct/partial results)")
        print("\n".join(report))


def test_corpus_probe_never_crashes(corpus):
    """``probe`` (used before loading an encoder) agrees: clear error or metadata."""
    for case in corpus:
        box = run_bounded(lambda c=case: probe(c.path))
        if "error" in box:
            assert isinstance(box["error"], InvalidVideoError), f"{case.name}: {box['error']!r}"


def _frames(path, **kw):
    return list(sample_frames(path, **kw))


def test_known_answers(corpus):
    """Awkward but valid inputs give the right frames, not merely 'no crash'."""
    by_name = {c.name: c.path for c in corpus}
    one = _frames(by_name["one-frame video"], interval_ms=500)
    assert [(f.index, f.timestamp) for f in one] == [(0, 0.0)]
    # 8K is downscaled at decode time to max_side, keeping the aspect ratio
    big = _frames(by_name["8K video"], interval_ms=0, max_side=1280)
    assert [f.image.shape for f in big] == [(720, 1280, 3)] * 2
    # variable frame rate: sampling follows the real timestamps, not frame numbers
    vfr = _frames(by_name["variable frame rate"], interval_ms=500)
    assert [f.timestamp for f in vfr] == [0.0, 0.5, 1.4, 2.6]
    assert [f.index for f in vfr] == [0, 3, 5, 8]
    # raw streams without container timing get a plausible frame rate and monotonic time
    raw = _frames(by_name["raw H.264 stream (no fps)"], interval_ms=0)
    assert len(raw) == 12 and raw[-1].timestamp > 0
    # a folder with unreadable images: every readable frame, with its own index, nothing else
    mixed = _frames(by_name["folder with mixed/unreadable images"], interval_ms=0)
    assert [f.index for f in mixed] == [0, 1, 2, 3, 4, 5, 9, 10]
    assert mixed[-1].image.shape == (32, 48, 3)  # 16-bit grayscale made 8-bit RGB
    for name in ("1x1 video", "3x5 video"):
        f = _frames(by_name[name], interval_ms=0)[0]
        assert f.image.shape[:2] == {"1x1 video": (1, 1), "3x5 video": (5, 3)}[name]


def _png(width: int, height: int, idat: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_truncated_files_give_a_correct_prefix(corpus):
    """A truncated file yields the intact file's first frames (same index, time and pixels)."""
    root = corpus[0].path.parent
    sources = {"mp4": root / "good.mp4", "faststart_mp4": root / "fast.mp4", "avi": root / "good.avi"}
    full = {k: _frames(p, interval_ms=0) for k, p in sources.items()}
    partial = 0
    for case in corpus:
        if not case.name.startswith("truncated"):
            continue
        label = case.path.stem[len("trunc_"):].rsplit("_", 1)[0]
        try:
            got = _frames(case.path, interval_ms=0)
        except InvalidVideoError:
            continue
        ref = full[label]
        assert len(got) <= len(ref)  # (cutting only an index at the end may lose no frame)
        assert [(f.index, f.timestamp) for f in got] == [(f.index, f.timestamp) for f in ref[: len(got)]]
        for a, b in zip(got[:-1], ref[: len(got) - 1]):  # the last one may be partly decoded
            assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() < 1.0, case.name
        partial += 1
    assert partial >= 8


def test_image_decompression_bomb_is_refused_not_decoded(tmp_path, caplog):
    """A tiny PNG declaring 30000x30000 pixels (0.9 GB decoded) is skipped by its header alone."""
    folder = write_frames(tmp_path / "f", n=3, size=(32, 24))
    (folder / "1.png").write_bytes(_png(30000, 30000, zlib.compress(bytes(30001) * 64)))
    with caplog.at_level("WARNING"):
        frames = _frames(folder, interval_ms=0)
    assert [f.index for f in frames] == [0, 2]
    assert any("pixels refused" in r.getMessage() for r in caplog.records)


def test_duration_limit_refuses_declared_long_video(tmp_path):
    """max_duration_s: a container declaring more is refused before decoding (library + probe)."""
    clip = write_video(tmp_path / "six.mp4", seconds=6, fps=5, size=(64, 48))
    with pytest.raises(VideoTooLongError, match=r"6\.\d s long, over the limit of 2 s"):
        next(sample_frames(clip, max_duration_s=2))
    with pytest.raises(VideoTooLongError):
        probe(clip, max_duration_s=2)
    assert len(_frames(clip, interval_ms=1000, max_duration_s=10)) == 6
    folder = write_frames(tmp_path / "frames", n=20, fps=10)  # folders: 25 fps assumed -> 0.76 s
    with pytest.raises(VideoTooLongError):
        next(sample_frames(folder, max_duration_s=0.5))
    assert VideoTooLongError.status_code == 413 and issubclass(VideoTooLongError, InvalidVideoError)


def test_duration_limit_truncates_when_length_shows_only_while_decoding(tmp_path, caplog):
    """A raw stream declares no length: it is cut at the limit with a warning (partial result)."""
    raw = encode(tmp_path / "long.h264", 60, (64, 48), fmt="h264", options={"preset": "ultrafast"})
    probe(raw, max_duration_s=1.0)  # declares no length, so it cannot be refused up front
    with caplog.at_level("WARNING"):
        frames = _frames(raw, interval_ms=0, max_duration_s=1.0)
    assert frames and frames[-1].timestamp <= 1.0 + 1e-3 and len(frames) < 60
    assert any("truncated at max_duration_s" in r.getMessage() for r in caplog.records)


def test_max_frames_per_job_is_enforced(tmp_path):
    clip = write_video(tmp_path / "c.mp4", seconds=4, fps=10, size=(64, 48))
    assert len(_frames(clip, interval_ms=0, max_frames=7)) == 7


@pytest.mark.slow
def test_cli_bad_media_one_line_errors(corpus, trained_home):
    """train, score and describe on bad media: one 'error:' line, non-zero exit, no traceback."""
    by_name = {c.name: c.path for c in corpus}
    home = {"VLM_ANOMALY_HOME": str(trained_home)}
    procs = [
        (start_cli("train", "x", str(by_name["text file .mp4"]), "--encoder", "efficientnet", **home),
         ["text.mp4", "not a readable video"]),
        (start_cli("score", "m", str(by_name["zeroed frame data"]), **home), ["zeroed_payload.mp4"]),
        (start_cli("describe", str(by_name["unsupported codec tag"]), "--encoder", "efficientnet", **home),
         ["unknown_codec.mp4", "codec"]),
    ]
    for proc, needles in procs:
        rc, out, err = finish(proc)
        assert_one_line_error(rc, err, *needles)


# -- fuzzing ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seed_videos(tmp_path_factory) -> list[bytes]:
    d = tmp_path_factory.mktemp("seeds")
    return [
        write_video(d / "a.mp4", seconds=1, fps=8, size=(48, 32)).read_bytes(),
        write_video(d / "b.avi", seconds=1, fps=8, size=(48, 32)).read_bytes(),
        write_video(d / "c.mkv", seconds=1, fps=8, size=(48, 32)).read_bytes(),
    ]


def _mutate(data: bytes, edits: list[tuple[float, int]], cut: float | None) -> bytes:
    buf = bytearray(data)
    for pos, val in edits:
        buf[int(pos * (len(buf) - 1))] = val
    if cut is not None:
        buf = buf[: int(cut * len(buf))]
    return bytes(buf)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 2),
       edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=12),
       cut=st.one_of(st.none(), st.floats(0, 1)),
       interval=st.sampled_from([0, 100, 500]))
def test_fuzz_decoder_only_raises_library_errors(seed_videos, tmp_path_factory, which, edits, cut, interval):
    """Mutated real videos: the sampler yields valid frames or raises a VlmAnomalyError subclass."""
    path = Path(tmp_path_factory.getbasetemp()) / f"fuzz{[ '.mp4', '.avi', '.mkv'][which]}"
    path.write_bytes(_mutate(seed_videos[which], edits, cut))

    def consume():
        for f in sample_frames(path, interval_ms=interval, max_side=64, max_frames=50):
            assert f.image.dtype == np.uint8 and f.image.ndim == 3

    box = run_bounded(consume, timeout=30)
    if "error" in box:
        assert isinstance(box["error"], VlmAnomalyError), repr(box["error"])
