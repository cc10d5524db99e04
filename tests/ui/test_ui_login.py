"""The dashboard's door: a login on every page when credentials are configured, a refusal to serve a
public address without them, and the Live page's server-side sources held to the REST API's allow-lists.

The app runs through Streamlit's AppTest (fast), and once as the real server `vlm-anomaly ui
--address 0.0.0.0` driven in headless Chromium.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import cli_env, free_port, rendered, run_cli
from vlm_anomaly.config import load_settings
from vlm_anomaly.credentials import LoginThrottle, dashboard_exposure, hash_password, is_loopback

APP = Path(__file__).parents[2] / "src" / "vlm_anomaly" / "ui" / "app.py"
TIMEOUT = 240
PASSWORD = "correct horse battery"
TOKEN = "api-token-for-the-dashboard"


@pytest.fixture(scope="module")
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def locked(dash_env, password_hash, monkeypatch):
    """The dashboard with a password and an API token configured; throttles fresh before and after."""
    from vlm_anomaly.ui import login

    monkeypatch.setenv("VLM_ANOMALY_DASHBOARD_PASSWORD_HASH", password_hash)
    monkeypatch.setenv("VLM_ANOMALY_API_TOKENS", TOKEN)
    monkeypatch.setattr(login, "FAILURE_DELAY_S", 0.0)
    login._throttles.clear()
    yield
    login._throttles.clear()


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def log_in(at: AppTest, secret: str) -> AppTest:
    [box] = at.text_input
    box.input(secret)
    return next(b for b in at.button if b.label == "Log in").click().run()


def test_every_page_asks_for_the_password_first(locked):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert titles(at) == ["Log in"]  # the Train page (the main page) is not drawn behind the form
    assert not at.sidebar.button and not at.dataframe and not at.file_uploader
    log_in(at, "wrong password")
    assert titles(at) == ["Log in"] and [e.value for e in at.error] == ["Wrong password or token."]
    assert at.text_input[0].value == ""  # the form forgets what was typed...
    assert "wrong password" not in repr(at.session_state)  # ...and so does the session
    log_in(at, PASSWORD)
    assert not at.exception, at.exception
    assert titles(at) == ["Train"] and not at.error
    assert PASSWORD not in repr(at.session_state)  # only a fingerprint of the credentials is kept


def test_an_api_token_opens_the_dashboard_too(locked):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    log_in(at, TOKEN)
    assert titles(at) == ["Train"]


def test_changed_password_logs_the_session_out(locked, monkeypatch):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    log_in(at, PASSWORD)
    assert titles(at) == ["Train"]
    monkeypatch.setenv("VLM_ANOMALY_DASHBOARD_PASSWORD_HASH", hash_password("another password"))
    assert titles(at.run()) == ["Log in"]


def test_repeated_failures_lock_the_client_out(locked):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    for _ in range(6):  # five free tries, then the sixth failure locks this client out
        log_in(at, "guess")
    log_in(at, PASSWORD)  # even the right password is not checked while locked out
    assert titles(at) == ["Log in"]
    assert at.error[0].value.startswith("Too many failed attempts: try again in ")


def test_throttle_doubles_and_forgets_on_success():
    t = LoginThrottle(free=2, base_s=10, max_s=35)
    assert [t.failed("a", now=0) for _ in range(5)] == [0, 0, 10, 20, 35]
    assert t.wait_s("a", now=30) == 5 and t.wait_s("b", now=30) == 0
    t.succeeded("a")
    assert t.wait_s("a", now=30) == 0


def test_served_publicly_without_credentials_the_app_shows_nothing(dash_env):
    """`streamlit run app.py` started by hand on every interface: the app itself refuses."""
    from streamlit import config as st_config

    st_config.set_option("server.address", "0.0.0.0")
    try:
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    finally:
        st_config.set_option("server.address", "localhost")
    assert not titles(at) and not at.file_uploader
    assert [e.value for e in at.error] == [
        "This dashboard is closed: the dashboard would listen on 0.0.0.0 with no login: set dashboard_password_hash "
        "(make one with `vlm-anomaly ui --hash-password`) or api_tokens, or pass --insecure-no-auth on a trusted "
        "network."]


def test_a_broken_password_setting_closes_the_dashboard(dash_env, monkeypatch):
    monkeypatch.setenv("VLM_ANOMALY_DASHBOARD_PASSWORD_HASH", "hunter22")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception and not titles(at) and not at.file_uploader
    [err] = [e.value for e in at.error]
    assert err.startswith("This dashboard is closed: invalid setting dashboard_password_hash") and "hunter22" not in err


def test_which_addresses_need_a_login():
    assert all(map(is_loopback, ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "", None, "192.168.1.5", "myhost", "localhost.evil"]))
    open_ = load_settings(overrides={})
    assert dashboard_exposure(open_, "localhost") is None
    assert "no login" in dashboard_exposure(open_, "0.0.0.0")
    assert dashboard_exposure(open_, "0.0.0.0", insecure_no_auth=True) is None
    assert dashboard_exposure(load_settings(overrides={"api_tokens": "t"}), "0.0.0.0") is None


@pytest.mark.parametrize(("source", "setting"), [
    ("/etc/passwd", "allowed_media_dirs"),
    ("../../../../etc/passwd", "allowed_media_dirs"),
    ("rtsp://10.0.0.9/live", "allowed_url_schemes"),
    ("http://example.com/cam.mp4", "allowed_url_hosts"),
    ("0", "allowed_cameras"),
])
def test_live_page_opens_only_allowed_server_sources(trained, source, setting):
    at = AppTest.from_string("from vlm_anomaly.ui import live_page\nlive_page.render()", default_timeout=TIMEOUT)
    at.run()
    at.radio(key="live_mode").set_value("Continuous (server-side source)").run()
    at.text_input(key="live_source").set_value(source)
    next(b for b in at.button if b.label == "Start monitoring").click().run()
    assert not at.exception, at.exception
    [err] = [rendered(e.value) for e in at.error]
    assert err.startswith("source not allowed: ") and setting in err, err
    assert "live_session" not in at.session_state


def test_password_hash_cli_and_bad_hash_setting(tmp_path):
    r = subprocess.run([sys.executable, "-m", "vlm_anomaly.cli", "ui", "--hash-password"], input=PASSWORD + "\n",
                       capture_output=True, text=True, env=cli_env(tmp_path), timeout=60)
    assert r.returncode == 0, r.stderr
    h = r.stdout.strip()
    assert h.startswith("scrypt:") and "$" not in h and PASSWORD not in h
    from vlm_anomaly.credentials import DashboardCredentials

    creds = DashboardCredentials.from_settings(load_settings(overrides={"dashboard_password_hash": h}))
    assert creds.check(PASSWORD) and not creds.check(PASSWORD + " ") and not creds.check("")
    bad = run_cli("ui", "--address", "0.0.0.0", home=tmp_path, env={"VLM_ANOMALY_DASHBOARD_PASSWORD_HASH": "hunter22"})
    assert bad.returncode == 2 and "hunter22" not in bad.stderr
    assert "dashboard_password_hash is not a password hash" in bad.stderr


# -- the real server in a real browser ------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def test_public_address_without_credentials_refuses_to_start(tmp_path):
    r = run_cli("ui", "--address", "0.0.0.0", "--port", free_port(), home=tmp_path, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: the dashboard would listen on 0.0.0.0 with no login: set dashboard_password_hash (make one with "
        "`vlm-anomaly ui --hash-password`) or api_tokens, or pass --insecure-no-auth on a trusted network"]
    # `service` (the container's command) says the same once, instead of restarting the dashboard forever
    r = run_cli("service", "--no-watch", "--no-api", home=tmp_path, env={"VLM_ANOMALY_UI_ADDRESS": "0.0.0.0"},
                timeout=60)
    assert r.returncode == 2 and "with no login" in r.stderr


def _serve(args: list[str], home: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    log = home / f"ui-{port}.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "vlm_anomaly.cli", "ui", "--port", str(port), *args],
                                env=env, cwd=home, stdout=f, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as r:
                if r.read().strip() == b"ok":
                    return proc, url, log
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"dashboard did not start: {log.read_text()[-2000:]}")
        time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_insecure_no_auth_serves_a_public_address_when_asked(tmp_path):
    proc, url, log = _serve(["--address", "0.0.0.0", "--insecure-no-auth"], tmp_path, cli_env(tmp_path))
    _stop(proc)
    assert "(no login)" in log.read_text()


@pytest.fixture(scope="module")
def public_server(trained, password_hash, tmp_path_factory):
    """`vlm-anomaly ui --address 0.0.0.0` with a password, over the home holding the trained model."""
    home = tmp_path_factory.mktemp("login-server")
    env = {**os.environ, "VLM_ANOMALY_DASHBOARD_PASSWORD_HASH": password_hash,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(APP.parents[2]), os.environ.get("PYTHONPATH")]))}
    proc, url, log = _serve(["--address", "0.0.0.0"], home, env)
    try:
        yield url
    finally:
        _stop(proc)
        assert PASSWORD not in log.read_text()  # nothing typed in the form reaches the server's log


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if missing:  # `make test` installs them (scripts/system-deps.sh)
        pytest.fail(f"{', '.join(missing)} not installed: run scripts/system-deps.sh")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--window-size=1400,1600",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-login')}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, cond, timeout: float = TIMEOUT, what: str = ""):
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def safe(d):
        try:
            return cond(d)
        except (StaleElementReferenceException, WebDriverException):
            return False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(safe)
    except Exception:
        shots = Path(__file__).parents[2] / "test-artifacts" / "dashboard"
        shots.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shots / f"failed-login-{what}.png"))
        raise


@pytest.mark.slow
def test_browser_login_then_live_page_refuses_server_files_and_other_hosts(public_server, chromium):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    d = chromium

    def body() -> str:
        return d.find_element(By.TAG_NAME, "body").text

    def h1() -> list[str]:
        return [h.text.strip() for h in d.find_elements(By.TAG_NAME, "h1")]

    def idle(d) -> bool:
        return not d.find_elements(By.CSS_SELECTOR, "[data-testid='stStatusWidget']")

    def log_in(secret: str) -> None:
        box = _wait(d, lambda d: d.find_element(By.CSS_SELECTOR, "input[type='password']"), what="password")
        box.send_keys(secret, Keys.ENTER)

    d.get(public_server + "/live")  # a deep link to a page is no way around the form
    _wait(d, lambda d: h1() == ["Log in"] and idle(d), 120, "login-form")
    assert not d.find_elements(By.CSS_SELECTOR, "[data-testid='stSidebarNav']")
    assert "Train" not in body() and "Models" not in body()

    log_in("not the password")
    _wait(d, lambda d: "Wrong password or token." in body() and idle(d), 60, "wrong")
    assert h1() == ["Log in"]

    log_in(PASSWORD)
    _wait(d, lambda d: h1() == ["Live"] and idle(d), 120, "logged-in")
    nav = d.find_element(By.CSS_SELECTOR, "[data-testid='stSidebarNav']").text
    assert all(p in nav for p in ("Train", "Test", "Live", "Models"))

    _wait(d, lambda d: d.find_element(By.XPATH, "//label[.//*[normalize-space(.)='Continuous (server-side source)']]"),
          120, "mode").click()
    for source, setting in (("/etc/passwd", "allowed_media_dirs"), ("http://example.com/cam.mp4",
                                                                    "allowed_url_hosts")):
        box = _wait(d, lambda d: d.find_element(By.CSS_SELECTOR, "input[aria-label='Source']"), what="source")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(source, Keys.ENTER)
        _wait(d, idle, 240, "idle-source")
        buttons = "//button[normalize-space(.)='Start monitoring']"
        start = _wait(d, lambda d, x=buttons: next((b for b in d.find_elements(By.XPATH, x) if b.is_enabled()), None),
                      240, "start")
        start.click()
        _wait(d, lambda d, s=setting: "source not allowed: " in body() and s in body() and idle(d), 60, setting)
        assert "root:" not in body() and "Source " + source not in body()

    d.delete_all_cookies()
    d.get(public_server)  # a new session (a reload) asks again
    _wait(d, lambda d: h1() == ["Log in"] and idle(d), 120, "login-again")
