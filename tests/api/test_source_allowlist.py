"""POST /sources opens only what the settings allow: hostile requests against the real app.

The app runs with one media folder, ``http`` to 127.0.0.1 only, no camera and a cap of one
watcher; every refusal must be a 4xx with a clear message and must start nothing.
"""

from __future__ import annotations

import os
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.api import create_app
from vlm_anomaly.synthetic import write_frames, write_video

TOKEN = "allowlist-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """media/ (allowed) beside private/ (mode 700, not allowed), with symlinks out of media/."""
    root = tmp_path_factory.mktemp("site")
    media, private, home = root / "media", root / "private", root / "home"
    (media / "cam1").mkdir(parents=True)
    private.mkdir()
    clip = write_video(media / "cam1" / "clip.mp4", seconds=8, fps=10, size=(160, 120))
    write_frames(media / "frames", n=10, size=(160, 120))
    secret = write_video(private / "secret.mp4", seconds=2, fps=10, size=(160, 120))
    os.chmod(private, 0o700)
    (media / "escape.mp4").symlink_to(secret)  # a file link out of the media folder
    (media / "outside").symlink_to(private, target_is_directory=True)  # a folder link out
    (media / "inner.mp4").symlink_to(clip)  # a link that stays inside: fine
    Pipeline(
        load_settings(overrides={"detector": "ocsvm", "home": home, "encoder": "efficientnet", "interval_ms": 500})
    ).train("street", [clip])
    return {"root": root, "media": media, "private": private, "home": home, "clip": clip,
            "secret": secret}


@pytest.fixture(scope="module")
def http_media(site):
    """A real HTTP server on 127.0.0.1 serving the media folder (an allowed stream host)."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(site["media"])))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _app(site, **allow):
    settings = load_settings(
        overrides={"home": site["home"], "encoder": "efficientnet", "interval_ms": 500,
                   "api_tokens": [TOKEN], **allow}
    )
    return create_app(settings)


@pytest.fixture(scope="module")
def client(site):
    app = _app(
        site,
        allowed_media_dirs=[site["media"]],
        allowed_url_schemes=["http"],
        allowed_url_hosts=["127.0.0.1"],
        max_watchers=1,
    )
    with TestClient(app, headers=AUTH) as c:
        yield c


def _hostile(site, http_media):
    """(request source, expected status, words the error must hold)."""
    media = site["media"]
    return [
        ("/etc/passwd", 403, "outside the media folders"),
        ("/etc/shadow", 403, "outside the media folders"),
        ("/proc/self/environ", 403, "outside the media folders"),
        ("/dev/video0", 403, "outside the media folders"),
        (str(site["secret"]), 403, "outside the media folders"),  # a private folder
        (str(site["home"] / "events.db"), 403, "outside the media folders"),  # the service's own
        (str(media / ".." / "private" / "secret.mp4"), 403, "outside the media folders"),
        ("../private/secret.mp4", 403, "outside the media folders"),
        ("cam1/../../private/secret.mp4", 403, "outside the media folders"),
        ("../../../../../../etc/passwd", 403, "outside the media folders"),
        (str(media / "escape.mp4"), 403, "outside the media folders"),  # symlink escape (file)
        ("escape.mp4", 403, "outside the media folders"),
        (str(media / "outside" / "secret.mp4"), 403, "outside the media folders"),  # (folder)
        ("outside", 403, "outside the media folders"),
        ("~/.ssh/id_rsa", 422, "no such file"),  # a client's ~ is not the server's home
        (str(media / "cam1" / "missing.mp4"), 422, "no such file"),
        ("file:///etc/passwd", 403, "URL scheme 'file'"),
        ("concat:/etc/passwd|/etc/hosts", 403, "URL scheme 'concat'"),
        ("pipe:0", 403, "URL scheme 'pipe'"),
        ("subfile:/etc/passwd", 403, "URL scheme 'subfile'"),
        ("data:video/mp4;base64,AAAA", 403, "URL scheme 'data'"),
        ("rtsp://cam1.lan/live", 403, "URL scheme 'rtsp'"),
        ("rtmp://127.0.0.1/live", 403, "URL scheme 'rtmp'"),
        ("tcp://127.0.0.1:22", 403, "URL scheme 'tcp'"),
        ("udp://0.0.0.0:5000", 403, "URL scheme 'udp'"),
        ("https://127.0.0.1/clip.mp4", 403, "URL scheme 'https'"),
        ("http://169.254.169.254/latest/meta-data/", 403, "matches no allowed_url_hosts"),
        ("http://localhost:22/", 403, "matches no allowed_url_hosts"),
        ("http://10.0.0.1/cam.mjpg", 403, "matches no allowed_url_hosts"),
        ("http://2130706433/clip.mp4", 403, "matches no allowed_url_hosts"),  # 127.0.0.1 in decimal
        ("http://127.0.0.1@evil.example/x", 403, "matches no allowed_url_hosts"),
        ("http://evil.example\\@127.0.0.1/x", 403, "unusual host"),
        ("http://127.0.0.1%2f@evil.example/x", 403, "matches no allowed_url_hosts"),  # %2f: user, not host
        ("http://bob@127.0.0.1%2f/x", 403, "unusual host"),
        ("http://bob:50%off@127.0.0.1/x", 403, "starts no escape"),
        ("http:///etc/passwd", 403, "names no host"),
        ("http://[::1]:80/x", 403, "matches no allowed_url_hosts"),
        ("0", 403, "camera 0 is not in allowed_cameras"),
        ("7", 403, "camera 7"),
        ("\u00b2", 422, "no such file"),  # a digit to str.isdigit, not to int(): a file name here
        ("\u0660", 422, "no such file"),  # an Arabic-Indic zero is no camera index either
        ("clip\x00.mp4", 403, "control characters"),
        (f"http://{http_media}/cam1/clip.mp4\r\nX-Injected: 1", 403, "control characters"),
    ]


