"""Shared fixtures: real encoded videos, frame folders, real encoders, an isolated settings home.

Everything expensive (videos, encoders) is built once per session. Other test modules reuse these
by name: ``normal_video``, ``normal_video_avi``, ``anomaly_video`` (+ ``anomaly_span``),
``frame_folder``, ``efficientnet_encoder``, ``clip_encoder``, ``scene_frames``, ``scene_embeddings``,
``settings_home``, ``ped2_dir``, ``make_video``, ``run_cli`` and ``dash_clips``. Plain helpers (CLI
runner, its environment, a free port) are in ``tests/helpers.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Before anything imports huggingface_hub / open_clip: never try to reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
# A developer's own VLM_ANOMALY_* settings must not change what the tests see.
for _k in [k for k in os.environ if k.startswith("VLM_ANOMALY_") and not k.startswith("VLM_ANOMALY_TEST_")]:
    del os.environ[_k]

import pytest  # noqa: E402

from tests import helpers  # noqa: E402
from tests.helpers import REPO  # noqa: E402
from vlm_anomaly.config import Settings, load_settings  # noqa: E402
from vlm_anomaly.synthetic import write_frames, write_video  # noqa: E402

#: seconds of ``anomaly_video`` during which the intruder is on screen
ANOMALY_SPAN = (4.0, 7.0)
#: size of the generated clips (w, h); small keeps encoding cheap
CLIP_SIZE = (320, 240)


def find_ped2() -> Path | None:
    """UCSD Ped2 at ``$VLM_ANOMALY_TEST_PED2`` when set (then only there: an override that points
    nowhere must not silently test another copy), else ``<repo>/../shared/data/ped2`` (also found
    from a git worktree further down)."""
    explicit = os.environ.get("VLM_ANOMALY_TEST_PED2")
    if explicit:
        return Path(explicit)
    for c in (base / "shared" / "data" / "ped2" for base in REPO.parents):
        if is_ped2(c):
            return c
    return None


def is_ped2(path: Path) -> bool:
    return (path / "train").is_dir() and (path / "test_labels.json").is_file()


#: the 6-second clips shared by the dashboard, training-set and live tests (same bytes -> cache hits)
DASH_CLIPS = {"normal_a": dict(seed=0), "normal_b": dict(seed=1), "intruder": dict(seed=0, anomaly_span=(2.5, 4.5))}


@pytest.fixture(scope="session")
def dash_clips(tmp_path_factory) -> dict[str, Path]:
    """6-second 320x240 clips: two normal, one with an intruder from 2.5 s to 4.5 s."""
    d = tmp_path_factory.getbasetemp() / "dash-clips"
    d.mkdir(exist_ok=True)
    out = {}
    for name, kw in DASH_CLIPS.items():
        p = d / f"{name}.mp4"
        if not p.exists():
            write_video(p, seconds=6, **kw)
        out[name] = p
    return out


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def make_video(media_dir) -> Callable[..., Path]:
    """``make_video("clip.mp4", seconds=4, fps=7)``: a synthetic clip, encoded once per session."""
    made: dict[tuple, Path] = {}

    def make(name: str, **kwargs) -> Path:
        key = (name, tuple(sorted(kwargs.items())))
        if key not in made:
            path = media_dir / name
            assert not path.exists(), f"{name} already made with other arguments"
            made[key] = write_video(path, **kwargs)
        return made[key]

    return make


@pytest.fixture(scope="session")
def normal_video(make_video) -> Path:
    """6 s, 10 fps, 320x240 mp4 (H.264) of the normal scene, scene time 0-6 s."""
    return make_video("normal.mp4", seconds=6, fps=10, size=CLIP_SIZE, seed=0)


@pytest.fixture(scope="session")
def normal_video_avi(make_video) -> Path:
    """6 s, 10 fps, 320x240 avi (MPEG-4 part 2) of the same scene, scene time 6-12 s."""
    return make_video("normal.avi", seconds=6, fps=10, size=CLIP_SIZE, seed=0, start_s=6.0)


@pytest.fixture(scope="session")
def anomaly_span() -> tuple[float, float]:
    return ANOMALY_SPAN


@pytest.fixture(scope="session")
def anomaly_video(make_video) -> Path:
    """10 s, 10 fps mp4 of the same scene at scene time 20-30 s (never seen in training), with an
    intruder (a red vehicle) on screen during ``ANOMALY_SPAN`` seconds of the file."""
    return make_video("intruder.mp4", seconds=10, fps=10, size=CLIP_SIZE, seed=0, start_s=20.0,
                      anomaly_span=ANOMALY_SPAN)


@pytest.fixture(scope="session")
def frame_folder(media_dir) -> Path:
    """20 PNG frames ``0.png .. 19.png`` (160x120) of the normal scene."""
    return write_frames(media_dir / "frames", n=20, size=(160, 120), seed=0)


@pytest.fixture(scope="session")
def efficientnet_encoder():
    """The offline pretrained EfficientNet-Lite0 encoder (real ImageNet weights)."""
    from vlm_anomaly.encoders import create_encoder

    return create_encoder("efficientnet", device="cpu")


@pytest.fixture(scope="session")
def clip_cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clip-cache")


@pytest.fixture(scope="session")
def clip_encoder(clip_cache_dir):
    """OpenCLIP ViT-B-32 with random (seeded) weights: the real CLIP code path, minus the download.

    Prompt embeddings are cached under ``clip_cache_dir / "text"``.
    """
    from vlm_anomaly.encoders import create_encoder

    return create_encoder("openclip", clip_pretrained="none", device="cpu", cache_dir=clip_cache_dir)


@pytest.fixture(scope="session")
def scene_frames(normal_video) -> list:
    """Five RGB frames of ``normal_video``, one per second."""
    from vlm_anomaly.video import sample_frames

    return [f.image for f in sample_frames(normal_video, interval_ms=1000, max_frames=5)]


@pytest.fixture(scope="session")
def scene_embeddings(request, scene_frames):
    """``scene_embeddings("clip_encoder")`` -> (encoder, embeddings of ``scene_frames``), encoded once."""
    done: dict[str, tuple] = {}

    def get(name: str):
        if name not in done:
            enc = request.getfixturevalue(name)
            done[name] = (enc, enc.encode(scene_frames))
        return done[name]

    return get


@dataclass
class TrainedModel:
    """A model trained once per session in a home of its own; tests work on copies (:meth:`install`)."""

    name: str
    home: Path
    settings: Settings
    model: object  # AnomalyModel
    #: the progress calls of its training: (done, total, stage)
    progress: list[tuple[int, int, str]] = field(default_factory=list)

    def install(self, home: Path) -> Path:
        """Copy the whole home (model store and embedding cache) to ``home``; returns ``home``."""
        shutil.copytree(self.home, home, dirs_exist_ok=True)
        return Path(home)


@pytest.fixture(scope="session")
def default_street_model(tmp_path_factory, make_video) -> TrainedModel:
    """Model "street" as a user gets it: the shipped defaults (the ``motion`` detector), trained on 12 s
    of the normal scene every 250 ms, once as mp4 and once as avi - shared by the end-to-end live and
    Ray tests (copy it with ``install``)."""
    from vlm_anomaly.pipeline import Pipeline

    normal = [make_video("street-normal.mp4", seconds=12, seed=0), make_video("street-normal.avi", seconds=12, seed=0)]
    home = tmp_path_factory.mktemp("street-default-home")
    settings = load_settings(overrides={"home": home, "interval_ms": 250})
    calls: list[tuple[int, int, str]] = []
    model = Pipeline(settings).train("street", normal, progress=lambda *a: calls.append(a))
    assert model.detector.name == settings.detector == "motion"
    return TrainedModel("street", home, settings, model, calls)


@pytest.fixture(scope="session")
def street_model(tmp_path_factory, make_video, efficientnet_encoder) -> TrainedModel:
    """Model "street": EfficientNet-Lite0 features every 250 ms of 12 s of the normal scene, once as
    mp4 and once as avi, One-Class SVM - trained once, shared by the tests of the watcher's mechanics
    (accounting, alerts, Home Assistant, Frigate, secrets, crash safety), which were written against an
    embedding model's scores and descriptions; the end-to-end live and Ray tests use
    :func:`default_street_model` (copy either with ``install``)."""
    from vlm_anomaly.pipeline import Pipeline

    normal = [make_video("street-normal.mp4", seconds=12, seed=0), make_video("street-normal.avi", seconds=12, seed=0)]
    home = tmp_path_factory.mktemp("street-home")
    settings = load_settings(overrides={"detector": "ocsvm", "home": home, "encoder": "efficientnet",
                                        "interval_ms": 250})
    calls: list[tuple[int, int, str]] = []
    model = Pipeline(settings, encoder=efficientnet_encoder).train("street", normal,
                                                                    progress=lambda *a: calls.append(a))
    return TrainedModel("street", home, settings, model, calls)


@pytest.fixture
def settings_home(tmp_path) -> Settings:
    """Settings with a fresh ``home`` (models, caches) under tmp_path, the offline encoder and the
    embedding detector ``ocsvm``: its user checks that the encoder runs on nothing before every source
    has been checked, which a detector that embeds nothing would pass vacuously."""
    return load_settings(overrides={"detector": "ocsvm", "home": tmp_path / "home", "encoder": "efficientnet"})


@pytest.fixture(scope="session")
def ped2_dir() -> Path:
    path = find_ped2()
    if path is None:
        pytest.skip("UCSD Ped2 not found at <repo>/../shared/data/ped2 (or set VLM_ANOMALY_TEST_PED2)")
    if not is_ped2(path):
        pytest.fail(f"VLM_ANOMALY_TEST_PED2={path} is not a UCSD Ped2 folder (needs train/ and test_labels.json)")
    return path


@pytest.fixture(scope="session")
def run_cli(tmp_path_factory) -> Callable[..., subprocess.CompletedProcess]:
    """``run_cli(*args, home=..., env=..., timeout=...)``: ``python -m vlm_anomaly.cli`` in a subprocess.

    Runs in an empty working directory so a stray ``config.yaml`` cannot leak in.
    """
    cwd = tmp_path_factory.mktemp("cli-cwd")

    def run(*args, home: Path, env: dict[str, str] | None = None, timeout: float = 600
            ) -> subprocess.CompletedProcess:
        return helpers.run_cli(*args, home=home, env=env, cwd=cwd, timeout=timeout)

    return run
