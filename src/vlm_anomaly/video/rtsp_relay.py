"""A one-connection local relay in front of an RTSP camera that refuses the camera's redirects.

Why: FFmpeg's RTSP demuxer follows a ``3xx`` reply's ``Location`` to any other host while it
connects, and has no option to stop it, so an allowed camera could send the service anywhere. The
relay listens on ``127.0.0.1`` (an ephemeral port), takes one connection from FFmpeg, connects
only to the camera's own host and port (TLS for ``rtsps``), and copies bytes both ways unchanged.
It reads the camera's side exactly as FFmpeg's RTSP reader does (lines split at ``\\n`` with
``\\r`` dropped, ``$``-framed interleaved packets skipped by their length, bodies by
``Content-Length``) and closes both sides before FFmpeg sees a ``3xx`` status line: the redirect
is refused, never followed. RTSP runs over TCP (``rtsp_transport=tcp``), so the media arrives in
that same connection. FFmpeg's URL keeps its credentials (Digest auth works); only its host and
port name the relay, which cameras ignore in the Request-URI.
"""

from __future__ import annotations

import logging
import re
import selectors
import socket
import ssl
import threading

from ..redact import redact_url

log = logging.getLogger(__name__)

#: FFmpeg's default ports when the URL names none
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}

#: What the relay says (and the reader reports) when it refused a redirect
REDIRECT_REASON = "camera answered with a redirect: not followed"

_LINE_MAX = 4095  # FFmpeg's reply line buffer (MAX_URL_SIZE - 1): longer lines are cut there
_SPACE = b" \t\r\n"


class RedirectRefusedError(OSError):
    """The camera answered with a redirect; the relay closed the connection instead."""


def split_rtsp_url(url: str) -> tuple[str, str, str, int, str]:
    """``(scheme, userinfo@ or "", host, port, rest)`` split the way FFmpeg's ``av_url_split`` does:
    the authority ends at the first ``/``, ``?`` or ``#``; credentials end at its last ``@``."""
    scheme, sep, after = url.partition("://")
    if not sep:
        raise ValueError("not a URL")
    scheme = scheme.lower()
    end = min((i for i in (after.find(c) for c in "/?#") if i >= 0), default=len(after))
    authority, rest = after[:end], after[end:]
    at = authority.rfind("@")
    userinfo, hostport = authority[: at + 1], authority[at + 1 :]
    port = DEFAULT_PORTS.get(scheme, 554)
    if hostport.startswith("["):
        close = hostport.find("]")
        host, tail = hostport[1:close], hostport[close + 1 :]
        if tail.startswith(":"):
            port = _atoi(tail[1:].encode()) or port
    else:
        host, colon, tail = hostport.partition(":")
        if colon:
            port = _atoi(tail.encode()) or port
    if not host or not 0 < port < 65536:
        raise ValueError("no host or port")
    return scheme, userinfo, host, port, rest


def _atoi(word: bytes) -> int:
    """C's ``atoi`` as glibc computes it (``(int) strtol``): leading blanks and sign, digits only,
    saturated at the long range, then wrapped to 32 bits; ``+302`` and ``4294967598`` are 302."""
    m = re.match(rb"[ \t\n\v\f\r]*([+-]?)(\d+)", word)
    if not m:
        return 0
    digits = m.group(2).lstrip(b"0") or b"0"
    v = int(digits) if len(digits) <= 20 else 1 << 64
    v = min(v, (1 << 63) - 1) if m.group(1) != b"-" else -min(v, 1 << 63)
    return (v + (1 << 31)) % (1 << 32) - (1 << 31)


def _word(line: bytes) -> tuple[bytes, bytes]:
    """FFmpeg's ``get_word``: skip blanks, take up to the next blank; (word, what follows)."""
    line = line.lstrip(_SPACE)
    m = re.match(rb"[^ \t\r\n]*", line)
    word = m.group(0) if m else b""
    return word, line[len(word) :]


