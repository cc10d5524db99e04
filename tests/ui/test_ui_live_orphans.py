"""A source started on the Live page stops once its browser tab is gone for good (real server, real
Chromium, a real MJPEG camera on localhost). The model is the module's trained one (the page tests'
ocsvm): what is checked is the source's lifetime, which does not depend on the detector."""

from __future__ import annotations

import os
import time

import pytest

from tests.events.streams import MjpegCameras, _Mjpeg
from tests.ui.test_ui_login import APP, CHROMEDRIVER, CHROMIUM, _serve, _stop, _wait

TTL_S = 3  # server.disconnectedSessionTTL of the server under test (Streamlit's default is 120 s)


class _CountingMjpeg(_Mjpeg):
    """The test camera, counting the streams being read from it."""

    def do_GET(self):
        self.server.open_streams += 1
        try:
            super().do_GET()
        finally:
            self.server.open_streams -= 1


@pytest.fixture()
def camera(dash_clips):
    cams = MjpegCameras(dash_clips["normal_a"])
    cams.srv.RequestHandlerClass, cams.srv.open_streams = _CountingMjpeg, 0
    yield cams
    cams.close()


@pytest.fixture()
def server(trained, tmp_path):
    env = {**os.environ, "STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": str(TTL_S),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(APP.parents[2]), os.environ.get("PYTHONPATH")]))}
    proc, url, log = _serve([], tmp_path, env)
    yield url
    _stop(proc)


def _chromium(profile):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--window-size=1400,1600", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


@pytest.mark.slow
def test_closing_the_tab_stops_its_camera_but_a_watched_one_keeps_running(server, camera, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    d = _chromium(tmp_path / "profile")
    try:
        def body() -> str:
            return d.find_element(By.TAG_NAME, "body").text

        d.get(server + "/live")
        _wait(d, lambda d: d.find_element(By.XPATH, "//label[.//*[normalize-space(.)="
                                                    "'Continuous (server-side source)']]"), 120, "mode").click()
        box = _wait(d, lambda d: d.find_element(By.CSS_SELECTOR, "input[aria-label='Source']"), what="source")
        box.send_keys(camera.base + "/cam", Keys.ENTER)
        start = "//button[normalize-space(.)='Start monitoring']"
        _wait(d, lambda d: next((b for b in d.find_elements(By.XPATH, start) if b.is_enabled()), None),
              120, "start").click()
        _wait(d, lambda d: "running" in body() and camera.srv.open_streams == 1, 120, "running")
        time.sleep(TTL_S + 5)  # longer than the TTL: a session still connected keeps its source
        assert camera.srv.open_streams == 1 and "running" in body()
    finally:
        d.quit()  # the tab is gone: no one can press STOP any more
    deadline = time.monotonic() + TTL_S + 30
    while camera.srv.open_streams and time.monotonic() < deadline:
        time.sleep(0.5)
    assert camera.srv.open_streams == 0, "the camera is still read after its browser session ended"
