"""Live monitoring: events with hysteresis, their store (SQL + evidence files), alerts, watchers."""

from .alerts import AlertDispatcher, MqttSink, WebhookSink, event_payload
from .hysteresis import EventTracker, HysteresisConfig, Transition
from .prompts import PromptAlarm
from .store import EventNotFoundError, EventRecord, EventStore
from .watcher import Monitor, SourceWatcher, WatchNotice

__all__ = [
    "AlertDispatcher",
    "EventNotFoundError",
    "EventRecord",
    "EventStore",
    "EventTracker",
    "HysteresisConfig",
    "Monitor",
    "MqttSink",
    "PromptAlarm",
    "SourceWatcher",
    "Transition",
    "WatchNotice",
    "WebhookSink",
    "event_payload",
]
