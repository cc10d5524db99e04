"""`evaluate`: dataset layout, the scorer protocol and registry, reports - on real videos and Ped2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from vlm_anomaly.config import load_settings
from vlm_anomaly.errors import ConfigError, InvalidVideoError
from vlm_anomaly.evaluation import (
    SCORERS,
    FrameScorer,
    PipelineScorer,
    create_scorer,
    evaluate,
    load_dataset,
    normalize_scores,
    register_scorer,
    write_report,
)
from vlm_anomaly.synthetic import write_frames, write_video
from vlm_anomaly.video import sample_frames

REPO = Path(__file__).resolve().parents[1]


def _video_dataset(root: Path) -> Path:
    """train/ with two normal clips, test/ with an intruder clip and a normal clip (10 fps)."""
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    for i, seconds in ((1, 3), (2, 2)):
        write_video(root / "train" / f"day{i}.mp4", seconds=seconds, seed=0, size=(160, 120))
    write_video(root / "test" / "intruder.mp4", seconds=3, seed=0, size=(160, 120), anomaly_span=(1.0, 2.0))
    write_video(root / "test" / "quiet.mp4", seconds=1, seed=0, size=(160, 120))
    labels = {"intruder": [int(1.0 <= i / 10 < 2.0) for i in range(30)], "quiet": [0] * 10}
    (root / "test_labels.json").write_text(json.dumps(labels))
    return root


def test_pipeline_scorer_on_video_files_finds_the_intruder(tmp_path):
    data = load_dataset(_video_dataset(tmp_path / "ds"))
    assert [c.name for c in data.train] == ["day1", "day2"] and [c.name for c in data.test] == ["intruder", "quiet"]
    settings = load_settings(overrides={"detector": "ocsvm",
                                        "encoder": "efficientnet", "interval_ms": 0, "home": tmp_path / "home"})
    scorer = create_scorer("patch-knn", settings)
    assert isinstance(scorer, PipelineScorer) and isinstance(scorer, FrameScorer)
    report = evaluate(data, scorer, smoothing_window=1)
    assert report.pooled.frames == 40 and report.pooled.anomalous == 10
    assert report.pooled.auc >= 0.9
    # the all-normal clip has no AUC: skipped in the per-clip mean and listed
    assert report.skipped_clips == ["quiet"]
    assert report.mean_clip_auc == pytest.approx(report.clips[0].metrics.auc)
    d = report.to_dict()
    assert d["metrics"]["skipped_single_class_clips"] == ["quiet"]
    assert d["timing"]["encode_s"] > 0 and d["timing"]["test_frames_per_s"] > 0
    assert "test labels are used only to compute these metrics" in d["protocol"]


class BrightnessScorer:
    """A plug-in scorer written against the protocol only: distance of mean brightness to normal."""

    def __init__(self, settings):
        self.settings = settings

    def fit(self, train_sources):
        v = [f.image.mean() for s in train_sources for f in sample_frames(s, interval_ms=0)]
        self.mu, self.sd = float(np.mean(v)), float(np.std(v)) + 1e-6
        return self

    def score(self, source):
        return np.array([-abs(f.image.mean() - self.mu) / self.sd for f in sample_frames(source, interval_ms=0)])


def test_registered_scorer_plugs_into_evaluate_and_writes_plots(tmp_path):
    register_scorer("brightness", BrightnessScorer)
    try:
        data = load_dataset(_video_dataset(tmp_path / "ds"), test_clips=["intruder"])
        scorer = create_scorer("brightness", load_settings(overrides={"detector": "ocsvm", "home": tmp_path / "home"}))
        report = evaluate(data, scorer, smoothing_window=3, normalize="zscore")
        paths = write_report(report, tmp_path / "out")
    finally:
        SCORERS.pop("brightness")
    d = json.loads(paths["json"].read_text())
    f = d["frames"]
    assert len(f["score"]) == 30 and sum(f["label"]) == 10
    assert d["metrics"]["pooled"]["auc"] == pytest.approx(roc_auc_score(f["label"], -np.array(f["score"])))
    assert d["config"]["normalize"] == "zscore" and d["config"]["smoothing_window"] == 3
    for key in ("roc_png", "timelines_png"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = paths["html"].read_text()
    assert "plotly" in html and "clip intruder" in html


@pytest.mark.parametrize("extra_clips", [0, 5])
def test_timelines_title_is_clear_of_the_first_row(tmp_path, extra_clips):
    """The figure title of timelines.png sits whole inside the figure, above the clips' titles."""
    import matplotlib

    matplotlib.use("Agg")
    from vlm_anomaly.report_plots import timelines_figure

    root = _video_dataset(tmp_path / "ds")
    labels = json.loads((root / "test_labels.json").read_text())
    for i in range(extra_clips):  # seven clips: three columns, as for a real dataset
        write_video(root / "test" / f"more{i}.mp4", seconds=1, seed=i, size=(160, 120), anomaly_span=(0.5, 1.0))
        labels[f"more{i}"] = [int(j >= 5) for j in range(10)]
    (root / "test_labels.json").write_text(json.dumps(labels))
    register_scorer("brightness", BrightnessScorer)
    try:
        report = evaluate(load_dataset(root), create_scorer("brightness", load_settings(overrides={"home": tmp_path})))
    finally:
        SCORERS.pop("brightness")
    report.config.update(features="tiles", detector="patch-knn")  # a long title
    fig = timelines_figure(report)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(r)
    page = fig.bbox
    assert page.x0 <= title.x0 and title.x1 <= page.x1 and title.y1 <= page.y1, "title cut off"
    first_row = [ax.title.get_window_extent(r) for ax in fig.axes if ax.get_title()][:3 if extra_clips else 1]
    assert first_row and all(not title.overlaps(t) and title.y0 >= t.y1 for t in first_row)


