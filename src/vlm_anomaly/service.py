"""Run the whole thing: watch named cameras (with Home Assistant discovery), and supervise
``watch`` + dashboard + REST API as one service with graceful shutdown.

Why child processes: the dashboard (Streamlit) and the API (uvicorn) each own an event loop and
a server; as separate processes a crash of one is restarted (with back-off) without taking the
cameras down, and one SIGTERM (``docker stop``) stops all three cleanly: each child gets SIGTERM,
then SIGKILL after ``grace_s``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .cameras import Camera

log = logging.getLogger(__name__)


# -- watching cameras ------------------------------------------------------------------------------
def watch_cameras(settings, cameras: list[Camera], *, realtime: bool = True, max_seconds: float | None = None,
                  listener: Callable | None = None) -> tuple[list[dict], bool]:
    """Watch the cameras until they end, ``max_seconds`` pass, or SIGINT/SIGTERM.

    Events go to the store and the alert sinks (topics named by camera); with ``mqtt_url`` and
    ``ha_discovery`` every camera is also announced to Home Assistant, and Frigate's cameras get a
    Frigate event per anomaly (``frigate_events``). Several cameras are spread over worker
    processes (``watch_processes``; one per core by default), each holding one copy of a model for
    its cameras: one Python process cannot keep two cores busy. Returns the status rows (with
    ``camera``) and whether watching stopped before the sources ended.
    """
    groups = camera_groups(cameras, settings.watch_processes)
    restore = _sigterm_as_interrupt()
    try:
        if len(groups) <= 1:
            return _watch_here(settings, cameras, realtime=realtime, max_seconds=max_seconds, listener=listener)
        return _watch_in_processes(settings, groups, realtime=realtime, max_seconds=max_seconds, listener=listener)
    finally:
        restore()


def camera_groups(cameras: list[Camera], processes: int) -> list[list[Camera]]:
    """Cameras split into ``processes`` groups of near-equal size (0: one per core), never more groups
    than cameras; ordered by model, so cameras of one model land together where the sizes allow (each
    group loads a model once)."""
    n = processes or (os.cpu_count() or 1)
    n = max(1, min(n, len(cameras)))
    ordered = sorted(cameras, key=lambda c: c.model)
    size, extra = divmod(len(ordered), n)
    bounds = [g * size + min(g, extra) for g in range(n + 1)]
    return [ordered[bounds[g]:bounds[g + 1]] for g in range(n)]


def _watch_here(settings, cameras: list[Camera], *, realtime: bool, max_seconds: float | None,
                listener: Callable | None, on_start: Callable | None = None,
                home_assistant: bool = True) -> tuple[list[dict], bool]:
    """Watch ``cameras`` in this process (a thread each), with the engine the settings ask for."""
    from .events import Monitor

    early = False
    with Monitor.from_settings(settings, listener=listener, cameras=cameras, home_assistant=home_assistant) as mon:
        try:
            for cam in cameras:
                mon.start(cam.model, cam.source, realtime=realtime, camera=cam.name)
            if on_start is not None:
                on_start(mon)
            early = not mon.wait(max_seconds)
        except KeyboardInterrupt:
            early = True
        finally:
            mon.stop_all()
    # after closing: the last alerts were sent (or failed) and are counted; each row names its camera
    return mon.list(), early


class _GroupRows(dict):
    """The latest status rows of every worker process (by group): what the Home Assistant bridge polls."""

    def list(self) -> list[dict]:
        return [r for g in sorted(self) for r in self[g]]


def _watch_in_processes(settings, groups: list[list[Camera]], *, realtime: bool, max_seconds: float | None,
                        listener: Callable | None) -> tuple[list[dict], bool]:
    """One worker process a group; their notices and status rows come back as JSON over pipes (no
    pickles), events are read back from the shared store. A worker that dies is reported as failed.
    Home Assistant is told here, in one place, of every worker's cameras."""
    import json
    import multiprocessing as mp
    from multiprocessing.connection import wait

    from .events import EventStore, WatchNotice
    from .events.homeassistant import HomeAssistantBridge

    store = EventStore.from_settings(settings)
    bridge = HomeAssistantBridge.for_cameras(settings, [c for g in groups for c in g], store=store)
    try:  # the store and the bridge are closed however starting or watching ends
        hear = [f for f in (listener, bridge.on_notice if bridge else None) if f is not None]
        ctx = mp.get_context("spawn")  # no fork of a process that may hold threads and an encoder
        common = (settings.model_dump_json(exclude_unset=True), realtime, max_seconds,
                  logging.getLogger().getEffectiveLevel())
        procs, conns = [], {}
        for i, group in enumerate(groups):
            recv, send = ctx.Pipe(duplex=False)
            procs.append(ctx.Process(target=_group_main, args=([asdict(c) for c in group], send, *common),
                                     name=f"watch-group-{i + 1}", daemon=True))
            procs[-1].start()
            send.close()
            conns[recv] = i
        seen = _GroupRows()
        done: set[int] = set()  # the groups that sent their last rows
        early = False
        if bridge is not None:
            bridge.attach(seen)
        while conns:
            try:
                for c in wait(list(conns), timeout=1.0):
                    try:
                        msg = json.loads(c.recv_bytes())
                    except (EOFError, OSError):
                        conns.pop(c)
                        continue
                    i = conns[c]
                    if "notice" in msg:
                        n = msg["notice"]
                        rec = store.get(n["event_id"]) if n.get("event_id") else None
                        notice = WatchNotice(n["kind"], n["source"], record=rec, message=n.get("message", ""),
                                             camera=n.get("camera"))
                        for f in hear:
                            f(notice)
                    elif "done" in msg:  # its cameras' last rows, as it stopped
                        seen[i] = _tagged(i, msg["done"])
                        done.add(i)
                        early = early or bool(msg.get("early"))
                    else:
                        seen[i] = _tagged(i, msg["status"])
            except KeyboardInterrupt:  # Ctrl-C / SIGTERM: each worker stops its cameras cleanly
                early = True
                for p in procs:
                    if p.is_alive():
                        p.terminate()
        return _joined(groups, procs, seen, done), early
    finally:
        if bridge is not None:
            bridge.close()
        store.close()


