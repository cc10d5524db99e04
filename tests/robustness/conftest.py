"""Fixtures of the robustness tests: the malformed-media corpus, small real clips and models,
a CLI runner and a "zygote" that forks killable worker processes (see workers.py)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
# the user's settings must not change what these tests see; the test harness's own variables
# (VLM_ANOMALY_TEST_*, e.g. where UCSD Ped2 is) are not settings and stay for every test
for _k in [k for k in os.environ if k.startswith("VLM_ANOMALY_") and not k.startswith("VLM_ANOMALY_TEST_")]:
    del os.environ[_k]

import pytest  # noqa: E402

from tests.helpers import cli_env  # noqa: E402
from vlm_anomaly.synthetic import write_video  # noqa: E402

from .corpus import build_corpus  # noqa: E402

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "normal1": write_video(d / "normal1.mp4", seconds=3, fps=10, size=(96, 72), seed=0),
        "normal2": write_video(d / "normal2.mp4", seconds=3, fps=10, size=(96, 72), seed=0, start_s=3.0),
        "test": write_video(d / "test.mp4", seconds=3, fps=10, size=(96, 72), seed=0,
                            anomaly_span=(1.0, 2.0)),
    }


@pytest.fixture(scope="session")
def efficientnet():
    from vlm_anomaly.encoders import create_encoder

    return create_encoder("efficientnet", batch_size=8)


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory, clips, efficientnet) -> Path:
    """A settings home holding model ``m`` trained on the normal clips (real EfficientNet)."""
    from vlm_anomaly.config import load_settings
    from vlm_anomaly.pipeline import Pipeline

    home = tmp_path_factory.mktemp("home")
    s = load_settings(overrides={"detector": "ocsvm",
                                 "home": home, "encoder": "efficientnet", "embedding_cache": False})
    Pipeline(s, encoder=efficientnet).train("m", [clips["normal1"], clips["normal2"]])
    return home


def assert_one_line_error(rc: int, err: str, *needles: str) -> str:
    """The CLI contract: non-zero exit, one line starting "error:", no traceback."""
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert rc != 0, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    for n in needles:
        assert n.lower() in lines[0].lower(), lines[0]
    return lines[0]


class Zygote:
    """Client of ``workers.py zygote``: fork workers, read their JSON events, SIGKILL them."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "workers.py")], env=cli_env(OMP_NUM_THREADS="1"),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.events: queue.Queue = queue.Queue()
        self.pending: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(lambda e: e["event"] == "ready", timeout=180)

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                continue

    def wait_for(self, pred, timeout: float = 120) -> dict:
        """Next event matching ``pred`` (others are kept); fails on a worker error or timeout."""
        for i, e in enumerate(self.pending):
            if pred(e):
                return self.pending.pop(i)
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                pytest.fail(f"no expected event within {timeout} s; seen: {self.pending[-5:]}")
            try:
                e = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if e.get("event") == "error":
                pytest.fail(f"worker failed: {e['error']}")
            if pred(e):
                return e
            self.pending.append(e)

    def start(self, task: str, **args) -> int:
        tag = f"{task}-{time.monotonic_ns()}"
        self.proc.stdin.write(json.dumps({"task": task, "args": args, "tag": tag}) + "\n")
        self.proc.stdin.flush()
        return self.wait_for(lambda e: e.get("event") == "forked" and e.get("tag") == tag)["child"]

    def run(self, task: str, timeout: float = 240, **args) -> dict:
        """Run a worker to its final event (the last one it emits before exiting)."""
        pid = self.start(task, **args)
        return self.wait_for(lambda e: e.get("pid") == pid and e["event"] in ("result", "memory", "done"),
                             timeout=timeout)

    def kill(self, pid: int) -> list[dict]:
        """SIGKILL worker ``pid``; returns every event it emitted that was not consumed yet."""
        os.kill(pid, signal.SIGKILL)
        for _ in range(500):  # reaped by the zygote (SIGCHLD ignored)
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.01)
        time.sleep(0.2)  # let the reader thread take what the worker wrote before dying
        while True:
            try:
                self.pending.append(self.events.get_nowait())
            except queue.Empty:
                break
        mine = [e for e in self.pending if e.get("pid") == pid]
        self.pending = [e for e in self.pending if e.get("pid") != pid]
        return mine

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def zygote():
    z = Zygote()
    yield z
    z.close()
