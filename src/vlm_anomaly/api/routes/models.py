"""Saved models, and the jobs that train and score them from uploaded videos.

The upload handlers are plain ``def``: FastAPI runs them in its thread pool, so copying the uploads
and loading a model never block the event loop (and with it every other request)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi import Path as PathParam

from ...config import updated
from ...pipeline import Pipeline
from ...store.models import ModelInfo
from ..deps import Svc
from ..jobs import Job, JobSummary
from ..limits import save_uploads, upload_name
from ..schemas import Deleted, ModelDetail, ModelName

router = APIRouter()


@router.get("/models", tags=["models"])
def list_models(svc: Svc) -> list[ModelInfo]:
    return svc.pipeline.store.list()


@router.get("/models/{name}", tags=["models"], response_model=ModelDetail)
def show_model(svc: Svc, name: ModelName) -> dict:
    """A model's metadata; its file by name only (where the server keeps it is not the client's)."""
    info = svc.pipeline.store.show(name)
    info["file"] = Path(info["file"]).name
    return info


@router.delete("/models/{name}", tags=["models"])
def delete_model(svc: Svc, name: ModelName) -> Deleted:
    svc.pipeline.store.delete(name)
    return Deleted(deleted=name)


@router.post("/models/{name}/train", tags=["models"], status_code=202)
def train_model(
    svc: Svc,
    name: ModelName,
    files: Annotated[list[UploadFile], File(description="normal videos")],
    interval_ms: Annotated[int | None, Form()] = None,
    expected_objects: Annotated[str | None, Form(max_length=1000)] = None,
) -> Job:
    """Train (or retrain) a model from uploaded normal videos; returns a job to poll."""
    svc.pipeline.store.path_for(name)  # a bad name is refused before the upload is saved
    settings = updated(svc.settings, {"interval_ms": interval_ms, "expected_objects": expected_objects})
    with svc.jobs.folder() as (jid, folder):
        paths = save_uploads(files, folder, svc.max_video_bytes)
    encoder = svc.pipeline.encoder
    names = [upload_name(f) for f in files]  # what the model and its errors call the videos

    def work(progress) -> dict:
        model = Pipeline(settings, encoder=encoder).train(name, paths, progress=progress, names=names)
        return {"model": name, "frames": model.n_frames, "videos": len(model.videos),
                "encoder": model.encoder_label}

    return svc.jobs.submit(jid, "train", work, {"model": name, "files": len(paths)}, uploads=dict(zip(paths, names)))


@router.post("/models/{name}/score", tags=["models"], status_code=202)
def score_video(
    svc: Svc,
    name: ModelName,
    file: Annotated[UploadFile, File(description="video to score")],
    threshold: Annotated[float | None, Form(allow_inf_nan=False)] = None,
    interval_ms: Annotated[int | None, Form()] = None,
) -> Job:
    """Score an uploaded video with a model; the job's result holds the per-frame scores."""
    model = svc.pipeline.store.load(name)
    updated(svc.settings, {"interval_ms": interval_ms})  # checks an override before the upload
    with svc.jobs.folder() as (jid, folder):
        [path] = save_uploads([file], folder, svc.max_video_bytes)
    shown = upload_name(file)

    def work(progress) -> dict:
        r = svc.pipeline.score(model, path, progress=progress, threshold=threshold, interval_ms=interval_ms)
        return r.named(shown).as_dict()

    return svc.jobs.submit(jid, "score", work, {"model": name, "file": shown}, uploads={path: shown})


@router.get("/jobs", tags=["jobs"], response_model=list[JobSummary])
def list_jobs(svc: Svc) -> list[dict]:
    return [j.model_dump(exclude={"result"}) for j in svc.jobs.list()]


@router.get("/jobs/{job_id}", tags=["jobs"])
def get_job(svc: Svc, job_id: Annotated[str, PathParam(max_length=64)]) -> Job:
    return svc.jobs.get(job_id)
