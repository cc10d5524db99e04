"""Test page: score a video with a model, explore the timeline, frames and incidents, download results."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from ..detection_metrics import parse_frame_labels
from ..results import SCORE_BANDS, Bands, ScoreResult, band, score_bands
from ..video import analysed_size
from ..video.render import annotate_frame, explanation_box, scale_box, write_annotated_video
from ..video.thumbnails import grab_frames
from . import charts, marking, state

GALLERY = 12
#: incidents offered one "This was normal" button each (the longest videos list the first ones)
NORMAL_ROWS = 10


@st.cache_data(max_entries=16, show_spinner="Fetching frames…")
def frames_of(path: str, indices: tuple[int, ...], max_side: int = 480) -> dict[int, np.ndarray]:
    return grab_frames(path, indices, max_side=max_side)


def _score(s, name: str, path: Path, video: str) -> None:
    """Score the (uploaded) file at ``path`` with model ``name``: the page's result from now on."""
    model, pipe = state.saved_model(name, s)
    result = pipe.score(model, path, progress=state.progress_bar(f"Analysing {video}"))
    st.session_state["test"] = {"result": result, "path": str(path), "video": video, "model": name,
                                "bands": score_bands(model.extra), "calibration": _calibration(model.extra)}
    st.session_state["test_thr"] = float(result.threshold)
    st.session_state["test_pos"] = int(np.argmin(result.smoothed_scores))
    for k in ("test_mp4", "test_seg", "test_video_t"):
        st.session_state.pop(k, None)


def _bands() -> Bands:
    """The score bands of the model of the result shown (from its calibration)."""
    return st.session_state.get("test", {}).get("bands", SCORE_BANDS)


def _calibration(extra: dict) -> str:
    """What the bands of a calibrated model mean, in its own figures ('' for the others)."""
    target = extra.get("target_false_alarm")
    if target is None:
        return ""
    flagged = extra.get("heldout_flagged")
    measured = f" (measured there: {100 * flagged:.1f} %)" if flagged is not None else ""
    return (f"Score bands from the model's calibration on held-out normal clips: their median frame scores +1, "
            f"the threshold 0 flags {100 * target:.1f} % of them{measured}.")


def _headline(r: ScoreResult) -> None:
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Frames", r.n_frames)
    c2.metric("Anomalies", r.n_anomalies)
    c3.metric("Anomaly rate", f"{100 * r.anomaly_rate:.1f}%")
    low = float(r.smoothed_scores.min()) if r.n_frames else 0.0
    c4.metric("Lowest score", f"{low:+.3f}", help=f"band: {band(low, _bands())}")


def _ground_truth(r: ScoreResult, video: str) -> np.ndarray | None:
    """Optional per-frame labels of the test video: detection quality (AUC, AP, EER) on it."""
    f = st.file_uploader("Ground-truth labels (optional): JSON list or 0/1 per line, one per video frame, or a "
                         "dataset's test_labels.json", type=["json", "txt", "csv"], key="test_labels")
    if f is None:
        return None
    with state.user_errors(f"{f.name}: "):
        y = parse_frame_labels(f.getvalue(), name=video)
        truth, m = r.frame_labels(y), r.evaluate(y)
        c1, c2, c3, c4 = st.columns(4)
        if m.defined:
            c1.metric("Frame AUC", f"{m.auc:.3f}", help="ROC-AUC of the smoothed scores, anomalous = positive")
            c2.metric("Average precision", f"{m.ap:.3f}")
            c3.metric("Equal error rate", f"{m.eer:.3f}", help=f"at threshold {m.eer_threshold:+.3f}")
        else:
            c1.info("AUC needs both normal and anomalous frames among the scored ones.")
        pred = r.labels
        c4.metric("Labelled anomalous", f"{m.anomalous} of {m.frames}",
                  help=f"at this threshold: {int((pred & (truth == 1)).sum())} caught, "
                       f"{int((pred & (truth == 0)).sum())} false alarms")
        return truth
    return None


