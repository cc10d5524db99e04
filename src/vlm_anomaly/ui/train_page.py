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
from ..model import AnomalyModel
from ..training_set import TrainingSet
from ..video import content_hash
from . import state

INTERVALS = [0, 100, 200, 250, 500, 750, 1000, 1500, 2000]
CLIP_MODELS = ["ViT-B-32", "ViT-B-16", "ViT-L-14"]
CLIP_PRETRAINED = ["openai", "laion400m_e32", "laion2b_s34b_b79k", "none"]
REVIEW_ROWS = 200


#: detectors that learn from the videos with settings of their own: the training parameters that matter
#: for them (the others are frame-embedding detectors: encoder, expected objects for the zero-shot
#: descriptions, features, and their constructor's nu / gamma)
OWN_SETTINGS = {"motion": frozenset({"interval_ms", "target_false_alarm", "motion_appearance"})}
EMBEDDING_SETTINGS = frozenset({"expected_objects", "encoder", "clip_model", "clip_pretrained", "interval_ms",
                                "features"})


def detector_params(name: str) -> set[str]:
    """The constructor parameters of detector ``name`` (none when it cannot be loaded)."""
    try:
        return set(inspect.signature(get_detector_class(name).__init__).parameters)
    except VlmAnomalyError:
        return set()


def settings_for(name: str) -> frozenset[str]:
    """The training parameters that change what detector ``name`` learns (the page offers only these)."""
    if name in OWN_SETTINGS:
        return OWN_SETTINGS[name]
    return EMBEDDING_SETTINGS | (detector_params(name) & {"nu", "gamma"})


def describes_frames(name: str) -> bool:
    """Whether detector ``name``'s frames are described by the zero-shot labels of their embeddings;
    detectors with settings of their own (motion) explain what they flag in their own words instead."""
    return name not in OWN_SETTINGS


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
        shown = settings_for(detector)
        with st.form("train_params"):
            # only the settings that matter for the detector chosen; the others keep their saved values
            objects = (st.text_input("Expected objects (comma-separated)", ", ".join(s.expected_objects),
                                     help="Objects that belong in the scene; used for the zero-shot descriptions.")
                       if "expected_objects" in shown else ", ".join(s.expected_objects))
            encoder, clip_model, pre = s.encoder, s.clip_model, s.clip_pretrained
            if "encoder" in shown:
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
            nu = (c5.slider("nu (expected share of outliers)", 0.01, 0.5, float(s.nu), 0.01) if "nu" in shown
                  else s.nu)
            gamma = (c6.text_input("gamma", str(s.gamma), help="'scale', 'auto' or a number") if "gamma" in shown
                     else str(s.gamma))
            target_fa = (c5.number_input("False-alarm target (share of normal frames)", 0.001, 0.2,
                                         float(s.target_false_alarm), 0.005, format="%.3f", key="train_target_fa",
                                         help="share of normal frames the calibrated threshold may flag, "
                                              "measured on held-out normal clips")
                         if "target_false_alarm" in shown else s.target_false_alarm)
            appearance = (c6.checkbox("Appearance of moving objects", value=bool(s.motion_appearance),
                                      key="train_appearance",
                                      help="also learn what moving objects look like (their crops through the "
                                           "offline image backbone); off = speed, size and shape of motion only, "
                                           "no encoder needed")
                          if "motion_appearance" in shown else s.motion_appearance)
            feats = ["frame", "tiles"]
            features = (st.selectbox("Features", feats, index=feats.index(s.features),
                                     help="frame = one embedding per frame; tiles = the frame plus a grid of "
                                          "overlapping tiles, each embedded (small objects in wide views)")
                        if "features" in shown else s.features)
            if st.form_submit_button("Save parameters"):
                with state.user_errors():
                    params = {"expected_objects": [o.strip() for o in objects.split(",") if o.strip()],
                              "encoder": encoder, "clip_model": clip_model, "clip_pretrained": pre,
                              "interval_ms": interval, "nu": nu, "gamma": gamma.strip() or "scale",
                              "detector": detector, "features": features,
                              "target_false_alarm": float(target_fa), "motion_appearance": bool(appearance)}
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
            added, known = 0, []
            for k, f in enumerate(files):
                with state.user_errors(f"{f.name}: ", name=f.name):
                    path = state.save_upload(f, s.max_upload_mb)
                    had = ts.find_sha(content_hash(path)) is not None  # the set keeps one copy of a video
                    ts.add(pipe, path, name=f.name, progress=state.progress_bar(f.name))  # (refreshed if stale)
                    if had:
                        known.append(f.name)
                    else:
                        added += 1
                overall.progress((k + 1) / len(files), text=f"{k + 1} of {len(files)} videos processed")
            if added:
                st.success(f"Added {added} video(s) to the training set.")
            if known:
                st.info(state.plain(f"Already in the training set, not added again: {', '.join(known)}."))


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
    rows = [{**it.as_row(), "status": "re-encode at training" if ts.is_stale(it, pipe) else "ready"} for it in items]
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
    detector = state.settings().detector
    if not describes_frames(detector):
        _review_frames(ts, detector)
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
        _review_table(df, ["description", "confidence", "alternatives"], {
            "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0, format="%.2f"),
            "alternatives": st.column_config.TextColumn("next best")})


