"""Home Assistant MQTT discovery: every watched camera shows up in Home Assistant without YAML.

Per camera, one device with six entities (Home Assistant's documented discovery schema,
``<discovery_prefix>/<component>/<node_id>/<object_id>/config``, retained):

* ``binary_sensor`` (device class ``problem``): ``ON`` while an anomaly event is open;
* ``sensor``: the causally smoothed anomaly score (higher = more normal);
* ``sensor``: the last event's description, its details as attributes;
* ``image``: the last event's snapshot (JPEG bytes);
* ``event``: fires ``anomaly_start``, ``anomaly_end`` or ``camera_tamper`` as things happen (Home
  Assistant's convention for things that happen, what automations trigger on; not retained, so a
  restart of Home Assistant never replays an old event);
* ``button``: "Last anomaly was normal" - the running service teaches the camera's model that its
  last ended event was normal (:mod:`.normal_button`).

Why two availability topics (``availability_mode: all``): the service's own topic carries the
MQTT Last Will, so a crash or a lost connection turns every entity unavailable; the camera's topic
follows the stream watchdog, so a dropped camera turns unavailable while the others stay.
Why retained: Home Assistant (re)starts whenever it likes and must see every camera and its last
state at once. Ids derive from the camera name only, so they are stable across restarts, and a
camera that is no longer watched has its retained configs and states cleared (Home Assistant
removes entities whose config becomes empty).

After a crash: the service's availability goes offline by the Last Will; on the next start each
camera's last stored event is published again, so an event the crash left open (closed by the
start as "service restarted", see :mod:`.recovery`) stops showing as open.

Nothing secret leaves: camera ids are made from the name or, for a bare URL, from the URL without
its user, password and secret-looking query values; no payload carries the source URL.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..cameras import camera_id
from ..config import AlertSettings
from ..redact import redact_url
from .alerts import mqtt_client
from .lease import aware
from .normal_button import NormalButton, button_spec
from .sinks import ListenerSink
from .store import EventRecord, event_reason

log = logging.getLogger(__name__)

#: entity key -> Home Assistant component
ENTITIES = {"anomaly": "binary_sensor", "score": "sensor", "last_event": "sensor", "snapshot": "image",
            "activity": "event", "normal": "button"}
#: what the ``event`` entity fires
EVENT_TYPES = ("anomaly_start", "anomaly_end", "camera_tamper")
#: state topics under ``<prefix>/<camera>/`` (retained)
STATES = ("anomaly", "score", "event", "snapshot", "availability", "normal")
ONLINE, OFFLINE = "online", "offline"
def event_description(rec: EventRecord) -> str:
    """One line for the last-event sensor (Home Assistant states hold at most 255 characters)."""
    what = event_reason(rec.prompt, rec.descriptions)
    if rec.prompt and rec.prompt_score is not None:
        what += f" ({rec.prompt_score:.2f})"
    span = f"{rec.start_time:.1f}-{rec.end_time:.1f} s" if rec.end_time is not None else f"from {rec.start_time:.1f} s"
    why = f" ({rec.end_reason})" if rec.end_reason and rec.end_reason != "recovered" else ""
    return f"{what} - event #{rec.id}, {span}{why}, worst score {rec.worst_score:.3f}"[:255]


def event_type(kind: str, rec: EventRecord) -> str:
    """The ``event`` entity's type: a camera problem starting is ``camera_tamper``; every end is
    ``anomaly_end`` (its ``kind`` attribute says which)."""
    if kind == "start":
        return "camera_tamper" if rec.kind == "camera" else "anomaly_start"
    return "anomaly_end"


def _iso(t: _dt.datetime | None) -> str | None:
    """ISO 8601 with the offset."""
    return None if t is None else aware(t).isoformat(timespec="seconds")


def event_state(camera: str, rec: EventRecord) -> dict[str, Any]:
    """The last-event sensor's payload: description as state, the rest as attributes."""
    return {
        "description": event_description(rec),
        "camera": camera,
        "event_id": rec.id,
        "status": rec.status,
        "model": rec.model,
        "started_at": _iso(rec.started_at),
        "ended_at": _iso(rec.ended_at),
        "source_start_s": round(rec.start_time, 3),
        "source_end_s": None if rec.end_time is None else round(rec.end_time, 3),
        "worst_score": round(rec.worst_score, 6),
        "mean_score": round(rec.mean_score, 6),
        "frames": rec.frames,
        "prompt": rec.prompt,
        "has_snapshot": bool(rec.snapshot),
        "kind": rec.kind,
        "end_reason": rec.end_reason,
    }