def _incidents(r: ScoreResult) -> None:
    segs = r.incidents()
    st.subheader("Incidents")
    st.caption("The events live monitoring reports for these scores (same smoothing, hysteresis and minimum "
               "duration as the Live page).")
    for g in r.gaps:  # as the Live page shows them: nothing is smoothed across one
        st.warning(f"Gap: missed {g.missed_s:.1f} s at {g.start_time:.2f} s ({state.plain(g.reason)})")
    if not segs:
        st.info("No incident at this threshold.")
        return
    st.dataframe(pd.DataFrame([{"#": k + 1, "start (s)": g.start_time, "end (s)": g.end_time,
                                "frames": g.frames, "worst score": round(g.worst_score, 3),
                                "worst at (s)": g.worst_time} for k, g in enumerate(segs)]), hide_index=True)
    labels = [f"#{k + 1}: {g.start_time:.1f}-{g.end_time:.1f} s (worst {g.worst_score:+.3f})"
              for k, g in enumerate(segs)]

    def jump() -> None:
        k = st.session_state.get("test_seg")
        if k is not None:
            st.session_state["test_pos"] = segs[k].worst_position
            st.session_state["test_video_t"] = segs[k].start_time

    st.selectbox("Jump to incident", range(len(segs)), format_func=labels.__getitem__, index=None,
                 key="test_seg", on_change=jump, placeholder="pick an incident to see its frames")


def _normal_section(r: ScoreResult, t: dict) -> None:
    """Mark an incident or a time range of this video normal for the model that scored it, re-score it,
    or add the whole video to the training set."""
    st.subheader("This was normal")
    st.caption(f"Teach model **{state.plain(t['model'])}** that a flagged incident or a stretch of this video is "
               "normal: its frames are added to the model's normal data and the threshold is recalibrated, without "
               "retraining. Each addition can be undone (here or on the **Models** page).")
    segs = r.incidents()
    for k, g in enumerate(segs[:NORMAL_ROWS]):
        c1, c2 = st.columns([3, 1])
        c1.markdown(f"Incident #{k + 1}: {g.start_time:.1f}-{g.end_time:.1f} s (worst {g.worst_score:+.3f})")
        if c2.button("This was normal", key=f"test_normal_{k}"):
            _mark(t, g.start_time, g.end_time, f"incident #{k + 1}")
    end = float(r.timestamps[-1]) if r.n_frames else 0.0
    if end > 0:
        c1, c2 = st.columns([3, 1])
        lo, hi = c1.slider("Time range (s)", 0.0, end, (0.0, end), step=0.1, key="test_normal_range",
                           format="%.1f")
        c2.write("")
        if c2.button("Mark this range normal", key="test_normal_range_btn"):
            _mark(t, float(lo), float(hi), "time range")
    done = st.session_state.get("test_normal_done")
    if done and done["model"] == t["model"]:
        marking.result(done, key="test", rescore=lambda: st.session_state.update(test_rescore=True))
    _add_to_training_set(t)


def _mark(t: dict, start_s: float, end_s: float, what: str) -> None:
    with state.user_errors():
        addition = marking.mark(
            state.settings(), t["model"], Path(t["path"]), start_s=start_s, end_s=end_s,
            note=f"{what} of {t['video']} (Test page)", label=f"Learning {start_s:.1f}-{end_s:.1f} s as normal",
            name=t["video"])
        st.session_state["test_normal_done"] = marking.said(t["model"], addition, t["video"])
        st.rerun()


def _add_to_training_set(t: dict) -> None:
    """The whole video into the training set; the model is retrained only when the user asks."""
    st.markdown("**Add this video to the training set**")
    ts = state.training_set()
    added = st.session_state.get("test_ts_added")
    if st.button("Add this video to the training set", key="test_add_ts"):
        with state.user_errors():
            item = ts.add(state.pipeline(), Path(t["path"]), name=t["video"],
                          progress=state.progress_bar(f"Adding {t['video']}"))
            added = st.session_state["test_ts_added"] = {"video": item.name, "frames": item.frames,
                                                        "model": t["model"]}
    if not added:
        st.caption("Copies the video into the training set on the **Train** page, for the next model you train.")
        return
    summ = ts.summary()
    st.success(f"Added {state.plain(added['video'])} ({added['frames']} frames) to the training set: now "
               f"{summ['videos']} video(s), {summ['frames']} frames. Model {state.plain(added['model'])} has not "
               "changed: it learns this video only when it is trained again.")
    c1, c2 = st.columns([1, 3])
    c2.caption(f"Retrain replaces model {added['model']} with one trained on the whole training set (the "
               "videos listed on the **Train** page, with its saved parameters); its \"this was normal\" "
               "additions are not carried over. Or train a model under a new name on the **Train** page.")
    if c1.button(f"Retrain {added['model']} now", key="test_retrain"):
        with state.user_errors():
            model = ts.train(state.pipeline(), added["model"], overwrite=True,
                             progress=state.progress_bar(f"Training {added['model']}"))
            st.session_state.pop("test_ts_added", None)
            st.session_state["test_normal_done"] = None
            st.session_state["test_retrained"] = (f"Model {model.name} retrained: {model.n_frames} frames from "
                                                  f"{len(model.videos)} video(s). Analyse the video again to see "
                                                  "its scores.")
            st.rerun()


