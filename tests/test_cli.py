"""The command line end to end, each command in its own process, as a user runs it."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tests.helpers import free_port
from vlm_anomaly.encoders import build_prompts
from vlm_anomaly.store import ModelStore

#: Frame AUC (smoothed scores, as ``score --labels`` reports it) that the shipped default detector must
#: reach on UCSD Ped2 test clip 02 in :func:`test_ped2_frame_folders_end_to_end`. The default
#: (``motion``) gives 1.000 there, the former default (whole-frame EfficientNet-Lite0 + One-Class SVM)
#: 0.908; a change of the default detector must keep it above this floor.
PED2_CLIP02_MIN_AUC = 0.95

#: real processes, servers or a browser: tens of seconds (deselect with -m "not slow")
pytestmark = pytest.mark.slow

CSV_FIELDS = ["index", "time", "raw_score", "smoothed_score", "label", "description", "confidence"]


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory):
    return tmp_path_factory.mktemp("cli-home")


@pytest.fixture(scope="module")
def trained(run_cli, cli_home, normal_video, normal_video_avi, frame_folder):
    """``vlm-anomaly train street normal.mp4 normal.avi frames/ --detector ocsvm`` with the offline encoder.

    Not the shipped default on purpose: these tests check what the embedding pipeline adds to the
    CLI's output (expected objects, ImageNet descriptions with confidences, the One-Class SVM's
    parameters). The default (``motion``) goes through the CLI in :func:`test_demo_finds_the_intruder_and_nothing_else`,
    :func:`test_ped2_frame_folders_end_to_end` and ``tests/motion``."""
    r = run_cli("train", "street", normal_video, normal_video_avi, frame_folder, "--encoder", "efficientnet",
                "--detector", "ocsvm", "--interval-ms", "500", "--expected-objects", "person,bicycle", home=cli_home)
    assert r.returncode == 0, r.stderr
    return r


def _assert_clean_error(r, expected: str) -> None:
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error:") and expected in lines[0], lines[0]
    assert "Traceback" not in r.stderr + r.stdout


def _read_csv(path):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def test_train_saves_a_model(trained, cli_home):
    # 6 s clips every 500 ms -> 12 frames each; 20 frames at 25 fps (0.76 s) -> 2 frames
    assert "saved model street: 26 frames from 3 video(s)" in trained.stdout
    assert "efficientnet:efficientnet-lite0/imagenet" in trained.stdout
    assert (cli_home / "models" / "street.vlmodel").is_file()


def test_score_writes_csv_and_json(run_cli, trained, cli_home, anomaly_video, anomaly_span, tmp_path):
    out_csv, out_json = tmp_path / "scores.csv", tmp_path / "report.json"
    r = run_cli("score", "street", anomaly_video, "--csv", out_csv, "--json", out_json, home=cli_home)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr

    fields, rows = _read_csv(out_csv)
    assert fields == CSV_FIELDS
    assert len(rows) == 20  # 10 s sampled every 500 ms (the model's interval)
    assert [int(x["index"]) for x in rows] == list(range(0, 100, 5))
    np.testing.assert_allclose([float(x["time"]) for x in rows], np.arange(20) * 0.5)
    for x in rows:
        assert x["label"] == ("anomaly" if float(x["smoothed_score"]) < 0 else "normal")
        assert x["description"] and 0 < float(x["confidence"]) <= 1

    report = json.loads(out_json.read_text())
    s = report["summary"]
    n_anom = sum(x["label"] == "anomaly" for x in rows)
    assert (s["frames"], s["anomalies"], s["model"]) == (20, n_anom, "street")
    assert s["anomaly_rate"] == pytest.approx(n_anom / 20, abs=1e-6)
    assert s["threshold"] == 0.0 and s["smoothing_window"] == 5
    assert s["lowest_score"] == pytest.approx(min(float(x["smoothed_score"]) for x in rows), abs=1e-6)
    times = {float(x["time"]) for x in rows}
    for inc in s["incidents"]:  # as watch reports them: on sampled frames, worst first
        assert {inc["start_time"], inc["end_time"], inc["worst_time"]} <= times
        assert inc["start_time"] <= inc["worst_time"] <= inc["end_time"] and inc["frames"] >= 1
    assert [i["worst_score"] for i in s["incidents"]] == sorted(i["worst_score"] for i in s["incidents"])
    assert [(f["index"], f["label"]) for f in report["frames"]] == [(int(x["index"]), x["label"]) for x in rows]

    assert f"intruder.mp4 with model street: 20 frames, {n_anom} anomalous" in r.stdout
    if s["incidents"]:
        assert "incidents, worst first" in r.stdout

    truth = [anomaly_span[0] <= float(x["time"]) < anomaly_span[1] for x in rows]
    auc = roc_auc_score(truth, [-float(x["raw_score"]) for x in rows])
    print(f"\nCLI synthetic intruder clip (interval 500 ms): frame AUC {auc:.3f}")


def test_models_show_rename_delete_list(run_cli, trained, cli_home):
    r = run_cli("models", "show", "street", home=cli_home)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["name"] == "street" and info["format_version"] == 1
    assert info["encoder"]["backend"] == "efficientnet" and info["encoder"]["dim"] == 1280
    assert [v["name"] for v in info["training"]["videos"]] == ["normal.mp4", "normal.avi", "frames"]
    assert all(len(v["sha256"]) == 64 for v in info["training"]["videos"])
    assert info["training"]["frames"] == 26 and info["training"]["interval_ms"] == 500
    assert info["expected_objects"] == ["person", "bicycle"]
    assert info["detector"]["params"] == {"nu": 0.1, "gamma": "scale"}

    models = cli_home / "models"
    shutil.copy(models / "street.vlmodel", models / "spare.vlmodel")
    r = run_cli("models", "rename", "spare", "spare-2", home=cli_home)
    assert r.returncode == 0, r.stderr
    assert "renamed model spare -> spare-2" in r.stdout
    assert ModelStore(models).names() == ["spare-2", "street"]

    r = run_cli("models", "delete", "spare-2", "--yes", home=cli_home)
    assert r.returncode == 0, r.stderr
    assert not (models / "spare-2.vlmodel").exists()

    r = run_cli("models", "list", "--json", home=cli_home)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(m["name"], m["frames"], m["videos"], m["detector"]) for m in rows] == [("street", 26, 3, "ocsvm")]
    assert rows[0]["encoder"] == "efficientnet:efficientnet-lite0/imagenet"


def test_score_batch_keeps_results_of_videos_that_share_a_name(run_cli, trained, cli_home, normal_video,
                                                                anomaly_video, frame_folder, tmp_path):
    """``a/clip.mp4`` and ``b/clip.mp4``, ``train/01`` and ``test/01``: four sources, four results."""
    src = tmp_path / "src"
    layout = {"a/clip.mp4": normal_video, "b/clip.mp4": anomaly_video,
              "train/01": frame_folder, "test/01": frame_folder}
    for rel, target in layout.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            shutil.copytree(target, src / rel)
        else:
            shutil.copy(target, src / rel)
    sources = [src / rel for rel in layout]
    out = tmp_path / "out"
    r = run_cli("score-batch", "street", *sources, "--out-dir", out, home=cli_home)
    assert r.returncode == 0, r.stderr
    expected = ["a__clip.mp4", "b__clip.mp4", "train__01", "test__01"]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.{ext}" for n in expected for ext in ("csv", "json"))
    for name, source in zip(expected, sources, strict=True):
        summary = json.loads((out / f"{name}.json").read_text())["summary"]
        assert summary["source"] == str(source)
        assert f"{out / name}.csv" in r.stdout
        _, rows = _read_csv(out / f"{name}.csv")
        assert len(rows) == summary["frames"] > 0
    # the intruder clip's results are its own, not overwritten by the normal clip's
    a, b = (json.loads((out / f"{n}.json").read_text())["summary"] for n in expected[:2])
    assert b["anomalies"] > 0 and a["frames"] != b["frames"]


def test_score_outputs_bad_paths_fail_first_and_good_ones_are_written_like_any_file(run_cli, trained, cli_home,
                                                                                   anomaly_video, tmp_path):
    """``--csv`` naming a folder or a name too long: one ``error:`` line, exit 2, before any decoding;
    a CSV whose name is near the 255-byte limit is written; outputs get the umask's permissions
    (a report another user or a web server reads), not the temp file's private 0600. (The shared
    embedding model serves: what is checked is the output files, the same for every detector.)"""
    folder = tmp_path / "a-folder"
    folder.mkdir()
    r = run_cli("score", "street", anomaly_video, "--csv", folder, home=cli_home)
    _assert_clean_error(r, f"cannot write {folder}: Is a directory")
    r = run_cli("score", "street", anomaly_video, "--json", tmp_path / ("x" * 256 + ".json"), home=cli_home)
    _assert_clean_error(r, "File name too long")
    long_csv, out_json = tmp_path / ("s" * 240 + ".csv"), tmp_path / "new" / "report.json"
    r = run_cli("score", "street", anomaly_video, "--csv", long_csv, "--json", out_json, home=cli_home)
    assert r.returncode == 0, r.stderr
    umask = os.umask(0o022)
    os.umask(umask)
    for path in (long_csv, out_json):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, oct(path.stat().st_mode)
    assert len(_read_csv(long_csv)[1]) == json.loads(out_json.read_text())["summary"]["frames"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a-folder", long_csv.name, "new"])  # no temp left


def test_score_batch_keeps_going_past_a_bad_video(run_cli, trained, cli_home, normal_video, anomaly_video,
                                                  corrupt_video, tmp_path):
    """One unreadable file among several: an ``error:`` line naming it, the other videos' results
    printed and written all the same, exit status 2 (before: one error line, nothing written)."""
    out = tmp_path / "out"
    r = run_cli("score-batch", "street", normal_video, corrupt_video, tmp_path / "gone.mp4", anomaly_video,
                "--out-dir", out, home=cli_home)
    assert r.returncode == 2, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(errors) == 2 and all(ln.startswith("error: ") for ln in errors), r.stderr
    assert "corrupt.mp4: not a readable video" in errors[0] and "gone.mp4: no such file" in errors[1]
    assert "Traceback" not in r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{v.name}.{ext}" for v in (normal_video, anomaly_video)
                                                           for ext in ("csv", "json"))
    assert f"{normal_video}: " in r.stdout and f"{anomaly_video}: " in r.stdout


def test_names_with_brackets_are_printed_as_they_are(run_cli, trained, cli_home, normal_video, tmp_path):
    """Square brackets in a file name or a stream URL are text, not Rich markup: ``score`` prints
    ``[red]clip.mp4`` whole (it printed ``clip.mp4``), and a ``watch`` source with ``[/b]`` in its URL
    gets its GAP line (Rich raised on the unmatched closing tag: the line was lost, a sink error)."""
    clip = tmp_path / "[red]clip.mp4"
    shutil.copy(normal_video, clip)
    r = run_cli("score", "street", clip, home=cli_home)
    assert r.returncode == 0 and r.stdout.startswith("[red]clip.mp4 with model street: "), r.stdout + r.stderr
    url = f"http://127.0.0.1:{free_port()}/cam[/b].mp4"
    r = run_cli("watch", "--model", "street", "--source", url, "--max-seconds", "2", home=cli_home,
                env={"VLM_ANOMALY_STREAM_BACKOFF_INITIAL_S": "0.1"})
    assert f"GAP {url}: " in r.stdout and "sink error" not in r.stdout, r.stdout + r.stderr
    assert "MarkupError" not in r.stdout + r.stderr


def test_control_characters_in_names_never_reach_the_terminal(run_cli, trained, cli_home, normal_video, tmp_path):
    """A file name may hold terminal controls (an upload, a file from someone else): ESC would let
    it clear the screen or recolour what follows, a carriage return overwrite a line. They are
    shown as U+FFFD on the console (summary, errors; Rich drops a carriage return itself) and as
    visible escapes in log lines; the rest of the name is printed as it is."""
    name = "lobby\x1b[2J\rcam"
    clip = tmp_path / f"{name}.mp4"
    shutil.copy(normal_video, clip)
    r = run_cli("score", "street", clip, home=cli_home)
    assert r.returncode == 0 and r.stdout.startswith("lobby\ufffd[2Jcam.mp4 with model street: "), r.stdout
    bad = tmp_path / f"{name}.avi"
    bad.write_bytes(b"\x1b[31mnot a video" * 50)
    r = run_cli("score", "street", bad, home=cli_home)
    assert r.returncode == 2 and "lobby\ufffd[2Jcam.avi: " in r.stderr, r.stderr
    cut = tmp_path / f"{name}-cut.mp4"  # decoding stops part way: a warning in the log names the file
    data = normal_video.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    r = run_cli("watch", "--model", "street", "--source", cut, "--fast", home=cli_home)
    assert "lobby\\x1b[2J\\x0dcam-cut.mp4" in r.stderr, r.stderr
    for run in (r.stdout, r.stderr):
        assert "\x1b" not in run and "\r" not in run, repr(run)


def test_progress_on_a_log_is_plain_lines(run_cli, trained, cli_home, anomaly_video):
    """stderr that is not a terminal (a pipe, a log file): progress comes as plain lines, no escape
    codes or bar characters (Rich printed one bar line, at the end only). ``VLM_ANOMALY_PROGRESS=1``
    shows them from the start; by default they start after 10 s of work, so a quick command prints
    none - the other tests here check that its stderr stays empty or one error line."""
    r = run_cli("score", "street", anomaly_video, home=cli_home, env={"VLM_ANOMALY_PROGRESS": "1"})
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0].startswith("score: scoring 0/") and lines[-1].startswith("score: done "), r.stderr
    assert all(re.fullmatch(r"score: [a-z ()]+ \d+(/\d+)? frames \(\d+ s\)", ln) for ln in lines), r.stderr
    assert run_cli("score", "street", anomaly_video, home=cli_home).stderr == ""


def test_describe_with_random_openclip(run_cli, tmp_path, normal_video):
    r = run_cli("describe", normal_video, "--encoder", "openclip", "--pretrained", "none", "--interval-ms",
                "2000", "--top-k", "2", "--expected-objects", "person,bicycle", "--json", home=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]  # JSON lines
    assert [(d["index"], d["time"]) for d in lines] == [(0, 0.0), (20, 2.0), (40, 4.0)]
    prompts = set(build_prompts(["person", "bicycle"]))
    for d in lines:
        assert len(d["labels"]) == 2 and set(d["labels"]) <= prompts
        assert d["probs"] == sorted(d["probs"], reverse=True) and sum(d["probs"]) <= 1
    # prompt embeddings were cached for the next run
    assert list((tmp_path / "cache" / "text").glob("*.npy"))


@pytest.fixture(scope="module")
def corrupt_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad") / "corrupt.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["score", "absent", "{anomaly_video}"], "no model named 'absent' in {models_folder}"),
        (["train", "../x", "{normal_video}"], "invalid model name '../x'"),
        (["score", "street", "{corrupt_video}"], "corrupt.mp4: not a readable video"),
    ],
)
def test_errors_are_one_line_without_traceback(request, run_cli, trained, cli_home, corrupt_video, args,
                                               message):
    paths = {name: request.getfixturevalue(name) for name in ("anomaly_video", "normal_video")}
    paths["corrupt_video"] = corrupt_video
    r = run_cli(*[a.format(**paths) for a in args], home=cli_home)
    _assert_clean_error(r, message.format(models_folder=cli_home / "models"))
    assert ModelStore(cli_home / "models").names() == ["street"]  # nothing created or lost


def test_watch_with_an_unknown_model_says_so_before_it_says_watching(run_cli, cli_home, anomaly_video):
    r = run_cli("watch", "--model", "absent", "--source", str(anomaly_video), "--fast", home=cli_home)
    _assert_clean_error(r, f"no model named 'absent' in {cli_home / 'models'}")
    assert r.returncode == 2 and "watching" not in r.stdout, r.stdout


def test_usage_errors_say_how_to_call_the_command(run_cli, tmp_path):
    """A mistyped option or a bad value: click's usage message and exit status 2, as every CLI, and
    a secret in the bad value is masked."""
    r = run_cli("score", "street", "x.mp4", "--modelx", "a", home=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("Usage: ") and " score [OPTIONS]" in r.stderr, r.stderr
    assert "No such option: --modelx" in r.stderr and "NoSuchOption" not in r.stderr, r.stderr
    r = run_cli("score", "street", "x.mp4", "--interval-ms", "rtsp://u:hunter2@cam/x", home=tmp_path)
    assert r.returncode == 2 and "Invalid value for '--interval-ms'" in r.stderr, r.stderr
    assert "hunter2" not in r.stderr + r.stdout
    for args in (["score", "street", "x.mp4", "--top", "-1"], ["watch", "-s", "x.mp4", "--max-seconds", "-1"],
                 ["service", "--grace-s", "-1"]):
        r = run_cli(*args, home=tmp_path)
        assert r.returncode == 2 and "greater than or equal to 0" in r.stderr, (args, r.stderr)


@pytest.mark.slow
def test_ped2_frame_folders_end_to_end(run_cli, tmp_path, ped2_dir):
    """Train on all 16 UCSD Ped2 training clips (frame folders, every 10th frame), score test clip 02
    through the CLI; the detection must be useful, not just run."""
    train = sorted((ped2_dir / "train").iterdir())
    assert len(train) == 16
    r = run_cli("train", "ped2", *train, "--encoder", "efficientnet", "--interval-ms", "400", home=tmp_path)
    assert r.returncode == 0, r.stderr
    # the motion default reads training clips every 100 ms whatever --interval-ms asks (2550 frames at 25 fps)
    assert "saved model ped2: 1020 frames from 16 video(s)" in r.stdout

    labels = json.loads((ped2_dir / "test_labels.json").read_text())["02"]
    out_csv, out_json = tmp_path / "ped2.csv", tmp_path / "ped2.json"
    # the whole clip, every 3rd frame (120 ms at the folder's 25 fps) to keep the test short
    r = run_cli("score", "ped2", ped2_dir / "test" / "02", "--interval-ms", "120", "--csv", out_csv,
                "--json", out_json, "--labels", ped2_dir / "test_labels.json", home=tmp_path)
    assert r.returncode == 0, r.stderr

    fields, rows = _read_csv(out_csv)
    assert fields == [*CSV_FIELDS, "explanation"]  # the motion detector says why, per frame
    assert len(labels) == 180
    assert [int(x["index"]) for x in rows] == list(range(0, 180, 3))  # file order
    np.testing.assert_allclose([float(x["time"]) for x in rows], np.arange(0, 180, 3) / 25, atol=1e-3)
    s = json.loads(out_json.read_text())["summary"]
    n_anom = sum(x["label"] == "anomaly" for x in rows)
    assert (s["frames"], s["anomalies"], s["model"]) == (len(rows), n_anom, "ped2")
    assert s["source"].endswith("02") and not s["timing"].get("from_cache")  # (motion: no embedding cache)
    assert s["anomaly_rate"] == pytest.approx(n_anom / len(rows), abs=1e-6)

    truth = [labels[int(x["index"])] for x in rows]
    assert 0 < sum(truth) < len(truth)
    # --labels picks clip "02" out of the dataset's test_labels.json and rates the smoothed scores
    smoothed_auc = roc_auc_score(truth, [-float(x["smoothed_score"]) for x in rows])
    shown = re.search(r"against test_labels.json: frame AUC ([0-9.]+)", r.stdout)
    # (the CSV's 6-decimal rounding reorders a few near-equal scores: a small AUC difference is expected)
    assert shown and float(shown.group(1)) == pytest.approx(smoothed_auc, abs=0.01), (r.stdout, smoothed_auc)
    auc = roc_auc_score(truth, [-float(x["raw_score"]) for x in rows])
    print(f"\nUCSD Ped2 test clip 02 ({len(rows)} frames; trained on every 10th frame of train/01-16): "
          f"frame AUC {smoothed_auc:.3f} smoothed, {auc:.3f} raw")
    assert smoothed_auc >= PED2_CLIP02_MIN_AUC, (smoothed_auc, auc)


def test_demo_workdir_that_is_a_file_is_one_error_line(run_cli, tmp_path):
    """It was 'error: FileExistsError: [Errno 17] ...', exit 1."""
    (tmp_path / "taken").write_text("x")
    r = run_cli("demo", "--workdir", tmp_path / "taken", home=tmp_path / "home")
    _assert_clean_error(r, f"cannot write {tmp_path / 'taken' / 'scores.csv'}")
    assert r.returncode == 2


def test_demo_finds_the_intruder_and_nothing_else(run_cli, tmp_path):
    """The first thing a newcomer runs, with the shipped defaults: one anomalous segment, the intruder's."""
    from vlm_anomaly.results import true_runs
    from vlm_anomaly.synthetic import DEMO_SPAN

    r = run_cli("demo", "--workdir", tmp_path / "demo", home=tmp_path / "home")
    assert r.returncode == 0, r.stderr
    _, rows = _read_csv(tmp_path / "demo" / "scores.csv")
    times = [float(x["time"]) for x in rows]
    runs = list(true_runs(np.array([x["label"] == "anomaly" for x in rows])))
    segments = [(times[i], times[j]) for i, j in runs]
    assert len(segments) == 1, segments
    (start, end), (lo, hi) = segments[0], DEMO_SPAN
    assert abs(start - lo) <= 1.0 and abs(end - hi) <= 1.0, segments
    # and the demo says so: the span it claims and the one incident it found, as watch would report it
    line = " ".join(r.stdout.split())
    assert f"the intruder is on screen {lo:.1f}-{hi:.1f} s" in line, r.stdout
    found = re.match(r"([0-9.]+)-([0-9.]+) s per-frame", line.split("incidents found: ")[1])
    assert found, r.stdout
    assert abs(float(found.group(1)) - lo) <= 1.5 and abs(float(found.group(2)) - hi) <= 1.5, r.stdout


def test_cli_helpers_run_the_shipped_defaults(tmp_path):
    """The test helpers' CLI environment sets no setting but the home: a CLI test drives what a user
    gets unless it says otherwise (as ``trained`` above does, with its reason)."""
    from tests.helpers import cli_env

    env = cli_env(tmp_path, OMP_NUM_THREADS="1")
    assert sorted(k for k in env if k.startswith("VLM_ANOMALY_") and not k.startswith("VLM_ANOMALY_TEST_")) == [
        "VLM_ANOMALY_HOME"]
    assert cli_env(tmp_path, VLM_ANOMALY_DETECTOR="knn")["VLM_ANOMALY_DETECTOR"] == "knn"
