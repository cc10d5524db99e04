"""End to end in a real browser: the dashboard served by `vlm-anomaly ui`, driven in headless Chromium.

Flow: upload two normal clips -> train -> upload a clip with an intruder -> timeline and a non-zero
anomaly count -> download the CSV. Screenshots of each page go to test-artifacts/dashboard/.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import free_port

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
           "VLM_ANOMALY_ENCODER": "efficientnet", "VLM_ANOMALY_DETECTOR": "ocsvm", "VLM_ANOMALY_INTERVAL_MS": "500",
           "VLM_ANOMALY_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "dash-cache"), "HF_HUB_OFFLINE": "1",
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
    downloads = tmp_path_factory.mktemp("downloads")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,2200",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(flag)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver, cond, timeout: float = SLOW, what: str = ""):
    def safe(d):
        try:
            return cond(d)
        except (StaleElementReferenceException, WebDriverException):
            return False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(safe)
    except Exception:
        shot(driver, f"failed-{what or 'wait'}")
        raise


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


def nav(driver, title: str) -> None:
    link = wait(driver, lambda d: next((a for a in d.find_elements(By.CSS_SELECTOR, "[data-testid='stSidebarNav'] a")
                                        if a.text.strip().endswith(title)), None), what=f"nav-{title}")
    link.click()
    wait(driver, lambda d: any(h.text.strip() == title for h in d.find_elements(By.TAG_NAME, "h1")),
         what=f"page-{title}")


def test_upload_train_score_download(server, browser, dash_clips):
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
    assert metric(d, "Videos") == "2" and metric(d, "Frames") == "24"
    wait(d, lambda d: text_shown(d, "Review the descriptions"), what="review")
    shot(d, "02-train-set-and-review")

    # 2. train a named model
    name = d.find_element(By.CSS_SELECTOR, "input[aria-label='Model name']")
    name.send_keys(Keys.CONTROL, "a")
    name.send_keys("browser-model", Keys.ENTER)
    wait(d, idle, what="idle-after-name")
    click(d, "Train model", "train")
    wait(d, lambda d: text_shown(d, "browser-model saved: 24 frames from 2 video(s)"), what="trained")
    d.execute_script("window.scrollTo(0, document.body.scrollHeight);")
    shot(d, "03-train-done")

    # 3. score a clip with an intruder on the Test page
    nav(d, "Test")
    wait(d, lambda d: d.find_element(By.CSS_SELECTOR, "input[aria-label='Model']").get_attribute("value")
         == "browser-model", what="model-picker")
    d.find_elements(By.CSS_SELECTOR, "input[type='file']")[0].send_keys(str(dash_clips["intruder"]))
    wait(d, lambda d: text_shown(d, "intruder.mp4"), what="uploaded-test")
    click(d, "Analyse", "analyse")
    wait(d, lambda d: metric(d, "Anomalies") is not None, what="scored")
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .scatterlayer .trace"), what="timeline")
    assert metric(d, "Frames") == "12"
    anomalies = int(metric(d, "Anomalies"))
    assert anomalies > 0
    legend = [t.text for t in d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .legendtext")]
    assert "raw score" in legend and "anomaly" in legend and any(t.startswith("smoothed") for t in legend)
    assert text_shown(d, "threshold +0.00") and text_shown(d, "strong anomaly")  # threshold line, bands
    shot(d, "04-test-timeline")
    seg = d.find_element(By.XPATH, "//*[normalize-space(.)='Anomalous segments']")
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
    # continuous monitoring of a video file played as a stream: the alert banner appears by itself
    d.find_element(By.XPATH, "//label[.//*[normalize-space(.)='Continuous (server-side source)']]").click()
    src = wait(d, lambda d: d.find_element(By.CSS_SELECTOR, "input[aria-label='Source']"), what="source")
    src.send_keys(str(dash_clips["intruder"]), Keys.ENTER)
    wait(d, idle, what="idle-after-source")
    click(d, "Start monitoring", "start-live")
    wait(d, lambda d: text_shown(d, "ALERT: smoothed score"), what="alert")
    wait(d, lambda d: text_shown(d, "Alert history (1)") or text_shown(d, "Alert history (2)"), what="history")
    assert d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")
    shot(d, "07-live-monitoring")
    nav(d, "Models")
    wait(d, lambda d: text_shown(d, "Compare two models on the same video") and idle(d), what="models")
    picked = d.find_element(By.CSS_SELECTOR, "input[aria-label='Model']").get_attribute("value")
    assert picked == "browser-model"
    assert text_shown(d, "browser-model - 2 training video(s), 24 frames")
    shot(d, "08-models")