def _annotated(r: ScoreResult, k: int, img: np.ndarray, **kwargs) -> np.ndarray:
    """Frame ``k`` of the result with its smoothed score, verdict, time, description and explanation box."""
    return annotate_frame(img, score=float(r.smoothed_scores[k]), anomaly=bool(r.labels[k]),
                          time_s=float(r.timestamps[k]), description=_description(r, k), **explanation_box(r, k),
                          **kwargs)


def _description(r: ScoreResult, k: int) -> str:
    return r.descriptions[k] if k < len(r.descriptions) else ""


def _inspector(r: ScoreResult, path: str, model_name: str) -> None:
    st.subheader("Frame inspector")
    n = r.n_frames
    pos = int(np.clip(st.session_state.get("test_pos", 0), 0, n - 1))
    st.session_state["test_pos"] = pos
    st.select_slider("Frame", options=list(range(n)), key="test_pos",
                     format_func=lambda k: f"{r.timestamps[k]:.2f} s")
    pos = st.session_state["test_pos"]
    ix = int(r.frame_indices[pos])
    imgs = frames_of(path, (ix,))
    lab = bool(r.labels[pos])
    c1, c2 = st.columns(2)
    with c1:
        if ix in imgs:
            st.image(_annotated(r, pos, imgs[ix], threshold=r.threshold),
                     caption=f"this frame: {'ANOMALY' if lab else 'normal'}, raw {r.raw_scores[pos]:+.3f}, "
                             f"smoothed {r.smoothed_scores[pos]:+.3f} ({band(r.smoothed_scores[pos], _bands())})",
                     width="stretch")
    why = r.explanations[pos] if pos < len(r.explanations) else None
    with c2:
        if why:
            _explanation(why)
            return
        with state.user_errors():
            model = state.model_store().load(model_name)
            near = state.training_set().nearest_normal_frame(model, r.embeddings[pos]) \
                if r.embeddings is not None else None
            if near is None:
                st.info("This model keeps no training frames to compare with.")
            elif near.jpeg:
                st.image(near.jpeg, caption=f"most similar normal training frame: {near.video} at "
                                            f"{near.time_s:.2f} s (cosine {near.similarity:.3f})", width="stretch")
            else:
                st.info(f"Most similar normal training frame: {near.video} at {near.time_s:.2f} s "
                        f"(cosine {near.similarity:.3f}); that video is no longer in the training set.")


def _explanation(why: dict) -> None:
    """What a motion model blamed: the attribute, the region and its speed, the nearest normal example."""
    st.markdown(f"**Why:** {why.get('text', '')}")
    if why.get("from_time") is not None:  # the label is the smoothed score's: so is the explanation
        st.caption(f"from the frame at {why['from_time']:.2f} s, the lowest of this frame's smoothing window")
    z = why.get("z", {})
    if z:
        st.dataframe(pd.DataFrame([{"attribute": a, "z": v, "fired": a in why.get("fired", [])}
                                   for a, v in z.items()]), hide_index=True)
    nn = why.get("nearest_normal")
    if not nn:
        return
    # the training set's copy first (dashboard-trained models name videos as uploaded), else a path
    src = state.training_set().locate(nn["source"]) or (nn["source"] if Path(nn["source"]).is_file() else None)
    imgs = frames_of(str(src), (int(nn["frame"]),)) if src else {}
    img = imgs.get(int(nn["frame"]))
    if img is None:
        st.info(f"Nearest normal {nn['attribute']}: {Path(nn['source']).name} frame {nn['frame']} "
                "(that video is no longer here to show).")
        return
    box = nn.get("box") or []
    if nn["attribute"] != "frame" and len(box) == 4 and box[2] > box[0] and box[3] > box[1]:
        # the box is in the coordinates of the analysed frames
        x0, y0, x1, y1 = scale_box(box, analysed_size(src, state.settings().max_side),
                                   (img.shape[1], img.shape[0]))
        img = img[y0: max(y0 + 1, y1), x0: max(x0 + 1, x1)]
    st.image(img, caption=f"nearest normal {nn['attribute']}: {nn['source']} frame {nn['frame']} "
                          f"(distance {nn.get('distance', 0):.3f})", width=240)


