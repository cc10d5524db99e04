from __future__ import annotations

import os

import pytest

from .scenes import write_clip

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FAST_SPAN = range(10, 22)


@pytest.fixture(scope="session")
def squares(tmp_path_factory):
    """Two normal clips (slow squares) and a test clip where a fast square crosses frames 10-21."""
    root = tmp_path_factory.mktemp("squares")
    train = [root / "train1", root / "train2"]
    write_clip(train[0], n=24, offset=0)
    write_clip(train[1], n=24, offset=6)
    boxes = write_clip(root / "test", n=28, offset=3, fast_span=FAST_SPAN)
    return {"root": root, "train": [str(p) for p in train], "test": str(root / "test"), "fast_boxes": boxes}


@pytest.fixture(scope="session")
def encoder():
    from vlm_anomaly.encoders import create_encoder

    return create_encoder("efficientnet")


@pytest.fixture(scope="session")
def trained(squares, tmp_path_factory):
    """An attribute model trained through the Pipeline on the normal square clips (saved in a store)."""
    from vlm_anomaly import Pipeline, load_settings

    home = tmp_path_factory.mktemp("attr-home")
    pipe = Pipeline(load_settings(overrides={"home": home, "encoder": "efficientnet", "detector": "attributes",
                                             "interval_ms": 0, "threads": 2}))
    model = pipe.train("squares", squares["train"])
    return {"pipe": pipe, "model": model, "home": home}
