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

    def scrape(self, monitor) -> bytes:
        """The text exposition of every metric, the counters first brought up to the watchers' own
        counts (frames scored and dropped, per watch id) and the monitor's alert totals."""
        self.watched.set(monitor.running)
        with self._sync_lock:
            for st in monitor.list():
                for key, counter in (("frames", self.frames), ("dropped", self.dropped)):
                    self._advance((st["id"], key), st.get(key, 0), counter.labels(st["source"]))
            if monitor.alerts is not None:
                for result in ("sent", "failed"):
                    self._advance(("alerts", result), getattr(monitor.alerts, result), self.alerts.labels(result))
        return generate_latest(self.registry)
