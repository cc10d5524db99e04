""""This was normal" with the shipped default detector, as a user meets it: an alert on a clip,
the alert marked normal (the training videos gone by then), the same clip watched again without an
alert, another kind of anomaly still caught, and undo bringing the old scores back exactly."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.errors import AdditionNotFoundError, CannotLearnError, InvalidVideoError, VlmAnomalyError
from vlm_anomaly.events import EventStore, Monitor
from vlm_anomaly.normal import mark_event_normal, mark_normal, normal_additions, undo_normal
from vlm_anomaly.synthetic import write_incident_video, write_video

INTRUDER = (4.0, 8.0)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """Model "street" trained with the shipped defaults on two normal clips that are then moved
    away (the model must never read them again), an intruder clip and a clip with another anomaly."""
    root = tmp_path_factory.mktemp("normal")
    (root / "train").mkdir()
    train = [write_video(root / "train" / "n1.mp4", seconds=12, seed=0),
             write_video(root / "train" / "n2.avi", seconds=12, seed=0)]
    s = load_settings(overrides={"home": root / "home", "interval_ms": 250})
    Pipeline(s).train("street", train)
    shutil.move(root / "train", root / "moved-away")  # the training videos are not where training read them
    intruder = write_video(root / "intruder.mp4", seconds=12, seed=0, start_s=30, anomaly_span=INTRUDER)
    box = write_incident_video(root / "box.mp4", seconds=12, start_s=70, standing=(3.0, 12.0))
    return root, s, intruder, box


def _watch(s, store, source) -> list:
    before = {e.id for e in store.list()}
    mon = Monitor(Pipeline(s), store=store)
    mon.start("street", str(source), realtime=False)
    assert mon.wait(120)
    return [e for e in store.list() if e.id not in before]


def test_an_alert_marked_normal_raises_no_alert_again_and_undo_restores(home, tmp_path):
    root, s, intruder, box = home
    pipe = Pipeline(s)
    assert not (root / "train").exists()
    before = pipe.score("street", intruder, describe=False)
    store = EventStore(f"sqlite:///{tmp_path}/events.db", tmp_path / "media")

    [ev] = _watch(s, store, intruder)
    assert ev.start_time <= INTRUDER[1] and ev.end_time >= INTRUDER[0]

    done = []
    add = mark_event_normal(store, pipe.store, ev.id, settings=s, progress=lambda *a: done.append(a))
    assert add.source == "intruder.mp4" and add.note == f"event {ev.id}"
    assert add.frames >= 4 * (ev.end_time - ev.start_time)
    assert add.start_s < ev.start_time and add.end_s > ev.end_time and done[-1][2] == "done"
    assert normal_additions(pipe.store, "street") == [add]

    # the same clip, watched again: no alert
    assert _watch(s, store, intruder) == []
    # a different anomaly (something set down on the path) is still caught: the model is not blind
    assert len(_watch(s, store, box)) >= 1

    undo_normal(pipe.store, "street", add.id, settings=s)
    assert normal_additions(pipe.store, "street") == []
    after = Pipeline(s).score("street", intruder, describe=False)
    np.testing.assert_array_equal(after.raw_scores, before.raw_scores)
    assert len(_watch(s, store, intruder)) == 1
    with pytest.raises(AdditionNotFoundError):
        undo_normal(pipe.store, "street", add.id, settings=s)


def test_a_live_cameras_event_is_learnt_from_its_evidence_clip(home, tmp_path):
    """When the event's source is not a file (a camera), the event's own clip is what is learnt."""
    root, s, intruder, _ = home
    cam = tmp_path / "camera.mp4"
    shutil.copy(intruder, cam)
    store = EventStore(f"sqlite:///{tmp_path}/events.db", tmp_path / "media")
    models = Pipeline(s).store
    [ev] = _watch(s, store, cam)
    cam.unlink()  # the camera's footage is gone: only the event's evidence clip remains
    add = mark_event_normal(store, models, ev.id, settings=s)
    try:
        assert add.source == f"camera.mp4 event {ev.id}" and add.start_s is None and add.frames > 0
        assert _watch(s, store, intruder) == []
    finally:
        undo_normal(models, "street", add.id, settings=s)


def test_a_time_range_of_a_file_and_bad_input(home, tmp_path):
    root, s, intruder, _ = home
    models = Pipeline(s).store
    add = mark_normal(models, "street", intruder, start_s=3.0, end_s=9.0, note="delivery van", settings=s)
    try:
        # 6 s at 4 samples a second
        assert (add.start_s, add.end_s, add.note) == (3.0, 9.0, "delivery van") and 23 <= add.frames <= 25
        assert Pipeline(s).score("street", intruder, describe=False).n_anomalies == 0
    finally:
        undo_normal(models, "street", add.id, settings=s)
    with pytest.raises(InvalidVideoError, match="before it starts"):
        mark_normal(models, "street", intruder, start_s=5.0, end_s=2.0, settings=s)
    # past the end: the message says how long the video is (it said "no sampled frame")
    with pytest.raises(InvalidVideoError, match=r"the range starts at 50 s, after the video's end \(\d+\.\d s\)"):
        mark_normal(models, "street", intruder, start_s=50.0, end_s=60.0, settings=s)
    with pytest.raises(InvalidVideoError):
        mark_normal(models, "street", tmp_path / "missing.mp4", settings=s)
    with pytest.raises(VlmAnomalyError, match="open"):
        store = EventStore(f"sqlite:///{tmp_path}/e.db", tmp_path / "m")
        eid = store.create(source=str(intruder), model="street", start_time=1.0, worst_score=-1.0, worst_time=1.0,
                           mean_score=-1.0)
        mark_event_normal(store, models, eid, settings=s)
    assert normal_additions(models, "street") == []


def test_a_training_clip_given_twice_is_refused(home, tmp_path):
    """The same video twice (a copy under another name), in training or marked normal after it, is
    refused before any work: its held-out twin explains it perfectly and tightened the threshold
    (three Ped2 clips, one twice, flagged 50-83 % of new normal clips, 0 % without the twin)."""
    root, s, intruder, _ = home
    pipe = Pipeline(s)
    copy = shutil.copy(root / "moved-away" / "n1.mp4", tmp_path / "copy of n1.mp4")
    with pytest.raises(InvalidVideoError, match=r"copy of n1\.mp4 is training clip n1\.mp4 \(identical content\)"):
        mark_normal(pipe.store, "street", copy, settings=s)
    assert normal_additions(pipe.store, "street") == []
    other = write_video(tmp_path / "other.mp4", seconds=3, seed=0, start_s=40)
    same = r"copy of n1\.mp4 is the same video as .*n1\.mp4 \(identical content\)"
    with pytest.raises(InvalidVideoError, match=same):
        pipe.train("twice", [root / "moved-away" / "n1.mp4", other, copy])
    with pytest.raises(InvalidVideoError, match=r"b is the same video as a"):
        pipe.fit([root / "moved-away" / "n1.mp4", copy], names=["a", "b"])  # uploads: their names
    assert "twice" not in pipe.store.names()


def test_the_same_footage_marked_normal_twice_is_refused(home, tmp_path):
    """The same range of the same video twice (an event's Normal button pressed twice) would be a
    held-out twin like a training clip given twice; another recording that happens to share its
    name and range (cameras name their files alike) is new footage and is learnt."""
    from vlm_anomaly.errors import AlreadyLearntError

    root, s, _, _ = home
    pipe = Pipeline(s)
    (tmp_path / "day1").mkdir()
    (tmp_path / "day2").mkdir()
    first = write_video(tmp_path / "day1" / "clip.mp4", seconds=6, seed=0, start_s=50)
    other = write_video(tmp_path / "day2" / "clip.mp4", seconds=6, seed=0, start_s=90)
    a = mark_normal(pipe.store, "street", first, start_s=1.0, end_s=4.0, settings=s)
    try:
        said = rf"clip\.mp4 \(1-4 s\) was learnt as normal already \(addition {a.id}"
        with pytest.raises(AlreadyLearntError, match=said):
            mark_normal(pipe.store, "street", first, start_s=1.0, end_s=4.0, settings=s)
        b = mark_normal(pipe.store, "street", other, start_s=1.0, end_s=4.0, settings=s)
        assert [x.id for x in normal_additions(pipe.store, "street")] == [a.id, b.id]
        undo_normal(pipe.store, "street", b.id, settings=s)
    finally:
        undo_normal(pipe.store, "street", a.id, settings=s)
    assert normal_additions(pipe.store, "street") == []


def test_a_detector_that_cannot_learn_says_so(tmp_path, normal_video, normal_video_avi, efficientnet_encoder):
    s = load_settings(overrides={"home": tmp_path, "detector": "ocsvm", "encoder": "efficientnet"})
    pipe = Pipeline(s, encoder=efficientnet_encoder)
    pipe.train("svm", [normal_video])
    with pytest.raises(CannotLearnError, match="'ocsvm' cannot learn without retraining"):
        mark_normal(pipe.store, "svm", normal_video_avi, settings=s)


def test_cli_add_list_undo_and_event(home, run_cli, tmp_path):
    root, s, intruder, _ = home
    h = root / "home"
    r = run_cli("normal", "add", "street", intruder, "--start", "3", "--end", "9", "--note", "the van", home=h,
                env={"VLM_ANOMALY_PROGRESS": "1"})
    assert r.returncode == 0, r.stderr
    assert "model street learnt intruder.mp4 3-9 s as normal" in r.stdout and "frames" in r.stderr
    r = run_cli("normal", "list", "street", "--json", home=h)
    [a] = __import__("json").loads(r.stdout)
    assert (a["source"], a["start_s"], a["end_s"], a["note"]) == ("intruder.mp4", 3.0, 9.0, "the van")
    assert run_cli("normal", "undo", "street", a["id"], home=h).returncode == 0
    assert "learnt nothing" in run_cli("normal", "list", "street", home=h).stdout
    r = run_cli("normal", "undo", "street", a["id"], home=h)
    assert r.returncode == 2 and r.stderr.startswith("error: model 'street' has no footage marked normal")
    r = run_cli("normal", "event", "12345", home=h)
    assert r.returncode == 2 and "no event with id 12345" in r.stderr


def test_cli_lists_notes_and_names_with_brackets_as_text(home, run_cli, tmp_path):
    """A note or a file name is the user's text: ``normal list`` prints ``[/b]`` as it is (Rich read
    it as markup: 'error: MarkupError', exit 1, and the list could not be seen at all)."""
    root, s, intruder, _ = home
    h = root / "home"
    clip = tmp_path / "[red]cam.mp4"
    shutil.copy(intruder, clip)
    r = run_cli("normal", "add", "street", clip, "--end", "2", "--note", "[/b] the van", home=h)
    assert r.returncode == 0 and "learnt [red]cam.mp4 0-2 s" in r.stdout, r.stdout + r.stderr
    r = run_cli("normal", "list", "street", home=h, env={"COLUMNS": "400"})
    assert r.returncode == 0 and "[/b] the van" in r.stdout and "[red]cam.mp4" in r.stdout, r.stdout + r.stderr
    [a] = __import__("json").loads(run_cli("normal", "list", "street", "--json", home=h).stdout)
    assert run_cli("normal", "undo", "street", a["id"], home=h).returncode == 0


@pytest.mark.parametrize("tamper", [
    lambda m: m.__setitem__("normal_additions", "not a list"),
    lambda m: m.__setitem__("normal_additions", [{"source": "no id"}]),
    lambda m: m["detector"]["motion"].__setitem__("normal", {"x": 999}),  # a source the model does not have
])
def test_a_tampered_record_of_additions_is_a_corrupt_model(home, tmp_path, tamper):
    """Model files are untrusted input: what they say was learnt is checked like the rest."""
    import json
    import zipfile

    from vlm_anomaly.errors import CorruptModelError
    from vlm_anomaly.store import ModelStore

    root, s, intruder, _ = home
    src = Pipeline(s).store.path_for("street")
    store = ModelStore(tmp_path)
    dst = store.path_for("bad")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "model.json":
                meta = json.loads(data)
                tamper(meta)
                data = json.dumps(meta).encode()
            zout.writestr(item, data)
    with pytest.raises(CorruptModelError):
        store.load("bad")
