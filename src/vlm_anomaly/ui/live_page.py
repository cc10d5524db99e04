"""Live page: score camera snapshots, or run the live engine on a source and show its events.

The continuous and browser-camera modes run the same engine as ``watch`` and the REST API
(:class:`~vlm_anomaly.events.SourceWatcher`): its in-memory feed gives the readings, the events (one
worst score each) and the source's state; the events also go to the event store and alerts.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st

from ..errors import VlmAnomalyError
from ..events import FeedView, LiveFeed, LiveSession, StreamScorer
from ..events.lease import aware
from ..events.store import EventRecord
from ..results import score_bands
from ..video import Frame
from ..video.live import PushSource
from ..video.render import annotate_frame, box_kwargs
from ..video.sources import check_source
from ..video.thumbnails import decode_image
from . import charts, marking, state

CHART_POINTS = 240
HISTORY_ROWS = 20  # alerts listed on the page (newest first)
#: what the page says about a source that is no longer scoring
STATE_WORDS = {"stopped": "stopped", "ended": "ended", "failed": "failed", "offline": "offline (reconnecting)",
               "dropped": "offline (dropped)"}


def _scorer(name: str) -> StreamScorer:
    model, pipe = state.saved_model(name)
    return StreamScorer(pipe, model)


def start_session(name: str, source: str, *, threshold: float, interval_ms: int, realtime: bool = True,
                  live: PushSource | None = None) -> LiveSession:
    """The live engine on ``source`` for this page: the settings' event store and alerts, plus a feed."""
    s = state.settings()
    model, pipe = state.saved_model(name, s)
    mon = state.live_monitor(s)
    sess = mon.session(mon.start(model, source, pipeline=pipe, realtime=realtime,
                                 sinks=[LiveFeed()], interval_ms=interval_ms, threshold=threshold, live=live))
    _orphans().adopt(sess)
    return sess


#: how often the sources of browser sessions that have gone are looked for
ORPHAN_POLL_S = 2.0


class OrphanSources:
    """Stops the sources whose browser session has gone for good.

    Why: a source started on this page runs in a server thread and only the page's STOP ends it. When the
    tab is closed, Streamlit keeps the session for ``server.disconnectedSessionTTL`` seconds (a reload or a
    dropped network reconnects to it) and then forgets it - with the only STOP button. Without this, a
    camera whose tab was closed would be read, scored and alerted on until the server restarts.
    """

    def __init__(self, poll_s: float = ORPHAN_POLL_S):
        self._poll_s = poll_s
        self._owned: dict[int, list] = {}  # id(session) -> [browser session id, LiveSession, gone since]
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def adopt(self, sess: LiveSession) -> None:
        """Watch ``sess`` on behalf of the browser session running this script (none outside a server)."""
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        if ctx is None:
            return
        with self._lock:
            self._owned[id(sess)] = [ctx.session_id, sess, None]
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="vlm-live-orphans", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(self._poll_s)
            self.sweep()

    def sweep(self) -> int:
        """Stop the sources of sessions gone for longer than the TTL; how many were stopped."""
        from streamlit.runtime import Runtime

        if not Runtime.exists():
            return 0
        runtime, ttl, now, gone = Runtime.instance(), float(st.get_option("server.disconnectedSessionTTL")), \
            time.monotonic(), []
        with self._lock:
            for key, entry in list(self._owned.items()):
                sid, sess, since = entry
                if not sess.running:
                    del self._owned[key]
                elif runtime.is_active_session(sid) is not False:  # connected (or not a real runtime)
                    entry[2] = None
                elif since is None:
                    entry[2] = now
                elif now - since > ttl:
                    del self._owned[key]
                    gone.append(sess)
        for sess in gone:
            sess.stop()  # closes its open alert as "stopped"
        return len(gone)


@st.cache_resource(show_spinner=False)
def _orphans() -> OrphanSources:
    return OrphanSources()


