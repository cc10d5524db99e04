"""Train page: build the training set from normal videos, review descriptions, train a named model."""

from __future__ import annotations

import base64
import datetime as _dt
import inspect
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from ..detectors import detector_names, get_detector_class
from ..errors import VlmAnomalyError
from ..training_set import TrainingSet
from . import state

INTERVALS = [0, 100, 200, 250, 500, 750, 1000, 1500, 2000]
CLIP_MODELS = ["ViT-B-32", "ViT-B-16", "ViT-L-14"]
CLIP_PRETRAINED = ["openai", "laion400m_e32", "laion2b_s34b_b79k", "none"]
REVIEW_ROWS = 200


def detector_params(name: str) -> set[str]:
    """The constructor parameters of detector ``name`` (none when it cannot be loaded)."""
    try:
        return set(inspect.signature(get_detector_class(name).__init__).parameters)
    except VlmAnomalyError:
        return set()


def _params_form(ts: TrainingSet) -> None:
    s = state.settings()
    with st.expander("Training parameters", expanded=not ts.items()):
        # outside the form: the fields below depend on the detector chosen
        names = detector_names()
        detector = st.selectbox("Detector", names, index=names.index(s.detector) if s.detector in names else 0,
                                key="train_detector",
                                help="motion (default) = how things move and what moving things look like, "
                                     "per place, from optical flow; threshold calibrated to the false-alarm "
                                     "target; no network needed. ocsvm = the One-Class SVM on frame "
                                     "embeddings; patch-knn = worst tile (use with tiles features)")
        takes = detector_params(detector)
        with st.form("train_params"):
            objects = st.text_input("Expected objects (comma-separated)", ", ".join(s.expected_objects),
                                    help="Objects that belong in the scene; used for the zero-shot descriptions.")
            c1, c2, c3 = st.columns(3)
            encoder = c1.selectbox("Encoder", ["auto", "efficientnet", "openclip"],
                                   index=["auto", "efficientnet", "openclip"].index(s.encoder),
                                   help="auto = OpenCLIP when its weights are available, else EfficientNet-Lite0")
            clip_model = c2.selectbox("OpenCLIP model", CLIP_MODELS,
                                      index=CLIP_MODELS.index(s.clip_model) if s.clip_model in CLIP_MODELS else 0)
            pre = c3.selectbox("OpenCLIP pretrained", CLIP_PRETRAINED,
                               index=CLIP_PRETRAINED.index(s.clip_pretrained)
                               if s.clip_pretrained in CLIP_PRETRAINED else 0)
            c4, c5, c6 = st.columns(3)
            interval = c4.select_slider("Frame interval (ms)", INTERVALS,
                                        value=s.interval_ms if s.interval_ms in INTERVALS else 500,
                                        format_func=lambda v: "every frame" if v == 0 else f"{v} ms")
            # only the detectors that take them (the default motion detector takes neither)
            nu = (c5.slider("nu (expected share of outliers)", 0.01, 0.5, float(s.nu), 0.01) if "nu" in takes
                  else s.nu)
            gamma = (c6.text_input("gamma", str(s.gamma), help="'scale', 'auto' or a number") if "gamma" in takes
                     else str(s.gamma))
            c8, c9 = st.columns(2)
            target_fa = c9.number_input("Target false-alarm share (motion)", 0.001, 0.2,
                                        float(s.target_false_alarm), 0.005, format="%.3f",
                                        help="share of normal frames the calibrated threshold may flag, "
                                             "measured on held-out normal clips")
            feats = ["frame", "tiles"]
            features = c8.selectbox("Features", feats, index=feats.index(s.features),
                                    help="frame = one embedding per frame; tiles = the frame plus a grid of "
                                         "overlapping tiles, each embedded (small objects in wide views)")
            if st.form_submit_button("Save parameters"):
                with state.user_errors():
                    params = {"expected_objects": [o.strip() for o in objects.split(",") if o.strip()],
                              "encoder": encoder, "clip_model": clip_model, "clip_pretrained": pre,
                              "interval_ms": interval, "nu": nu, "gamma": gamma.strip() or "scale",
                              "detector": detector, "features": features,
                              "target_false_alarm": float(target_fa)}
                    ts.save_params(params)  # validated by the settings loader first
                    st.success("Parameters saved. Videos encoded otherwise are re-encoded when you train.")


def _upload_section(ts: TrainingSet) -> None:
    s = state.settings()
    st.subheader("1. Add normal videos")
    files = st.file_uploader(f"Videos of normal activity (up to {s.max_upload_mb} MB each)", type=state.VIDEO_TYPES,
                             accept_multiple_files=True, max_upload_size=s.max_upload_mb, key="train_upload")
    if st.button("Process and add to training set", type="primary", disabled=not files):
        with state.user_errors():
            pipe = state.pipeline(s)
            overall = st.progress(0.0, text=f"0 of {len(files)} videos")
            added = 0
            for k, f in enumerate(files):
                with state.user_errors(f"{f.name}: "):
                    path = state.save_upload(f, s.max_upload_mb)
                    ts.add(pipe, path, name=f.name, progress=state.progress_bar(f.name))
                    added += 1
                overall.progress((k + 1) / len(files), text=f"{k + 1} of {len(files)} videos processed")
            if added:
                st.success(f"Added {added} video(s) to the training set.")