class ReplyScanner:
    """Follows the camera's byte stream as FFmpeg's RTSP reader does while it connects (the only
    time FFmpeg follows a redirect) and raises :class:`RedirectRefusedError` at a ``3xx`` status
    line. :attr:`held` is how many of the last bytes fed belong to a line not yet ended: those
    are forwarded only once the line is checked, so no part of a redirect ever reaches FFmpeg.
    Any line that reads as a ``3xx`` status line is refused, wherever it stands in a message."""

    def __init__(self) -> None:
        self._skip = 0  # bytes of an interleaved packet or a body still to pass through unread
        self._hdr = b""  # bytes of a ``$`` packet header seen so far
        self._line = bytearray()  # the current line, without ``\r``
        self._stored = False  # the current line holds a character (``$`` counts only before one)
        self._lines = 0  # lines of the current message
        self._length = 0  # its Content-Length
        self.held = 0  # bytes of the line being read (not yet safe to forward)
        self.status = 0  # the refused status, once refused

    def feed(self, data: bytes) -> None:
        """Scan the next bytes of the camera's stream."""
        i, n = 0, len(data)
        while i < n:
            if self._skip:
                take = min(self._skip, n - i)
                self._skip -= take
                i += take
                continue
            if self._hdr or (data[i] == 0x24 and not self._stored):  # "$": an interleaved packet
                self._hdr += data[i : i + 1]
                self.held = 0
                i += 1
                if len(self._hdr) == 4:
                    self._skip = int.from_bytes(self._hdr[2:4], "big")
                    self._hdr = b""
                continue
            ch = data[i]
            i += 1
            self.held += 1
            if ch == 0x0A:
                self.held = 0
                self._end_line()
            elif ch != 0x0D:
                self._stored = True
                if len(self._line) < _LINE_MAX:
                    self._line.append(ch)

    def _end_line(self) -> None:
        line = bytes(self._line).split(b"\0", 1)[0]
        self._line.clear()
        self._stored = False
        if not line:  # the empty line ends a message; its body follows
            if self._length > 0:
                self._skip = self._length
            self._lines, self._length = 0, 0
            return
        word, after = _word(line)
        if word.startswith(b"RTSP/"):  # a status line, wherever it comes: refuse any 3xx
            code = _atoi(_word(after)[0])
            if 300 <= code < 400:
                self.status = code
                raise RedirectRefusedError(REDIRECT_REASON)
        elif self._lines and line[:15].lower() == b"content-length:":
            self._length = _atoi(line[15:])
        self._lines += 1


class _TlsLink:
    """The camera's TLS connection, entered by one thread at a time.

    Why: OpenSSL forbids using one connection from two threads at once, and the relay reads the
    camera in one thread while it writes FFmpeg's requests in the other. Unserialised, a read
    that took in the camera's TLS 1.3 session tickets while FFmpeg's first request was written
    lost that request (FFmpeg gave up after its timeout with "Invalid data found") or crashed the
    process. The socket is non-blocking, so no call holds the lock while it waits; the waits
    happen outside it, each thread on its own selector, made once: one selector shared by both
    threads would be registered, changed and waited on from two threads at once.
    """

    def __init__(self, sock: ssl.SSLSocket):
        sock.setblocking(False)
        self._sock = sock
        self._lock = threading.Lock()
        self._waits = threading.local()  # this thread's selector; freed when the thread ends

    def recv(self, size: int) -> bytes:
        return self._call(self._sock.recv, size)

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # a write that wants to wait is retried with the same bytes, as OpenSSL asks
            view = view[self._call(self._sock.send, view) :]

    def _call(self, op, arg):
        while True:
            with self._lock:
                try:
                    return op(arg)
                except ssl.SSLWantReadError:
                    event = selectors.EVENT_READ
                except ssl.SSLWantWriteError:
                    event = selectors.EVENT_WRITE
            self._wait(event)

    def _wait(self, event: int) -> None:
        if self._sock.fileno() < 0:  # closed meanwhile: its descriptor may already be another's
            raise OSError("connection closed")
        sel = getattr(self._waits, "sel", None)
        try:
            if sel is None:
                sel = self._waits.sel = selectors.DefaultSelector()  # no FD_SETSIZE limit in a busy service
                sel.register(self._sock, event)
            elif sel.get_key(self._sock).events != event:
                sel.modify(self._sock, event)
        except ValueError:  # closed since the check (no descriptor left)
            raise OSError("connection closed") from None
        sel.select(1.0)  # the timeout only bounds a wait whose wake-up the other thread took

    def shutdown(self, how: int) -> None:
        with self._lock:
            self._sock.shutdown(how)

    def close(self) -> None:
        with self._lock:
            self._sock.close()


