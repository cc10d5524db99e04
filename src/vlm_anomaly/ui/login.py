"""The dashboard's door: every page runs behind :func:`gate`, which asks for the password (or an API
token) when credentials are configured.

Why in the app and not only in ``vlm-anomaly ui``: the CLI refuses to start on a public address
without credentials, but ``streamlit run app.py`` could still be started by hand; the app checks the
address it was served on again and shows nothing but a refusal. The secret typed in the form is
never stored: after each try the page reruns with a new widget (Streamlit drops the old one's state),
and the session keeps only a fingerprint of the credentials it was let in with (so a changed
password logs everyone out).
"""

from __future__ import annotations

import hashlib
import time

import streamlit as st

from ..config import load_settings
from ..credentials import DashboardCredentials, LoginThrottle, dashboard_exposure
from ..errors import VlmAnomalyError

_SESSION_KEY = "_dashboard_login"
#: every failure is answered this late (a cheap brake, on top of the lock-outs)
FAILURE_DELAY_S = 1.0


@st.cache_resource(show_spinner=False)
def _throttles() -> tuple[LoginThrottle, LoginThrottle]:
    """Process-wide: per client address, and over all clients (a spread-out guessing attack)."""
    return LoginThrottle(free=5, base_s=30.0, max_s=900.0), LoginThrottle(free=20, base_s=2.0, max_s=60.0)


def _fingerprint(creds: DashboardCredentials) -> str:
    h = hashlib.sha256(str(creds.password or "").encode())
    for t in creds.tokens:
        h.update(b"\0" + hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest())
    return h.hexdigest()


def gate() -> bool:
    """True when this browser session may see the dashboard; otherwise draws the login form (or why
    the dashboard is closed) and returns False, and the caller draws nothing else."""
    try:  # file and environment only: never parameters saved from the dashboard
        settings = load_settings()
        creds = DashboardCredentials.from_settings(settings)
    except VlmAnomalyError as exc:  # a broken settings file closes the door, it does not open it
        st.error(f"This dashboard is closed: {exc}")
        return False
    if not creds.configured:
        why = dashboard_exposure(settings, st.get_option("server.address"))
        if why:
            st.error(f"This dashboard is closed: {why}.")
            return False
        return True
    fp = _fingerprint(creds)
    if st.session_state.get(_SESSION_KEY) == fp:
        with st.sidebar:
            if st.button("Log out", key="logout"):
                st.session_state.pop(_SESSION_KEY, None)
                st.rerun()
        return True
    _login_form(creds, fp)
    return False


def _login_form(creds: DashboardCredentials, fingerprint: str) -> None:
    st.title("Log in")
    what = " or an API token" if creds.tokens else ""
    what = ("the dashboard password" + what) if creds.password else "an API token (setting api_tokens)"
    st.caption(f"This dashboard needs {what}.")
    ip = st.context.ip_address  # the TCP peer; None on loopback (and not a string under AppTest)
    client = ip if isinstance(ip, str) and ip else "local"
    mine, everyone = _throttles()
    # a new widget key after every try, then a rerun: Streamlit drops the old widget's state, so what was
    # typed is not kept in the session after the try that used it
    gen = st.session_state.setdefault("_login_gen", 0)
    with st.form("login", clear_on_submit=True):
        secret = st.text_input("Password or token", type="password", key=f"login_secret_{gen}")
        sent = st.form_submit_button("Log in", type="primary")
    said = st.session_state.pop("_login_said", None)
    if not sent:
        if said:
            st.error(said)
        return
    st.session_state["_login_gen"] = gen + 1
    wait = max(mine.wait_s(client), everyone.wait_s("*"))
    if wait > 0:
        st.session_state["_login_said"] = f"Too many failed attempts: try again in {wait:.0f} s."
    elif creds.check(secret):
        mine.succeeded(client)
        st.session_state[_SESSION_KEY] = fingerprint
    else:
        mine.failed(client)
        everyone.failed("*")
        time.sleep(FAILURE_DELAY_S)
        st.session_state["_login_said"] = "Wrong password or token."
    del secret
    st.rerun()
