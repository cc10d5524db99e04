"""Passwords that break a pattern-based redactor (quotes, spaces, ``@``, ``/``, ``%``-escapes, very
long) fed through every output path: library errors and gaps, log records captured at DEBUG (any
logger), the API's answers, a real ``vlm-anomaly serve`` process's access log, CLI errors,
``score-batch``'s lines and output file names. No word of any password may appear anywhere.

Each password is made of code words (``Alpha``, ``Bravo``...): the test looks for every word, so a
password cut short at a quote or a space (the rest left readable) fails it as surely as a whole one.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.helpers import cli_env, free_port
from vlm_anomaly import load_settings
from vlm_anomaly.api import create_app
from vlm_anomaly.errors import InvalidVideoError, VlmAnomalyError
from vlm_anomaly.redact import redact_text, redact_url, source_slug
from vlm_anomaly.video import probe, sample_frames
from vlm_anomaly.video.live import LiveSource
from vlm_anomaly.video.sources import AvReader

TOKEN = "everywhere-token-0123456789"
#: (user, password): quotes, spaces, '@', '/', '?', '#', %-escapes, a very long one
CREDENTIALS = [
    ("Ulysses", "Alpha'Bravo"),
    ("Umbra", "Charlie Delta@Echo"),
    ("Uriel", 'Foxtrot"Golf%40Hotel'),
    ("Ursula", "India/Juliett?Kilo#Lima"),
    ("Uma", "Mike" + "q" * 300 + "November"),
    ("Usher", "Oscar`Papa<Quebec>Romeo's \"Sierra\""),
]
WORDS = sorted({w for user, pw in CREDENTIALS for w in re.findall(r"[A-Z][a-z]+", user + " " + pw)}
               | {"q" * 40})


def _url(scheme: str, user: str, pw: str, hostport: str, path: str = "/live") -> str:
    return f"{scheme}://{user}:{pw}@{hostport}{path}"


def _clean(*texts: object) -> None:
    blob = "\n".join(map(str, texts))
    leaked = [w for w in WORDS if w in blob]
    assert not leaked, (leaked, blob[:3000])


def test_the_redactor_parses_urls_in_free_text():
    from vlm_anomaly.redact import redact_query

    for user, pw in CREDENTIALS:
        url = _url("rtsp", user, pw, "cam.lan:554")
        for text in (url, f"failed: '{url}' (x)", f'open("{url}") -> 401', f"<{url}>",
                     f"a {url} b\nnext line", f"{url}?password={pw}&channel=1",
                     f"http://cam/snap?user={user}&pwd={pw}"):
            shown = redact_text(text)
            _clean(shown, redact_url(text), source_slug(text))
            assert "cam" in shown
        # the password seen once is masked when quoted bare (an error that prints it alone)
        assert redact_text(f"authentication failed for password {pw}").endswith("***")
    assert redact_text("failed: 'rtsp://Ulysses:Alpha'Bravo@cam/live' (x)") == "failed: 'rtsp://***@cam/live' (x)"
    assert redact_url("rtsp://Umbra:Charlie Delta@Echo@cam.lan/live?channel=1") == "rtsp://***@cam.lan/live?channel=1"
    assert redact_query("source=" + quote("rtsp://Uriel:Foxtrot\"Golf%40Hotel@cam/x", safe="")) == \
        "source=rtsp://***@cam/x"
    assert redact_text("see http://cam/a@b.jpg and rtsp://cam:554/x") == "see http://cam/a@b.jpg and rtsp://cam:554/x"


def test_output_file_names_never_hold_credentials(tmp_path):
    from vlm_anomaly.results import output_names

    urls = [_url("rtsp", user, pw, "cam.lan:554", "/live/clip.mp4") for user, pw in CREDENTIALS]
    names = output_names([*urls, tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mp4"])
    assert len(set(names)) == len(names)
    assert names[-2:] == ["a__clip.mp4", "b__clip.mp4"] and names[0].startswith("cam.lan_554_live")
    _clean(*names)


def test_library_errors_gaps_and_every_log_record(caplog):
    port = free_port()  # nothing listens there
    texts: list[object] = []
    with caplog.at_level(logging.DEBUG):  # the root logger: every library and foreign record
        for user, pw in CREDENTIALS:
            url = _url("http", user, pw, f"127.0.0.1:{port}", "/cam.mjpg")
            items = list(LiveSource(url, interval_ms=100, backoff_initial_s=0.02, max_reconnects=1))
            texts += [g.as_dict() for g in items]
            for door in (AvReader, probe, lambda u: list(sample_frames(u))):
                with pytest.raises(VlmAnomalyError) as err:
                    door(url)
                texts.append(err.value)
            texts.append(InvalidVideoError(f"cannot open '{url}': server said {pw!r}"))
            # anyone's log lines: a foreign logger, %-args, an exception's traceback
            logging.getLogger("someone.else").debug("connecting to %s with %r", url, pw)
            try:
                raise RuntimeError(f"boom while reading {url}")
            except RuntimeError:
                logging.getLogger("someone.else").exception("reader failed")
    assert len(caplog.records) > 10
    _clean(*texts, *(r.getMessage() for r in caplog.records), caplog.text)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


@pytest.fixture
def clip_server(clips):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(clips[1].parent)))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{srv.server_address[1]}", clips[1].name
    srv.shutdown()
    srv.server_close()


def test_api_answers_and_source_filters(trained_home, tmp_path):
    """Credentialed sources through the API; /events and /gaps filtered by the masked URL or the
    camera name (a client never has to send the password), and by the raw URL (still works)."""
    down = free_port()
    s = load_settings(overrides={
        "home": trained_home, "encoder": "efficientnet", "interval_ms": 500, "api_tokens": [TOKEN],
        "events_db_url": f"sqlite:///{tmp_path}/api.db", "events_dir": tmp_path / "media",
        "allowed_url_schemes": ["http"], "allowed_url_hosts": ["127.0.0.1"],
        "stream_backoff_initial_s": 0.05, "stream_backoff_max_s": 0.1,
    })
    answers = []
    urls = [_url("http", user, pw, f"127.0.0.1:{down}", "/cam.mjpg") for user, pw in CREDENTIALS]
    with TestClient(create_app(s), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        ids = []
        for url in urls:
            r = c.post("/sources", json={"model": "street", "source": url})
            answers.append(r.text)
            if r.status_code == 201:
                ids.append(r.json()["id"])
            else:
                assert r.status_code in (403, 422), r.text
        assert len(ids) >= 3
        time.sleep(1.5)
        answers += [c.get(p).text for p in ("/sources", *(f"/sources/{i}" for i in ids), "/metrics")]
        answers += [c.delete(f"/sources/{i}").text for i in ids]
        gaps = c.get("/gaps").json()
        assert gaps
        answers.append(gaps)
        shown = gaps[0]["source"]
        assert "***@127.0.0.1" in shown
        raw = next(u for u in urls if redact_url(u) == shown)
        for form in (shown, source_slug(shown), raw):
            r = c.get("/gaps", params={"source": form})
            assert r.status_code == 200 and r.json() and {g["source"] for g in r.json()} == {shown}, (form, r.text)
            answers.append(r.text)
            r = c.get("/events", params={"source": form})
            assert r.status_code == 200, r.text
            answers.append(r.text)
        r = c.post("/sources", json={"model": "street", "source": _url("rtsp", "Umbra", "Charlie Delta@Echo",
                                                                       "10.1.1.1")})
        assert r.status_code == 403
        answers.append(r.text)
    _clean(*answers)


def _serve(home: Path, port: int, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vlm_anomaly.cli", "serve", "--port", str(port)],
        env=cli_env(home, VLM_ANOMALY_API_TOKENS=TOKEN, OMP_NUM_THREADS="1", **env),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_serve_access_log_and_cli_output(trained_home, tmp_path, run_cli, clip_server):
    """The real processes: uvicorn's access log of ``vlm-anomaly serve``, and the CLI's errors
    and summaries."""
    port = free_port()
    proc = _serve(trained_home, port, VLM_ANOMALY_ALLOWED_URL_SCHEMES="http",
                  VLM_ANOMALY_ALLOWED_URL_HOSTS="127.0.0.1",
                  VLM_ANOMALY_EVENTS_DB_URL=f"sqlite:///{tmp_path}/serve.db")
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.3)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for user, pw in CREDENTIALS:
            url = _url("http", user, pw, f"127.0.0.1:{free_port()}", "/cam.mjpg")
            for path in ("/events", "/gaps"):
                r = httpx.get(f"{base}{path}", params={"source": url, "limit": 5}, headers=auth)
                assert r.status_code == 200, r.text
            r = httpx.post(f"{base}/sources", headers=auth,
                           json={"model": "street", "source": _url("rtsp", user, pw, "10.1.1.1")})
            assert r.status_code == 403
            _clean(r.text)
    finally:
        proc.terminate()
        log, _ = proc.communicate(timeout=60)
    assert "GET /events?source=" in log and "GET /gaps?source=" in log, log[-3000:]
    _clean(log)

    # CLI: errors on a credentialed source, and score-batch's lines and file names
    out_dir = tmp_path / "out"
    hostport, name = clip_server
    good = [_url("http", user, pw, hostport, f"/{name}") for user, pw in CREDENTIALS[:3]]
    bad = _url("http", "Ulysses", "Alpha'Bravo", f"127.0.0.1:{free_port()}", "/cam.mp4")
    results = [
        run_cli("score", "street", bad, home=trained_home),
        run_cli("describe", bad, "--encoder", "efficientnet", home=trained_home),
        run_cli("score-batch", "street", *good, "--out-dir", out_dir, home=trained_home),
        run_cli("watch", "--model", "street", "--source", bad, "--max-seconds", "2",
                home=trained_home, env={"VLM_ANOMALY_STREAM_BACKOFF_INITIAL_S": "0.1"}),
    ]
    for r in results[:3]:  # score-batch reads files only: the stream URLs are refused, masked
        assert r.returncode != 0 and "error:" in r.stderr and "***@127.0.0.1" in r.stderr, r.stderr
    assert "***@127.0.0.1" in results[3].stdout, results[3].stdout
    _clean(*(r.stdout + r.stderr for r in results))


def test_cli_config_errors_are_masked(trained_home, run_cli, tmp_path):
    """A config file holds passwords: its errors (a YAML slip on a camera's line, a wrong value)
    never quote them, with and without --debug."""
    user, pw = CREDENTIALS[1]
    cfg = tmp_path / "cfg.yaml"
    for text in (f'mqtt_url: "mqtt://{user}:{pw}@broker.lan:1883" : - ]\n',
                 f'max_watchers: "rtsp://{user}:{pw}@cam.lan/live"\n'):
        cfg.write_text(text)
        for extra in ([], ["--debug"]):
            r = run_cli("--config", cfg, *extra, "models", "list", home=trained_home)
            assert r.returncode != 0 and "error" in r.stderr.lower(), r.stderr
            _clean(r.stdout + r.stderr)
    r = run_cli("models", "list", home=trained_home,
                env={"VLM_ANOMALY_MAX_WATCHERS": f"http://{user}:{pw}@cam/x"})
    assert r.returncode != 0
    _clean(r.stdout + r.stderr)
    assert os.environ.get("VLM_ANOMALY_MAX_WATCHERS") is None
