"""Files that end short of the length they declare: a download cut off, a recorder that crashed
while writing, a file damaged part way. Their frames decode up to the cut and then stop, some
containers with an error, some without; what is missing must show as lost time (a gap), in
``score`` as in ``watch``, not pass for a short clip.

The files are real encodes of the synthetic street scene, cut to their first 45 % of bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from tests.helpers import run_cli
from vlm_anomaly.synthetic import write_video
from vlm_anomaly.video import probe, sample_frames
from vlm_anomaly.video.decode import file_gaps
from vlm_anomaly.video.live import Gap, LiveSource

SECONDS, FPS, SIZE = 12.0, 10.0, (160, 120)
STALL_S = 5.0  # the shipped stream_stall_timeout_s: a hole must be longer to be a gap


def faststart(src: Path, dst: Path) -> Path:
    """``src`` remuxed as an MP4 whose index comes first (what web exports and cameras' downloads
    write): cut short, it still opens and declares its whole length."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        ist = inp.streams.video[0]
        ost = out.add_stream_from_template(ist)
        for pkt in inp.demux(ist):
            if pkt.dts is None:
                continue
            pkt.stream = ost
            out.mux(pkt)
    return dst


def whole(tmp_path: Path, ext: str, anomaly: tuple[float, float] | None = None) -> Path:
    src = write_video(tmp_path / f"whole{'.mkv' if ext == '.mp4' else ext}", seconds=SECONDS, fps=FPS, size=SIZE,
                      anomaly_span=anomaly)
    return faststart(src, tmp_path / "whole.mp4") if ext == ".mp4" else src


def cut(src: Path, share: float = 0.45) -> Path:
    data = src.read_bytes()
    out = src.with_name(f"cut{src.suffix}")
    out.write_bytes(data[: int(len(data) * share)])
    return out


def end_gaps(src: Path) -> list[Gap]:
    items = list(LiveSource(str(src), interval_ms=500, realtime=False, stall_timeout_s=STALL_S))
    return [i for i in items if isinstance(i, Gap)]


@pytest.mark.parametrize("ext", [".mkv", ".avi", ".mp4"])
def test_a_file_cut_short_shows_the_end_it_lacks_live_and_offline(tmp_path, ext):
    """Cut to 45 % of its bytes, a 12 s file decodes a few seconds and stops (MP4 with an error, MKV
    and AVI without; FFmpeg reads one frame of the AVI). The live reader ends it with one gap to the
    declared 12 s, saying why; offline results find the same gap from the sampled frames and the
    declared length."""
    src = cut(whole(tmp_path, ext))
    [gap] = end_gaps(src)
    assert "its header declares (cut short or damaged)" in gap.reason, gap
    assert gap.end_time == pytest.approx(SECONDS, abs=0.15) and gap.start_time < 8.0, gap

    times = np.array([f.timestamp for f in sample_frames(src, interval_ms=500)])
    assert times[-1] == pytest.approx(gap.start_time, abs=0.5)
    [offline] = file_gaps(str(src), (times * FPS).round().astype(int), times, STALL_S, probe(src).length_s)
    assert offline.reason.startswith(f"the file ends at {times[-1]:.1f} s of the 12.0 s")
    assert offline.missed_s == pytest.approx(gap.missed_s, abs=0.5)


@pytest.mark.parametrize("ext", [".mkv", ".avi", ".mp4", ".ts"])
def test_a_whole_file_and_a_file_that_declares_no_length_have_no_end_gap(tmp_path, ext):
    """A whole file ends where it says; an MPEG-TS declares no length, so a cut one cannot be told
    from a short one, and nothing is claimed about it."""
    src = whole(tmp_path, ext)
    assert end_gaps(src) == []
    if ext == ".ts":
        assert end_gaps(cut(src)) == []


@pytest.mark.slow
def test_score_and_watch_report_a_cut_file_as_lost_time(tmp_path, default_street_model):
    """A recording of the intruder cut off part way, scored and watched with the shipped defaults:
    both say the file ends short and count the same missed seconds (they used to report a short
    clip and nothing missed)."""
    home = default_street_model.install(tmp_path / "home")
    src = cut(whole(tmp_path, ".mkv", anomaly=(2.0, 10.0)))
    r = run_cli("score", "street", src, "--json", tmp_path / "cut.json", home=home, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "1 gap(s)" in r.stdout and "its header declares (cut short or damaged)" in r.stdout, r.stdout
    [gap] = json.loads((tmp_path / "cut.json").read_text())["summary"]["gaps"]
    assert gap["end_time"] == pytest.approx(SECONDS, abs=0.15) and gap["missed_s"] > 5.0, gap

    r = run_cli("watch", "-m", "street", "-s", src, "--fast", home=home, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    [line] = [x for x in r.stdout.splitlines() if "cut.mkv: " in x and " frames, " in x]
    assert "1 gap(s)" in line, r.stdout
    missed = float(line.split("gap(s) (")[1].split(" s missed")[0])
    assert missed == pytest.approx(gap["missed_s"], abs=0.6), (line, gap)