def test_frame_folder_with_fewer_labels_than_frames_is_refused_before_fitting(tmp_path):
    """Ped2's layout with a labels list cut short: refused when the dataset is read (before
    minutes of fitting), naming the clip and both counts; enough labels for the first
    ``max_frames`` frames is fine, as is a labels list longer than needed."""
    root = tmp_path / "ds"
    write_frames(root / "train" / "01", n=6, size=(64, 48))
    write_frames(root / "test" / "01", n=8, size=(64, 48))
    (root / "test_labels.json").write_text(json.dumps({"01": [0] * 7}))
    with pytest.raises(InvalidVideoError, match="test clip '01' has 8 frames but 7 labels"):
        load_dataset(root)
    assert len(load_dataset(root, max_frames=7).test[0].labels) == 7
    (root / "test_labels.json").write_text(json.dumps({"01": [0] * 9}))
    assert len(load_dataset(root).test[0].labels) == 9


def test_dataset_errors_are_clear(tmp_path):
    root = _video_dataset(tmp_path / "ds")
    with pytest.raises(InvalidVideoError, match="no clip named nope"):
        load_dataset(root, test_clips=["nope"])
    (root / "test_labels.json").write_text(json.dumps({"intruder": [0, 1]}))
    with pytest.raises(InvalidVideoError, match="no labels for test clip 'quiet'"):
        load_dataset(root)
    (root / "test_labels.json").write_text(json.dumps({"intruder": [0, 2], "quiet": [0]}))
    with pytest.raises(InvalidVideoError, match="must be a non-empty list of 0/1"):
        load_dataset(root)
    (root / "test_labels.json").unlink()
    with pytest.raises(InvalidVideoError, match="missing"):
        load_dataset(root)
    with pytest.raises(InvalidVideoError, match="dataset folder not found"):
        load_dataset(tmp_path / "none")
    with pytest.raises(ConfigError, match="unknown detector 'nope'"):
        create_scorer("nope", load_settings())


def test_normalize_scores_per_source():
    s = np.array([1.0, 2.0, 3.0, 6.0])
    assert normalize_scores(s, "minmax").tolist() == [0.0, 0.2, 0.4, 1.0]
    z = normalize_scores(s, "zscore")
    assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-12
    with pytest.raises(ConfigError):
        normalize_scores(s, "rank")


def _ped2_subset(ped2: Path, dst: Path, n: int = 24) -> Path:
    """2 train and 2 test clips of Ped2, ``n`` frames each, as symlinks; test spans hold both classes."""
    labels = json.loads((ped2 / "test_labels.json").read_text())
    for split, clip, start in (("train", "01", 0), ("train", "05", 0), ("test", "01", 48), ("test", "02", 82)):
        out = dst / split / clip
        out.mkdir(parents=True)
        for i in range(n):
            (out / f"{i:03d}.jpg").symlink_to(ped2 / split / clip / f"{start + i:03d}.jpg")
    sub = {"01": labels["01"][48 : 48 + n], "02": labels["02"][82 : 82 + n]}
    (dst / "test_labels.json").write_text(json.dumps(sub))
    return dst


@pytest.mark.slow
def test_cli_evaluate_on_a_ped2_subset_matches_scikit_learn(run_cli, tmp_path, ped2_dir):
    ds = _ped2_subset(ped2_dir, tmp_path / "ped2-subset")
    r = run_cli("evaluate", ds, "--encoder", "efficientnet", "--detector", "ocsvm", "--interval-ms", "0",
                "--report-dir", tmp_path / "report", home=tmp_path / "home")
    assert r.returncode == 0, r.stderr
    assert "pooled frame AUC" in r.stdout
    d = json.loads((tmp_path / "report" / "report.json").read_text())
    f = d["frames"]
    y, s = np.array(f["label"]), np.array(f["score"])
    assert len(y) == 48 and 0 < y.sum() < 48
    assert d["metrics"]["pooled"]["auc"] == pytest.approx(roc_auc_score(y, -s), abs=1e-12)
    for clip in ("01", "02"):
        m = np.array(f["clip"]) == clip
        row = next(c for c in d["clips"] if c["clip"] == clip)
        assert row["auc"] == pytest.approx(roc_auc_score(y[m], -s[m]), abs=1e-12)
    assert d["dataset"]["train_frames"] == 48 and d["config"]["detector"] == "ocsvm"
    assert (tmp_path / "report" / "roc.png").stat().st_size > 1000
    # the printed AUC is the report's
    assert f"pooled frame AUC {d['metrics']['pooled']['auc']:.4f}" in r.stdout