def _gallery(r: ScoreResult, path: str) -> None:
    lab = r.labels
    order = np.argsort(r.smoothed_scores)
    picks = [int(k) for k in order if lab[k]][:GALLERY]
    st.subheader("Anomalous frames" if picks else "Lowest-scoring frames")
    if not picks:
        picks = [int(k) for k in order[: min(4, r.n_frames)]]
    picks.sort()
    imgs = frames_of(path, tuple(int(r.frame_indices[k]) for k in picks), 320)
    cols = st.columns(4)
    for j, k in enumerate(picks):
        ix = int(r.frame_indices[k])
        if ix not in imgs:
            continue
        cols[j % 4].image(_annotated(r, k, imgs[ix]),
                          caption=f"{r.timestamps[k]:.2f} s · {r.smoothed_scores[k]:+.3f} · {_description(r, k)}")


def _downloads(r: ScoreResult, path: str, video: str) -> None:
    st.subheader("Downloads")
    stem = Path(video).stem
    r = r.named(video)  # the reports name the video as uploaded, not its place on the server
    c1, c2, c3 = st.columns(3)
    c1.download_button("Download CSV", r.to_csv(), file_name=f"{stem}-scores.csv", mime="text/csv",
                       key="dl_csv", on_click="ignore")
    c2.download_button("Download JSON", r.to_json(), file_name=f"{stem}-report.json", mime="application/json",
                       key="dl_json", on_click="ignore")
    mp4 = st.session_state.get("test_mp4")
    if mp4 and mp4["threshold"] == r.threshold and Path(mp4["path"]).is_file():
        c3.download_button("Download annotated MP4", Path(mp4["path"]).read_bytes(),
                           file_name=f"{stem}-annotated.mp4", mime="video/mp4", key="dl_mp4", on_click="ignore")
    elif c3.button("Render annotated MP4", key="render_mp4"):
        with state.user_errors():
            # beside the uploads, so it is deleted with them once unused (prune_uploads), not kept forever
            out = Path(tempfile.mkdtemp(prefix="render-", dir=state.upload_dir())) / f"{stem}-annotated.mp4"
            write_annotated_video(r, path, out, progress=state.progress_bar("Rendering"))
            st.session_state["test_mp4"] = {"path": str(out), "threshold": r.threshold}
            st.rerun()


def _results(t: dict) -> None:
    r0: ScoreResult = t["result"]
    st.divider()
    st.markdown(f"**{state.plain(t['video'])}** scored with model **{state.plain(t['model'])}**")
    lo = float(min(-2.0, np.floor(r0.smoothed_scores.min() * 10) / 10 - 0.1))
    hi = float(max(2.0, np.ceil(r0.smoothed_scores.max() * 10) / 10 + 0.1))
    thr = st.slider("Threshold (frames whose smoothed score falls below it are anomalous)", lo, hi,
                    step=0.01, key="test_thr")
    r = r0.relabel(float(thr))
    _headline(r)
    truth = _ground_truth(r, t["video"])
    st.plotly_chart(charts.timeline(r, truth=truth, bands=t.get("bands", SCORE_BANDS)), key="test_timeline")
    if t.get("calibration"):
        st.caption(t["calibration"])
    _incidents(r)
    _normal_section(r, t)
    if "test_video_t" in st.session_state:
        st.video(t["path"], start_time=float(st.session_state["test_video_t"]))
    _inspector(r, t["path"], t["model"])
    _gallery(r, t["path"])
    _downloads(r, t["path"], t["video"])


def render() -> None:
    st.title("Test")
    st.caption("Score a video with a trained model and see where it departs from normal.")
    with state.user_errors():
        s = state.settings()
        names = state.model_names(s)
        if not names:
            st.info("No model yet: train one on the **Train** page first.")
            return
        c1, c2 = st.columns([1, 2])
        name = c1.selectbox("Model", names, key="test_model")
        f = c2.file_uploader(f"Video to analyse (up to {s.max_upload_mb} MB)", type=state.VIDEO_TYPES,
                             max_upload_size=s.max_upload_mb, key="test_upload")
        said = st.session_state.pop("test_retrained", None)
        if said:
            st.success(said)
        if st.button("Analyse", type="primary", disabled=f is None):
            for k in ("test_normal_done", "test_ts_added"):  # _score forgets the rest of the last result's
                st.session_state.pop(k, None)
            with state.user_errors():  # the last result stays on the page
                _score(s, name, state.save_upload(f, s.max_upload_mb), f.name)
        t = st.session_state.get("test")
        if t and st.session_state.pop("test_rescore", False):  # "Analyse again" after marking normal
            _score(s, t["model"], Path(t["path"]), t["video"])
            t = st.session_state["test"]
        if t:
            _results(t)