def _joined(groups: list[list[Camera]], procs: list, seen: _GroupRows, done: set[int]) -> list[dict]:
    """Every worker ended (or killed after a grace period): their cameras' last rows; those of a worker
    that died without a word are failed, with what was last known of them."""
    rows: list[dict] = []
    for i, p in enumerate(procs):
        p.join(30)
        if p.is_alive():
            p.kill()
            p.join(5)
        if i in done:
            rows += seen[i]
            continue
        why = f"watch worker process exited with code {p.exitcode}"
        log.error("%s; cameras %s", why, ", ".join(c.name for c in groups[i]))
        last = {r["camera"]: r for r in seen.get(i, []) if r.get("camera")}
        for c in groups[i]:
            r = last.get(c.name) or {"id": f"g{i + 1}-?", "source": c.source, "model": c.model, "frames": 0,
                                     "dropped": 0, "alerts_sent": 0, "alerts_failed": 0, "events": 0,
                                     "gaps": 0, "missed_s": 0.0, "last_time": 0.0, "last_score": None}
            rows.append({**r, "camera": c.name, "status": "failed", "error": why})
    return rows


def _tagged(group: int, rows: list[dict]) -> list[dict]:
    """A worker's status rows with ids unique across workers (each counts its own from w1)."""
    return [{**r, "id": f"g{group + 1}-{r['id']}"} for r in rows]


def _group_main(cams: list[dict], conn, conf: str, realtime: bool, max_seconds: float | None, level: int) -> None:
    """A worker process: watch its cameras here, report notices and status rows to the parent."""
    import json

    from .config import Settings

    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    restore = _sigterm_as_interrupt()
    settings = Settings.model_validate_json(conf)
    lock = threading.Lock()
    stop = threading.Event()
    parent = os.getppid()

    def send(obj: dict) -> None:
        with lock:
            conn.send_bytes(json.dumps(obj, default=str).encode())

    def notice(n) -> None:
        send({"notice": {"kind": n.kind, "source": n.source, "camera": n.camera, "message": n.message,
                         "event_id": getattr(n.record, "id", None)}})

    def report(mon) -> None:
        def loop() -> None:
            while not stop.wait(1.0):
                try:
                    if os.getppid() != parent:
                        raise BrokenPipeError("parent gone")
                    send({"status": mon.list()})
                except OSError:  # the parent died (kill -9): stop cleanly, never run orphaned
                    log.warning("watch worker: parent process gone, stopping")
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
        threading.Thread(target=loop, name="status", daemon=True).start()

    try:
        rows, early = _watch_here(settings, [Camera(**c) for c in cams], realtime=realtime, max_seconds=max_seconds,
                                  listener=notice, on_start=report, home_assistant=False)  # the parent tells it
        stop.set()
        with contextlib.suppress(OSError):
            send({"done": rows, "early": early})
    finally:
        conn.close()
        restore()


