"""Frame sampling from real encoded files and frame folders: which frames, at which times."""

from __future__ import annotations

import re
import shutil

import cv2
import numpy as np
import pytest

from vlm_anomaly.errors import InvalidVideoError
from vlm_anomaly.video import content_hash, list_frame_files, probe, sample_frames

SMALL = (160, 120)


@pytest.mark.parametrize(
    ("ext", "fps", "seconds", "interval_ms", "expected"),
    [
        # 10 fps, 6 s, 500 ms: 12 samples, every 5th frame at 0.0, 0.5, ... 5.5 s
        ("mp4", 10, 6, 500, list(range(0, 60, 5))),
        ("avi", 10, 6, 500, list(range(0, 60, 5))),
        ("mkv", 10, 2, 500, [0, 5, 10, 15]),
        # every frame
        ("mp4", 10, 6, 0, list(range(60))),
        ("avi", 7, 4, 0, list(range(28))),
        # 7 fps: frames at k/7 s; the first frame at or after 0.5, 1.0, 1.5 ... s
        ("mp4", 7, 4, 500, [0, 4, 7, 11, 14, 18, 21, 25]),
        ("avi", 7, 4, 500, [0, 4, 7, 11, 14, 18, 21, 25]),
        # NTSC-style 29.97 fps: 0.5 s falls between frames 14 (0.467 s) and 15 (0.5005 s)
        ("mp4", 29.97, 4, 500, [0, 15, 30, 45, 60, 75, 90, 105]),
        ("mp4", 29.97, 2, 100, [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45, 48, 51, 54, 57]),
        # interval shorter than the frame period: every frame, each once
        ("mp4", 7, 1, 100, list(range(7))),
        ("mp4", 10, 6, 2000, [0, 20, 40]),
        # interval longer than the whole video: only the first frame
        ("mp4", 10, 1.5, 2000, [0]),
    ],
)
def test_sample_counts_and_timestamps(make_video, ext, fps, seconds, interval_ms, expected):
    path = make_video(f"s_{fps}fps_{seconds}s.{ext}", seconds=seconds, fps=fps, size=SMALL)
    frames = list(sample_frames(path, interval_ms=interval_ms))

    assert [f.index for f in frames] == expected
    times = np.array([f.timestamp for f in frames])
    np.testing.assert_allclose(times, np.array(expected) / fps, atol=2e-3)
    assert frames[0].index == 0 and frames[0].timestamp == 0.0
    assert np.all(np.diff(times) > 0)
    for f in frames:
        assert f.image.shape == (SMALL[1], SMALL[0], 3) and f.image.dtype == np.uint8
        assert f.source == str(path)


def test_sampled_frames_show_the_right_moment(make_video):
    """The frame sampled at 0.5 s is the decoded frame 5, not a neighbour (pixels compared)."""
    path = make_video("s_10fps_6s.mp4", seconds=6, fps=10, size=SMALL)
    every = list(sample_frames(path, interval_ms=0))
    for f in sample_frames(path, interval_ms=500):
        np.testing.assert_array_equal(f.image, every[f.index].image)


@pytest.mark.parametrize("ext", ["mp4", "avi"])
def test_probe_reads_metadata(make_video, ext):
    path = make_video(f"s_10fps_6s.{ext}", seconds=6, fps=10, size=SMALL)
    info = probe(path)
    assert (info.width, info.height) == SMALL
    assert info.fps == pytest.approx(10.0)
    assert info.frame_count == 60
    assert info.duration_s == pytest.approx(6.0)
    assert info.kind == "file"


def test_max_frames_stops_early(make_video):
    path = make_video("s_10fps_6s.mp4", seconds=6, fps=10, size=SMALL)
    frames = list(sample_frames(path, interval_ms=500, max_frames=3))
    assert [f.index for f in frames] == [0, 5, 10]


def test_max_side_downscales_keeping_aspect(make_video):
    path = make_video("big.mp4", seconds=1, fps=10, size=(640, 480))
    small = list(sample_frames(path, interval_ms=500, max_side=320))
    assert [f.image.shape for f in small] == [(240, 320, 3)] * 2
    untouched = list(sample_frames(path, interval_ms=500, max_side=1920))
    assert untouched[0].image.shape == (480, 640, 3)


# -- frame folders -------------------------------------------------------------------------

def _write_numbered_frames(folder, names_and_values, ext):
    folder.mkdir(parents=True)
    for name, value in names_and_values:
        img = np.full((40, 60, 3), value, np.uint8)
        assert cv2.imwrite(str(folder / f"{name}{ext}"), img)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif", ".bmp"])
def test_frame_folder_sorted_numerically(tmp_path, ext):
    # written out of order; each frame's grey level is 20 x its number
    numbers = [10, 2, 0, 1, 11, 3, 9, 4, 8, 5, 7, 6]
    _write_numbered_frames(tmp_path / "f", [(n, 20 * n) for n in numbers], ext)
    (tmp_path / "f" / "notes.txt").write_text("not a frame")

    assert [p.name for p in list_frame_files(tmp_path / "f")][:4] == [f"{n}{ext}" for n in (0, 1, 2, 3)]
    frames = list(sample_frames(tmp_path / "f", interval_ms=0))
    assert [f.index for f in frames] == list(range(12))
    levels = [float(f.image.mean()) for f in frames]
    np.testing.assert_allclose(levels, [20 * n for n in range(12)], atol=3)  # jpg is lossy
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(12) / 25.0)  # default 25 fps


