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
from urllib.parse import unquote, urlsplit

from .config import ApiSettings
from .errors import InvalidVideoError, SourceNotAllowedError
from .redact import redact_url
from .video.sources import confine_frame_folder, is_camera_index

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_HOST = re.compile(r"^[A-Za-z0-9._\-]+$|^\[[0-9A-Fa-f:.]+\]$")

#: schemes whose sockets receive on a local port (FFmpeg binds it): never opened for a client
LISTENING_SCHEMES = frozenset({"udp", "rtp", "srtp", "udplite", "sctp", "zmq", "srt"})
#: schemes whose query string is nothing but FFmpeg socket options (``tcp://h:p?listen=1``)
RAW_SOCKET_SCHEMES = frozenset({"tcp", "tls", "unix", "udp", "rtp", "srtp", "sctp", "srt"})
# URL options (FFmpeg's tcp, tls, udp, rtp, rtmp, rtsp, http) that make a client listen or bind
_LISTENER_KEYS = frozenset({
    "listen", "listen_timeout", "rtmp_listen", "rtsp_flags", "localport", "local_port",
    "localaddr", "local_addr", "localrtcpport", "reuse", "reuse_socket", "sources",
})


@dataclass(frozen=True)
class SourcePolicy:
    """Allow-lists for watched sources; empty lists allow nothing of that kind.

    A URL is admitted when its scheme is listed, its host matches a pattern label by label
    (:func:`_host_matches`), and it asks for nothing that makes the server accept connections
    (``?listen``, ``udp://``...). The check covers the first hop only by itself: what is opened
    goes through :func:`vlm_anomaly.video.decode.open_input`, which keeps every later hop (an
    HTTP or RTSP redirect, a playlist's entries) from leaving it. Frame folders count only the images that
    resolve inside them (:func:`vlm_anomaly.video.sources.list_frame_files`).

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
        return cls(media_dirs=tuple(api.allowed_media_dirs), url_schemes=tuple(api.allowed_url_schemes),
                   url_hosts=tuple(api.allowed_url_hosts), cameras=tuple(api.allowed_cameras))

    def check(self, source: str) -> str:
        """The source to open if allowed (a path comes back resolved); raises otherwise."""
        source = str(source).strip()
        if not source or any(ord(c) < 32 or c == "\x7f" for c in source):
            raise SourceNotAllowedError("source not allowed: empty or holds control characters")
        if is_camera_index(source):
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
        if scheme in LISTENING_SCHEMES:
            raise SourceNotAllowedError(
                f"source not allowed: {scheme}:// sources make the server receive on a local port "
                "(a listener), which the service never opens for a remote client"
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
        if not _HOST.match(bare) or "\\" in parts.netloc or "%" in netloc_host:
            raise SourceNotAllowedError(f"source not allowed: unusual host in {shown}")
        # a password may hold "@" or ":" written as RFC 3986 escapes (%40, %3A), which FFmpeg
        # decodes; a "%" that starts no escape is refused, as a parser could read it either way
        if re.search(r"%(?![0-9A-Fa-f]{2})", parts.netloc.rpartition("@")[0]):
            raise SourceNotAllowedError(f"source not allowed: a '%' in the user or password of {shown} "
                                        "starts no escape (write '%' itself as %25)")
        listen = _listener_option(source)
        if listen:
            raise SourceNotAllowedError(
                f"source not allowed: {shown} asks for {listen!r}, an option that makes the "
                "server accept connections"
            )
        if scheme in RAW_SOCKET_SCHEMES and (parts.query or parts.fragment or "?" in source):
            raise SourceNotAllowedError(
                f"source not allowed: {scheme}:// URLs take no options (query) from a remote "
                f"client: {shown}"
            )
        if not any(_host_matches(host, pat) for pat in self.url_hosts):
            raise SourceNotAllowedError(
                f"source not allowed: host {host!r} of {shown} matches no allowed_url_hosts "
                f"pattern ({', '.join(self.url_hosts) or 'none configured'})"
            )
        if _ambiguous_number(host):
            raise SourceNotAllowedError(
                f"source not allowed: unusual host in {shown} (an IP address must be written "
                "as four decimal numbers, e.g. 192.168.1.20)"
            )
        return scheme + source[len(scheme):]  # FFmpeg knows its protocols by lower-case names only

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
        if found.is_dir():  # a frame folder: its images are read only where they resolve inside it
            confine_frame_folder(found)
        return str(found)


def _ambiguous_number(host: str) -> bool:
    """True for a host that resolvers may read as an IPv4 address but is not written as one
    (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``): no DNS name ends in a number."""
    host = host.strip("[]")
    if ":" in host:  # IPv6, parsed strictly below
        return False
    last = host.rsplit(".", 1)[-1].lower()
    if not (last.isdigit() or re.fullmatch(r"0x[0-9a-f]*", last)):
        return False
    try:
        return str(ipaddress.IPv4Address(host)) != host
    except ValueError:
        return True


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _host_matches(host: str, pattern: str) -> bool:
    """A host against one ``allowed_url_hosts`` entry.

    Why label by label: with a plain glob ``cam*`` matches ``cam.attacker.example`` and
    ``192.168.1.*`` matches ``192.168.1.5.attacker.invalid``. Here ``*`` never crosses a dot:
    ``cam*.lan`` admits ``cam7.lan`` only, ``*.lan`` one label before ``.lan``. IP addresses are
    admitted only by an address, a network (``10.0.0.0/24``) or a dotted-quad glob whose
    wildcards are whole trailing numbers (``192.168.1.*`` = ``192.168.1.0/24``); a name pattern
    never admits an address. ``*`` alone admits every host.
    """
    host, pattern = host.lower().strip("[]"), pattern.lower().strip().strip("[]")
    if not pattern:
        return False
    if pattern == "*":
        return True
    addr = _ip(host)
    if addr is not None:
        net = _pattern_network(pattern)
        return net is not None and addr.version == net.version and addr in net
    if "/" in pattern or _ip(pattern) is not None or _pattern_network(pattern) is not None:
        return False  # an address pattern never admits a name
    labels, pats = host.split("."), pattern.split(".")
    if len(labels) != len(pats) or "" in labels:
        return False
    return all(fnmatch.fnmatchcase(lab, pat) for lab, pat in zip(labels, pats, strict=True))


def _pattern_network(pattern: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The network an address pattern stands for (``10.0.0.0/24``, ``10.0.0.7``, ``10.0.*.*``)."""
    if "/" in pattern:
        try:
            return ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return None
    if (addr := _ip(pattern)) is not None:
        return ipaddress.ip_network(addr)
    parts = pattern.split(".")
    if len(parts) == 4 and "*" in parts:
        fixed = parts[: parts.index("*")]
        if all(p == "*" for p in parts[len(fixed):]) and all(p.isdigit() for p in fixed):
            try:
                base = ".".join(fixed + ["0"] * (4 - len(fixed)))
                return ipaddress.ip_network(f"{base}/{8 * len(fixed)}")
            except ValueError:
                return None
    return None


def _listener_option(source: str) -> str | None:
    """The name of an FFmpeg URL option in ``source`` that turns a client into a server, if any.

    FFmpeg's socket protocols read their options from everything after the first ``?`` (even
    past a ``#``), keys with or without a value (``?listen`` alone listens), so that is what is read.
    """
    if "?" not in source:
        return None
    tail = unquote(source.split("?", 1)[1])
    for item in re.split(r"[?&;#]", tail):
        key = item.split("=", 1)[0].strip().lower()
        if key in _LISTENER_KEYS:
            return key
    return "listen" if "listen" in tail.lower() else None


__all__ = ["SourcePolicy"]