def _on_signals(signals: tuple[int, ...], handler: Callable) -> Callable[[], None]:
    """``handler`` for ``signals`` (only the main thread may set one: elsewhere nothing); returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {s: signal.signal(s, handler) for s in signals}
    return lambda: [signal.signal(s, h) for s, h in previous.items()]


#: a second stop signal this soon after the first is the same request arriving twice
REPEATED_SIGNAL_S = 2.0


def _sigterm_as_interrupt() -> Callable[[], None]:
    """SIGTERM stops watching like Ctrl-C (flush alerts, say offline); returns the undo.

    A second SIGTERM/SIGINT within ``REPEATED_SIGNAL_S`` of the first is ignored: one stop often
    arrives twice (Ctrl-C reaches the whole process group and `service` then sends SIGTERM to its
    children; systemd signals every process of the unit), and a second KeyboardInterrupt would cut
    the graceful stop short (the open event left open, no end alert). A later one still interrupts."""
    first: list[float] = []

    def interrupt(signum, frame):
        now = time.monotonic()
        if first and now - first[0] < REPEATED_SIGNAL_S:
            return
        first[:] = [now]
        raise KeyboardInterrupt

    return _on_signals((signal.SIGTERM, signal.SIGINT), interrupt)


# -- the supervisor --------------------------------------------------------------------------------
@dataclass
class Child:
    """One supervised process: its command, the running process and how often it was restarted."""

    name: str
    args: list[str]
    env: dict[str, str] | None = None  # set in its environment (besides this process's own)
    proc: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0
    next_start: float = 0.0
    done: bool = False  # exited on purpose (code 0) or given up


class Supervisor:
    """Start children, restart the ones that crash (exponential back-off), stop all on a signal.

    Example:
        >>> sup = Supervisor(service_children("vlm-anomaly.yaml", settings))  # doctest: +SKIP
        >>> sys.exit(sup.run())  # doctest: +SKIP
    """

    #: restarts wait 1 s, doubling up to 60 s; a child that ran this long starts the back-off afresh
    backoff_initial_s, backoff_max_s, stable_s = 1.0, 60.0, 60.0

    def __init__(self, children: list[Child], *, grace_s: float = 15.0,
                 on_event: Callable[[str], None] | None = None):
        self.children = children
        self.grace_s = grace_s
        self.on_event = on_event or (lambda msg: log.warning("%s", msg))
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _start(self, c: Child) -> None:
        c.proc = subprocess.Popen(c.args, env={**os.environ, **c.env} if c.env else None)
        c.started_at = time.monotonic()
        self.on_event(f"started {c.name} (pid {c.proc.pid})")

    def run(self) -> int:
        """Block until a signal (or every child finished); 0 when everything stopped cleanly."""
        restore = _on_signals((signal.SIGTERM, signal.SIGINT), lambda signum, frame: self.stop())
        try:
            for c in self.children:
                self._start(c)
            while not self._stop.wait(0.2):
                now = time.monotonic()
                for c in self.children:
                    if c.done:
                        continue
                    if c.proc is None:
                        if now >= c.next_start:
                            self._start(c)
                        continue
                    code = c.proc.poll()
                    if code is None:
                        continue
                    c.proc = None
                    if code == 0:
                        c.done = True
                        self.on_event(f"{c.name} finished")
                        continue
                    if now - c.started_at >= self.stable_s:
                        c.restarts = 0  # it ran fine for a while: start the back-off afresh
                    c.restarts += 1
                    delay = min(self.backoff_max_s, self.backoff_initial_s * 2 ** (c.restarts - 1))
                    c.next_start = now + delay
                    self.on_event(f"{c.name} exited with code {code}; restart {c.restarts} in {delay:.1f} s")
                if all(c.done for c in self.children):
                    break
        finally:
            code = self.shutdown()
            restore()
        return code

    def shutdown(self) -> int:
        """SIGTERM to every running child, SIGKILL to those still running after ``grace_s``."""
        running = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        for c in running:
            self.on_event(f"stopping {c.name}")
            c.proc.terminate()
        deadline = time.monotonic() + self.grace_s
        killed = False
        for c in running:
            try:
                c.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.on_event(f"{c.name} did not stop within {self.grace_s:g} s: killed")
                c.proc.kill()
                c.proc.wait()
                killed = True
        return 1 if killed else 0


def service_children(config_file: str | Path | None, settings, *, watch: bool = True, ui: bool = True,
                     api: bool = True, api_token: str | None = None) -> list[Child]:
    """The service's processes, each one ``vlm-anomaly --config FILE <command>`` reading the same file.

    ``api_token``: the API's token when the settings have none, made once by the supervisor so that
    a restarted API keeps it (``serve`` alone would make a new one at each start)."""
    base = [sys.executable, "-m", "vlm_anomaly.cli"] + (["--config", str(config_file)] if config_file else [])
    commands = (("watch", watch, ["watch"], None),
                ("api", api, ["serve", "--host", settings.api_host, "--port", str(settings.api_port)],
                 {"VLM_ANOMALY_API_TOKENS": api_token} if api_token else None),
                ("dashboard", ui, ["ui", "--address", settings.ui_address], None))
    return [Child(name, base + args, env) for name, wanted, args, env in commands if wanted]
