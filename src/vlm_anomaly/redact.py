"""Credentials out of everything the system shows: logs, errors, payloads, topics, folder names.

Why one module at the bottom of the package: a camera URL such as ``rtsp://user:pw@cam/1`` or a
database URL with a password reaches many places (MQTT topics, webhook bodies, event folders, the
API, the dashboard, error text). Every one of them goes through :func:`redact_url` (one URL),
:func:`redact_text` (free text that may hold URLs) or :func:`source_slug` (a topic/folder-safe
name), so there is one rule for what counts as a secret.
"""

from __future__ import annotations

import re

#: what replaces the user info (``user:password@``) and secret query values
MASK = "***"

# query parameters whose values are credentials (cameras often take ?user=..&password=..)
_SECRET_KEY = re.compile(
    r"pass|pwd|secret|token|key|auth|sig|credential|session|user|login", re.I
)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)(.*)$", re.S)
# a URL inside free text: scheme://... up to whitespace or a quote/bracket that ends it
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_QUERY_ITEM = re.compile(r"([?&;])([^=&;#]*)=([^&;#]*)")


def _split_userinfo(rest: str) -> tuple[str | None, str]:
    """(user info or None, the rest after it) of what follows ``scheme://``."""
    end = len(rest)
    for ch in "/?#":
        i = rest.find(ch)
        if i != -1:
            end = min(end, i)
    authority = rest[:end]
    if "@" in authority:
        at = authority.rindex("@")
        return authority[:at], rest[at + 1 :]
    # a password holding an unencoded '/', '?' or '#' ends the authority early
    # ("user:pa/ss@host"); a ':' not followed by a port number gives it away
    if ":" in authority and not authority.rsplit(":", 1)[1].isdigit() and "@" in rest[end:]:
        at = rest.index("@", end)
        return rest[:at], rest[at + 1 :]
    return None, rest


def _clean(url: str, *, keep_masks: bool) -> str:
    m = _SCHEME.match(url)
    if not m:
        return url
    scheme, rest = m.groups()
    userinfo, rest = _split_userinfo(rest)

    def query(q: re.Match) -> str:
        sep, key, value = q.groups()
        if not _SECRET_KEY.search(key) or not value:
            return q.group(0)
        return f"{sep}{key}={MASK}" if keep_masks else ""

    rest = _QUERY_ITEM.sub(query, rest)
    if not keep_masks:
        rest = re.sub(r"\?[&;]+", "?", rest).rstrip("?&;")
        return scheme + rest
    return scheme + (f"{MASK}@" if userinfo is not None else "") + rest


def redact_url(url: str | object) -> str:
    """``url`` with its user info and secret query values masked; other strings unchanged.

    Example:
        >>> redact_url("rtsp://admin:hunter2@cam.lan:554/live?channel=1&password=x")
        'rtsp://***@cam.lan:554/live?channel=1&password=***'
        >>> redact_url("/videos/lobby.mp4")
        '/videos/lobby.mp4'
    """
    return _clean(str(url), keep_masks=True)


def redact_text(text: str | object) -> str:
    """Free text (an error message, a log line) with every URL in it passed through :func:`redact_url`."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), str(text))


def source_slug(source: str | object) -> str:
    """A name of a source fit for MQTT topics and folder names: no credentials, no '/', '+', '#'.

    Example:
        >>> source_slug("rtsp://admin:hunter2@cam.lan/live?channel=1")
        'cam.lan_live_channel_1'
    """
    s = _clean(str(source), keep_masks=False)
    s = re.sub(r"^[A-Za-z][A-Za-z0-9+.\-]*://", "", s)
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", s).strip("_.")
    return s[-80:].lstrip("_.") or "source"


__all__ = ["MASK", "redact_text", "redact_url", "source_slug"]