def _training_set_section(ts: TrainingSet) -> None:
    st.subheader("2. Training set")
    items = ts.items()
    summ = ts.summary()
    c1, c2, c3 = st.columns(3)
    c1.metric("Videos", summ["videos"])
    c2.metric("Frames", summ["frames"])
    c3.metric("Duration", f"{summ['duration_s']:.1f} s")
    if not items:
        st.info("The training set is empty: upload a few videos of normal activity above.")
        return
    pipe = state.pipeline()
    rows = []
    for it in items:
        r = it.as_row()
        r["status"] = "re-encode at training" if ts.is_stale(it, pipe) else "ready"
        rows.append(r)
    st.dataframe(pd.DataFrame(rows).drop(columns=["id"]).rename(
        columns={"duration_s": "duration (s)", "interval_ms": "interval (ms)"}), hide_index=True)
    names = {it.id: f"{it.name} ({it.frames} frames)" for it in items}
    gen = st.session_state.setdefault("train_remove_gen", 0)
    gone = st.multiselect("Remove videos", list(names), format_func=names.get, key=f"train_remove_{gen}")
    if st.button("Remove selected", disabled=not gone):
        with state.user_errors():
            for item_id in gone:
                ts.remove(item_id)
            st.session_state["train_remove_gen"] = gen + 1
            st.rerun()


@st.cache_data(max_entries=2000, show_spinner=False)
def _data_url(path: str, mtime: float) -> str | None:
    p = Path(path)
    if not p.is_file():
        return None
    return "data:image/jpeg;base64," + base64.b64encode(p.read_bytes()).decode()


def _review_section(ts: TrainingSet) -> None:
    if not ts.items():
        return
    st.subheader("3. Review the descriptions")
    st.caption("Zero-shot descriptions of each sampled training frame - check they fit normal activity.")
    with state.user_errors():
        rows = ts.review_rows(state.pipeline())
        df = pd.DataFrame(rows)
        c1, c2, c3 = st.columns([2, 2, 1])
        text = c1.text_input("Filter descriptions", key="review_filter", placeholder="e.g. person walking")
        vids = c2.multiselect("Videos", sorted(df["video"].unique()), key="review_videos")
        min_conf = c3.slider("Min confidence", 0.0, 1.0, 0.0, 0.05, key="review_conf")
        if text:
            df = df[df["description"].str.contains(text, case=False, regex=False)
                    | df["alternatives"].str.contains(text, case=False, regex=False)]
        if vids:
            df = df[df["video"].isin(vids)]
        df = df[df["confidence"] >= min_conf]
        more = f"; showing the first {REVIEW_ROWS}" if len(df) > REVIEW_ROWS else ""
        st.caption(f"{len(df)} frame(s) match{more}")
        df = df.head(REVIEW_ROWS).copy()
        df["thumbnail"] = [_data_url(p, Path(p).stat().st_mtime if Path(p).is_file() else 0) for p in df["thumbnail"]]
        st.dataframe(
            df[["thumbnail", "video", "time", "description", "confidence", "alternatives"]],
            hide_index=True, row_height=70, key="review_table",
            column_config={
                "thumbnail": st.column_config.ImageColumn("frame", width="small"),
                "time": st.column_config.NumberColumn("time (s)", format="%.2f"),
                "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0,
                                                              format="%.2f"),
                "alternatives": st.column_config.TextColumn("next best"),
            })


def _train_section(ts: TrainingSet) -> None:
    st.subheader("4. Train")
    default = "model-" + _dt.datetime.now().strftime("%Y%m%d-%H%M")
    c1, c2 = st.columns([3, 1])
    name = c1.text_input("Model name", value=default, key="train_model_name",
                         help="letters, digits, '.', '_' or '-'")
    overwrite = c2.checkbox("Replace if it exists", value=False, key="train_overwrite")
    if st.button("Train model", type="primary", disabled=not ts.items()):
        with state.user_errors():
            pipe = state.pipeline()
            t0 = time.perf_counter()
            bar = state.progress_bar("re-encoding the training set")
            model = ts.train(pipe, name.strip(), progress=bar, overwrite=overwrite)
            st.session_state["train_last"] = {
                "name": model.name, "seconds": round(time.perf_counter() - t0, 2),
                "videos": len(model.videos), "frames": model.n_frames, "encoder": model.encoder.label,
                "detector": model.detector.name, "params": model.detector.get_params(),
                "interval_ms": model.interval_ms, "threshold": model.threshold,
                "target_false_alarm": model.extra.get("target_false_alarm"),
                "heldout_flagged": model.extra.get("heldout_flagged"),
            }
    last = st.session_state.get("train_last")
    if last:
        st.success(f"Model **{last['name']}** saved: {last['frames']} frames from {last['videos']} video(s) "
                   f"in {last['seconds']} s.")
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Frames", last["frames"])
        c2.metric("Videos", last["videos"])
        c3.metric("Interval", f"{last['interval_ms']} ms")
        c4.metric("Threshold", f"{last['threshold']:+.2f}")
        if last.get("target_false_alarm") is not None:
            st.caption(f"Threshold calibrated on held-out normal clips to flag "
                       f"{100 * last['target_false_alarm']:.1f} % of normal frames "
                       f"(measured there: {100 * (last.get('heldout_flagged') or 0):.1f} %).")
        st.caption(f"Encoder {last['encoder']} · detector {last['detector']} {last['params']}")
        st.caption("Next: score a video with it on the **Test** page.")


def render() -> None:
    st.title("Train")
    st.caption("Teach the model what normal looks like from a few videos of normal activity.")
    with state.user_errors():
        ts = state.training_set()
        _params_form(ts)
        _upload_section(ts)
        _training_set_section(ts)
        _review_section(ts)
        _train_section(ts)
