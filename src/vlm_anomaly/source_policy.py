"""What a remote client may ask the service to watch: media folders, stream URLs, cameras.

Why: a valid API token is not a licence to read the server's files or to make it connect
anywhere. :class:`SourcePolicy` turns the settings' allow-lists into one check that returns the
exact thing to open (a resolved path, the URL, a camera index) or raises
:class:`~vlm_anomaly.errors.SourceNotAllowedError`. Nothing is allowed unless configured.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .config import ApiSettings
from .errors import InvalidVideoError, SourceNotAllowedError
from .redact import redact_url

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_HOST = re.compile(r"^[A-Za-z0-9._\-]+$|^\[[0-9A-Fa-f:.]+\]$")


@dataclass(frozen=True)
class SourcePolicy:
    """Allow-lists for watched sources; empty lists allow nothing of that kind.

    Example:
        >>> p = SourcePolicy(media_dirs=["/srv/videos"], url_schemes=["rtsp"], url_hosts=["cam*.lan"])
        >>> p.check("rtsp://cam1.lan/live")
        'rtsp://cam1.lan/live'
        >>> p.check("/etc/passwd")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        SourceNotAllowedError: source not allowed: /etc/passwd is outside the media folders ...
    """

    media_dirs: Sequence[str | Path] = ()
    url_schemes: Sequence[str] = ()
    url_hosts: Sequence[str] = ()
    cameras: Sequence[int] = ()

    @classmethod
    def from_settings(cls, api: ApiSettings) -> SourcePolicy:
        """The allow-lists of the ``api`` section (``settings.api``)."""
        return cls(
            media_dirs=tuple(api.allowed_media_dirs),
            url_schemes=tuple(api.allowed_url_schemes),
            url_hosts=tuple(api.allowed_url_hosts),
            cameras=tuple(api.allowed_cameras),
        )

    def check(self, source: str) -> str:
        """The source to open if allowed (a path comes back resolved); raises otherwise."""
        source = str(source).strip()
        if not source or any(ord(c) < 32 or c == "\x7f" for c in source):
            raise SourceNotAllowedError("source not allowed: empty or holds control characters")
        if source.isdigit():
            return self._camera(source)
        if _SCHEME.match(source):
            return self._url(source)
        return self._path(source)

    # -- kinds ---------------------------------------------------------------------------------
    def _camera(self, source: str) -> str:
        if int(source) not in {int(c) for c in self.cameras}:
            allowed = ", ".join(map(str, self.cameras)) or "none"
            raise SourceNotAllowedError(
                f"source not allowed: camera {int(source)} is not in allowed_cameras ({allowed})"
            )
        return str(int(source))

    def _url(self, source: str) -> str:
        shown = redact_url(source)
        scheme = _SCHEME.match(source).group(1).lower()
        schemes = [s.lower() for s in self.url_schemes]
        if scheme not in schemes:
            raise SourceNotAllowedError(
                f"source not allowed: URL scheme {scheme!r} of {shown} is not in "
                f"allowed_url_schemes ({', '.join(schemes) or 'none: no URLs may be opened'})"
            )
        try:
            parts = urlsplit(source)
            host = parts.hostname or ""
            netloc_host = parts.netloc.rpartition("@")[2]
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise SourceNotAllowedError(f"source not allowed: malformed URL {shown}") from None
        if not source[len(scheme) :].startswith("://") or not host:
            raise SourceNotAllowedError(f"source not allowed: {shown} names no host")
        # anything a URL parser could read differently (FFmpeg's own) is refused outright
        bare = netloc_host.rsplit(":", 1)[0] if not netloc_host.endswith("]") else netloc_host
        if not _HOST.match(bare) or "\\" in parts.netloc or "%" in parts.netloc:
            raise SourceNotAllowedError(f"source not allowed: unusual host in {shown}")
        if not any(_host_matches(host, pat) for pat in self.url_hosts):
            raise SourceNotAllowedError(
                f"source not allowed: host {host!r} of {shown} matches no allowed_url_hosts "
                f"pattern ({', '.join(self.url_hosts) or 'none configured'})"
            )
        return source

    def _path(self, source: str) -> str:
        roots = [Path(d).expanduser().resolve() for d in self.media_dirs]
        if not roots:
            raise SourceNotAllowedError(
                f"source not allowed: {source} - no media folders are configured "
                "(setting allowed_media_dirs)"
            )
        given = Path(source)  # a client's "~" is not the server's home
        candidates = [given] if given.is_absolute() else [r / given for r in roots]
        inside: list[Path] = []
        for c in candidates:
            try:
                real = c.resolve()  # symlinks and '..' resolved before the check
            except (OSError, RuntimeError, ValueError):  # symlink loops, NUL bytes
                continue
            if any(real == r or r in real.parents for r in roots):
                inside.append(real)
        if not inside:
            raise SourceNotAllowedError(
                f"source not allowed: {source} is outside the media folders the service may "
                "read (setting allowed_media_dirs)"
            )
        found = next((p for p in inside if p.exists()), None)
        if found is None:  # said only inside the media folders: outside, existence stays unknown
            raise InvalidVideoError(f"{source}: no such file or folder in the media folders")
        return str(found)


def _host_matches(host: str, pattern: str) -> bool:
    """A host name against a glob (``cam*.lan``, ``*``) or an IP network (``10.0.0.0/24``)."""
    host, pattern = host.lower().strip("[]"), pattern.lower().strip()
    if "/" in pattern:
        try:
            return ipaddress.ip_address(host) in ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return False
    return fnmatch.fnmatchcase(host, pattern.strip("[]"))


__all__ = ["SourcePolicy"]
