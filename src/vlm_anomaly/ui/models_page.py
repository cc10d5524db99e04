"""Models page: list, inspect, rename, delete (with confirmation), compare two models on one video."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from ..results import score_bands
from . import charts, marking, state


def _part(meta: object, *keys: str) -> dict:
    """``meta[k1][k2]...`` when each is a dict, else {}: a model file edited by hand is listed, not a crash."""
    for k in keys:
        meta = meta.get(k) if isinstance(meta, dict) else None
    return meta if isinstance(meta, dict) else {}


def _rows(store) -> list[dict]:
    rows = []
    for info, meta in store.entries():
        params = _part(meta, "detector", "params")
        additions = meta.get("normal_additions")
        rows.append({"name": info.name, "encoder": info.encoder, "detector": info.detector,
                     "videos": info.videos, "frames": info.frames,
                     "interval (ms)": _part(meta, "training").get("interval_ms"),
                     "false-alarm target": _part(meta, "extra").get("target_false_alarm"),
                     "nu": params.get("nu"), "gamma": None if params.get("gamma") is None else str(params["gamma"]),
                     "threshold": meta.get("threshold"),
                     "marked normal": len(additions) if isinstance(additions, list) else 0,
                     "created": info.created, "size (kB)": round(info.size_bytes / 1024, 1)})
    return rows


def _inspect(store, name: str) -> None:
    info = store.show(name)
    vids = info.get("training", {}).get("videos", [])
    st.markdown(f"**{state.plain(name)}** - {len(vids)} training video(s), "
                f"{info.get('training', {}).get('frames', 0)} frames, created {info.get('created', '')}")
    if vids:
        st.dataframe(pd.DataFrame(vids), hide_index=True)
    with st.expander("Full metadata (JSON)"):
        st.json({**info, "file": Path(info["file"]).name})  # where the server keeps it is not the viewer's


def _rename(store, name: str) -> None:
    c1, c2 = st.columns([3, 1])
    new = c1.text_input("New name", key="models_new_name", placeholder="e.g. office-day-v2")
    c2.write("")
    if c2.button("Rename"):
        with state.user_errors():
            store.rename(name, new.strip())
            st.session_state["models_flash"] = f"Renamed {name} to {new.strip()}."
            st.session_state["models_next"] = new.strip()
            st.rerun()


def _delete(store, name: str) -> None:
    sure = st.checkbox(f"Yes, delete model {name} permanently", key=f"models_confirm_{name}")
    if st.button("Delete model", type="primary", disabled=not sure, key="models_delete"):
        with state.user_errors():
            store.delete(name)
            st.session_state["models_flash"] = f"Deleted model {name}."
            st.session_state["models_next"] = None
            st.rerun()


def _compare(names: list[str]) -> None:
    st.subheader("Compare two models on the same video")
    if len(names) < 2:
        st.info("Train at least two models to compare them.")
        return
    s = state.settings()
    c1, c2 = st.columns(2)
    a = c1.selectbox("Model A", names, index=0, key="cmp_a")
    b = c2.selectbox("Model B", names, index=1, key="cmp_b")
    f = st.file_uploader(f"Video (up to {s.max_upload_mb} MB)", type=state.VIDEO_TYPES,
                         max_upload_size=s.max_upload_mb, key="cmp_upload")
    if a == b:
        st.caption("Pick two different models.")
    if st.button("Compare", disabled=f is None or a == b):
        with state.user_errors():
            path = state.save_upload(f, s.max_upload_mb)
            results, bands = {}, set()
            for name in (a, b):
                model, pipe = state.saved_model(name, s)
                bands.add(score_bands(model.extra))
                results[name] = pipe.score(model, path, progress=state.progress_bar(f"{name} on {f.name}"))
            # bands only when both models share a score scale
            st.session_state["cmp"] = {"video": f.name, "results": results,
                                       "bands": bands.pop() if len(bands) == 1 else ()}
    cmp = st.session_state.get("cmp")
    if not cmp:
        return
    res = cmp["results"]
    st.plotly_chart(charts.compare(res, title=f"{' vs '.join(res)} on {cmp['video']}", bands=cmp.get("bands", ())),
                    key="cmp_chart")
    cols = st.columns(len(res))
    for col, (name, r) in zip(cols, res.items()):
        col.markdown(f"**{name}**")
        col.metric("Anomaly rate", f"{100 * r.anomaly_rate:.1f}%")
        col.metric("Anomalies", f"{r.n_anomalies} / {r.n_frames}")
        col.metric("Lowest score", f"{float(r.smoothed_scores.min()):+.3f}")


def render() -> None:
    st.title("Models")
    with state.user_errors():
        store = state.model_store()
        if "models_next" in st.session_state:  # after a rename/delete: pick the new name, clear the form
            st.session_state["models_pick"] = st.session_state.pop("models_next")
            st.session_state.pop("models_new_name", None)
        flash = st.session_state.pop("models_flash", None)
        if flash:
            st.success(flash)
        rows = _rows(store)
        if not rows:
            st.info("No model yet: train one on the **Train** page.")
            return
        # columns no model listed has (nu and gamma of motion models, the false-alarm target of the others)
        st.dataframe(pd.DataFrame(rows).dropna(axis=1, how="all"), hide_index=True, key="models_table")
        names = [r["name"] for r in rows]
        if st.session_state.get("models_pick") not in names:
            st.session_state["models_pick"] = names[0]
        name = st.selectbox("Model", names, key="models_pick")
        tab1, tab0, tab2, tab3 = st.tabs(["Inspect", "Marked normal", "Rename", "Delete"])
        with tab1:
            _inspect(store, name)
        with tab0:
            marking.additions_table(name)
        with tab2:
            _rename(store, name)
        with tab3:
            _delete(store, name)
        st.divider()
        _compare(names)