def _snapshot(name: str, threshold: float) -> None:
    st.caption("Take a picture with the browser camera; it is scored as one frame.")
    shot = st.camera_input("Camera snapshot", key="live_camera")
    if shot is None:
        return
    with state.user_errors():
        img = decode_image(shot.getvalue())
        r = _scorer(name).score([Frame(0, 0.0, img, "snapshot")])[0]
        alert = r.score < threshold
        (st.error if alert else st.success)(
            f"{'ANOMALY' if alert else 'Normal'}: score {r.score:+.3f} (threshold {threshold:+.2f})"
            + (f" - {r.text}" if r.text else ""))
        st.image(annotate_frame(img, score=r.score, anomaly=alert, description=r.text,
                                threshold=threshold, **box_kwargs(r.explanation)))


def _local(t: dt.datetime) -> str:
    """Wall-clock time on this machine (the store keeps UTC; SQLite drops the zone)."""
    return aware(t).astimezone().strftime("%H:%M:%S")


def _worst_text(rec: EventRecord) -> str:
    """The description of the event's worst frame."""
    near = [d for d in rec.descriptions if abs(d.get("time", -1) - rec.worst_time) < 1e-3]
    return (near or rec.descriptions or [{"text": ""}])[0].get("text", "")


def _banner(sess: LiveSession, view: FeedView) -> None:
    """One line on the state of the source and of its alert; every number comes from the event."""
    w = sess.watcher
    closed = [e for e in view.events if e.status == "closed"]
    if view.state in STATE_WORDS:
        what = STATE_WORDS[view.state]
        last = view.readings[-1].t if view.readings else 0.0
        msg = f"Source {what} at {last:.1f} s" + (f": {view.reason}" if view.reason not in ("", "source ended") else "")
        just = closed[-1] if closed and closed[-1].end_reason not in (None, "recovered") else None
        if just is not None:
            msg += (f". Alert #{just.id} closed at {just.end_time:.1f} s ({just.end_reason}); "
                    f"worst smoothed score {just.worst_score:+.3f}.")
        (st.error if view.state == "failed" else st.warning)(msg, icon=":material/videocam_off:")
        return
    if not view.readings:
        st.info("Waiting for the first frame…")
        return
    last = view.readings[-1]
    ev = view.open_event
    if ev is not None:
        text = _worst_text(ev)
        st.error(f"ALERT #{ev.id} since {ev.start_time:.1f} s: smoothed score {last.smoothed:+.3f} "
                 f"(events start below {w.hysteresis.enter:+.2f}); worst smoothed score {ev.worst_score:+.3f}"
                 + (f", {text}" if text else ""), icon=":material/notifications_active:")
    else:
        st.success(f"Normal: smoothed score {last.smoothed:+.3f} (events start below {w.hysteresis.enter:+.2f})")


def _history(sess: LiveSession, view: FeedView) -> None:
    st.plotly_chart(charts.live(view.readings[-CHART_POINTS:], sess.watcher.threshold,
                                bands=score_bands(sess.watcher.model.extra)), key="live_chart")
    st.markdown(f"**Alert history** ({len(view.events)})")
    if view.events:
        latest = list(reversed(view.events))[:HISTORY_ROWS]
        st.table(pd.DataFrame([{
            "#": e.id,
            "started at": _local(e.started_at),
            "from (s)": f"{e.start_time:.2f}",
            "to (s)": "ongoing" if e.status == "open" else f"{e.end_time or 0.0:.2f}",
            "worst score": f"{e.worst_score:+.3f}",  # the lowest smoothed score, as in the banner
            "ended because": e.end_reason or "",
            "description": _worst_text(e),
        } for e in latest]).set_index("#"))
        more = (f" The latest {HISTORY_ROWS} are shown; all are in the event store."
                if len(view.events) > HISTORY_ROWS else "")
        st.caption("Worst score: the lowest smoothed score of the alert (the value alerts are raised on)." + more)
        _normal_buttons(sess, latest)
    else:
        st.caption("No alert so far.")


