"""Liveness (open to all) and Prometheus metrics (behind the token, like everything else)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ... import __version__
from ..deps import Svc
from ..schemas import Health

public = APIRouter(tags=["service"])
router = APIRouter(tags=["service"])


@public.get("/health")
def health(svc: Svc) -> Health:
    """Liveness (no authentication)."""
    return Health(status="ok", version=__version__, watched_sources=svc.monitor.running)


@router.get("/metrics", response_class=Response,  # (refusals stay JSON: no media type of its own)
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "metrics"}})
def prometheus_metrics(svc: Svc) -> Response:
    """Prometheus metrics (text exposition format)."""
    body = svc.metrics.scrape(svc.monitor)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
