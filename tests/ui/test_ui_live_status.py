"""The Live page's status line: frames scored and dropped, and a stream URL without its password."""

from __future__ import annotations

import re
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

from streamlit.testing.v1 import AppTest

from tests.helpers import rendered

SECRET = "s3cr3t-pw"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def test_live_status_shows_dropped_frames_and_masks_credentials(trained, dash_clips):
    clip = dash_clips["intruder"]
    srv = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(clip.parent)))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://viewer:{SECRET}@127.0.0.1:{srv.server_address[1]}/{clip.name}"
    at = AppTest.from_string("from vlm_anomaly.ui import live_page\nlive_page.render()",
                             default_timeout=240).run()
    sess = None
    try:
        at.radio(key="live_mode").set_value("Continuous (server-side source)").run()
        at.text_input(key="live_source").set_value(url)
        next(b for b in at.button if b.label == "Start monitoring").click().run()
        sess = at.session_state["live_session"]
        deadline = time.monotonic() + 60
        while sess.frames < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        at.run()
        assert not at.exception, at.exception
        [status] = [rendered(c.value) for c in at.caption if c.value.startswith("Source ")]
        assert status.startswith(f"Source http://***@127.0.0.1:{srv.server_address[1]}/")
        assert re.search(r"\d+ frame\(s\) scored, \d+ dropped", status), status
        shown = [*at.caption, *at.markdown, *at.error, *at.warning, *at.info, *at.success]
        page_text = " ".join(rendered(e.value) for e in shown)  # all but the user's own input
        assert SECRET not in page_text and "viewer" not in page_text
    finally:
        if sess is not None:
            sess.stop()
        srv.shutdown()
        srv.server_close()
