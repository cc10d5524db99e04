"""Live page: score camera snapshots, or monitor a continuous source with alerts."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st

from ..errors import VlmAnomalyError
from ..monitor import LiveMonitor, LiveSession
from ..redact import redact_url
from ..video.sink import annotate_frame, box_kwargs
from ..video.thumbnails import decode_image
from . import charts, state

CHART_POINTS = 240


def _monitor(name: str, threshold: float) -> LiveMonitor:
    s = state.settings()
    model = state.model_store(s).load(name)
    return LiveMonitor(state.pipeline_for(model, s), model, threshold=threshold)


def _snapshot(name: str, threshold: float) -> None:
    st.caption("Take a picture with the browser camera; it is scored as one frame.")
    shot = st.camera_input("Camera snapshot", key="live_camera")
    if shot is None:
        return
    with state.user_errors():
        img = decode_image(shot.getvalue())
        r = _monitor(name, threshold).process(img, 0.0)
        (st.error if r.alert else st.success)(
            f"{'ANOMALY' if r.alert else 'Normal'}: score {r.raw:+.3f} (threshold {threshold:+.2f})"
            + (f" - {r.description}" if r.description else ""))
        st.image(annotate_frame(img, score=r.raw, anomaly=r.alert, description=r.description,
                                threshold=threshold, **box_kwargs(r.explanation)))


def _banner(mon: LiveMonitor) -> None:
    readings, alerts = mon.snapshot()
    if not readings:
        st.info("Waiting for the first frame…")
        return
    last = readings[-1]
    if mon.alerting:
        a = alerts[-1]
        st.error(f"ALERT: smoothed score {last.smoothed:+.3f} is below the threshold {mon.threshold:+.2f} "
                 f"since {a.start:.1f} s (worst {a.worst:+.3f}{', ' + a.description if a.description else ''})",
                 icon=":material/notifications_active:")
    else:
        st.success(f"Normal: smoothed score {last.smoothed:+.3f} (threshold {mon.threshold:+.2f})")


def _history(mon: LiveMonitor) -> None:
    readings, alerts = mon.snapshot()
    st.plotly_chart(charts.live(readings[-CHART_POINTS:], mon.threshold), key="live_chart")
    st.markdown(f"**Alert history** ({len(alerts)})")
    if alerts:
        st.dataframe(pd.DataFrame([{"started at": a.wall_time, "from (s)": round(a.start, 2),
                                    "to (s)": "ongoing" if a.end is None else round(a.end, 2),
                                    "worst score": round(a.worst, 3), "description": a.description}
                                   for a in reversed(alerts)]), hide_index=True)
    else:
        st.caption("No alert so far.")


def _continuous(name: str, threshold: float) -> None:
    s = state.settings()
    st.caption("A camera on this server (index, e.g. 0), an RTSP/HTTP stream URL, or a video file played "
               "as a stream.")
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
            source = str(state.save_upload(up, s.max_upload_mb)) if up is not None else src.strip()
            if not source:
                raise VlmAnomalyError("give a source: a camera index, a stream URL or a video file")
            if sess:
                sess.stop()
            sess = LiveSession(_monitor(name, threshold), source, interval_ms=interval, realtime=realtime).start()
            st.session_state["live_session"] = sess
    if b2.button("Stop", disabled=not (sess and sess.running)):
        sess.stop()
    if sess is None:
        return
    sess.monitor.threshold = threshold

    @st.fragment(run_every=refresh if sess.running else None)
    def panel() -> None:
        cur: LiveSession = st.session_state["live_session"]
        status = "running" if cur.running else "stopped"
        st.caption(f"Source {redact_url(cur.source)}: {status}, {cur.frames} frame(s) scored, "
                   f"{cur.dropped} dropped (scoring slower than real time)")
        if cur.error:
            st.error(cur.error)
        if cur.gaps:
            g = cur.gaps[-1]
            st.warning(f"The source was interrupted {len(cur.gaps)} time(s); last: {g.reason}, "
                       f"{g.missed_s:.1f} s missed from {g.start_time:.1f} s.")
        _banner(cur.monitor)
        if cur.last_frame is not None:
            readings, _ = cur.monitor.snapshot()
            if readings:
                r = readings[-1]
                st.image(annotate_frame(cur.last_frame, score=r.smoothed, anomaly=r.alert, time_s=r.t,
                                        description=r.description, threshold=cur.monitor.threshold,
                                        **box_kwargs(r.explanation)), width=480)
        _history(cur.monitor)
        if not cur.running and st.session_state.get("_live_was_running"):
            st.session_state["_live_was_running"] = False
            st.rerun()
        st.session_state["_live_was_running"] = cur.running

    panel()


def webrtc_callback(monitor: LiveMonitor, interval_ms: int) -> Callable:
    """A streamlit-webrtc frame callback: score one frame per interval, draw the verdict on all."""
    import av

    last = {"t": -1e9, "reading": None}
    t0 = time.monotonic()

    def callback(frame: av.VideoFrame) -> av.VideoFrame:
        img = frame.to_ndarray(format="rgb24")
        t = time.monotonic() - t0
        if t - last["t"] >= interval_ms / 1000.0:
            last["t"] = t
            last["reading"] = monitor.process(img, t)
        r = last["reading"]
        out = annotate_frame(img, score=r.smoothed, anomaly=r.alert, time_s=r.t, description=r.description,
                             threshold=monitor.threshold, **box_kwargs(r.explanation)) if r else img
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(out), format="rgb24")

    return callback


def _browser_camera(name: str, threshold: float) -> None:
    try:
        from streamlit_webrtc import WebRtcMode, webrtc_streamer
    except ImportError:
        st.warning("Browser-camera streaming needs the package streamlit-webrtc (pip install streamlit-webrtc).")
        return
    s = state.settings()
    st.caption("Streams the browser camera to this server (WebRTC); each frame gets the verdict drawn on it.")
    key = f"webrtc_monitor_{name}"
    if key not in st.session_state:
        with state.user_errors():
            st.session_state[key] = _monitor(name, threshold)
    mon: LiveMonitor | None = st.session_state.get(key)
    if mon is None:
        return
    mon.threshold = threshold
    ctx = webrtc_streamer(key="live-webrtc", mode=WebRtcMode.SENDRECV,
                          video_frame_callback=webrtc_callback(mon, s.interval_ms if s.interval_ms >= 100 else 500),
                          media_stream_constraints={"video": True, "audio": False}, async_processing=True,
                          rtc_configuration={"iceServers": []})

    @st.fragment(run_every=1.0 if ctx.state.playing else None)
    def panel() -> None:
        _banner(mon)
        _history(mon)

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
