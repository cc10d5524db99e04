"""Sources are checked to the last hop: no redirect, playlist, listener or symlink leaves the
allow-list. Real HTTP servers on 127.0.0.1 (allowed) and 127.0.0.2 (not allowed: it must receive
nothing), driven through ``POST /sources``, the upload endpoints and the library.
"""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.api import create_app
from vlm_anomaly.errors import InvalidVideoError, SourceNotAllowedError
from vlm_anomaly.source_policy import SourcePolicy
from vlm_anomaly.synthetic import write_frames, write_video
from vlm_anomaly.video import sample_frames
from vlm_anomaly.video.sources import AvReader, list_frame_files

TOKEN = "hops-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class _Server:
    """A real HTTP server answering every GET with ``answer(path)`` and counting requests."""

    def __init__(self, host: str, answer):
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                outer.requests.append(self.path)
                status, headers, body = answer(self.path)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET  # noqa: N815

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer((host, 0), Handler)
        self.srv.daemon_threads = True
        self.base = f"http://{host}:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("hops")
    media, private, home = root / "media", root / "private", root / "home"
    media.mkdir()
    private.mkdir()
    clip = write_video(media / "clip.mp4", seconds=4, fps=10, size=(160, 120))
    Pipeline(load_settings(overrides={"detector": "ocsvm", "home": home, "encoder": "efficientnet",
                                      "interval_ms": 500})).train("street", [clip])
    return {"root": root, "media": media, "private": private, "home": home, "clip": clip}


@pytest.fixture(scope="module")
def outside():
    """The host that is NOT allowed (127.0.0.2): it serves a real video, and counts every request."""
    clip_bytes: dict[str, bytes] = {}
    srv = _Server("127.0.0.2", lambda path: (200, {"Content-Type": "video/mp4"},
                                             clip_bytes.get("clip", b"")))
    srv.clip_bytes = clip_bytes
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def inside(outside, site):
    """The allowed host (127.0.0.1): redirects to 127.0.0.2, or serves a playlist naming it."""
    outside.clip_bytes["clip"] = site["clip"].read_bytes()
    playlist = (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:2.0,\n{outside.base}/seg0.ts\n#EXTINF:2.0,\n{outside.base}/seg1.ts\n#EXT-X-ENDLIST\n"
    ).encode()

    def answer(path: str):
        if path.startswith("/redirect"):
            return 302, {"Location": f"{outside.base}/clip.mp4"}, b""
        if path.startswith("/live.m3u8") or path.startswith("/cam.mp4"):  # a playlist, any name
            return 200, {"Content-Type": "application/vnd.apple.mpegurl"}, playlist
        if path.startswith("/clip.mp4"):
            return 200, {"Content-Type": "video/mp4"}, site["clip"].read_bytes()
        return 404, {}, b""

    srv = _Server("127.0.0.1", answer)
    yield srv
    srv.close()


def _app(site, **allow):
    settings = load_settings(overrides={
        "home": site["home"], "encoder": "efficientnet", "interval_ms": 500, "api_tokens": [TOKEN],
        "stream_backoff_initial_s": 0.1, "stream_backoff_max_s": 0.2, **allow})
    return create_app(settings)


@pytest.fixture(scope="module")
def client(site):
    app = _app(site, allowed_media_dirs=[site["media"]], allowed_url_schemes=["http", "tcp"],
               allowed_url_hosts=["127.0.0.1"], max_watchers=4)
    with TestClient(app, headers=AUTH) as c:
        yield c


def _watch(client, source: str, seconds: float = 2.5) -> dict:
    """Start watching ``source`` (201 expected), let it try for a while, stop it; its last status."""
    r = client.post("/sources", json={"model": "street", "source": source, "realtime": False})
    assert r.status_code == 201, (source, r.text)
    wid = r.json()["id"]
    deadline = time.monotonic() + seconds
    st = r.json()
    while time.monotonic() < deadline:
        st = client.get(f"/sources/{wid}").json()
        if st["status"] != "running":
            break
        time.sleep(0.1)
    client.delete(f"/sources/{wid}")
    return st