def _normal_buttons(sess: LiveSession, events: list[EventRecord]) -> None:
    """A "This was normal" button per alert: its footage becomes normal data of the alert's model (with an
    undo). An alert still open is marked once it has closed (its footage is complete then)."""
    done: dict = st.session_state.setdefault("live_normal", {})
    st.markdown("**Was an alert wrong?**")
    st.caption("“This was normal” adds the alert's footage to its model's normal data and recalibrates the "
               "threshold, so the same scene raises no alert again (no retraining).")
    for e in events:
        c1, c2 = st.columns([4, 1])
        to = "ongoing" if e.status == "open" else f"{e.end_time or 0.0:.1f} s"
        c1.markdown(f"Alert #{e.id}: {e.start_time:.1f} s to {to}, model {e.model}")
        mine = done.get(e.id)
        if mine is None:
            if c2.button("This was normal", key=f"live_normal_{e.id}", disabled=e.status == "open",
                         help="once the alert has closed" if e.status == "open" else None):
                with state.user_errors():
                    a = marking.mark_event(state.settings(), e.id, note=f"alert #{e.id} (Live page)",
                                           label=f"Learning alert #{e.id} as normal")
                    done[e.id] = marking.said(e.model, a, f"alert #{e.id}")
                    mine = done[e.id]
        if mine is not None:
            marking.result(mine, key=f"live_normal_{e.id}", recheck=not sess.running,
                           after="Monitoring that is running keeps the model it started with: press Start "
                                 "monitoring again to use the recalibrated one." if sess.running else "")


def _status_line(sess: LiveSession, view: FeedView) -> None:
    shown = state.hide_server_paths(sess.source)  # an upload by its name, not the server's copy
    st.caption(f"Source {state.plain(shown)}: {STATE_WORDS.get(view.state, view.state)}, {sess.frames} frame(s) "
               f"scored, {sess.dropped} dropped for slow scoring")
    if view.gaps:
        g = view.gaps[-1]
        st.warning(f"The source was interrupted {len(view.gaps)} time(s); last: {state.plain(g.reason)}, "
                   f"{g.missed_s:.1f} s missed from {g.start_time:.1f} s.")


def _continuous(name: str, threshold: float) -> None:
    s = state.settings()
    st.caption("A camera on this server (index, e.g. 0), an RTSP/HTTP stream URL, or a video file played "
               "as a stream: what the REST API may open (settings allowed_cameras, allowed_url_schemes with "
               "allowed_url_hosts, allowed_media_dirs). An uploaded video is always allowed.")
    c1, c2 = st.columns([2, 1])
    src = c1.text_input("Source", key="live_source", placeholder="0  ·  rtsp://camera/stream  ·  /path/video.mp4")
    up = c2.file_uploader("…or upload a video to play as a stream", type=state.VIDEO_TYPES,
                          max_upload_size=s.max_upload_mb, key="live_upload")
    c3, c4, c5 = st.columns(3)
    interval = c3.select_slider("Scoring interval (ms)", [100, 200, 250, 500, 750, 1000, 1500, 2000],
                                value=s.interval_ms if s.interval_ms >= 100 else 500, key="live_interval")
    refresh = c4.select_slider("Refresh every (s)", [0.5, 1.0, 2.0, 3.0, 5.0], value=1.0, key="live_refresh")
    realtime = c5.checkbox("Play files at real-time pace", value=True, key="live_realtime")
    sess: LiveSession | None = st.session_state.get("live_session")
    b1, b2 = st.columns(2)
    if b1.button("Start monitoring", type="primary", disabled=bool(sess and sess.running)):
        with state.user_errors():
            if up is not None:
                source = str(state.save_upload(up, s.max_upload_mb))
            elif not src.strip():
                raise VlmAnomalyError("give a source: a camera index, a stream URL or a video file")
            else:  # a source on the server side: only what the REST API's allow-lists let anyone open
                source = state.source_policy().check(src)
            source = check_source(source)  # a bad source fails here, with a clear message
            if sess:
                sess.stop()
            sess = start_session(name, source, threshold=threshold, interval_ms=interval, realtime=realtime)
            st.session_state["live_session"] = sess
    if b2.button("Stop", disabled=not (sess and sess.running)):
        sess.stop()  # closes the open alert ("stopped") before the page shows it
    if sess is None:
        return
    if sess.running and sess.watcher.threshold != threshold:
        sess.watcher.set_threshold(threshold)

    @st.fragment(run_every=refresh if sess.running else None)
    def panel() -> None:
        cur: LiveSession = st.session_state["live_session"]
        view = cur.feed.view()
        _status_line(cur, view)
        if cur.stats.error and view.state != "failed":
            st.error(cur.stats.error)
        _banner(cur, view)
        if view.last_image is not None and view.readings:
            r = view.readings[-1]
            st.image(annotate_frame(view.last_image, score=r.smoothed, anomaly=r.alert, time_s=r.t,
                                    description=r.description, threshold=cur.watcher.threshold,
                                    **box_kwargs(r.explanation)), width=480)
        _history(cur, view)
        if not cur.running and st.session_state.get("_live_was_running"):
            st.session_state["_live_was_running"] = False
            st.rerun()
        st.session_state["_live_was_running"] = cur.running

    panel()


