"""Annotated frames and videos, thumbnails and fetching frames again by index."""

from __future__ import annotations

import numpy as np
import pytest

from vlm_anomaly import InvalidVideoError, ScoreResult
from vlm_anomaly.synthetic import write_frames, write_video
from vlm_anomaly.video import probe, sample_frames
from vlm_anomaly.video.render import AnnotatedVideoWriter, annotate_frame, playback_fps, write_annotated_video
from vlm_anomaly.video.thumbnails import decode_image, encode_jpeg, grab_frames, thumbnail


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("sink") / "clip.mp4", seconds=3, fps=10)


def _result(clip, anomalous: set[int]) -> ScoreResult:
    frames = list(sample_frames(clip, interval_ms=500))
    n = len(frames)
    scores = np.array([-1.0 if k in anomalous else 0.5 for k in range(n)])
    return ScoreResult(str(clip), "m", np.array([f.index for f in frames]), np.array([f.timestamp for f in frames]),
                       scores, scores.copy(), 0.0, 1, [f"desc {k}" for k in range(n)], [0.9] * n)


def test_grab_frames_matches_the_sampler(clip):
    frames = {f.index: f.image for f in sample_frames(clip, interval_ms=500)}
    got = grab_frames(clip, [15, 0, 25, 999])  # any order; an index past the end is left out
    assert sorted(got) == [0, 15, 25]
    for ix, img in got.items():
        assert np.array_equal(img, frames[ix])
    small = grab_frames(clip, [5], max_side=160)[5]
    assert small.shape == (120, 160, 3)


def test_grab_frames_from_a_frame_folder(tmp_path):
    folder = write_frames(tmp_path / "f", n=6)
    got = grab_frames(folder, [1, 4])
    assert sorted(got) == [1, 4] and got[1].shape == (120, 160, 3)


def test_thumbnail_and_jpeg_round_trip():
    img = np.zeros((480, 640, 3), np.uint8)
    img[:, :320] = (200, 30, 30)
    t = thumbnail(img, 320)
    assert t.shape == (240, 320, 3)
    assert thumbnail(t, 1000) is t  # never upscales
    back = decode_image(encode_jpeg(t))
    assert back.shape == t.shape and abs(int(back[10, 10, 0]) - 200) < 8
    with pytest.raises(InvalidVideoError):
        decode_image(b"not a picture")


def test_annotate_frame_marks_anomalies_in_red():
    img = np.full((240, 320, 3), 128, np.uint8)
    bad = annotate_frame(img, score=-1.2, anomaly=True, time_s=3.5, description="a person running")
    ok = annotate_frame(img, score=0.4, anomaly=False)
    assert bad.shape == img.shape and img[0, 0, 0] == 128  # input untouched
    assert tuple(bad[-1, 160]) == (220, 40, 40)  # red frame border on anomalies
    assert tuple(ok[-1, 160]) == (128, 128, 128)
    assert (bad[:20] != img[:20]).any()  # a banner with the text


def test_writer_writes_a_playable_mp4(tmp_path):
    out = tmp_path / "o.mp4"
    with AnnotatedVideoWriter(out, fps=2) as sink:
        for k in range(5):
            sink.write(np.full((101, 161, 3), 40 * k, np.uint8), score=0.1 * k, anomaly=k == 3)
    info = probe(out)
    assert (info.width, info.height) == (160, 100)  # even sizes for yuv420p
    assert info.frame_count == 5 and info.fps == pytest.approx(2.0)


def test_writer_removes_a_partial_file_on_error(tmp_path):
    out = tmp_path / "o.mp4"
    with pytest.raises(RuntimeError):
        with AnnotatedVideoWriter(out) as sink:
            sink.write(np.zeros((64, 64, 3), np.uint8), score=0.0, anomaly=False)
            raise RuntimeError("boom")
    assert not out.exists()


def test_write_annotated_video_draws_each_scored_frame(clip, tmp_path):
    r = _result(clip, anomalous={2, 3})
    out = write_annotated_video(r, clip, tmp_path / "ann.mp4")
    frames = list(sample_frames(out, interval_ms=0))
    assert len(frames) == r.n_frames == 6
    assert playback_fps(r.timestamps) == pytest.approx(2.0)
    reds = [f.image[-2, f.image.shape[1] // 2].astype(int) for f in frames]
    is_red = [int(p[0]) > 150 and int(p[1]) < 100 for p in reds]
    assert is_red == [False, False, True, True, False, False]


def test_event_clip_goes_through_the_video_writer_downscaled_and_atomic(tmp_path):
    """Event evidence clips are written by the same writer as annotated results: at most 640 px,
    every frame, an MP4 that decodes, and no temp file left beside it once finished."""
    from vlm_anomaly.events.media import ClipWriter

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8) for _ in range(5)]
    frames.append(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))  # another size: resized
    path = tmp_path / "events" / "clip.mp4"
    clip = ClipWriter(path, fps=5)
    for img in frames:
        clip.write(img)
    size = clip.close()
    assert size == path.stat().st_size > 0
    info = probe(path)
    assert (info.width, info.height) == (640, 360) and info.frame_count == 6
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]