def test_an_http_redirect_to_another_host_is_not_followed(client, inside, outside):
    before = len(inside.requests)
    st = _watch(client, f"{inside.base}/redirect/cam.mp4")
    assert len(inside.requests) > before  # the allowed host was asked ...
    assert outside.requests == []  # ... and the host it redirected to received nothing
    assert st["frames"] == 0
    # the library's door says why
    with pytest.raises(InvalidVideoError, match="redirects and playlists are not followed"):
        AvReader(f"{inside.base}/redirect/cam.mp4")
    assert outside.requests == []
    # an allowed host serving the video itself still works
    reader = AvReader(f"{inside.base}/clip.mp4")
    assert sum(1 for _ in reader.frames()) == 40
    reader.close()


def test_a_remote_hls_playlist_naming_another_host_is_not_followed(client, inside, outside):
    for path in ("/live.m3u8", "/cam.mp4"):  # by extension, and sniffed from the content
        st = _watch(client, f"{inside.base}{path}")
        assert st["frames"] == 0
    with pytest.raises(InvalidVideoError):
        AvReader(f"{inside.base}/live.m3u8")
    assert outside.requests == []


def _playlists(folder, outside, private_clip):
    """Local files that name other inputs: an HLS playlist, an ffconcat list, a concat list
    under a video's name, an SDP session (would make FFmpeg listen for RTP)."""
    hls = ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n"
           f"{outside.base}/seg0.ts\n#EXTINF:2.0,\nfile://{private_clip}\n#EXT-X-ENDLIST\n")
    files = {
        "cam.m3u8": hls,
        "renamed.mp4": hls,
        "list.ffconcat": f"ffconcat version 1.0\nfile '{outside.base}/clip.mp4'\nfile '{private_clip}'\n",
        "list.mkv": f"ffconcat version 1.0\nfile '{private_clip}'\n",
        "session.sdp": "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n"
                       "m=video 5004 RTP/AVP 96\na=rtpmap:96 H264/90000\n",
    }
    for name, text in files.items():
        (folder / name).write_text(text)
    return list(files)


