"""Home Assistant's "Last anomaly was normal" button: one per camera, pressed in Home Assistant,
handled by the running service.

A press teaches the camera's model that the camera's last closed event was normal, through the
same library function as the CLI, the API and the dashboard (:func:`~vlm_anomaly.normal.mark_event_normal`);
the model file changes, and the watchers pick the new model up (:class:`~.live_scoring.StreamScorer`
reloads a model whose file changed). The outcome is published, retained, on
``<state_prefix>/<camera>/normal`` (what was learnt, or why nothing was).

Why only closed events: an open one has no end yet, and learning half an incident would teach
half of it. Why retained presses are ignored: a command left retained on the broker by mistake
would otherwise teach the model again at every reconnection.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Any

from ..errors import VlmAnomalyError
from ..normal import NormalAddition, mark_event_normal
from ..redact import redact_text, redact_url
from ..values import utc_stamp

if TYPE_CHECKING:
    from ..config import Settings
    from ..pipeline import Pipeline
    from .store import EventStore

log = logging.getLogger(__name__)

#: the entity's key (its object id is ``<camera>_normal``)
KEY = "normal"
PRESS = "PRESS"
NOTE = "Home Assistant: last anomaly was normal"


def command_topic(state_prefix: str, cam: str) -> str:
    return f"{state_prefix}/{cam}/{KEY}/press"


def button_spec(state_prefix: str, cam: str) -> dict[str, Any]:
    """The button's part of its discovery config (the bridge adds device and availability)."""
    return {"name": "Last anomaly was normal", "command_topic": command_topic(state_prefix, cam),
            "payload_press": PRESS, "icon": "mdi:check-decagram-outline",
            "json_attributes_topic": f"{state_prefix}/{cam}/{KEY}"}


class NormalButton:
    """Handles presses of every announced camera's button (see the module docstring).

    Example:
        >>> NormalButton(bridge, store, settings)  # doctest: +SKIP
    """

    def __init__(self, bridge, store: EventStore, settings: Settings, *, pipeline: Pipeline | None = None):
        from ..pipeline import Pipeline

        self.bridge, self.store, self.settings = bridge, store, settings
        # the shell's own pipeline where it has one: its encoder, loaded once, serves every press
        self.pipeline = pipeline or Pipeline(settings)
        self.models = self.pipeline.store
        self.topic = command_topic(bridge.state_prefix, "+")
        self._lock = threading.Lock()  # one press learnt at a time
        self.threads: list[threading.Thread] = []
        bridge.subscribe(self.topic, self._on_message)

    def _on_message(self, client, userdata, msg) -> None:
        if msg.retain or msg.payload.decode("utf-8", "replace") != PRESS:
            return
        cam = msg.topic.split("/")[-3]
        # learning takes seconds: never in the MQTT network thread
        t = threading.Thread(target=self.press, args=(cam,), name=f"ha-normal-{cam}", daemon=True)
        self.threads = [x for x in self.threads if x.is_alive()] + [t]
        t.start()

    def press(self, cam: str) -> NormalAddition | None:
        """Mark camera ``cam``'s last closed event normal; publish and return what was learnt."""
        with self._lock:
            state: dict[str, Any] = {"at": utc_stamp()}
            try:
                c = self.bridge.cameras.get(cam)
                if c is None or c.source is None:
                    raise VlmAnomalyError(f"camera {cam} is not watched here")
                last = self.store.list(source=redact_url(c.source), status="closed", limit=1)
                if not last:
                    raise VlmAnomalyError(f"camera {cam} has no ended anomaly to learn from")
                a = mark_event_normal(self.store, self.models, last[0].id, note=NOTE, pipeline=self.pipeline)
                state.update(ok=True, event_id=last[0].id, model=last[0].model, **a.as_dict())
                log.info("camera %s: event %s learnt as normal (%d frames)", cam, last[0].id, a.frames)
            except Exception as exc:  # noqa: BLE001 - a press must never stop the service; say why instead
                state.update(ok=False, error=redact_text(str(exc))[:250])
                log.warning("camera %s: 'last anomaly was normal' failed: %s", cam, state["error"])
                a = None
            self.bridge._publish(f"{self.bridge.state_prefix}/{cam}/{KEY}", json.dumps(state))
            return a

    def join(self, timeout_s: float = 60) -> None:
        """Wait for presses being learnt (shutdown, tests)."""
        for t in list(self.threads):
            t.join(timeout_s)
