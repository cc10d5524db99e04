"""The live engine: stream scorer, events with hysteresis, watchers, and the sinks behind one protocol
(SQL store + evidence files, alerts, Home Assistant, an in-memory feed for pages), retention, recovery."""

from ..incidents import EventBuilder, EventTracker, HysteresisConfig, Transition
from .alerts import AlertDispatcher, MqttSink, WebhookSink, event_payload
from .bad_prompts import PromptAlarm
from .feed import FeedView, LiveFeed, Reading
from .live_scoring import Scored, StreamScorer
from .recovery import RecoveryJob, recover_stale_events
from .retention import RetentionJob
from .sinks import AlertSink, EventSink, ListenerSink, StoreSink
from .store import EventNotFoundError, EventRecord, EventStore
from .watcher import LiveSession, Monitor, SourceWatcher, WatchNotice

__all__ = [
    "AlertDispatcher", "AlertSink", "EventSink", "ListenerSink", "StoreSink", "EventNotFoundError", "EventBuilder",
    "EventRecord", "EventStore", "EventTracker", "FeedView", "HysteresisConfig", "LiveFeed", "LiveSession", "Monitor",
    "MqttSink", "PromptAlarm", "Reading", "RecoveryJob", "RetentionJob", "Scored", "SourceWatcher", "StreamScorer",
    "Transition", "WatchNotice", "WebhookSink", "event_payload", "recover_stale_events"
]