def test_playlists_in_media_folders_and_uploads_are_not_opened(client, site, outside, tmp_path):
    private_clip = write_video(site["private"] / "secret.mp4", seconds=2, fps=10, size=(160, 120))
    names = _playlists(site["media"], outside, private_clip)
    for name in names:  # the path is inside the media folder (201) but is not read as a playlist
        st = _watch(client, name, seconds=10)
        assert st["status"] == "failed" and st["frames"] == 0, (name, st)
        assert "not a readable video" in st["error"] or "cannot open" in st["error"], st
    hls = client.post("/sources", json={"model": "street", "source": "cam.m3u8"})
    assert hls.status_code == 201
    wid = hls.json()["id"]
    for _ in range(100):
        st = client.get(f"/sources/{wid}").json()
        if st["status"] != "running":
            break
        time.sleep(0.1)
    assert "playlists (HLS, DASH, concat, SDP) are not opened" in st["error"], st
    # uploads keep their extension: an uploaded playlist is scored / trained on as nothing
    for name in names:
        data = (site["media"] / name).read_bytes()
        r = client.post("/models/street/score", files={"file": (name, data)})
        assert r.status_code == 202, r.text
        job = r.json()["id"]
        for _ in range(300):
            j = client.get(f"/jobs/{job}").json()
            if j["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert j["status"] == "failed" and "not a readable video" in j["error"], (name, j)
        r = client.post("/models/other/train", files=[("files", (name, data))])
        job = r.json()["id"]
        for _ in range(300):
            j = client.get(f"/jobs/{job}").json()
            if j["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert j["status"] == "failed", (name, j)
    # the library's doors: sampling, probing
    for name in names:
        with pytest.raises(InvalidVideoError):
            list(sample_frames(site["media"] / name))
    assert outside.requests == []


def test_host_globs_match_label_by_label_and_addresses_by_network(site):
    with TestClient(_app(site, allowed_url_schemes=["http", "rtsp"],
                         allowed_url_hosts=["192.168.1.*", "cam*", "*.cams.lan", "10.0.0.0/24"]),
                    headers=AUTH) as c:
        for source in ("http://192.168.1.5.attacker.invalid/x.mp4", "rtsp://cam.attacker.example/live",
                       "rtsp://cam1.attacker.example/live", "rtsp://a.b.cams.lan/live",
                       "rtsp://192.168.10.5/live", "rtsp://10.0.1.1/live", "rtsp://0x7f.0.0.1/live",
                       "rtsp://192.168.1.5:80@evil.example/live"):
            r = c.post("/sources", json={"model": "street", "source": source})
            assert r.status_code == 403, (source, r.text)
        assert c.get("/sources").json() == []
    p = SourcePolicy(url_schemes=["rtsp"], url_hosts=["192.168.1.*", "cam*", "*.cams.lan", "10.0.0.0/24"])
    for ok in ("rtsp://192.168.1.5/live", "rtsp://cam7/live", "rtsp://front.cams.lan/live",
               "rtsp://10.0.0.9:554/live"):
        assert p.check(ok) == ok
    # a name pattern never admits an address, an address pattern never a name
    for bad in ("rtsp://192.168.1.5.attacker.invalid/x", "rtsp://cam.attacker.example/x",
                "rtsp://cam1.attacker.example/x", "rtsp://x.front.cams.lan/x", "rtsp://10.0.0.9.nip.io/x"):
        with pytest.raises(SourceNotAllowedError, match="matches no allowed_url_hosts"):
            p.check(bad)
    with pytest.raises(SourceNotAllowedError):
        SourcePolicy(url_schemes=["rtsp"], url_hosts=["cam*"]).check("rtsp://10.0.0.1/x")


def test_options_that_make_the_server_listen_are_refused(client, site):
    port = 47000 + os.getpid() % 1000
    for source in (f"tcp://127.0.0.1:{port}?listen=1", f"tcp://127.0.0.1:{port}?listen",
                   f"tcp://127.0.0.1:{port}?listen_timeout=1000&listen=2",
                   f"tcp://127.0.0.1:{port}?%6Cisten=1", f"http://127.0.0.1:{port}/x.mp4?listen=1",
                   f"tcp://127.0.0.1:{port}/x#?listen=1", f"tcp://127.0.0.1:{port}?local_port=80"):
        r = client.post("/sources", json={"model": "street", "source": source})
        assert r.status_code == 403, (source, r.text)
        assert "accept connections" in r.json()["error"] or "take no options" in r.json()["error"], r.text
    with TestClient(_app(site, allowed_url_schemes=["udp", "tcp"], allowed_url_hosts=["*"]),
                    headers=AUTH) as c:
        r = c.post("/sources", json={"model": "street", "source": f"udp://0.0.0.0:{port}"})
        assert r.status_code == 403 and "listener" in r.json()["error"], r.text
        assert c.get("/sources").json() == []
    assert client.get("/sources").json() == [] or all(
        s["status"] != "running" for s in client.get("/sources").json())


def _png(path, value: int) -> None:
    img = np.full((48, 64, 3), value, np.uint8)
    cv2.imwrite(str(path), img)


def test_frame_folders_read_only_images_inside_them(client, site):
    secret = site["private"] / "secret-frame.png"
    _png(secret, 250)
    folder = site["media"] / "frames"
    write_frames(folder, n=4, size=(64, 48))
    (folder / "1b.png").symlink_to(secret)  # would sort among the real frames
    (folder / "9999.png").symlink_to(secret)
    (folder / "inner.png").symlink_to(folder / "0.png")  # a link that stays inside: fine
    only_out = site["media"] / "only-outside"
    only_out.mkdir()
    (only_out / "0.png").symlink_to(secret)
    st = _watch(client, "frames", seconds=30)  # the API names the folder: from now on it is confined
    assert st["status"] == "ended" and st["frames"] >= 1, st
    names = [p.name for p in list_frame_files(folder)]
    assert names == ["0.png", "1.png", "2.png", "3.png", "inner.png"]
    frames = list(sample_frames(folder, interval_ms=0))
    assert len(frames) == 5
    assert not any(np.all(f.image == 250) for f in frames)  # the outside image was never read
    st = _watch(client, "only-outside", seconds=30)
    assert st["status"] == "failed" and st["frames"] == 0 and "no image frames" in st["error"], st
    with pytest.raises(InvalidVideoError, match="no image frames"):
        list(sample_frames(only_out))
    # the owner's own library and CLI read a folder of links (a dataset subset) as it is
    mine = site["private"] / "my-subset"
    mine.mkdir()
    (mine / "0.png").symlink_to(secret)
    assert len(list(sample_frames(mine))) == 1