def test_hostile_sources_are_refused_with_a_clear_4xx(client, site, http_media):
    for source, status, words in _hostile(site, http_media):
        r = client.post("/sources", json={"model": "street", "source": source})
        assert r.status_code == status, (source, r.status_code, r.text)
        assert words in r.json()["error"], (source, r.json())
    assert client.get("/sources").json() == []  # nothing was started


def test_allowed_sources_start(client, site, http_media):
    for source in (str(site["clip"]), "cam1/clip.mp4", "inner.mp4", str(site["media"] / "frames"),
                   f"http://{http_media}/cam1/clip.mp4"):
        r = client.post("/sources", json={"model": "street", "source": source, "realtime": False})
        assert r.status_code == 201, (source, r.text)
        st = r.json()
        client.delete(f"/sources/{st['id']}")
    srcs = [s["source"] for s in client.get("/sources").json()]
    assert srcs[:3] == [str(site["clip"].resolve())] * 3  # paths come back resolved
    assert srcs[3] == str((site["media"] / "frames").resolve())  # a frame folder inside
    assert srcs[4] == f"http://{http_media}/cam1/clip.mp4"


def test_a_url_as_users_write_it_is_opened_as_ffmpeg_needs_it(client, http_media):
    """An upper-case scheme (FFmpeg knows its protocols by lower-case names: ``HTTP://`` was
    accepted, then failed to open for ever) and a password holding "@" or ":" written as the
    escapes RFC 3986 asks for (refused as an "unusual host" before)."""
    from vlm_anomaly.source_policy import SourcePolicy
    from vlm_anomaly.video.sources import open_reader

    policy = SourcePolicy(url_schemes=["http"], url_hosts=["127.0.0.1"])
    for source, shown in ((f"HTTP://{http_media}/cam1/clip.mp4", f"http://{http_media}/cam1/clip.mp4"),
                          (f"http://bob:pa%40ss%3Aword9@{http_media}/cam1/clip.mp4",
                           f"http://***@{http_media}/cam1/clip.mp4")):
        r = client.post("/sources", json={"model": "street", "source": source, "realtime": False})
        assert r.status_code == 201, (source, r.text)
        assert r.json()["source"] == shown
        client.delete(f"/sources/{r.json()['id']}")
        reader = open_reader(policy.check(source))  # what the watcher opens: it reads the clip
        try:
            assert next(iter(reader.frames())) is not None
        finally:
            reader.close()


def test_a_source_that_never_connects_says_why(client):
    """A camera that is off, a wrong port or password: the source is "offline" with the
    connection's failure as its reason (credentials masked), at once - not "running" with no
    error while the reason sat in the server's log."""
    from tests.helpers import free_port

    r = client.post("/sources", json={"model": "street", "source": f"http://bob:hunter2@127.0.0.1:{free_port()}/x"})
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    deadline = time.monotonic() + 20
    while (st := client.get(f"/sources/{wid}").json())["status"] != "offline":
        assert time.monotonic() < deadline, st
        time.sleep(0.1)
    assert st["online"] is False and st["reason"].startswith("cannot connect (") and "refused" in st["reason"], st
    assert "hunter2" not in str(st) and "***@127.0.0.1" in st["reason"], st
    client.delete(f"/sources/{wid}")


def test_watchers_are_capped(client, site):
    r = client.post("/sources", json={"model": "street", "source": "cam1/clip.mp4"})  # real time
    assert r.status_code == 201
    first = r.json()["id"]
    r = client.post("/sources", json={"model": "street", "source": "cam1/clip.mp4"})
    assert r.status_code == 429 and "max_watchers" in r.json()["error"], r.text
    assert client.delete(f"/sources/{first}").json()["status"] in ("stopped", "ended")
    r = client.post("/sources", json={"model": "street", "source": "cam1/clip.mp4",
                                      "realtime": False})
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 60
    while client.get(f"/sources/{r.json()['id']}").json()["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_nothing_is_allowed_by_default(site, http_media):
    with TestClient(_app(site), headers=AUTH) as c:
        for source, words in (
            (str(site["clip"]), "no media folders are configured"),
            ("cam1/clip.mp4", "no media folders are configured"),
            (f"http://{http_media}/cam1/clip.mp4", "no URLs may be opened"),
            ("0", "allowed_cameras (none)"),
        ):
            r = c.post("/sources", json={"model": "street", "source": source})
            assert r.status_code == 403 and words in r.json()["error"], (source, r.text)
        assert c.get("/sources").json() == []


def test_host_patterns_and_networks(site):
    from vlm_anomaly.errors import SourceNotAllowedError
    from vlm_anomaly.source_policy import SourcePolicy

    p = SourcePolicy(url_schemes=["rtsp"], url_hosts=["cam*.lan", "192.168.1.0/24"], cameras=[0])
    assert p.check("rtsp://cam7.lan:554/live") == "rtsp://cam7.lan:554/live"
    assert p.check("RTSP://CAM7.LAN/live")
    assert p.check("rtsp://192.168.1.20/live")
    assert p.check("0") == "0"
    for bad in ("rtsp://192.168.2.20/live", "rtsp://cam7.lan.evil.example/x",
                "rtsp://cam7.lan@evil.example/x", "1", "\u0660"):
        with pytest.raises(SourceNotAllowedError):
            p.check(bad)
