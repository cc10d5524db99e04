"""The live engine: stream scorer, events with hysteresis, watchers, and the sinks behind one protocol
(SQL store + evidence files, alerts, Home Assistant, an in-memory feed for pages), retention, recovery."""

from .alerts import AlertDispatcher
from .bad_prompts import PromptAlarm
from .feed import FeedView, LiveFeed
from .live_scoring import StreamScorer
from .retention import RetentionJob
from .sinks import AlertSink, EventSink, ListenerSink, StoreSink
from .store import EventNotFoundError, EventRecord, EventStore
from .watcher import LiveSession, Monitor, SourceWatcher, WatchNotice

__all__ = [
    "AlertDispatcher", "AlertSink", "EventSink", "ListenerSink", "StoreSink", "EventNotFoundError", "EventRecord",
    "EventStore", "FeedView", "LiveFeed", "LiveSession", "Monitor", "PromptAlarm", "RetentionJob", "SourceWatcher",
    "StreamScorer", "WatchNotice",
]
