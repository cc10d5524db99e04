"""End to end in a real browser: the dashboard served by `vlm-anomaly ui`, driven in headless Chromium.

Flow: upload two normal clips -> train -> upload a clip with an intruder -> timeline and a non-zero
anomaly count -> download the CSV -> live monitoring of a file and of the (fake) browser camera, each
stopped with an alert open. Screenshots of each page go to test-artifacts/dashboard/. Chromium's network
log is read throughout: the dashboard must not make a single request that leaves this machine.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.helpers import free_port
from vlm_anomaly.synthetic import write_video

#: real processes, servers or a browser: tens of seconds (deselect with -m "not slow")
pytestmark = pytest.mark.slow

REPO = Path(__file__).parents[2]
ARTIFACTS = REPO / "test-artifacts" / "dashboard"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SLOW = 300  # seconds: the CPU is shared, encoding can be slow



@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`vlm-anomaly ui` on a free localhost port, with its own HOME and data folder."""
    home = tmp_path_factory.mktemp("browser-home")
    port = free_port()
    env = {**os.environ, "HOME": str(home), "VLM_ANOMALY_HOME": str(home / ".vlm-anomaly"),
           # the shipped default detector (motion); only the encoder is pinned (offline) and the interval
           "VLM_ANOMALY_ENCODER": "efficientnet", "VLM_ANOMALY_INTERVAL_MS": "500",
           "VLM_ANOMALY_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "dash-cache"), "HF_HUB_OFFLINE": "1",
           "VLM_ANOMALY_ALLOWED_MEDIA_DIRS": str(tmp_path_factory.getbasetemp()),  # the Live page's clip
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    env.pop("VLM_ANOMALY_CONFIG", None)
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen([sys.executable, "-m", "vlm_anomaly.cli", "ui", "--port", str(port)], env=env,
                            cwd=home, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dashboard did not start: {(home / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(home / "server.log", ARTIFACTS / "server.log")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if missing:  # `make test` installs them (scripts/system-deps.sh); a bare pytest run may not have
        pytest.fail(f"{', '.join(missing)} not installed: run scripts/system-deps.sh "
                    "(or apt-get install -y chromium chromium-driver)")
    downloads = tmp_path_factory.mktemp("downloads")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,2200",
                 # a fake camera that needs no permission prompt, with its real local address in ICE
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 "--disable-features=WebRtcHideLocalIpsWithMdns",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # the network log
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.requested = []
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


def requests_seen(driver) -> list[str]:
    """Every URL the page requested so far (HTTP, WebSocket), from Chromium's performance log."""
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            driver.requested.append(msg["params"]["request"]["url"])
        elif msg["method"] == "Network.webSocketCreated":
            driver.requested.append(msg["params"]["url"])
    return driver.requested


def third_party(driver) -> list[str]:
    """Requests that left this machine: http(s) and ws(s) to a host that is not this one. The browser's
    own pages (``chrome://``, ``chrome-untrusted://new-tab-page/...``, ``data:``, ``blob:``) never leave it,
    whatever a Chromium release calls them."""
    return [u for u in requests_seen(driver) if leaves_machine(u)]


def leaves_machine(url: str) -> bool:
    parts = urlparse(url)
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOCAL_HOSTS


def test_network_check_counts_only_requests_that_leave_the_machine():
    """The check must not fail on the browser's start page, and must still catch a real third party."""
    assert not leaves_machine("chrome-untrusted://new-tab-page/one-google-bar?paramsencoded=")
    assert not leaves_machine("chrome://new-tab-page/")
    assert not leaves_machine("http://localhost:8501/_stcore/stream")
    assert not leaves_machine("ws://127.0.0.1:8501/_stcore/stream")
    assert leaves_machine("https://fonts.googleapis.com/css2?family=Source+Sans")
    assert leaves_machine("wss://example.com/socket")


def wait(driver, cond, timeout: float = SLOW, what: str = ""):
    def safe(d):
        try:
            return cond(d)
        except (StaleElementReferenceException, WebDriverException):
            return False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(safe)
    except Exception as exc:
        shot(driver, f"failed-{what or 'wait'}")
        if not isinstance(exc, TimeoutException):
            raise
        try:  # the page's text, so that a failure on CI (where the screenshot is not kept) says what was shown
            shown = driver.find_element(By.TAG_NAME, "body").text[-3000:]
        except WebDriverException:
            shown = "(page text unreadable)"
        raise TimeoutException(f"waited {timeout} s for {what or 'a condition'}; the page showed:\n{shown}") from None


def shot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    p = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(p))
    return p


def text_shown(driver, text: str) -> bool:
    return text in driver.find_element(By.TAG_NAME, "body").text


def enabled_button(driver, label: str):
    for b in driver.find_elements(By.XPATH, f"//button[normalize-space(.)='{label}']"):
        if b.is_enabled():
            return b
    return None


def click(driver, label: str, what: str) -> None:
    b = wait(driver, lambda d: enabled_button(d, label), what=what)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", b)
    try:
        b.click()
    except WebDriverException:
        shot(driver, f"failed-click-{what}")
        raise


def idle(driver) -> bool:
    """Streamlit finished its rerun (no 'running' status widget)."""
    return not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget']")


def metric(driver, label: str) -> str | None:
    for m in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stMetric']"):
        lab = m.find_element(By.CSS_SELECTOR, "[data-testid='stMetricLabel']").text.strip()
        if lab == label:
            return m.find_element(By.CSS_SELECTOR, "[data-testid='stMetricValue']").text.strip()
    return None


def history_rows(driver) -> list[dict[str, str]]:
    """The Live page's alert history table as rows of header -> cell text (newest first)."""
    tables = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stTable'] table")
    if not tables:
        return []
    table = tables[-1]
    heads = [h.text.strip() for h in table.find_elements(By.CSS_SELECTOR, "thead th")]
    return [dict(zip(heads, [c.text.strip() for c in tr.find_elements(By.CSS_SELECTOR, "th, td")]))
            for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")]


def webrtc_button(driver, label: str):
    """A button of the streamlit-webrtc component, which lives in its own iframe."""
    frame = wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "iframe[title*='webrtc']"), what="webrtc")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", frame)

    class InFrame:
        def click(self) -> None:
            driver.switch_to.frame(frame)
            try:
                b = wait(driver, lambda d: next((b for b in d.find_elements(By.TAG_NAME, "button")
                                                 if b.text.strip().upper() == label and b.is_enabled()), None),
                         60, f"webrtc-{label}")
                b.click()
            finally:
                driver.switch_to.default_content()

    return InFrame()


def nav(driver, title: str) -> None:
    link = wait(driver, lambda d: next((a for a in d.find_elements(By.CSS_SELECTOR, "[data-testid='stSidebarNav'] a")
                                        if a.text.strip().endswith(title)), None), what=f"nav-{title}")
    link.click()
    wait(driver, lambda d: any(h.text.strip() == title for h in d.find_elements(By.TAG_NAME, "h1")),
         what=f"page-{title}")


def test_upload_train_score_download(server, browser, dash_clips, tmp_path):
    d = browser
    d.get(server)  # the Train page is the main page
    wait(d, lambda d: any(h.text.strip() == "Train" for h in d.find_elements(By.TAG_NAME, "h1")), 120, "load")
    wait(d, lambda d: text_shown(d, "The training set is empty") and idle(d), what="empty")
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid='stFileUploaderDropzone']"), what="uploader")
    shot(d, "01-train-empty")

    # 1. upload two normal clips and add them to the training set
    up = d.find_elements(By.CSS_SELECTOR, "input[type='file']")[0]
    up.send_keys("\n".join(str(dash_clips[k]) for k in ("normal_a", "normal_b")))
    wait(d, lambda d: text_shown(d, "normal_b.mp4"), what="uploaded")
    click(d, "Process and add to training set", "process")
    wait(d, lambda d: text_shown(d, "Added 2 video(s) to the training set."), what="added")
    wait(d, idle, what="idle-after-add")
    wait(d, lambda d: metric(d, "Videos") == "2" and metric(d, "Frames") == "24", 60, "set-metrics")
    # the default detector's page: its own settings, the sampled frames without ImageNet labels
    wait(d, lambda d: text_shown(d, "Review the frames"), what="review")
    assert not text_shown(d, "Review the descriptions") and not text_shown(d, "Filter descriptions")
    assert d.find_elements(By.CSS_SELECTOR, "input[aria-label='False-alarm target (share of normal frames)']")
    assert text_shown(d, "Appearance of moving objects")
    assert not d.find_elements(By.CSS_SELECTOR, "input[aria-label='Encoder']")
    shot(d, "02-train-set-and-review")

    # 2. train a named model
    name = wait(d, lambda d: d.find_element(By.CSS_SELECTOR, "input[aria-label='Model name']"), what="name")
    name.send_keys(Keys.CONTROL, "a")
    name.send_keys("browser-model", Keys.ENTER)
    # the name is committed only when Streamlit's rerun has it: a click on Train before that trains under the
    # default name
    wait(d, lambda d: d.find_element(By.CSS_SELECTOR, "input[aria-label='Model name']").get_attribute("value")
         == "browser-model" and idle(d), what="idle-after-name")
    click(d, "Train model", "train")
    # the motion default trains on a frame every 100 ms, scores every 500 ms (24 review frames above)
    wait(d, lambda d: text_shown(d, "browser-model saved:") and text_shown(d, "frames from 2 video(s)"), what="trained")
    # a readable summary of the model, not its parameter dict
    wait(d, lambda d: text_shown(d, "1.0 % of normal frames") and text_shown(d, "False-alarm target"), 60, "summary")
    assert text_shown(d, "frames (a frame every 100 ms; scores a frame every 500 ms)")
    assert text_shown(d, "on held-out normal clips")
    assert not text_shown(d, "{'config'") and not text_shown(d, "'fused'")
    d.execute_script("window.scrollTo(0, document.body.scrollHeight);")
    shot(d, "03-train-done")

    # 3. score a clip with an intruder on the Test page
    nav(d, "Test")
    wait(d, lambda d: d.find_element(By.CSS_SELECTOR, "input[aria-label='Model']").get_attribute("value")
         == "browser-model", what="model-picker")
    uploader = wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "input[type='file']"), what="test-uploader")
    uploader[0].send_keys(str(dash_clips["intruder"]))
    wait(d, lambda d: text_shown(d, "intruder.mp4"), what="uploaded-test")
    click(d, "Analyse", "analyse")
    wait(d, lambda d: metric(d, "Anomalies") is not None, what="scored")
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .scatterlayer .trace"), what="timeline")
    assert metric(d, "Frames") == "12"
    anomalies = int(metric(d, "Anomalies"))
    assert anomalies > 0
    legend = [t.text for t in d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .legendtext")]
    assert "raw score" in legend and "anomaly" in legend and any(t.startswith("smoothed") for t in legend)
    # threshold line, and the bands of the model's calibration (not the One-Class SVM's)
    notes = [t.text.strip() for t in d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .annotation-text")]
    assert "threshold +0.00" in notes and "anomalous" in notes, notes
    assert not {"strong anomaly", "borderline", "very normal"} & set(notes), notes
    assert text_shown(d, "Score bands from the model's calibration on held-out normal clips")
    shot(d, "04-test-timeline")
    seg = d.find_element(By.XPATH, "//*[normalize-space(.)='Incidents']")
    d.execute_script("arguments[0].scrollIntoView({block: 'start'});", seg)
    wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "[data-testid='stImage'] img")) >= 3, what="gallery")
    shot(d, "05-test-frames")

    # 4. download the per-frame CSV
    click(d, "Download CSV", "download")
    csv_path = wait(d, lambda d: next(iter(p for p in d.downloads.glob("*.csv")), None), 60, "csv")
    rows = list(csv.DictReader(csv_path.read_text().splitlines()))
    assert len(rows) == 12
    assert sum(r["label"] == "anomaly" for r in rows) == anomalies
    assert {"index", "time", "raw_score", "smoothed_score", "label", "description"} <= set(rows[0])

    # 5. the other pages render (screenshots for review)
    nav(d, "Live")
    wait(d, lambda d: text_shown(d, "Take a picture with the browser camera") and idle(d), what="live")
    shot(d, "06-live")
    # continuous monitoring of a video file played as a stream: the alert banner appears by itself; the
    # intruder stays on screen for a minute, so the alert is still open when STOP is pressed
    long_clip = write_video(tmp_path / "intruder-minute.mp4", seconds=60, seed=0, anomaly_span=(2.5, 60.0))
    d.find_element(By.XPATH, "//label[.//*[normalize-space(.)='Continuous (server-side source)']]").click()
    src = wait(d, lambda d: d.find_element(By.CSS_SELECTOR, "input[aria-label='Source']"), what="source")
    src.send_keys(str(long_clip), Keys.ENTER)
    wait(d, idle, what="idle-after-source")
    click(d, "Start monitoring", "start-live")
    wait(d, lambda d: text_shown(d, "ALERT #1 since"), what="alert")
    wait(d, lambda d: text_shown(d, "Alert history (1)") and history_rows(d), what="history")
    assert d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")
    assert history_rows(d)[0]["to (s)"] == "ongoing"
    shot(d, "07-live-monitoring")
    # STOP while the alert is open: the alert is closed ("stopped") and the source shown stopped
    click(d, "Stop", "stop-live")
    wait(d, lambda d: text_shown(d, "Source stopped at") and not text_shown(d, "ALERT #")
         and history_rows(d) and history_rows(d)[0]["to (s)"] != "ongoing", 60, "stopped")
    banner = d.find_element(By.XPATH, "//*[contains(text(), 'Source stopped at')]").text
    assert "Alert #1 closed at" in banner and "(stopped)" in banner, banner
    worst = banner.split("worst smoothed score ")[1].rstrip(".")
    table = history_rows(d)
    assert table[0]["to (s)"] != "ongoing" and table[0]["ended because"] == "stopped", table
    assert table[0]["worst score"] == worst  # one worst score, in the banner and in the history
    shot(d, "07b-live-after-stop")

    # the browser camera (Chromium's fake camera: a turning wedge on a plain background, nothing like the
    # street) over WebRTC: its frames are scored for motion, an alert is raised, STOP ends the source and
    # leaves no alert open (one still open is closed as "stopped"; STOP during an alert is the file's case above)
    d.find_element(By.XPATH, "//label[.//*[normalize-space(.)='Browser camera (WebRTC)']]").click()
    webrtc_button(d, "START").click()
    wait(d, lambda d: text_shown(d, "Source browser camera: running"), 120, "camera-running")
    wait(d, lambda d: history_rows(d) and not text_shown(d, "Alert history (0)"), 120, "camera-alert")
    # the motion detector's words: the wedge is faster than anything in the street, and its plain background
    # is not the street's view, which the camera check may report first, depending on which frames arrive
    said = history_rows(d)[0]["description"]
    assert any(w in said for w in ("faster than any normal object", "unusual", "camera view moved")), history_rows(d)
    shot(d, "07c-live-camera")
    webrtc_button(d, "STOP").click()
    wait(d, lambda d: text_shown(d, "Source stopped at") and not text_shown(d, "ALERT #")
         and history_rows(d) and all(r["to (s)"] != "ongoing" for r in history_rows(d)), 60, "camera-stopped")
    banner = d.find_element(By.XPATH, "//*[contains(text(), 'Source stopped at')]").text
    if "closed at" in banner:  # an alert was open when STOP was pressed
        assert "(stopped)" in banner and history_rows(d)[0]["ended because"] == "stopped", banner
    assert {r["ended because"] for r in history_rows(d)} <= {"stopped", "recovered"}, history_rows(d)
    shot(d, "07d-live-camera-after-stop")
    nav(d, "Models")
    wait(d, lambda d: text_shown(d, "Compare two models on the same video") and idle(d), what="models")
    picked = d.find_element(By.CSS_SELECTOR, "input[aria-label='Model']").get_attribute("value")
    assert picked == "browser-model"
    assert text_shown(d, "browser-model - 2 training video(s), ")  # frames: every 100 ms for the motion default
    shot(d, "08-models")

    # offline: nothing the dashboard did asked anything of another host (fonts, icons, telemetry)
    assert any(urlparse(u).hostname in LOCAL_HOSTS for u in requests_seen(d))
    assert third_party(d) == []
