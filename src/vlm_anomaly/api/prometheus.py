"""Prometheus metrics of the service (own registry, so several apps in one process never clash)."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry

        def per_source(name: str, doc: str) -> Counter:
            return Counter(f"vlm_anomaly_{name}", doc, ["source"], registry=r)

        self.frames = per_source("frames_scored", "Frames scored by watchers")
        self.dropped = per_source("frames_dropped",
                                  "Sampled frames dropped because the encoder was slower than real time")
        self.gaps = per_source("stream_gaps", "Stream stalls/drops reconnected")
        self.missed = per_source("stream_missed_seconds", "Seconds missed in stream gaps")
        self.alerts = Counter("vlm_anomaly_alerts", "Alert deliveries (webhook, MQTT): sent, or failed after retries",
                              ["result"], registry=r)
        self.events = Counter("vlm_anomaly_events", "Anomaly events", ["source", "phase"], registry=r)
        self.jobs = Counter("vlm_anomaly_jobs", "Jobs finished", ["kind", "status"], registry=r)
        self.watched = Gauge("vlm_anomaly_watched_sources", "Sources being watched", registry=r)
        self.latency = Histogram("vlm_anomaly_http_request_seconds", "HTTP request latency", ["method", "route"],
                                 registry=r)

        self._seen: dict[tuple, float] = {}  # last value synced of each watcher/alert counter
        self._sync_lock = threading.Lock()

    def sync(self, statuses: list[dict], alerts=None) -> None:
        """Bring the counters up to the watchers' own counts (frames scored and dropped, per
        watch id) and the alert dispatcher's totals; called before each scrape."""
        with self._sync_lock:
            for st in statuses:
                for key, counter in (("frames", self.frames), ("dropped", self.dropped)):
                    self._advance((st["id"], key), st.get(key, 0), counter.labels(st["source"]))
            if alerts is not None:
                self._advance(("alerts", "sent"), alerts.sent, self.alerts.labels("sent"))
                self._advance(("alerts", "failed"), alerts.failed, self.alerts.labels("failed"))

    def _advance(self, key: tuple, value: float, child) -> None:
        delta = value - self._seen.get(key, 0)
        if delta > 0:
            child.inc(delta)
            self._seen[key] = value

    def on_notice(self, notice) -> None:
        """Monitor listener: count events and gaps."""
        if notice.kind in ("start", "end"):
            self.events.labels(notice.source, notice.kind).inc()
        elif notice.kind == "gap" and notice.gap is not None:
            self.gaps.labels(notice.source).inc()
            self.missed.labels(notice.source).inc(notice.gap.missed_s)

    def scrape(self, monitor, alerts=None) -> bytes:
        """The text exposition of every metric, brought up to date with the monitor's watchers."""
        self.watched.set(monitor.running)
        self.sync(monitor.list(), alerts)
        return generate_latest(self.registry)
