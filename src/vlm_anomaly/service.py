"""Run the whole thing: watch named cameras (with Home Assistant discovery), and supervise
``watch`` + dashboard + REST API as one service with graceful shutdown.

Why child processes: the dashboard (Streamlit) and the API (uvicorn) each own an event loop and
a server; as separate processes a crash of one is restarted (with back-off) without taking the
cameras down, and one SIGTERM (``docker stop``) stops all three cleanly: each child gets SIGTERM,
then SIGKILL after ``grace_s``.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .cameras import Camera

log = logging.getLogger(__name__)


# -- watching cameras ------------------------------------------------------------------------------
def watch_cameras(
    settings,
    cameras: list[Camera],
    *,
    realtime: bool = True,
    max_seconds: float | None = None,
    listener: Callable | None = None,
) -> tuple[list[dict], bool]:
    """Watch the cameras until they end, ``max_seconds`` pass, or SIGINT/SIGTERM.

    Events go to the store and the alert sinks (topics named by camera); with ``mqtt_url`` and
    ``ha_discovery`` every camera is also announced to Home Assistant, and Frigate's cameras get a
    Frigate event per anomaly (``frigate_events``). Returns the status rows (with ``camera``) and
    whether watching stopped before the sources ended.
    """
    from .events import AlertDispatcher, EventStore, Monitor
    from .events.alerts import FrigateEventSink
    from .events.homeassistant import HomeAssistantBridge, fan_out
    from .pipeline import Pipeline

    store = EventStore.from_settings(settings)
    alerts = AlertDispatcher.from_settings(settings.alerts)
    if settings.frigate_events:
        for url in sorted({c.frigate for c in cameras if c.frigate}):
            alerts.sinks.append(FrigateEventSink(url, {c.name: c.name for c in cameras if c.frigate == url},
                                                 timeout_s=settings.webhook_timeout_s))
    bridge = (HomeAssistantBridge.from_settings(settings.alerts, store=store)
              if settings.mqtt_url and settings.ha_discovery else None)
    mon = Monitor(Pipeline(settings), store=store, alerts=alerts,
                  listener=fan_out(listener, bridge.on_notice if bridge else None), recover=False)
    names: dict[str, str] = {}
    early = False
    restore = _sigterm_as_interrupt()
    try:
        if bridge is not None:
            for cam in cameras:
                bridge.add_camera(cam.name, cam.source)
        mon.start_recovery()  # events a crash left open end now, and Home Assistant hears of it
        for cam in cameras:
            names[mon.start(cam.model, cam.source, realtime=realtime, camera=cam.name)] = cam.name
        if bridge is not None:
            bridge.clear_stale()
            bridge.attach(mon)
        early = not mon.wait(max_seconds)
    except KeyboardInterrupt:
        early = True
    finally:
        try:
            mon.stop_all()
            alerts.close()
            if bridge is not None:
                bridge.close()
            store.close()
        finally:
            restore()
    return [{**st, "camera": names.get(st["id"], st["source"])} for st in mon.list()], early


def _sigterm_as_interrupt() -> Callable[[], None]:
    """SIGTERM stops watching like Ctrl-C (flush alerts, say offline); returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


# -- the supervisor --------------------------------------------------------------------------------
@dataclass
class Child:
    """One supervised process: its command, the running process and how often it was restarted."""

    name: str
    args: list[str]
    proc: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0
    next_start: float = 0.0
    done: bool = False  # exited on purpose (code 0) or given up
    exit_codes: list[int] = field(default_factory=list)


class Supervisor:
    """Start children, restart the ones that crash (exponential back-off), stop all on a signal.

    Example:
        >>> sup = Supervisor(service_children("vlm-anomaly.yaml", settings))  # doctest: +SKIP
        >>> sys.exit(sup.run())  # doctest: +SKIP
    """

    def __init__(
        self,
        children: list[Child],
        *,
        grace_s: float = 15.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        stable_s: float = 60.0,
        on_event: Callable[[str], None] | None = None,
    ):
        self.children = children
        self.grace_s = grace_s
        self.backoff_initial_s, self.backoff_max_s, self.stable_s = backoff_initial_s, backoff_max_s, stable_s
        self.on_event = on_event or (lambda msg: log.warning("%s", msg))
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _start(self, c: Child) -> None:
        c.proc = subprocess.Popen(c.args)
        c.started_at = time.monotonic()
        self.on_event(f"started {c.name} (pid {c.proc.pid})")

    def run(self) -> int:
        """Block until a signal (or every child finished); 0 when everything stopped cleanly."""
        restore = self._install_signals()
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
                    c.exit_codes.append(code)
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
            c.exit_codes.append(c.proc.returncode)
        return 1 if killed else 0

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
        for s in previous:
            signal.signal(s, lambda signum, frame: self.stop())
        return lambda: [signal.signal(s, h) for s, h in previous.items()]


def service_children(
    config_file: str | Path | None, settings, *, watch: bool = True, ui: bool = True, api: bool = True
) -> list[Child]:
    """The service's processes, each one ``vlm-anomaly --config FILE <command>`` reading the same file."""
    base = [sys.executable, "-m", "vlm_anomaly.cli"] + (["--config", str(config_file)] if config_file else [])
    children = []
    if watch:
        children.append(Child("watch", base + ["watch"]))
    if api:
        children.append(Child("api", base + ["serve", "--host", settings.api_host, "--port", str(settings.api_port)]))
    if ui:
        children.append(Child("dashboard", base + ["ui", "--address", settings.ui_address]))
    return children
