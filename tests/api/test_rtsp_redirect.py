"""An RTSP camera's redirect never leaves the allow-list: real RTSP servers on localhost.

A fake camera on 127.0.0.1 (allowed) answers with ``3xx`` + ``Location: rtsp://127.0.0.2:P/x``;
a listener on 127.0.0.2 (not allowed) must receive no connection. FFmpeg alone follows such a
redirect; sources are opened through the local relay, which refuses it. A second fake camera
serves a real stream (MPEG-TS over RTP, interleaved in the RTSP connection, behind Digest auth)
to show a normal camera still plays through the relay.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import subprocess
import threading
import time

import pytest
from fastapi.testclient import TestClient

from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.api import create_app
from vlm_anomaly.errors import InvalidVideoError
from vlm_anomaly.synthetic import write_video
from vlm_anomaly.video.rtsp_relay import RedirectRefusedError, ReplyScanner, RtspRelay
from vlm_anomaly.video.sources import AvReader

TOKEN = "rtsp-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Listener:
    """A TCP listener that only counts the connections it receives."""

    def __init__(self, host: str):
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self):
        self.sock.close()


def _read_request(f) -> tuple[str, dict[str, str]] | None:
    first = f.readline()
    if not first:
        return None
    headers = {}
    while True:
        line = f.readline()
        if not line or line in (b"\r\n", b"\n"):
            break
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    if int(headers.get("content-length", 0) or 0):
        f.read(int(headers["content-length"]))
    return first.decode("latin-1").strip(), headers


class FakeCamera:
    """An RTSP server on 127.0.0.1: ``answer(request_line, headers, conn)`` sends each reply."""

    def __init__(self, answer, tls: ssl.SSLContext | None = None):
        self.answer = answer
        self.tls = tls
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.closed = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        try:
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            f = conn.makefile("rb")
            while (req := _read_request(f)) is not None:
                self.requests.append(req)
                self.answer(req[0], req[1], conn)
        except OSError:
            pass
        finally:
            self.closed.set()
            conn.close()

    def close(self):
        self.sock.close()


def _reply(conn, status: str, headers: dict[str, str], cseq: str, body: bytes = b"") -> None:
    head = f"RTSP/1.0 {status}\r\nCSeq: {cseq}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    conn.sendall(head.encode() + b"\r\n" + body)


@pytest.fixture(scope="module")
def outside():
    srv = Listener("127.0.0.2")
    yield srv
    srv.close()


def _redirecting(outside, *, first_ok: bool, status: str, tls=None):
    """A camera that answers OPTIONS (or everything) with a redirect to 127.0.0.2; before the
    redirect it sends an interleaved packet that holds a fake status line (which is data)."""
    location = f"rtsp://127.0.0.2:{outside.port}/x"

    def answer(line, headers, conn):
        cseq = headers.get("cseq", "0")
        if first_ok and line.startswith("OPTIONS"):
            _reply(conn, "200 OK", {"Public": "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN"}, cseq)
            return
        payload = b"RTSP/1.0 200 OK\r\n\r\n"
        conn.sendall(b"$\x00" + len(payload).to_bytes(2, "big") + payload)
        _reply(conn, status, {"Location": location}, cseq)

    return FakeCamera(answer, tls)


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A server TLS context with a fresh self-signed certificate (cameras' usual kind)."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=cam.local", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    return ctx


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("rtsp")
    home = root / "home"
    clip = write_video(root / "clip.mp4", seconds=4, fps=10, size=(160, 120))
    Pipeline(load_settings(overrides={"detector": "ocsvm", "home": home, "encoder": "efficientnet",
                                      "interval_ms": 500})).train("street", [clip])
    ts = write_video(root / "clip.ts", seconds=4, fps=10, size=(160, 120))
    return {"home": home, "ts": ts}


@pytest.fixture(scope="module")
def client(site):
    settings = load_settings(overrides={
        "home": site["home"], "encoder": "efficientnet", "interval_ms": 500, "api_tokens": [TOKEN],
        "allowed_url_schemes": ["rtsp"], "allowed_url_hosts": ["127.0.0.1"],
        "stream_backoff_initial_s": 0.1, "stream_backoff_max_s": 0.2, "max_watchers": 4})
    with TestClient(create_app(settings), headers=AUTH) as c:
        yield c


def _watch(client, source: str, seconds: float = 3.0, until=lambda st: False) -> dict:
    """Watch ``source`` for ``seconds`` (or until ``until(status)``), stop it; its last status."""
    r = client.post("/sources", json={"model": "street", "source": source, "realtime": False})
    assert r.status_code == 201, (source, r.text)
    wid = r.json()["id"]
    deadline = time.monotonic() + seconds
    st = r.json()
    while time.monotonic() < deadline:
        st = client.get(f"/sources/{wid}").json()
        if until(st):
            break
        time.sleep(0.1)
    client.delete(f"/sources/{wid}")
    return st


@pytest.mark.parametrize(("first_ok", "status"), [(False, "302 Moved"), (True, "301 Moved Permanently"),
                                                  (True, "+303 See Other")])
def test_an_rtsp_redirect_to_another_host_is_not_followed(client, outside, first_ok, status, caplog):
    cam = _redirecting(outside, first_ok=first_ok, status=status)
    try:
        st = _watch(client, f"rtsp://admin:pa'ss@127.0.0.1:{cam.port}/live")
        assert cam.requests, "the allowed camera was asked"
        assert outside.connections == 0  # the host it redirected to received nothing
        assert st["frames"] == 0 and st["online"] is False
        # the library's door says why, without the password
        with pytest.raises(InvalidVideoError, match="camera answered with a redirect: not followed") as err:
            AvReader(f"rtsp://admin:pa'ss@127.0.0.1:{cam.port}/live")
        assert "pa'ss" not in str(err.value)
        assert outside.connections == 0
        assert "camera answered with a redirect" in caplog.text and "pa'ss" not in caplog.text
    finally:
        cam.close()


def test_the_reply_scanner_reads_the_stream_as_ffmpeg_does():
    def refused(*chunks: bytes) -> bool:
        s = ReplyScanner()
        try:
            for c in chunks:
                s.feed(c)
        except RedirectRefusedError:
            return True
        return False

    assert refused(b"RTSP/1.0 302 Found\r\nLocation: rtsp://x/\r\n\r\n")
    assert refused(b"RTSP/1.0 3", b"02 Found\r\n")  # split across reads
    assert refused(b"  RTSP/1.0\t+302\r\r\n")  # blanks, a sign, stray CRs: FFmpeg's atoi reads 302
    assert refused(b"RTSP/2.0 4294967598 x\n")  # (int) strtol wraps to 302
    assert refused(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\nRTSP/1.0 399 x\r\n")
    assert not refused(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n")
    assert not refused(b"RTSP/1.0 404 Not Found\r\n\r\n")
    assert not refused(b"rtsp/1.0 302 x\r\n")  # FFmpeg's match is case-sensitive: not a status
    # interleaved data and bodies are data, skipped by their lengths, even split across reads
    pkt = b"RTSP/1.0 302 x\r\n\r\n"
    assert not refused(b"$\x00" + len(pkt).to_bytes(2, "big") + pkt)
    assert not refused(b"$\x00", len(pkt).to_bytes(2, "big"), pkt[:5], pkt[5:])
    body = b"v=0\r\nRTSP/1.0 302 x\r\n"
    assert not refused(b"RTSP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    # ... but a status line after them is checked
    assert refused(b"$\x00\x00\x02ab" + b"RTSP/1.0 302 x\r\n")
    assert refused(b"RTSP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabcRTSP/1.0 302 x\r\n")
    # a redirect's line is never forwarded, not even in part
    s = ReplyScanner()
    s.feed(b"RTSP/1.0 200 OK\r\n\r\nRTSP/1.0 3")
    assert s.held == len(b"RTSP/1.0 3")
    s.feed(b"0")
    assert s.held == len(b"RTSP/1.0 30")


class _StreamingCamera:
    """A camera behind Digest auth that streams an MPEG-TS file as RTP (payload type 33),
    interleaved in the RTSP connection; it records every request it receives."""

    REALM, NONCE, USER, PASSWORD = "cam", "abc123", "admin", "pa'ss!"

    def __init__(self, ts_bytes: bytes, seconds: float = 0.0, tls=None):
        self.ts = ts_bytes
        self.seconds = seconds  # spread the packets over this long (a live camera's pace)
        self.cam = FakeCamera(self.answer, tls)
        self.port = self.cam.port

    def _authorised(self, method: str, headers) -> bool:
        auth = headers.get("authorization", "")
        if not auth.startswith("Digest "):
            return False
        fields = dict(re.findall(r'(\w+)="([^"]*)"', auth))
        ha1 = hashlib.md5(f"{self.USER}:{self.REALM}:{self.PASSWORD}".encode()).hexdigest()
        ha2 = hashlib.md5(f"{method}:{fields.get('uri', '')}".encode()).hexdigest()
        want = hashlib.md5(f"{ha1}:{self.NONCE}:{ha2}".encode()).hexdigest()
        return fields.get("username") == self.USER and fields.get("response") == want

    def answer(self, line, headers, conn):
        method = line.split()[0]
        cseq = headers.get("cseq", "0")
        if method == "OPTIONS":
            _reply(conn, "200 OK", {"Public": "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN"}, cseq)
        elif not self._authorised(method, headers):
            _reply(conn, "401 Unauthorized",
                   {"WWW-Authenticate": f'Digest realm="{self.REALM}", nonce="{self.NONCE}"'}, cseq)
        elif method == "DESCRIBE":
            sdp = (b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
                   b"m=video 0 RTP/AVP 33\r\na=rtpmap:33 MP2T/90000\r\na=control:track1\r\n")
            _reply(conn, "200 OK", {"Content-Type": "application/sdp",
                                    "Content-Base": f"{line.split()[1]}/"}, cseq, sdp)
        elif method == "SETUP":
            _reply(conn, "200 OK", {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1",
                                    "Session": "12345678"}, cseq)
        elif method == "PLAY":
            _reply(conn, "200 OK", {"Session": "12345678"}, cseq)
            seq = 0
            pause = self.seconds / max(1, len(self.ts) // (188 * 7))
            for i in range(0, len(self.ts), 188 * 7):
                time.sleep(pause)
                rtp = (b"\x80\x21" + (seq & 0xFFFF).to_bytes(2, "big") + (seq * 900).to_bytes(4, "big")
                       + b"\x01\x02\x03\x04" + self.ts[i : i + 188 * 7])
                conn.sendall(b"$\x00" + len(rtp).to_bytes(2, "big") + rtp)
                seq += 1
            conn.shutdown(socket.SHUT_WR)  # the stream ends here
        else:
            _reply(conn, "200 OK", {"Session": "12345678"}, cseq)


def test_a_normal_camera_still_plays_through_the_relay(site, client):
    cam = _StreamingCamera(site["ts"].read_bytes())
    try:
        url = f"rtsp://admin:pa'ss!@127.0.0.1:{cam.port}/live"
        reader = AvReader(url, media_time=False)
        frames = sum(1 for _ in reader.frames())
        reader.close()
        assert frames >= 30, frames  # the 40-frame clip arrived (a few may be cut at the end)
        methods = [line.split()[0] for line, _ in cam.cam.requests]
        assert methods[:2] == ["OPTIONS", "DESCRIBE"] and "PLAY" in methods, methods
        # FFmpeg's requests reached the camera through the relay, Digest-authorised, over TCP
        setup = next(h for line, h in cam.cam.requests if line.startswith("SETUP"))
        assert "RTP/AVP/TCP" in setup["transport"] and setup["authorization"].startswith("Digest ")
        assert cam.cam.closed.wait(5)  # closing the reader closed the camera's connection
        # and through POST /sources the service watches it
        cam.seconds = 4.0
        st = _watch(client, url, seconds=20, until=lambda st: st["frames"] >= 2)
        assert st["frames"] >= 2, st
    finally:
        cam.cam.close()


def test_the_relay_connects_only_once_and_only_to_its_host(outside):
    relay = RtspRelay(f"rtsp://u:p@127.0.0.2:{outside.port}/x", timeout=2)
    assert relay.url == f"rtsp://u:p@127.0.0.1:{relay.address[1]}/x"
    a = socket.create_connection(relay.address)
    time.sleep(0.3)
    with pytest.raises(OSError):  # the listener is gone after the first connection
        socket.create_connection(relay.address, timeout=1)
    a.close()
    relay.close()
    assert outside.connections == 1
    outside.connections = 0


def test_rtsps_goes_through_the_relay_too(site, outside, tls):
    """TLS to the camera is made by the relay, so its replies are read there too."""
    cam = _redirecting(outside, first_ok=True, status="302 Found", tls=tls)
    try:
        with pytest.raises(InvalidVideoError, match="camera answered with a redirect: not followed"):
            AvReader(f"rtsps://admin:pw@127.0.0.1:{cam.port}/live")
        assert [line.split()[0] for line, _ in cam.requests] == ["OPTIONS", "DESCRIBE"]
        assert outside.connections == 0
    finally:
        cam.close()
    good = _StreamingCamera(site["ts"].read_bytes(), tls=tls)
    try:
        reader = AvReader(f"rtsps://admin:pa'ss!@127.0.0.1:{good.port}/live", media_time=False)
        assert sum(1 for _ in reader.frames()) >= 30
        reader.close()
    finally:
        good.cam.close()


def test_an_unreachable_camera_says_why():
    with socket.socket() as bound:  # a port that is taken but does not listen: refused
        bound.bind(("127.0.0.1", 0))
        with pytest.raises(InvalidVideoError, match="cannot open \\(Connection refused\\)"):
            AvReader(f"rtsp://u:p@127.0.0.1:{bound.getsockname()[1]}/live")


def test_no_byte_of_a_redirect_reaches_the_client(outside):
    """A redirect sent in pieces: the client gets the 200 before it and then only the close."""

    def answer(line, headers, conn):
        conn.sendall(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\nRTSP/1.0 30")
        time.sleep(0.3)
        conn.sendall(f"2 Found\r\nLocation: rtsp://127.0.0.2:{outside.port}/x\r\n\r\n".encode())

    cam = FakeCamera(answer)
    relay = RtspRelay(f"rtsp://127.0.0.1:{cam.port}/live", timeout=5)
    try:
        c = socket.create_connection(relay.address, timeout=5)
        c.sendall(b"OPTIONS rtsp://127.0.0.1/live RTSP/1.0\r\nCSeq: 1\r\n\r\n")
        got = b""
        while chunk := c.recv(4096):
            got += chunk
        assert got == b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n"
        assert relay.refused and outside.connections == 0
        c.close()
    finally:
        relay.close()
        cam.close()


def test_a_closed_relay_never_reaches_the_camera(outside):
    relay = RtspRelay(f"rtsp://127.0.0.2:{outside.port}/x", timeout=5)
    relay.close()  # as when FFmpeg fails before it connects
    with pytest.raises(OSError):
        socket.create_connection(relay.address, timeout=1)
    time.sleep(0.2)
    assert outside.connections == 0


class _TlsEntries:
    """A profile hook for threads started while it is on: it records every call into an OpenSSL
    connection (the ``_ssl._SSLSocket`` methods behind ``ssl``'s sockets) and whether one
    connection was ever entered by a second thread while a first was still inside it, which
    OpenSSL forbids. Only observes: the calls themselves run unchanged."""

    def __init__(self):
        self.calls = 0
        self.overlaps: list[str] = []
        self._inside: dict[int, dict[int, int]] = {}  # connection -> thread -> calls open

    def __call__(self, frame, event, arg):
        if event not in ("c_call", "c_return", "c_exception"):
            return
        conn = getattr(arg, "__self__", None)
        if type(conn).__name__ != "_SSLSocket":
            return
        me, threads = threading.get_ident(), self._inside.setdefault(id(conn), {})
        if event == "c_call":
            self.calls += 1
            if any(n for t, n in threads.items() if t != me):
                self.overlaps.append(arg.__name__)
            threads[me] = threads.get(me, 0) + 1
        else:
            threads[me] = threads.get(me, 1) - 1


def test_the_relay_enters_the_cameras_tls_connection_from_one_thread_at_a_time(site, tls):
    """The relay reads the camera in one thread and writes FFmpeg's requests in another. Both in
    one TLS connection at once lost FFmpeg's first request (it gave up with "Invalid data found")
    or crashed the process, now and then: when the camera's TLS 1.3 session tickets were read
    while that request was written. Checked here on every call, so it fails every time it is done."""
    entries = _TlsEntries()
    threading.setprofile(entries)
    try:
        good = _StreamingCamera(site["ts"].read_bytes(), tls=tls)
        reader = AvReader(f"rtsps://admin:pa'ss!@127.0.0.1:{good.port}/live", media_time=False)
        frames = sum(1 for _ in reader.frames())
        reader.close()
    finally:
        threading.setprofile(None)
        good.cam.close()
    assert frames >= 30, frames
    assert entries.calls > 10 and entries.overlaps == []


def test_a_camera_that_never_replies_says_so():
    """A camera slower than the open timeout (here: one that accepts and never says a word) is
    reported as such, over TLS too, never as FFmpeg's "Invalid data found"."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        for scheme in ("rtsp", "rtsps"):
            with pytest.raises(InvalidVideoError, match=r"cannot open \(no reply from the camera\)$"):
                AvReader(f"{scheme}://u:p@127.0.0.1:{silent.getsockname()[1]}/live", read_timeout_s=1)
