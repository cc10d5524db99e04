"""Scale-out on Ray: score many videos and watch many sources with one encoder actor per CPU slot.

Why actors: an encoder is expensive to build, so each actor builds one (through the same
:class:`~vlm_anomaly.pipeline.Pipeline` as everything else) and keeps it for all the videos or
sources it is handed. Results come back to the caller; events go to the configured events store
(use a shared database URL, e.g. PostgreSQL, when the actors run on several machines).

Ray is an optional extra (``pip install 'vlm-anomaly[ray]'``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from .config import RaySettings, Settings
from .errors import ConfigError
from .events.store import EventRecord
from .results import ScoreResult

log = logging.getLogger(__name__)


def _ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("Ray is not installed: pip install 'vlm-anomaly[ray]'") from None
    return ray


def init_ray(cluster: RaySettings, *, num_cpus: int | None = None) -> None:
    """Connect to the ray section's ``ray_address`` (``settings.scaling``) or start a local Ray (``num_cpus`` slots)."""
    ray = _ray()
    if ray.is_initialized():
        return
    kwargs = {
        "include_dashboard": False,
        "log_to_driver": False,
        "ignore_reinit_error": True,
        "logging_level": logging.WARNING,
    }
    if cluster.ray_address:
        ray.init(address=cluster.ray_address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, **kwargs)


@lru_cache(maxsize=1)
def _actor_class():
    ray = _ray()

    @ray.remote(num_cpus=1)
    class EncoderActor:
        """Holds one pipeline (one encoder) for every video/source it is given."""

        def __init__(self, settings: dict):
            import torch

            from .pipeline import Pipeline

            torch.set_num_threads(1)  # one CPU slot per actor
            self.pipe = Pipeline(Settings(**settings))

        def score(self, model: str, source: str, threshold: float | None, interval_ms: int | None) -> ScoreResult:
            return self.pipe.score(model, source, threshold=threshold, interval_ms=interval_ms)

        def watch(self, model: str, sources: list[str], realtime: bool, max_seconds: float | None) -> list[dict]:
            from .events import Monitor

            with Monitor.from_settings(self.pipe.settings, pipeline=self.pipe, home_assistant=False) as mon:
                watchers = [mon.get(mon.start(model, src, realtime=realtime)) for src in sources]
                mon.wait(max_seconds)
            return [r.__dict__ for w in watchers for r in w.records]

    return EncoderActor


_POOLS: dict[str, list] = {}


def _actors(settings: Settings, n_items: int, num_actors: int | None):
    """Encoder actors for these settings: created once per Ray session, then reused."""
    ray = _ray()
    init_ray(settings.scaling)
    slots = int(ray.cluster_resources().get("CPU", 1))
    n = max(1, min(n_items, num_actors or slots))
    state = settings.model_dump(mode="json")
    key = json.dumps([state, ray.get_runtime_context().get_job_id()], sort_keys=True, default=str)
    pool = _POOLS.setdefault(key, [])
    cls = _actor_class()
    while len(pool) < n:
        pool.append(cls.remote(state))
    return pool[:n]


def score_batch_on_ray(settings: Settings, model: str, sources: Sequence[str | Path], *, threshold: float | None = None,
                       interval_ms: int | None = None, num_actors: int | None = None) -> list[ScoreResult]:
    """Score ``sources`` spread over encoder actors; results in the order of ``sources``.

    Example:
        >>> results = score_batch_on_ray(settings, "day", ["a.mp4", "b.mp4"])  # doctest: +SKIP
    """
    if not sources:
        return []
    from ray.util import ActorPool

    pool = ActorPool(_actors(settings, len(sources), num_actors))
    return list(pool.map(lambda a, src: a.score.remote(model, str(src), threshold, interval_ms), list(sources)))


def watch_on_ray(settings: Settings, model: str, sources: Sequence[str], *, realtime: bool = True,
                 max_seconds: float | None = None, num_actors: int | None = None) -> list[EventRecord]:
    """Watch ``sources`` spread over encoder actors; returns their closed events (stored too)."""
    if not sources:
        return []
    ray = _ray()
    actors = _actors(settings, len(sources), num_actors)
    per = math.ceil(len(sources) / len(actors))
    chunks = [list(sources[i : i + per]) for i in range(0, len(sources), per)]
    futures = [a.watch.remote(model, chunk, realtime, max_seconds) for a, chunk in zip(actors, chunks, strict=False)]
    return [EventRecord(**d) for part in ray.get(futures) for d in part]
