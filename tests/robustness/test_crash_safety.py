"""Nothing lost: real processes are SIGKILLed while training, saving and scoring; two processes
save into one store at once. Afterwards the previous model and every committed result are intact
and the store loads."""

from __future__ import annotations

import json
import os
import random
import time

import numpy as np
import pytest

from vlm_anomaly.store import ModelStore

from .workers import big_model

#: real processes, servers or a browser: tens of seconds (deselect with -m "not slow")
pytestmark = pytest.mark.slow


def kill_mid_write(zygote, pid: int, folder, timeout: float = 60) -> list[dict]:
    """SIGKILL ``pid`` the moment a temp file shows up in ``folder``: the worst moment for a save."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(n.endswith(".tmp") for n in os.listdir(folder)):
            return zygote.kill(pid)
        time.sleep(0.0005)
    zygote.kill(pid)
    raise AssertionError(f"no write seen in {folder} within {timeout} s")


def test_sigkill_during_saves_keeps_a_complete_model(zygote, tmp_path):
    """A worker saves a ~4 MB model in a loop; it is killed 8 times, at random moments and at the
    very moment it is writing the file."""
    models = tmp_path / "models"
    store = ModelStore(models)
    store.save(big_model(-1, frames=4000), "big")
    rng = random.Random(1234)
    survived = mid_write = 0
    last = -1
    for round_ in range(8):
        pid = zygote.start("save_loop", models_dir=str(models), name="big", start=last + 1, frames=4000)
        if round_ % 2:
            events = kill_mid_write(zygote, pid, models)
        else:
            first = zygote.wait_for(lambda e, p=pid: e.get("pid") == p and e["event"] == "committed")
            time.sleep(rng.uniform(0.0, 0.6))
            events = [first] + zygote.kill(pid)
        committed = max([e["version"] for e in events if e["event"] == "committed"], default=last)
        mid_write += bool(list(models.glob(".*.tmp")))  # killed while writing a temp file
        model = ModelStore(models).load("big")  # loads, and is a whole version
        v = model.extra["version"]
        assert committed <= v <= committed + 1, (round_, committed, v)
        assert model.train_embeddings.shape == (4000, 512)
        survived += 1
        last = v
    # temp files of the killed writers are swept by the next save; the store lists cleanly
    store.save(big_model(1000, frames=10), "big")
    assert not list(models.glob(".*.tmp")) and store.names() == ["big"]
    assert mid_write >= 2  # (a kill may land just after the rename: then it is not counted)
    print(f"\nkill tests survived (saving): {survived}/8, {mid_write} of them killed mid-write")


def test_sigkill_during_training_and_scoring(zygote, tmp_path, clips, trained_home):
    """Kill a train/save/score/write loop in each stage, and exactly while it writes the model,
    a result file or a cached training embedding: the previous model and every committed result
    stay intact; nothing half-written appears under a final name."""
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    src = ModelStore(trained_home / "models").path_for("m")
    (home / "models" / "m.vlmodel").write_bytes(src.read_bytes())
    results = tmp_path / "results"
    results.mkdir()
    args = dict(home=str(home), clips=[str(clips["normal1"]), str(clips["normal2"])],
                test_clip=str(clips["test"]), results=str(results))
    rng = random.Random(7)
    survived = []
    cache = home / "cache" / "embeddings"
    cache.mkdir(parents=True)
    plan = [("train", None), ("train", home / "models"), ("score", None), ("write", results), ("train", cache)]
    for stage, watch in plan:
        pid = zygote.start("train_score_loop", **args, cache=watch == cache)
        zygote.wait_for(lambda e, p=pid, s=stage: e.get("pid") == p and e.get("stage") == s, timeout=240)
        if watch is None:
            time.sleep(rng.uniform(0.0, 0.4))
            events = zygote.kill(pid)
        else:  # at the moment the model (or a result file) is being written
            events = kill_mid_write(zygote, pid, watch, timeout=120)
        model = ModelStore(home / "models").load("m")  # previous or new model, whole either way
        assert model.n_frames > 0 and model.encoder.backend == "efficientnet"
        for e in events:
            if e["event"] == "committed":
                data = json.loads((results / f"r{e['i']}.json").read_text())
                assert len(data["frames"]) == e["frames"]
        for f in results.glob("r*.json"):  # whatever is under a final name is complete
            json.loads(f.read_text())
        for f in results.glob("r*.csv"):
            rows = f.read_text().splitlines()
            assert rows[0].startswith("index,") and len(rows) > 1
        for f in cache.glob("*.npz"):  # cached training embeddings: whole or absent
            with np.load(f, allow_pickle=False) as z:
                assert len(z["indices"]) == len(z["embeddings"]) > 0
        survived.append(stage + (f" (mid-write in {watch.name})" if watch else ""))
    print(f"\nkill tests survived (train/score/write): {len(survived)} {survived}")


def test_two_processes_saving_into_one_store(zygote, tmp_path):
    """Two writers save the same and their own names concurrently; all saves land whole."""
    models = tmp_path / "models"
    a = zygote.start("save_loop", models_dir=str(models), name="shared", start=0, count=12, frames=1500)
    b = zygote.start("save_loop", models_dir=str(models), name="shared", start=100, count=12, frames=1500)
    c = zygote.start("save_loop", models_dir=str(models), name="own-c", start=200, count=6, frames=500)
    store = ModelStore(models)
    loads = 0
    for pid in (a, b, c):
        while True:
            e = zygote.wait_for(lambda e, p=pid: e.get("pid") == p, timeout=240)
            if e["event"] == "done":
                break
            # a reader in the middle of the writes always sees a whole model
            if (models / "shared.vlmodel").exists():
                m = store.load("shared")
                assert m.train_embeddings.shape == (1500, 512)
                loads += 1
    final = store.load("shared")
    assert final.extra["version"] in (11, 111)
    assert store.load("own-c").extra["version"] == 205
    assert sorted(store.names()) == ["own-c", "shared"]
    assert not list(models.glob(".*.tmp"))
    assert np.all(np.isfinite(final.decision_function(np.zeros((1, 512)))))
    assert loads > 0