def _review_frames(ts: TrainingSet, detector: str) -> None:
    """The sampled training frames without descriptions: a detector that explains in its own words
    (motion: the moving objects, where and how fast) says why when it scores a frame."""
    st.subheader("3. Review the frames")
    st.caption(f"The sampled training frames - check they show normal activity only. The {detector} detector "
               "describes what it flags in its own words (moving objects, where, how fast, compared with these "
               "videos) on the Test and Live pages.")
    with state.user_errors():
        df = pd.DataFrame(ts.review_rows(state.pipeline(), describe=False))
        vids = st.multiselect("Videos", sorted(df["video"].unique()), key="review_videos")
        if vids:
            df = df[df["video"].isin(vids)]
        _review_table(df, [], {})


def _review_table(df: pd.DataFrame, columns: list[str], config: dict) -> None:
    more = f"; showing the first {REVIEW_ROWS}" if len(df) > REVIEW_ROWS else ""
    st.caption(f"{len(df)} frame(s) match{more}")
    df = df.head(REVIEW_ROWS).copy()
    df["thumbnail"] = [_data_url(p, Path(p).stat().st_mtime if Path(p).is_file() else 0) for p in df["thumbnail"]]
    st.dataframe(df[["thumbnail", "video", "time", *columns]], hide_index=True, row_height=70, key="review_table",
                 column_config={"thumbnail": st.column_config.ImageColumn("frame", width="small"),
                                "time": st.column_config.NumberColumn("time (s)", format="%.2f"), **config})


def model_summary(model: AnomalyModel) -> list[tuple[str, str]]:
    """What a person reads about a trained model: (what, value) rows - no raw parameter dicts."""
    det = model.detector
    params = det.get_params()
    fused = (params.get("config") or {}).get("fused") if isinstance(params.get("config"), dict) else None
    if fused:
        what = f"{det.name} (looks at: {', '.join(fused)})"
    else:
        shown = {k: v for k, v in params.items() if not isinstance(v, (dict, list))}
        what = det.name + (f" ({', '.join(f'{k} {v}' for k, v in shown.items())})" if shown else "")
    rows = [("Detector", what)]
    target = model.extra.get("target_false_alarm")
    if target is not None:
        rows.append(("False-alarm target", f"{100 * target:.1f} % of normal frames"))
    rows.append(("Threshold", f"{model.threshold:+.2f}" + (" (score scale: 0 = threshold, +1 = a typical "
                                                           "normal frame)" if target is not None else "")))
    if target is not None:
        flagged = model.extra.get("heldout_flagged")
        rows.append(("Calibration", "on held-out normal clips (each clip scored by a model of the others)"
                     + (f": {100 * flagged:.1f} % of their frames flagged" if flagged is not None else "")))
    fit_ms = model.training_interval_ms
    every = "every frame" if fit_ms == 0 else f"a frame every {fit_ms} ms"
    if fit_ms != model.interval_ms:
        every += f"; scores a frame every {model.interval_ms} ms"
    rows.append(("Training", f"{len(model.videos)} clip(s), {model.n_frames} frames ({every})"))
    enc = getattr(model, "encoder", None)
    rows.append(("Encoder", enc.label if enc is not None else "none"))
    return rows


def _train_section(ts: TrainingSet) -> None:
    st.subheader("4. Train")
    # the default name is made once a session: a default that changed every minute changed the
    # widget's parameters between two reruns, at a minute's turn
    st.session_state.setdefault("train_model_name", "model-" + _dt.datetime.now().strftime("%Y%m%d-%H%M"))
    c1, c2 = st.columns([3, 1])
    name = c1.text_input("Model name", key="train_model_name", help="letters, digits, '.', '_' or '-'")
    overwrite = c2.checkbox("Replace if it exists", value=False, key="train_overwrite")
    if st.button("Train model", type="primary", disabled=not ts.items()):
        with state.user_errors():
            pipe = state.pipeline()
            t0 = time.perf_counter()
            bar = state.progress_bar("re-encoding the training set")
            model = ts.train(pipe, name.strip(), progress=bar, overwrite=overwrite)
            st.session_state["train_last"] = {
                "name": model.name, "seconds": round(time.perf_counter() - t0, 2),
                "videos": len(model.videos), "frames": model.n_frames, "interval_ms": model.interval_ms,
                "threshold": model.threshold, "summary": model_summary(model),
                "warning": str(model.extra.get("warning") or ""),
            }
    last = st.session_state.get("train_last")
    if last:
        st.success(f"Model **{state.plain(last['name'])}** saved: {last['frames']} frames from {last['videos']} "
                   f"video(s) in {last['seconds']} s.")
        if last.get("warning"):  # what `vlm-anomaly train` prints too: too few clips for its threshold
            st.warning(f"Warning: {last['warning']}")
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Frames", last["frames"])
        c2.metric("Videos", last["videos"])
        c3.metric("Interval", f"{last['interval_ms']} ms")
        c4.metric("Threshold", f"{last['threshold']:+.2f}")
        st.table(pd.DataFrame(last["summary"], columns=["model", last["name"]]).set_index("model"))
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
