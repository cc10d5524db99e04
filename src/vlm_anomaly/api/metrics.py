"""Prometheus metrics of the service (own registry, so several apps in one process never clash)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.frames = Counter(
            "vlm_anomaly_frames_scored", "Frames scored by watchers", ["source"], registry=r
        )
        self.events = Counter(
            "vlm_anomaly_events", "Anomaly events", ["source", "phase"], registry=r
        )
        self.gaps = Counter(
            "vlm_anomaly_stream_gaps", "Stream stalls/drops reconnected", ["source"], registry=r
        )
        self.missed = Counter(
            "vlm_anomaly_stream_missed_seconds",
            "Seconds missed in stream gaps",
            ["source"],
            registry=r,
        )
        self.jobs = Counter("vlm_anomaly_jobs", "Jobs finished", ["kind", "status"], registry=r)
        self.watched = Gauge("vlm_anomaly_watched_sources", "Sources being watched", registry=r)
        self.latency = Histogram(
            "vlm_anomaly_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=r,
        )

    def on_notice(self, notice) -> None:
        """Monitor listener: count events and gaps."""
        if notice.kind in ("start", "end"):
            self.events.labels(notice.source, notice.kind).inc()
        elif notice.kind == "gap" and notice.gap is not None:
            self.gaps.labels(notice.source).inc()
            self.missed.labels(notice.source).inc(notice.gap.missed_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)
