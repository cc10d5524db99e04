"""Alerts for events: webhooks (HTTP POST JSON, retried with back-off) and MQTT.

Payloads follow Frigate's ``frigate/events`` shape (``type`` new/end, ``before``/``after``) so
existing home-automation rules can consume them; MQTT publishes to ``<prefix>/<camera>/events``.
Cameras watched through Frigate also get a Frigate event of their own (:class:`FrigateEventSink`), so
an anomaly shows in Frigate's review UI with its recording. Sending runs in a background thread: a
slow receiver never holds up monitoring.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, unquote, urlparse

import httpx

from ..cameras import camera_id
from ..config import AlertSettings
from ..redact import redact_text, redact_url
from .store import EventRecord, event_reason

log = logging.getLogger(__name__)


def event_payload(kind: str, record: EventRecord, before: EventRecord | None = None,
                  camera: str | None = None) -> dict[str, Any]:
    """Frigate-like message: ``{"type": "new"|"update"|"end", "before": {...}, "after": {...}}``."""

    def view(r: EventRecord) -> dict[str, Any]:
        d = r.as_dict()
        return {
            "id": str(r.id),
            "camera": camera or camera_id(r.source),  # also its MQTT topic and Home Assistant id
            "source": redact_url(r.source),
            "model": r.model,
            "label": "anomaly",
            "kind": r.kind,  # "activity" or "camera" (the camera itself: dark, frozen, moved ...)
            "sub_label": r.prompt,
            "score": d["mean_score"],
            "top_score": d["worst_score"],
            "prompt_score": d["prompt_score"],
            "start_time": r.started_at.timestamp() if r.started_at else None,
            "end_time": r.ended_at.timestamp() if r.ended_at else None,
            "source_start_s": d["start_time"],
            "source_end_s": d["end_time"],
            "end_reason": r.end_reason,
            "worst_time_s": d["worst_time"],
            "frames": r.frames,
            "descriptions": r.descriptions[-5:],
            "has_snapshot": bool(r.snapshot),
            "has_clip": bool(r.clip),
            "snapshot": r.snapshot,
            "clip": r.clip,
            "acknowledged": r.acknowledged,
        }

    after = view(record)
    return {"type": kind, "before": view(before) if before else after, "after": after}


class WebhookSink:
    """POST the payload as JSON to a URL; retry 5xx/connection errors with exponential back-off."""

    def __init__(self, url: str, *, retries: int = 3, timeout_s: float = 5.0, backoff_s: float = 0.5):
        self.url, self.retries, self.backoff_s = url, retries, backoff_s
        self.shown = redact_url(url)  # what logs say: a token in the URL stays out of them
        self.client = httpx.Client(timeout=timeout_s, headers={"User-Agent": "vlm-anomaly"})

    def send(self, payload: dict) -> bool:
        why = "not sent"
        for attempt in range(max(0, self.retries) + 1):
            try:
                r = self.client.post(self.url, json=payload)
                if 300 <= r.status_code < 400:  # not followed (a POST is not re-sent elsewhere): not delivered
                    log.warning("webhook %s answered a redirect (HTTP %d), not followed: alert not delivered "
                                "(give the final URL)", self.shown, r.status_code)
                    return False
                if r.status_code < 500:
                    if r.status_code >= 400:
                        log.warning("webhook %s refused the alert: HTTP %d", self.shown, r.status_code)
                    return r.status_code < 400
                why = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                why = redact_text(f"{type(exc).__name__}: {exc}")
            if attempt < max(0, self.retries):
                delay = self.backoff_s * 2**attempt
                log.info("webhook %s failed (%s); retry in %.1f s", self.shown, why, delay)
                time.sleep(delay)
        log.warning("webhook %s: alert lost after %d attempts (%s)", self.shown, self.retries + 1, why)
        return False

    def close(self) -> None:
        self.client.close()


def mqtt_client(url: str, *, will: tuple[str, str] | None = None, client_id: str = ""):
    """A paho client for ``mqtt[s]://[user:password@]host[:port]`` (not yet connected)."""
    import paho.mqtt.client as mqtt

    u = urlparse(url if "://" in url else f"mqtt://{url}")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    if u.username:  # "@", ":" or "/" in a password are written %-escaped in the URL (RFC 3986)
        client.username_pw_set(unquote(u.username), unquote(u.password) if u.password is not None else None)
    if u.scheme == "mqtts":
        client.tls_set()
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    client.reconnect_delay_set(1, 30)
    return client, (u.hostname or "localhost", u.port or (8883 if u.scheme == "mqtts" else 1883))