@dataclass
class _Camera:
    id: str
    name: str
    source: str | None
    available: bool | None = None
    # the retained states last published (anomaly, event, snapshot, score): sent again on every
    # connection, since a broker restarted without persistence has forgotten them
    states: dict[str, str | bytes] = field(default_factory=dict)


class HomeAssistantBridge(ListenerSink):
    """Publish discovery configs and states of watched cameras to Home Assistant over MQTT: a sink of
    the watchers' notices (events, failures) that also polls their status rows (scores, availability).

    Example:
        >>> bridge = HomeAssistantBridge.from_settings(settings.alerts, store=store)  # doctest: +SKIP
        >>> bridge.add_camera("front_door", "rtsp://frigate:8554/front_door")  # doctest: +SKIP
        >>> bridge.clear_stale()  # doctest: +SKIP
        >>> bridge.attach(monitor)  # doctest: +SKIP
    """

    def __init__(self, url: str, *, discovery_prefix: str = "homeassistant", state_prefix: str = "vlm-anomaly",
                 store=None, poll_s: float = 1.0, timeout_s: float = 5.0, instance: str = ""):
        super().__init__(self.on_notice)
        self.discovery_prefix = discovery_prefix.strip("/")
        self.state_prefix = state_prefix.strip("/")
        # one node (and one Last Will) per process that announces cameras: `watch`'s, and the REST
        # API's (instance "api"), so that neither's crash or stale-camera clean-up touches the other's
        self.node_id = camera_id(self.state_prefix).replace("-", "_") + (f"_{instance}" if instance else "")
        self.availability_topic = f"{self.state_prefix}/{instance + '/' if instance else ''}availability"
        self.store = store
        self.poll_s, self.timeout_s = poll_s, timeout_s
        self.cameras: dict[str, _Camera] = {}
        self._by_source: dict[str, _Camera] = {}  # by the source as watchers report it (credentials masked)
        self._lock = threading.RLock()
        self._connected = threading.Event()
        self._pending: list = []
        self._monitor = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._topics: list[str] = []  # subscribed again on every connection
        self.client, (host, port) = mqtt_client(url, will=(self.availability_topic, OFFLINE))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self._connected.clear()
        self.subscribe(f"{self.discovery_prefix}/status", self._on_ha_status)
        self.client.connect_async(host, port)
        self.client.loop_start()  # paho reconnects by itself; _on_connect republishes

    @classmethod
    def from_settings(cls, alerts: AlertSettings, *, store=None, instance: str = "") -> HomeAssistantBridge:
        """The bridge of the ``alerts`` section (``settings.alerts``): its broker and prefixes."""
        return cls(alerts.mqtt_url, discovery_prefix=alerts.ha_discovery_prefix, state_prefix=alerts.mqtt_topic_prefix,
                   store=store, timeout_s=alerts.webhook_timeout_s, instance=instance)

    @classmethod
    def for_cameras(cls, settings, cameras=(), *, store, instance: str = "",
                    pipeline=None) -> HomeAssistantBridge | None:
        """The bridge if ``mqtt_url`` and ``ha_discovery`` are set (else None): ``cameras`` announced, the
        cameras this node announced before but no longer has cleared, and the "last anomaly was normal"
        button handled here (by ``pipeline``, else one of ``settings``)."""
        if not (settings.mqtt_url and settings.ha_discovery):
            return None
        bridge = cls.from_settings(settings.alerts, store=store, instance=instance)
        for cam in cameras:
            bridge.add_camera(cam.name, cam.source)
        if cameras:
            bridge.clear_stale()
        NormalButton(bridge, store, settings, pipeline=pipeline)
        return bridge

    def subscribe(self, topic: str, callback) -> None:
        """Hand ``topic``'s messages to ``callback`` from now on, across reconnections."""
        self.client.message_callback_add(topic, callback)
        self._topics.append(topic)
        if self._connected.is_set():
            self.client.subscribe(topic, qos=1)

    # -- topics and payloads ---------------------------------------------------------------
    def config_topic(self, cam: str, key: str) -> str:
        return f"{self.discovery_prefix}/{ENTITIES[key]}/{self.node_id}/{cam}_{key}/config"

    def state_topic(self, cam: str, state: str) -> str:
        return f"{self.state_prefix}/{cam}/{state}"

    def discovery_configs(self, cam: _Camera) -> dict[str, dict[str, Any]]:
        """Config topic -> payload of the camera's four entities."""
        base = {
            "availability": [
                {"topic": self.availability_topic},
                {"topic": self.state_topic(cam.id, "availability")},
            ],
            "availability_mode": "all",
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "device": {
                "identifiers": [f"{self.node_id}_{cam.id}"],
                "name": cam.name,
                "manufacturer": "vlm-anomaly",
                "model": "learned-normality anomaly detection",
                "sw_version": __version__,
            },
            "origin": {"name": "vlm-anomaly", "sw_version": __version__},
            "qos": 1,
        }
        specific = {
            "anomaly": {"name": "Anomaly", "device_class": "problem",
                        "state_topic": self.state_topic(cam.id, "anomaly"),
                        "payload_on": "ON", "payload_off": "OFF"},
            "score": {"name": "Anomaly score", "state_topic": self.state_topic(cam.id, "score"),
                      "state_class": "measurement", "suggested_display_precision": 3,
                      "icon": "mdi:chart-bell-curve"},
            "last_event": {"name": "Last anomaly", "state_topic": self.state_topic(cam.id, "event"),
                           "value_template": "{{ value_json.description }}",
                           "json_attributes_topic": self.state_topic(cam.id, "event"),
                           "icon": "mdi:cctv"},
            "snapshot": {"name": "Last anomaly snapshot", "image_topic": self.state_topic(cam.id, "snapshot"),
                         "content_type": "image/jpeg"},
            "activity": {"name": "Anomaly event", "state_topic": self.state_topic(cam.id, "activity"),
                         "event_types": list(EVENT_TYPES), "icon": "mdi:cctv"},
            "normal": button_spec(self.state_prefix, cam.id),
        }
        return {
            self.config_topic(cam.id, key): {**spec, "unique_id": f"{self.node_id}_{cam.id}_{key}", **base}
            for key, spec in specific.items()
        }

    # -- cameras ---------------------------------------------------------------------------
    def add_camera(self, name: str, source: str | None = None) -> str:
        """Announce a camera (retained configs; unavailable until its stream delivers frames)."""
        shown = camera_id(name) if "://" in name else name  # a URL as name could hold a password
        cam = _Camera(camera_id(name), shown, source)
        with self._lock:
            self.cameras[cam.id] = cam
            if source is not None:
                self._by_source[redact_url(source)] = cam
            self._announce(cam)
            self._set_available(cam, False)
            self._state(cam, "anomaly", "OFF")  # no event is open in this run yet
        self._publish_last_event(cam)
        return cam.id

    def _publish_last_event(self, cam: _Camera) -> None:
        """The camera's last stored event, if closed: after a crash the retained state may still
        show it open (the start closed it, "service restarted"), and its snapshot may be newer.
        Only an event of this camera: the same stream watched before under another name is
        another camera's history (rows from before events kept a camera name count as its own)."""
        if self.store is None or cam.source is None:
            return
        try:
            recent = self.store.list(source=redact_url(cam.source), limit=50)
            last = [e for e in recent if e.camera is None or camera_id(e.camera) == cam.id][:1]
        except Exception as exc:  # noqa: BLE001 - announcing must not fail on a busy database
            log.warning("Home Assistant: cannot read the last event of %s: %s", cam.id, exc)
            return
        if last and last[0].status == "closed":  # states only: nothing new happened, no activity fires
            self._publish_event_state(cam.id, last[0])

    def remove_camera(self, name: str) -> None:
        """Forget a camera: empty retained configs (Home Assistant deletes the entities) and states."""
        cid = camera_id(name)
        with self._lock:
            cam = self.cameras.pop(cid, None)
            if cam is not None and cam.source is not None:
                self._by_source.pop(redact_url(cam.source), None)
        self._clear(cid)

    def clear_stale(self, timeout_s: float | None = None) -> list[str]:
        """Clear the retained configs of cameras this service announced before but no longer has."""
        if not self.wait_connected(timeout_s or self.timeout_s):
            log.warning("Home Assistant: MQTT broker not reachable; stale cameras not cleared")
            return []
        pattern = f"{self.discovery_prefix}/+/{self.node_id}/+/config"
        marker = f"{self.state_prefix}/_sync/{uuid.uuid4().hex}"
        found: set[str] = set()
        done = threading.Event()

        def on_message(client, userdata, msg) -> None:
            if msg.topic == marker:
                done.set()
            elif msg.retain and msg.payload:
                object_id = msg.topic.split("/")[-2]
                for key in ENTITIES:
                    if object_id.endswith(f"_{key}"):
                        found.add(object_id[: -len(key) - 1])

        self.client.message_callback_add(pattern, on_message)
        self.client.message_callback_add(marker, on_message)
        # the broker handles one client's packets in order: every retained config is delivered
        # before the marker published after the subscription
        self.client.subscribe([(pattern, 1), (marker, 1)])
        self.client.publish(marker, b"", qos=1)
        if not done.wait(timeout_s or self.timeout_s):
            log.warning("Home Assistant: no answer from the broker; stale cameras not cleared")
        self.client.unsubscribe([pattern, marker])
        self.client.message_callback_remove(pattern)
        self.client.message_callback_remove(marker)
        with self._lock:
            stale = sorted(found - set(self.cameras))
        for cid in stale:
            log.info("Home Assistant: clearing camera %s, no longer watched", cid)
            self._clear(cid)
        return stale

    # -- states ----------------------------------------------------------------------------
    def _watched(self, source: str) -> _Camera | None:
        with self._lock:
            return self._by_source.get(redact_url(source))

    def _publish_event_state(self, cid: str, rec: EventRecord, anomaly: bool = False) -> dict[str, Any]:
        """The retained states of an event: problem on/off, the last-event sensor, the snapshot."""
        cam = self.cameras[cid]
        state = event_state(cam.name, rec)
        with self._lock:
            self._state(cam, "anomaly", "ON" if anomaly else "OFF")
            self._state(cam, "event", json.dumps(state))
        if rec.snapshot and self.store is not None:  # written as the event opens, updated at its end
            path = self.store.media_path(rec.snapshot)
            try:
                jpeg = path.read_bytes()
                with self._lock:
                    self._state(cam, "snapshot", jpeg)
            except OSError as exc:
                log.warning("Home Assistant: cannot read snapshot of event %s: %s", rec.id, exc)
        return state

    def on_notice(self, notice) -> None:
        """What the watchers tell (as a sink, or from worker processes). An event's ``start``: problem
        ON, the open event and its first snapshot; its ``end``: problem OFF, the event and its final
        snapshot; a watcher's ``error``: the camera unavailable."""
        cam, rec = self._watched(notice.source), notice.record
        if cam is None:
            return
        if notice.kind in ("start", "end") and rec is not None:
            state = self._publish_event_state(cam.id, rec, anomaly=notice.kind == "start")
            self._publish(self.state_topic(cam.id, "activity"),
                          json.dumps({"event_type": event_type(notice.kind, rec), **state}), retain=False)
        elif notice.kind == "error":
            with self._lock:
                self._set_available(cam, False)

    # -- following a Monitor ---------------------------------------------------------------
    def attach(self, monitor) -> None:
        """Follow a :class:`~vlm_anomaly.events.Monitor` (or anything whose ``list()`` gives its status
        rows): scores and stream availability every ``poll_s``."""
        self._monitor = monitor
        if self._poller is None:
            self._poller = threading.Thread(target=self._poll_loop, name="ha-bridge", daemon=True)
            self._poller.start()

    def poll(self) -> None:
        """Publish what changed: the watchdog's online/offline and the last smoothed score."""
        mon = self._monitor
        if mon is None:
            return
        for st in mon.list():
            cam = self._watched(st["source"])
            if cam is None:
                continue
            with self._lock:
                self._set_available(cam, st["status"] in ("running", "starting") and bool(st.get("online")))
                score = None if st["last_score"] is None else f"{st['last_score']:.4f}"
                if score is not None and score != cam.states.get("score"):
                    self._state(cam, "score", score)

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - reporting must never stop monitoring
                log.exception("Home Assistant bridge poll failed")

    # -- lifecycle -------------------------------------------------------------------------
    def wait_connected(self, timeout_s: float | None = None) -> bool:
        return self._connected.wait(self.timeout_s if timeout_s is None else timeout_s)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every message published so far reached the broker."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        with self._lock:
            pending, self._pending = self._pending, []
        for info in pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                info.wait_for_publish(left)
            except (RuntimeError, ValueError):
                return False
            if not info.is_published():
                return False
        return True

    def close(self) -> None:
        """Graceful stop: last states out, every camera and the service offline, then disconnect."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(self.poll_s + 5)
            self.poll()
        with self._lock:
            for cam in self.cameras.values():
                self._set_available(cam, False)
        self._publish(self.availability_topic, OFFLINE)
        self.flush()
        self.client.loop_stop()
        self.client.disconnect()

    # -- internals -------------------------------------------------------------------------
    def _publish(self, topic: str, payload: str | bytes, retain: bool = True) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != 0:  # not connected: paho sends it on connection, and _on_connect republishes
            return
        with self._lock:
            self._pending = [i for i in self._pending if not _done(i)] + [info]

    def _state(self, cam: _Camera, state: str, payload: str | bytes) -> None:
        """Publish a retained state of ``cam`` and remember it for the next connection (call with the lock)."""
        cam.states[state] = payload
        self._publish(self.state_topic(cam.id, state), payload)

    def _announce(self, cam: _Camera) -> None:
        for topic, payload in self.discovery_configs(cam).items():
            self._publish(topic, json.dumps(payload))

    def _set_available(self, cam: _Camera, available: bool) -> None:
        if cam.available is not available:
            cam.available = available
            self._publish(self.state_topic(cam.id, "availability"), ONLINE if available else OFFLINE)

    def _clear(self, cid: str) -> None:
        for key in ENTITIES:
            self._publish(self.config_topic(cid, key), b"")
        for state in STATES:
            self._publish(self.state_topic(cid, state), b"")

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if getattr(reason_code, "is_failure", False):
            log.warning("Home Assistant: MQTT connection refused: %s", reason_code)
            return
        client.subscribe([(t, 1) for t in self._topics])
        # after a reconnection the broker holds our Last Will's "offline": say online again
        client.publish(self.availability_topic, ONLINE, qos=1, retain=True)
        self._republish()
        self._connected.set()

    def _on_ha_status(self, client, userdata, msg) -> None:
        """Home Assistant's birth message: it restarted, announce everything again."""
        if msg.payload == b"online":
            self._republish()

    def _republish(self) -> None:
        with self._lock:
            for cam in self.cameras.values():
                self._announce(cam)
                if cam.available is not None:
                    self._publish(self.state_topic(cam.id, "availability"), ONLINE if cam.available else OFFLINE)
                for state, payload in cam.states.items():
                    self._publish(self.state_topic(cam.id, state), payload)


def _done(info) -> bool:
    try:
        return info.is_published()
    except (RuntimeError, ValueError):  # failed: nothing left to wait for
        return True


__all__ = ["HomeAssistantBridge", "camera_id", "event_description", "event_state", "event_type"]
