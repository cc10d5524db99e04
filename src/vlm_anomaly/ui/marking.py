""""This was normal" on the dashboard: one place for the Live, Test and Models pages to call the library's
:mod:`vlm_anomaly.normal` (mark an event or a stretch of a video normal, list the additions, undo one)
and to say what happened in the same words.

Why a module: three pages offer the same action; the words of the result ("learned 2.0 s as normal") and
the undo must not differ between them. All the work is the library's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import streamlit as st

from ..config import Settings
from ..normal import NormalAddition, mark_event_normal, mark_normal, normal_additions, undo_normal
from ..video.sources import source_kind
from . import state


def mark(s: Settings, model: str, path: Path, *, start_s: float | None, end_s: float | None, note: str,
         label: str, name: str | None = None) -> NormalAddition:
    """Mark ``start_s``-``end_s`` of a video the dashboard may read normal for ``model`` (recorded under
    ``name``, e.g. the name it was uploaded with), with a progress bar."""
    source = state.allowed_source(str(path))
    pipe = state.saved_model(model, s)[1]  # the dashboard's cached encoder, not one loaded again per click
    return mark_normal(pipe.store, model, source, start_s=start_s, end_s=end_s, note=note,
                       progress=state.progress_bar(label), name=name, pipeline=pipe)


def mark_event(s: Settings, event_id: int, *, note: str, label: str) -> NormalAddition:
    """Mark a stored event normal for the model that raised it, with a progress bar.

    The library reads the event's source file when it is still there (else the event's own clip, in the
    event store): a file the dashboard may not open is refused here, as when monitoring was started."""
    store = state.live_monitor(s).store
    rec = store.get(int(event_id))
    if source_kind(rec.source) in ("file", "folder") and Path(rec.source).exists():
        state.allowed_source(rec.source)
    pipe = state.saved_model(rec.model, s)[1]
    return mark_event_normal(store, pipe.store, event_id, note=note, progress=state.progress_bar(label),
                             pipeline=pipe)


def undo(model: str, addition_id: str) -> None:
    pipe = state.saved_model(model)[1]
    undo_normal(pipe.store, model, addition_id, pipeline=pipe)


def span(a: NormalAddition) -> str:
    """What an addition covers, in words: '2.5-4.5 s' or 'the whole video'."""
    if a.start_s is None and a.end_s is None:
        return "the whole video"
    return f"{a.start_s or 0.0:.1f}-{a.end_s:.1f} s" if a.end_s is not None else f"from {a.start_s:.1f} s"


def seconds(a: NormalAddition) -> float | None:
    return None if a.start_s is None or a.end_s is None else max(0.0, a.end_s - a.start_s)


def said(model: str, a: NormalAddition, what: str) -> dict:
    """The result of a marking, kept in the session: what to say, and what an undo needs."""
    secs = seconds(a)
    amount = f"{secs:.1f} s" if secs is not None else span(a)
    return {"model": model, "id": a.id,
            "text": f"Learned {amount} of {what} ({a.frames} frames) as normal: model {model} recalibrated.",
            "undone": False}


def result(done: dict, *, key: str, rescore: Callable[[], None] | None = None, after: str = "",
           recheck: bool = True) -> None:
    """The last marking's result with its undo (and, on the Test page, "Analyse again").

    ``recheck``: read the model to see whether the addition was undone elsewhere (the Models page, another
    browser); off where the page refreshes every second."""
    if recheck and not done.get("undone"):
        with state.user_errors():
            done["undone"] = done["id"] not in {a.id for a in normal_additions(state.model_store(), done["model"])}
    if done.get("undone"):
        st.info(f"Undone: model {done['model']} no longer counts that footage as normal.")
    else:
        st.success(done["text"] + (f" {after}" if after else ""))
    c1, c2, _ = st.columns([1, 1, 3])
    if rescore is not None and c1.button("Analyse again", key=f"{key}_rescore", type="primary"):
        rescore()
        st.rerun()
    if not done.get("undone") and c2.button("Undo", key=f"{key}_undo_{done['id']}"):
        with state.user_errors():
            undo(done["model"], done["id"])
            done["undone"] = True
            st.rerun()


def additions_table(model: str) -> None:
    """The Models page's list of a model's normal additions, each with an undo."""
    store = state.model_store()
    adds = normal_additions(store, model)
    if not adds:
        st.info(f"Nothing was marked normal for model {model}: it knows only its training videos. Mark an alert "
                "normal on the **Live** page, or an incident or time range on the **Test** page.")
        return
    st.caption(f"Footage marked normal after training ({len(adds)}): the model counts it as normal data and its "
               "threshold was recalibrated with it. Undo removes one and recalibrates again.")
    rows = [{"#": k + 1, "video": Path(str(a.source)).name, "range": span(a), "frames": a.frames,
             "added": a.added_at.replace("T", " "), "note": a.note} for k, a in enumerate(adds)]
    st.table(pd.DataFrame(rows).set_index("#"))
    cols = st.columns(min(len(adds), 6))
    for k, a in enumerate(adds):
        if cols[k % len(cols)].button(f"Undo #{k + 1}", key=f"models_undo_{a.id}",
                                      help=f"forget {Path(str(a.source)).name} {span(a)}"):
            with state.user_errors():
                undo(model, a.id)
                st.session_state["models_flash"] = (f"Undone: {Path(str(a.source)).name} {span(a)} is no longer "
                                                    f"normal data of model {model}.")
                st.rerun()
