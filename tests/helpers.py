"""Helpers every test package shares: the CLI in a real process, its environment, a free port.

One copy here instead of one per test package; fixtures in ``tests/conftest.py`` wrap them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"


def free_port() -> int:
    """A free TCP port on localhost, for the real servers the tests start."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_app(app):
    """Run an ASGI ``app`` (a stand-in Frigate, the API) under a real uvicorn on a free localhost
    port; returns ``(url, server, thread)`` - stop with ``server.should_exit = True; thread.join()``."""
    import threading
    import time

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    return f"http://127.0.0.1:{port}", server, th


def cli_env(home: Path | None = None, **extra: str) -> dict[str, str]:
    """Environment of a CLI subprocess: this checkout's code, offline and (given ``home``) an
    isolated settings home; a developer's own ``VLM_ANOMALY_*`` settings are dropped."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VLM_ANOMALY_") or k.startswith("VLM_ANOMALY_TEST_")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["HF_HUB_OFFLINE"] = "1"
    env["COLUMNS"] = "200"  # keep Rich from wrapping summary lines
    if home is not None:
        env["VLM_ANOMALY_HOME"] = str(home)
    # the shipped defaults (the `motion` detector): a test about another detector says so itself,
    # with --detector or VLM_ANOMALY_DETECTOR in ``extra``
    env.update(extra)
    return env


def run_cli(*args, home: Path | None = None, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m vlm_anomaly.cli ARGS`` to completion (stdout, stderr captured as text)."""
    return subprocess.run([sys.executable, "-m", "vlm_anomaly.cli", *map(str, args)], cwd=cwd,
                          env=cli_env(home, **(env or {})), capture_output=True, text=True, timeout=timeout)


def start_cli(*args, home: Path | None = None, **env: str) -> subprocess.Popen:
    """Start ``vlm-anomaly ARGS`` as a real process, to run alongside others (collect with :func:`finish`);
    one OpenMP thread each, as several share the machine."""
    return subprocess.Popen([sys.executable, "-m", "vlm_anomaly.cli", *map(str, args)],
                            env=cli_env(home, **{"OMP_NUM_THREADS": "1", **env}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of a started process; a hung one is killed and fails the test."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"CLI hung: {proc.args}\n{err[-2000:]}")
    return proc.returncode, out, err


def watch_events(home: Path, model: str, source: Path, tmp: Path, timeout: float = 300) -> list:
    """``watch --fast`` on a file, through the function the CLI's ``watch`` calls, into a fresh event
    store under ``tmp``; the events it stored, once the file has ended."""
    from vlm_anomaly import load_settings
    from vlm_anomaly.cameras import Camera
    from vlm_anomaly.events import EventStore
    from vlm_anomaly.service import watch_cameras

    s = load_settings(overrides={"home": home, "events_db_url": f"sqlite:///{tmp}/ev.db", "events_dir": tmp / "events"})
    rows, early = watch_cameras(s, [Camera(name="file", source=str(source), model=model)], realtime=False,
                                max_seconds=timeout)
    assert not early and rows[0]["status"] == "ended", rows
    return EventStore.from_settings(s).list()


def trained_plaza(d: Path, scene: str):
    """A Pipeline under ``d`` with the shipped default trained on ``synthetic_nuisance``'s plaza
    under ``scene``, on the footage of ``bench/motion_nuisance.py`` to the frame: 9 clips of 15 s
    (with 6 of 10 s, one flow spike smoothed over 5 samples flagged 12.5 % of a normal clip: see
    docs/motion.md on 15 fps)."""
    from vlm_anomaly import Pipeline, load_settings
    from vlm_anomaly.synthetic_nuisance import write_scene

    train = [write_scene(d / f"t{i}.mp4", scene, seconds=15, start_s=15 * i) for i in range(9)]
    pipe = Pipeline(load_settings(overrides={"home": d / "home"}))  # the default detector and sampling
    pipe.train(scene, train)
    return pipe


def rendered(markdown: str) -> str:
    """The text a dashboard element's markdown shows (AppTest gives the source): backslash
    escapes, which the dashboard puts before names' markdown signs, are shown as the sign."""
    import re

    return re.sub(r"\\([\\`*_\[\]<>#~$|])", r"\1", str(markdown))