class MqttSink:
    """Publish the payload (QoS 1) to ``<prefix>/<source slug>/events`` on an MQTT broker."""

    def __init__(self, url: str, *, prefix: str = "vlm-anomaly", timeout_s: float = 5.0):
        self.prefix, self.timeout_s = prefix.strip("/"), timeout_s
        self.client, (host, port) = mqtt_client(url)
        self.client.connect_async(host, port)
        self.client.loop_start()  # paho reconnects by itself

    def topic(self, camera: str) -> str:
        """``<prefix>/<camera id>/events``: the camera's name (a bare source's credential-free slug),
        the same id its Home Assistant entities use."""
        return f"{self.prefix}/{camera_id(camera)}/events"

    def send(self, payload: dict) -> bool:
        after = payload["after"]
        # the connection is made in the background: an alert right after start (a camera fault at
        # once) waits for it, up to the timeout, instead of failing as "not connected"
        deadline = time.monotonic() + self.timeout_s
        while not self.client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        info = self.client.publish(self.topic(after.get("camera") or after["source"]), json.dumps(payload), qos=1)
        try:
            info.wait_for_publish(self.timeout_s)
        except (RuntimeError, ValueError) as exc:
            log.warning("MQTT publish failed: %s", exc)
            return False
        return info.is_published()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def frigate_score(top_score: float | None) -> float:
    """Frigate wants a confidence in [0, 1]; ours is "higher = more normal" with 0 the threshold:
    a logistic of the worst score (0.5 at the threshold, 0.99 at -4.6)."""
    if top_score is None:
        return 0.5
    return round(1.0 / (1.0 + math.exp(max(-50.0, min(50.0, float(top_score))))), 4)


class FrigateEventSink:
    """Create a Frigate event per anomaly of a camera Frigate knows, and end it with ours.

    Why: Frigate users review their cameras in Frigate's UI; a manual event
    (``POST /api/events/<camera>/<label>/create``, ended by ``PUT /api/events/<id>/end``) puts our
    anomaly there with Frigate's own recording, our label and the reason as its sub-label.
    Payloads of other cameras are not this sink's (``None``: not counted as sent or failed).
    """

    def __init__(self, url: str, cameras: dict[str, str], *, label: str = "anomaly", timeout_s: float = 5.0):
        self.base = url.rstrip("/")
        self.shown = redact_url(self.base)
        self.cameras = dict(cameras)  # our camera name -> Frigate's camera name
        self.label = label
        self.client = httpx.Client(timeout=timeout_s, headers={"User-Agent": "vlm-anomaly"})
        self.ids: dict[str, str] = {}  # our event id -> Frigate's event id

    def wants(self, payload: dict) -> bool:
        """Whether ``payload`` is one this sink would send (its camera's start or end)."""
        return payload.get("type") in ("new", "end") and str(payload["after"].get("camera")) in self.cameras

    def send(self, payload: dict) -> bool | None:
        after = payload["after"]
        cam = self.cameras.get(str(after.get("camera")))
        if cam is None:
            return None
        ours = str(after["id"])
        try:
            if payload["type"] == "new":
                r = self.client.post(
                    f"{self.base}/api/events/{quote(cam, safe='')}/{quote(self.label, safe='')}/create",
                    json={"sub_label": event_reason(after.get("sub_label"), after.get("descriptions"))[:100],
                          "score": frigate_score(after.get("top_score")), "duration": None,
                          "include_recording": True, "draw": {}},
                )
                fid = r.json().get("event_id") if r.status_code < 400 else None
                if not fid:
                    log.warning("Frigate %s refused the event of camera %s: HTTP %d", self.shown, cam, r.status_code)
                    return False
                self.ids[ours] = str(fid)
                return True
            if payload["type"] == "end":
                fid = self.ids.pop(ours, None)
                if fid is None:  # its creation failed (counted then): nothing to end
                    return False
                r = self.client.put(f"{self.base}/api/events/{quote(fid, safe='')}/end",
                                    json={"end_time": after.get("end_time")})
                if r.status_code >= 400:
                    log.warning("Frigate %s did not end event %s: HTTP %d", self.shown, fid, r.status_code)
                return r.status_code < 400
            return None  # updates: Frigate's manual event has nothing to update
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.warning("Frigate %s: event of camera %s not sent: %s", self.shown, cam,
                        redact_text(f"{type(exc).__name__}: {exc}"))
            return False

    def close(self) -> None:
        self.client.close()


