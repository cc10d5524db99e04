"""Frigate NVR as a source: watch the cameras Frigate already has, through its restreams.

Why restreams: Frigate (through its bundled go2rtc) restreams every configured stream at
``rtsp://<frigate host>:8554/<stream name>``, so watching them adds no connection to the cameras
and needs none of their passwords (Frigate's ``/api/config`` masks them anyway).

Which stream: by default each camera's *detect* stream (the ``ffmpeg.inputs`` entry whose
``roles`` hold ``detect``; usually the low-resolution substream, cheapest to decode). Frigate's
documented setup points that input at its own restream (``rtsp://127.0.0.1:8554/<stream>``);
its stream name is kept and the host replaced by Frigate's. A camera whose input is not a
restream falls back to the restream named like the camera (go2rtc ``streams``) or, with neither,
is skipped with the reason. Disabled cameras are skipped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx

from ..errors import VlmAnomalyError
from ..redact import redact_url

#: Frigate's go2rtc RTSP port and the documented restream URL (the Home Assistant integration's default)
RESTREAM_PORT = 8554
DEFAULT_RTSP_URL = "rtsp://{host}:8554/{stream}"
_LOCAL = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
#: the most of /api/config read (a real one is tens of KB): a hostile or broken server cannot exhaust memory
MAX_CONFIG_BYTES = 8 * 1024 * 1024
#: Frigate's own rule for camera names; other names come from something that is not Frigate
_CAMERA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class FrigateError(VlmAnomalyError):
    """Frigate's API could not be read or described no usable camera."""

    status_code = 502


@dataclass(frozen=True)
class FrigateCamera:
    """A Frigate camera to watch: its Frigate name, the restream name and the URL to open."""

    name: str
    stream: str
    url: str


def fetch_config(frigate_url: str, *, timeout_s: float = 10.0) -> dict[str, Any]:
    """Frigate's running configuration (``GET <frigate_url>/api/config``)."""
    base = frigate_url.rstrip("/")
    shown = redact_url(base)
    try:
        with httpx.stream("GET", f"{base}/api/config", timeout=timeout_s,
                          headers={"User-Agent": "vlm-anomaly"}) as r:
            if r.status_code != 200:
                raise FrigateError(f"Frigate at {shown} answered HTTP {r.status_code} for /api/config")
            body = bytearray()
            for chunk in r.iter_bytes():
                body += chunk
                if len(body) > MAX_CONFIG_BYTES:
                    raise FrigateError(f"Frigate at {shown}: /api/config is over "
                                       f"{MAX_CONFIG_BYTES // (1024 * 1024)} MB")
    except httpx.HTTPError as exc:
        raise FrigateError(f"cannot reach Frigate at {shown}: {type(exc).__name__}") from None
    try:
        config = json.loads(bytes(body))
    except (ValueError, RecursionError):
        raise FrigateError(f"Frigate at {shown}: /api/config is not JSON") from None
    if not isinstance(config, dict) or not isinstance(config.get("cameras"), dict):
        raise FrigateError(f"Frigate at {shown}: /api/config holds no 'cameras' mapping")
    return config


def _restream_name(path: str, streams: dict | list) -> str | None:
    """The go2rtc stream an ffmpeg input path reads, when it is one of Frigate's restreams."""
    try:
        u = urlparse(path)
        if u.scheme not in ("rtsp", "rtsps") or u.port != RESTREAM_PORT:
            return None
    except ValueError:  # not a URL ('[' without ']', a port over 65535)
        return None
    name = u.path.strip("/").split("/")[-1]
    if name and ((u.hostname or "") in _LOCAL or name in streams):
        return name
    return None


def _inputs(cam: object) -> list[dict] | None:
    """A camera entry's ffmpeg inputs ([] when it lists none), or None when the entry is malformed
    (a hand-edited or foreign config: that camera is skipped with a reason, not a crash)."""
    if not isinstance(cam, dict):
        return None
    ffmpeg = cam.get("ffmpeg") or {}
    if not isinstance(ffmpeg, dict):
        return None
    inputs = ffmpeg.get("inputs") or []
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        return None
    return inputs


def cameras_from_config(config: dict[str, Any], frigate_url: str, *, role: str = "detect",
                        rtsp_url: str = DEFAULT_RTSP_URL) -> tuple[list[FrigateCamera], dict[str, str]]:
    """The cameras to watch and, for each skipped one, why (disabled, not restreamed)."""
    host = urlparse(frigate_url if "://" in frigate_url else f"http://{frigate_url}").hostname or "localhost"
    go2rtc = config.get("go2rtc")
    streams = go2rtc.get("streams") if isinstance(go2rtc, dict) else None
    streams = streams if isinstance(streams, dict | list) else {}
    found: list[FrigateCamera] = []
    skipped: dict[str, str] = {}
    for name, cam in config["cameras"].items():
        cam = cam or {}
        if not _CAMERA_NAME.match(name):
            shown = name.encode("unicode_escape").decode()[:80]  # no terminal escapes in what is printed
            skipped[shown] = "not a Frigate camera name (letters, digits, '_' and '-')"
            continue
        inputs = _inputs(cam)
        if inputs is None:
            skipped[name] = "its entry in Frigate's config is malformed"
            continue
        if cam.get("enabled", True) is False:
            skipped[name] = "disabled in Frigate"
            continue
        chosen = [i for i in inputs if isinstance(i.get("roles"), list) and role in i["roles"]]
        stream = _restream_name(str(chosen[0].get("path", "")), streams) if chosen else None
        if stream is None and name in streams:
            stream = name  # the camera's own restream
        if stream is None:
            why = f"no {role!r} input" if not chosen else f"its {role!r} input is not restreamed by Frigate"
            skipped[name] = f"{why} (add the stream to go2rtc 'streams')"
            continue
        found.append(FrigateCamera(name, stream, rtsp_url.format(host=host, stream=stream, camera=name)))
    return found, skipped


def list_cameras(frigate_url: str, *, role: str = "detect", rtsp_url: str = DEFAULT_RTSP_URL,
                 timeout_s: float = 10.0) -> tuple[list[FrigateCamera], dict[str, str]]:
    """Ask Frigate for its cameras; see :func:`cameras_from_config`. No usable camera is an error."""
    found, skipped = cameras_from_config(
        fetch_config(frigate_url, timeout_s=timeout_s), frigate_url, role=role, rtsp_url=rtsp_url
    )
    if not found:
        why = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "it has no cameras"
        raise FrigateError(f"Frigate at {redact_url(frigate_url)}: no camera to watch ({why})")
    return found, skipped