class RtspRelay:
    """Listens on 127.0.0.1 for FFmpeg's one connection and relays it to ``host:port`` only.

    The relay ends on its own when either side closes (the reader's ``close`` closes FFmpeg's
    side), when nobody connects within ``timeout`` seconds, or on :meth:`close`.
    """

    def __init__(self, source: str, *, timeout: float = 10.0):
        scheme, self.userinfo, self.host, self.port, self.rest = split_rtsp_url(source)
        if scheme not in DEFAULT_PORTS:
            raise ValueError(f"{scheme}: not RTSP")
        self.tls = scheme == "rtsps"
        self.shown = redact_url(source)
        self.timeout = timeout
        self.refused = False
        self.failure = ""  # why the camera could not be reached, if it could not
        self.connections = 0
        self.received = 0  # bytes the camera sent
        self._lock = threading.Lock()
        self._socks: list[socket.socket | _TlsLink] = []
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(timeout)
        self.address = self._listener.getsockname()
        threading.Thread(target=self._serve, name="rtsp-relay", daemon=True).start()

    @property
    def url(self) -> str:
        """The URL FFmpeg opens: the camera's, with the relay's address in place of its host."""
        return f"rtsp://{self.userinfo}{self.address[0]}:{self.address[1]}{self.rest}"

    def _serve(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            self.close()
            return
        finally:
            self._listener.close()  # one connection only
        if self._closed.is_set():  # closed while accepting: never reach the camera
            client.close()
            return
        self.connections += 1
        self._keep(client)
        try:
            upstream = socket.create_connection((self.host, self.port), timeout=self.timeout)
            if self.tls:  # FFmpeg's own rtsps does not verify certificates either (tls_verify=0)
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                upstream = _TlsLink(ctx.wrap_socket(upstream, server_hostname=self.host))
            else:
                upstream.settimeout(None)
        except OSError as exc:
            self.failure = str(exc.strerror or exc or type(exc).__name__)
            log.debug("%s: cannot connect (%s)", self.shown, self.failure)
            self.close()
            return
        self._keep(upstream)
        threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True,
                         name="rtsp-relay-up").start()
        self._pump(upstream, client, ReplyScanner())

    def _keep(self, sock: socket.socket | _TlsLink) -> None:
        with self._lock:
            self._socks.append(sock)
        if self._closed.is_set():
            sock.close()

    def _pump(self, src: socket.socket | _TlsLink, dst: socket.socket | _TlsLink,
              scanner: ReplyScanner | None) -> None:
        pending = b""  # the start of a camera's line not yet ended (not yet checked)
        try:
            while not self._closed.is_set():
                data = src.recv(65536)
                if not data:
                    break
                if scanner is None:
                    dst.sendall(data)
                    continue
                self.received += len(data)
                try:
                    scanner.feed(data)
                except RedirectRefusedError:
                    self.refused = True
                    log.warning("%s: %s (status %d)", self.shown, REDIRECT_REASON, scanner.status)
                    break
                data = pending + data
                cut = len(data) - scanner.held
                dst.sendall(data[:cut])
                pending = data[cut:]
                if len(pending) > 1 << 20:  # a line that never ends: not RTSP
                    break
        except OSError:
            pass
        finally:
            self.close()

    def close(self) -> None:
        """Close both sides and the listener (idempotent)."""
        self._closed.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in accept
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