class AlertDispatcher:
    """Fan alerts out to every configured sink, each from its own background thread (in order per sink).

    Example:
        >>> alerts = AlertDispatcher.from_settings(settings.alerts)  # doctest: +SKIP
        >>> alerts.publish(event_payload("new", record))  # doctest: +SKIP
    """

    def __init__(self, sinks: list | None = None):
        self.sinks = list(sinks or [])
        self.sent = 0
        self.failed = 0  # sink deliveries that failed after their retries (or never made before close)
        self.sent_by: Counter[str] = Counter()  # the same, per payload source
        self.failed_by: Counter[str] = Counter()
        # one queue and thread per sink: a webhook that hangs through its retries must not hold back
        # the MQTT / Frigate alerts of the same event (nor the next ones)
        self._queues: list[queue.Queue] = [queue.Queue() for _ in self.sinks]
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        #: per sink: the alert being sent now, and whether stopping gave up on it (counted failed then,
        #: so that its late result is not counted again)
        self._sending: list[dict | None] = [None] * len(self.sinks)
        self._abandoned = [False] * len(self.sinks)

    @classmethod
    def from_settings(cls, alerts: AlertSettings, *, cameras: Sequence = ()) -> AlertDispatcher:
        """The sinks of the ``alerts`` section (``settings.alerts``): each webhook URL, MQTT if set, and
        a :class:`FrigateEventSink` per Frigate that has some of ``cameras``."""
        sinks: list = [
            WebhookSink(u, retries=alerts.webhook_retries, timeout_s=alerts.webhook_timeout_s)
            for u in alerts.webhook_urls
        ]
        if alerts.mqtt_url:
            sinks.append(MqttSink(alerts.mqtt_url, prefix=alerts.mqtt_topic_prefix, timeout_s=alerts.webhook_timeout_s))
        for url in sorted({c.frigate for c in cameras if c.frigate}):
            sinks.append(FrigateEventSink(url, {c.name: c.name for c in cameras if c.frigate == url},
                                          timeout_s=alerts.webhook_timeout_s))
        return cls(sinks)

    def publish(self, payload: dict) -> None:
        if not self.sinks:
            return
        with self._lock:
            if not self._threads:
                self._threads = [threading.Thread(target=self._run, args=(i, sink, q), name="alerts", daemon=True)
                                 for i, (sink, q) in enumerate(zip(self.sinks, self._queues, strict=True))]
                for t in self._threads:
                    t.start()
        for q in self._queues:
            q.put(payload)

    def _count(self, payload: dict, ok: bool) -> None:
        src = str(payload.get("after", {}).get("source", ""))
        with self._lock:
            if ok:
                self.sent += 1
                self.sent_by[src] += 1
            else:
                self.failed += 1
                self.failed_by[src] += 1

    def _run(self, i: int, sink, q: queue.Queue) -> None:
        while True:
            payload = q.get()
            try:
                if payload is None:
                    return
                self._sending[i] = payload
                try:
                    ok = sink.send(payload)
                except Exception as exc:  # noqa: BLE001 - one bad alert must not stop the next ones
                    log.warning("alert sink %s failed: %s", type(sink).__name__, redact_text(exc))
                    ok = False
                with self._lock:
                    self._sending[i] = None
                    if self._abandoned[i]:  # stopping counted it failed already
                        return
                if ok is not None:  # None: not this sink's payload
                    self._count(payload, ok)
            finally:
                q.task_done()

    def _unfinished(self) -> int:
        return sum(q.unfinished_tasks for q in self._queues)

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every queued alert was handled; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._unfinished() and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._unfinished()

    def close(self, timeout_s: float = 30.0) -> None:
        """Deliver what is queued (for up to ``timeout_s``); what is still queued or being sent then
        is counted failed and logged, never dropped silently.

        An interrupt while waiting (a second Ctrl-C, SIGTERM) ends the wait: what is left counts
        failed, and the caller goes on to say so (its summary), instead of exiting with nothing said."""
        if self._threads:
            waiting = self._unfinished()
            if waiting:
                log.warning("waiting up to %g s for %d alert(s) to be delivered (interrupt to stop now: "
                            "they count as failed)", timeout_s, waiting)
            interrupted = False
            try:
                self.flush(timeout_s)
            except KeyboardInterrupt:
                interrupted = True
                log.warning("alerts: stopped waiting; what was not delivered counts as failed")
            for sink, q in zip(self.sinks, self._queues, strict=True):
                lost = 0
                while True:
                    try:
                        payload = q.get_nowait()
                    except queue.Empty:
                        break
                    q.task_done()
                    if payload is not None and getattr(sink, "wants", lambda p: True)(payload):
                        lost += 1
                        self._count(payload, False)
                if lost:
                    log.warning("alert sink %s: %d alert(s) not delivered before stop", _shown(sink), lost)
                q.put(None)
            for t in self._threads:
                t.join(timeout=0 if interrupted else 5)
            self._abandon_sending()
        for sink in self.sinks:
            sink.close()

    def _abandon_sending(self) -> None:
        """Count failed the alerts still being sent once stopping stops waiting for them (a webhook
        hanging through its retries): they would otherwise be neither sent nor failed."""
        for i, sink in enumerate(self.sinks):
            with self._lock:
                payload, self._abandoned[i] = self._sending[i], self._sending[i] is not None
            if payload is not None:
                self._count(payload, False)
                log.warning("alert sink %s: 1 alert still being sent at stop, counted failed", _shown(sink))


def _shown(sink) -> str:
    """A sink as logs may name it: the webhook's URL without its secrets, else its kind."""
    return str(getattr(sink, "shown", None) or type(sink).__name__)
