"""What to watch: named cameras from the command line, the settings file and Frigate.

Why names: Home Assistant devices, MQTT topics and logs need a stable, printable name per camera,
and a stream URL may hold a password. A camera named in the settings or by Frigate keeps that
name; a bare source gets one made from its URL without user, password or secret-looking query
values (:func:`camera_id`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigError
from .redact import redact_url, source_slug


def camera_id(name_or_source: str) -> str:
    """A stable id of a camera made of ``[A-Za-z0-9_-]`` (Home Assistant object ids, MQTT topics):
    a name as it is, a URL without its credentials (:func:`~vlm_anomaly.redact.source_slug`)."""
    s = re.sub(r"[^A-Za-z0-9_-]+", "_", source_slug(name_or_source)).strip("_-")
    return s[-80:] or "camera"


def shown_name(camera: str | None, source: str) -> str:
    """What a line names a watched source by: the camera's name where it was given one, else the
    source (credentials masked): a bare source's made-up id reads worse than its path."""
    return source if not camera or camera == camera_id(source) else camera


@dataclass(frozen=True)
class Camera:
    """A camera to watch: its name, the source to open and the model that knows its normality."""

    name: str
    source: str  # the stream read and scored: the camera's detect sub-stream when it has one
    model: str
    frigate: str | None = None  # the Frigate (its URL) that has this camera, by the same name
    main_source: str | None = None  # the camera's main stream when ``source`` is its sub-stream (not opened)


def resolve_cameras(settings, *, model: str | None = None, sources: list[str] | None = None,
                    frigate_url: str | None = None) -> tuple[list[Camera], dict[str, str]]:
    """The cameras to watch and the skipped Frigate cameras (name -> why).

    ``sources`` (bare, named by their URL) and ``frigate_url`` come from the command line; with
    neither, the settings' ``cameras`` and ``frigate_url`` are watched. ``model`` (else the
    setting ``watch_model``) is the model of every camera that names none. A camera of the settings
    with a ``detect_source`` (its low-resolution sub-stream) is read from that stream; its ``source``
    is kept as ``main_source`` and not opened.
    """
    default = model or settings.watch_model
    explicit = bool(sources) or bool(frigate_url)
    specs = [] if explicit else list(settings.cameras)
    frigate = frigate_url if explicit else settings.frigate_url
    cams: list[Camera] = []
    skipped: dict[str, str] = {}

    def add(name: str, source: str, chosen: str | None, frigate: str | None = None, main: str | None = None) -> None:
        if not chosen:
            raise ConfigError(f"camera {name}: no model (--model, watch_model, or the camera's model)")
        if any(c.name == name for c in cams):
            raise ConfigError(f"camera {name} is listed twice")
        cams.append(Camera(name, source, chosen, frigate, main))

    for src in sources or []:
        twin = next((c.source for c in cams if c.name == camera_id(src) and c.source != src), None)
        if twin is not None:  # two sources, one made-up name (they differ only in signs the name leaves out)
            raise ConfigError(f"{redact_url(twin)} and {redact_url(src)} both make the camera name {camera_id(src)}: "
                              "name them in the settings' cameras list")
        add(camera_id(src), src, default)
    for spec in specs:
        if spec.source is not None:  # a sub-stream, where named, is what is read (decoding is the cost)
            if spec.detect_source:
                add(spec.name, spec.detect_source, spec.model or default, main=spec.source)
            else:
                add(spec.name, spec.source, spec.model or default)
    if frigate:
        from .video.frigate import list_cameras

        overrides = {s.name: s for s in specs if s.source is None}
        found, skipped = list_cameras(frigate, role=settings.frigate_role, rtsp_url=settings.frigate_rtsp_url)
        for fc in found:
            spec = overrides.pop(fc.name, None)
            add(fc.name, fc.url, (spec.model if spec else None) or default, frigate=frigate)
        if overrides:
            raise ConfigError(f"camera {', '.join(overrides)}: no source, and Frigate watches no such camera")
    else:
        missing = [s.name for s in specs if s.source is None]
        if missing:
            raise ConfigError(f"camera {', '.join(missing)}: no source (and no frigate_url)")
    if not cams:
        raise ConfigError("nothing to watch: give --source or --frigate, or list cameras in the settings")
    limit = getattr(settings, "max_watchers", None)
    if limit is not None and len(cams) > limit:
        raise ConfigError(f"{len(cams)} cameras to watch, more than max_watchers ({limit}): raise the setting")
    return cams, skipped