def webrtc_callback(holder: dict) -> Callable:
    """A streamlit-webrtc frame callback: hand every frame to the session's source, draw the latest verdict.

    ``holder["session"]`` is the running :class:`LiveSession` (fed by a :class:`PushSource`) or None.
    """
    import av

    def callback(frame: av.VideoFrame) -> av.VideoFrame:
        img = frame.to_ndarray(format="rgb24")
        sess: LiveSession | None = holder.get("session")
        if sess is None or not sess.running:
            return frame
        sess.watcher.live.push(img, time.monotonic() - holder["t0"])
        r = sess.feed.latest
        out = annotate_frame(img, score=r.smoothed, anomaly=r.alert, time_s=r.t, description=r.description,
                             threshold=sess.watcher.threshold, **box_kwargs(r.explanation)) if r else img
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(out), format="rgb24")

    return callback


def sync_camera_session(holder: dict, playing: bool, start: Callable[[], LiveSession]) -> None:
    """Start the engine when the camera starts playing, stop it (closing the open alert) when it stops."""
    sess: LiveSession | None = holder.get("session")
    if playing and not holder.get("playing"):
        if sess is not None:
            sess.stop()
        holder["t0"] = time.monotonic()
        holder["session"] = start()
    elif not playing and holder.get("playing") and sess is not None:
        sess.stop()
    holder["playing"] = playing


def _browser_camera(name: str, threshold: float) -> None:
    try:
        from streamlit_webrtc import WebRtcMode, webrtc_streamer
    except ImportError:
        st.warning("Browser-camera streaming needs the package streamlit-webrtc (pip install streamlit-webrtc).")
        return
    s = state.settings()
    interval = s.interval_ms if s.interval_ms >= 100 else 500
    st.caption("Streams the browser camera to this server (WebRTC); each frame gets the verdict drawn on it.")
    holder: dict = st.session_state.setdefault("webrtc_holder", {"session": None, "playing": False})
    ctx = webrtc_streamer(key="live-webrtc", mode=WebRtcMode.SENDRECV, video_frame_callback=webrtc_callback(holder),
                          media_stream_constraints={"video": True, "audio": False}, async_processing=True,
                          rtc_configuration={"iceServers": []})
    with state.user_errors():
        sync_camera_session(holder, bool(ctx.state.playing), lambda: start_session(
            name, "browser camera", threshold=threshold, interval_ms=interval,
            live=PushSource("browser camera", interval_ms=interval, stall_timeout_s=s.stream_stall_timeout_s)))
    sess: LiveSession | None = holder.get("session")
    if sess is None:
        return
    if sess.running and sess.watcher.threshold != threshold:
        sess.watcher.set_threshold(threshold)

    @st.fragment(run_every=1.0 if ctx.state.playing else None)
    def panel() -> None:
        view = sess.feed.view()
        _status_line(sess, view)
        _banner(sess, view)
        _history(sess, view)

    panel()


def render() -> None:
    st.title("Live")
    st.caption("Watch a camera or stream and get an alert when the scene stops looking normal.")
    with state.user_errors():
        names = state.model_names()
        if not names:
            st.info("No model yet: train one on the **Train** page first.")
            return
        c1, c2 = st.columns([2, 1])
        name = c1.selectbox("Model", names, key="live_model")
        model_thr = state.model_store().load(name).threshold
        threshold = c2.slider("Alert threshold", -2.0, 2.0, float(np.clip(model_thr, -2, 2)), 0.01,
                              key=f"live_thr_{name}")
        mode = st.radio("Mode", ["Snapshot", "Continuous (server-side source)", "Browser camera (WebRTC)"],
                        horizontal=True, key="live_mode")
        if mode == "Snapshot":
            _snapshot(name, threshold)
        elif mode.startswith("Continuous"):
            _continuous(name, threshold)
        else:
            _browser_camera(name, threshold)