def test_frame_folder_with_prefixed_names_and_interval(tmp_path):
    """UCSD-style names (frame_2.png before frame_10.png) and sampling by the folder frame rate."""
    _write_numbered_frames(tmp_path / "f", [(f"frame_{n}", 10 * n) for n in range(1, 21)], ".png")
    frames = list(sample_frames(tmp_path / "f", interval_ms=500, folder_fps=10))
    assert [f.index for f in frames] == [0, 5, 10, 15]
    np.testing.assert_allclose([f.image.mean() for f in frames], [10, 60, 110, 160])
    assert [f.timestamp for f in frames] == [0.0, 0.5, 1.0, 1.5]


def test_generated_frame_folder(frame_folder):
    info = probe(frame_folder)
    assert (info.kind, info.width, info.height, info.frame_count) == ("folder", 160, 120, 20)
    assert len(list(sample_frames(frame_folder, interval_ms=0, max_frames=7))) == 7
    half = list(sample_frames(frame_folder, interval_ms=0, max_side=80))
    assert half[0].image.shape == (60, 80, 3)


# -- bad input ------------------------------------------------------------------------------

def _bad_inputs(tmp, good_mp4):
    rng = np.random.default_rng(0)
    (tmp / "random.mp4").write_bytes(rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    (tmp / "empty.mp4").write_bytes(b"")
    (tmp / "notes.avi").write_text("this is a text file, not a video\n" * 50)
    (tmp / "report.txt").write_text("plain text\n")
    data = good_mp4.read_bytes()
    (tmp / "truncated.mp4").write_bytes(data[: len(data) // 3])  # index (moov) is at the end: lost
    (tmp / "empty_dir").mkdir()
    (tmp / "text_only_dir").mkdir()
    (tmp / "text_only_dir" / "readme.md").write_text("no frames here")
    (tmp / "broken_frames").mkdir()
    (tmp / "broken_frames" / "0.png").write_bytes(b"\x89PNG garbage")
    _write_audio_only(tmp / "audio_only.mka")


def _write_audio_only(path):
    import av

    with av.open(str(path), "w") as out:
        st = out.add_stream("pcm_s16le", rate=8000)
        st.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for pkt in st.encode(frame):
            out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("random.mp4", "not a readable video"),
        ("empty.mp4", "empty file"),
        ("notes.avi", "not a readable video"),
        ("report.txt", "not a readable video"),
        ("truncated.mp4", "not a readable video"),
        ("missing.mp4", "no such file"),
        ("empty_dir", "no image frames"),
        ("text_only_dir", "no image frames"),
        ("broken_frames", "unreadable image|no decodable frame"),
        ("audio_only.mka", "no video stream"),
    ],
)
def test_bad_sources_rejected_clearly(tmp_path, make_video, name, reason):
    _bad_inputs(tmp_path, make_video("s_10fps_6s.mp4", seconds=6, fps=10, size=SMALL))
    path = tmp_path / name
    for action in (lambda: list(sample_frames(path)), lambda: probe(path)):
        with pytest.raises(InvalidVideoError) as info:
            action()
        msg = str(info.value)
        assert re.search(reason, msg), msg
        assert name in msg, "the message must say which input is bad"
        assert "\n" not in msg and len(msg) < 400


def test_content_hash_follows_content_not_path(tmp_path, make_video):
    src = make_video("s_10fps_6s.mp4", seconds=6, fps=10, size=SMALL)
    copy = tmp_path / "renamed.mp4"
    shutil.copy(src, copy)
    assert content_hash(copy) == content_hash(src)
    data = bytearray(copy.read_bytes())
    data[-1] ^= 0xFF
    copy.write_bytes(bytes(data))
    assert content_hash(copy) != content_hash(src)


def test_content_hash_of_folder_changes_with_a_frame(tmp_path):
    _write_numbered_frames(tmp_path / "f", [(n, n) for n in range(3)], ".png")
    before = content_hash(tmp_path / "f")
    cv2.imwrite(str(tmp_path / "f" / "1.png"), np.full((40, 60, 3), 99, np.uint8))
    assert content_hash(tmp_path / "f") != before


def test_a_folder_of_recordings_given_as_a_frame_folder_says_what_it_holds(tmp_path):
    """A folder of videos is a common slip (``score-batch m recordings`` for ``recordings/*``):
    the refusal names the videos it found, not only the image types it looked for."""
    from vlm_anomaly.synthetic import write_video

    for name in ("mon.mp4", "tue.mkv"):
        write_video(tmp_path / name, seconds=1, fps=5, size=(64, 48))
    for read in (lambda: probe(tmp_path), lambda: list(sample_frames(str(tmp_path), interval_ms=500))):
        with pytest.raises(InvalidVideoError, match=r"holds 2 video file\(s\) \(mon.mp4, tue.mkv\)"):
            read()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidVideoError, match=r"folder holds no image frames \(.png.*\)$"):
        probe(empty)


@pytest.mark.parametrize("ext", [".m2ts", ".mts", ".3gp", ".wmv", ".asf", ".flv"])
def test_camcorder_phone_and_recorder_formats_are_accepted_and_read_whole(tmp_path, ext):
    """What cameras store besides MP4/MKV: AVCHD camcorders (.mts/.m2ts), old phones (.3gp),
    Windows recorders (.wmv/.asf), Flash-era DVRs (.flv). The dashboard's upload and the training
    set take them, so each must read in full (6 s at 10 fps: 12 samples at 500 ms)."""
    from vlm_anomaly.synthetic import write_video
    from vlm_anomaly.ui.state import VIDEO_TYPES

    assert ext.lstrip(".") in VIDEO_TYPES
    src = write_video(tmp_path / f"clip{ext}", seconds=6, fps=10, size=(160, 120),
                      codec="mpeg4" if ext in (".wmv", ".asf") else None)
    assert probe(src).width == 160
    frames = list(sample_frames(str(src), interval_ms=500))
    assert len(frames) == 12 and frames[-1].timestamp == pytest.approx(5.5, abs=0.05)
