"""A watch worker process that dies is not lost silently: ``vlm-anomaly watch`` spreads two live
cameras over two worker processes, one worker is SIGKILLed while watching, and the summary shows
its camera as failed with the worker's exit code, the other camera watched to the end, and the
exit status says something failed."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.events.streams import MjpegCameras

#: real processes and live streams: tens of seconds (deselect with -m "not slow")
pytestmark = pytest.mark.slow


def _spawned_workers(parent: int) -> list[int]:
    """The multiprocessing "spawn" children of ``parent`` (not its resource tracker), oldest first."""
    kids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in cmd:
            kids.append(int(d.name))
    return sorted(kids)


def test_a_killed_watch_worker_is_shown_as_failed_and_the_other_cameras_go_on(default_home, clips, tmp_path):
    cams = MjpegCameras(clips[0][0])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[2] / "src"),
           "VLM_ANOMALY_HOME": str(default_home), "VLM_ANOMALY_INTERVAL_MS": "500",
           "VLM_ANOMALY_WATCH_PROCESSES": "2",
           "VLM_ANOMALY_EVENTS_DB_URL": f"sqlite:///{tmp_path}/ev.db",
           "VLM_ANOMALY_EVENTS_DIR": str(tmp_path / "ev")}
    cli = subprocess.Popen(
        [sys.executable, "-m", "vlm_anomaly.cli", "watch", "--model", "street",
         "--source", f"{cams.base}/porch.mjpg", "--source", f"{cams.base}/yard.mjpg", "--max-seconds", "25"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        # both workers are up and both cameras are being read before one worker is killed
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                len(_spawned_workers(cli.pid)) == 2 and {"/porch.mjpg", "/yard.mjpg"} <= set(cams.paths)):
            time.sleep(0.2)
        workers = _spawned_workers(cli.pid)
        assert len(workers) == 2 and {"/porch.mjpg", "/yard.mjpg"} <= set(cams.paths), (workers, cams.paths)
        time.sleep(2)
        os.kill(workers[0], signal.SIGKILL)
        out, err = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            cli.kill()
        cams.close()
    summary = {m[1]: (int(m[2]), m[3]) for m in re.finditer(r"^(\S+): (\d+) frames, .*, (\w+(?:: .*)?)$", out, re.M)}
    assert set(summary) == {f"{cams.base}/porch.mjpg", f"{cams.base}/yard.mjpg"}, out
    states = sorted(s for _, s in summary.values())
    assert states[0] == "failed: watch worker process exited with code -9" and not states[1].startswith("failed"), out
    assert max(n for n, _ in summary.values()) >= 20, out  # the other camera was watched on to the end
    assert cli.returncode == 2, (out, err)
    assert "watch worker process exited with code -9" in err  # logged too, with the cameras it held
