"""Command-line interface: a thin shell over :class:`vlm_anomaly.pipeline.Pipeline`.

Every user-caused failure prints one line on stderr and exits non-zero; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console, RenderHook
from rich.markup import escape as esc
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from .config import Settings, load_settings
from .errors import ConfigError, ModelNotFoundError, VlmAnomalyError
from .redact import printable, redact_text, redact_url

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Video anomaly detection with vision-language models.")
models_app = typer.Typer(no_args_is_help=True, help="Manage saved models.")
app.add_typer(models_app, name="models")
normal_app = typer.Typer(no_args_is_help=True, help="Teach a model that footage was normal (no retraining), "
                                                   "list what it learnt, undo.")
app.add_typer(normal_app, name="normal")

class _Printable:
    """A renderable shown with each control character of its text as a visible U+FFFD
    (``redact.printable``; one character for one, as the lines are already laid out): names of
    files, cameras and streams reach every table and line."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options):
        for seg in console.render(self.inner, options):
            yield seg if seg.control else Segment(printable(seg.text, keep_width=True), seg.style)


class _PrintableHook(RenderHook):
    def process_renderables(self, renderables: list) -> list:
        return [_Printable(r) for r in renderables]


out = Console()
err = Console(stderr=True)
for _console in (out, err):
    _console.push_render_hook(_PrintableHook())
_state: dict = {"config": None, "debug": False}

# -- shared options -------------------------------------------------------------------------
IntervalOpt = Annotated[Optional[int], typer.Option("--interval-ms", help="sampling interval; 0 = every frame")]
EncoderOpt = Annotated[Optional[str], typer.Option("--encoder", help="auto | openclip | efficientnet")]
ClipModelOpt = Annotated[Optional[str], typer.Option("--clip-model", help="ViT-B-32 | ViT-B-16 | ViT-L-14")]
PretrainedOpt = Annotated[
    Optional[str], typer.Option("--pretrained", help="openai | laion400m_e32 | laion2b_s34b_b79k | none")
]
WeightsOpt = Annotated[Optional[Path], typer.Option("--clip-weights", help="local OpenCLIP weights file")]
ModelsDirOpt = Annotated[Optional[Path], typer.Option("--models-dir", help="model store folder")]
BatchOpt = Annotated[Optional[int], typer.Option("--batch-size")]
# speed: where the image tower runs
RuntimeOpt = Annotated[str | None, typer.Option("--runtime", help="torch | onnx | onnx-int8")]


@app.callback()
def _main(
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML config file")] = None,
    log_level: Annotated[Optional[str], typer.Option("--log-level", help="DEBUG, INFO, WARNING, ERROR")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
) -> None:
    _state["config"] = config
    _state["debug"] = debug
    level = log_level or os.environ.get("VLM_ANOMALY_LOG_LEVEL", "WARNING")
    logging.basicConfig(level=getattr(logging, str(level).upper(), logging.WARNING), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


def _settings(**overrides) -> Settings:
    return load_settings(_state["config"], overrides=overrides)


def _model_store(models_dir: Path | None):
    """The model store of the settings (``--models-dir`` wins)."""
    from .store import ModelStore

    return ModelStore(_settings(models_dir=models_dir).models_path)


def _pipeline(**overrides):
    from .pipeline import Pipeline

    return Pipeline(_settings(**overrides))


def _table(columns: tuple[str, ...], rows, title: str | None = None) -> None:
    """Print ``rows`` (tuples of cell texts) as a Rich table under ``columns``."""
    t = Table(title=title)
    for col in columns:
        t.add_column(col)
    for row in rows:  # cells are text (file names, notes, a model file's words), never markup
        t.add_row(*(Text(c) for c in row))
    out.print(t)


@contextlib.contextmanager
def _progress(label: str) -> Iterator:
    """Progress fed by the pipeline's (done, total, stage) callback: a Rich bar at a terminal, plain
    lines on a TTY-less stderr (see :class:`_LineProgress`)."""
    if not err.is_terminal:
        yield _LineProgress(label, always=os.environ.get("VLM_ANOMALY_PROGRESS") == "1")
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("frames"), TimeRemainingColumn(), console=err, transient=False) as prog:
        task = prog.add_task(label, total=None)

        def update(done: int, total: int, stage: str) -> None:
            prog.update(task, completed=done, total=total or None, description=f"{label}: {stage}")

        yield update


class _LineProgress:
    """Progress where stderr is a log (a pipe, ``docker logs``, CI): one plain line when the stage
    changes and every ``EVERY_S`` seconds, once the work has run ``QUIET_S`` seconds - long work shows
    that it moves, short work and its one-line error stay as they are. ``always``
    (``VLM_ANOMALY_PROGRESS=1``): from the start. (A Rich bar there prints nothing until the end.)"""

    QUIET_S, EVERY_S = 10.0, 15.0

    def __init__(self, label: str, *, always: bool = False):
        import time

        self.clock = time.monotonic
        self.label, self.quiet_s = label, 0.0 if always else self.QUIET_S
        self.start, self.last_at, self.last_stage = self.clock(), float("-inf"), None

    def __call__(self, done: int, total: int, stage: str) -> None:
        now = self.clock()
        if now - self.start < self.quiet_s or (stage == self.last_stage and now - self.last_at < self.EVERY_S):
            return
        self.last_at, self.last_stage = now, stage
        of = f"/{total}" if total else ""
        err.print(f"{self.label}: {stage} {done}{of} frames ({now - self.start:.0f} s)",
                  highlight=False, markup=False, soft_wrap=True)


# -- commands -------------------------------------------------------------------------------
@app.command()
def train(
    name: Annotated[str, typer.Argument(help="model name (letters, digits, . _ -)")],
    sources: Annotated[list[str], typer.Argument(help="normal videos and/or frame folders")],
    interval_ms: IntervalOpt = None,
    expected_objects: Annotated[Optional[str], typer.Option("--expected-objects", help="comma-separated")] = None,
    encoder: EncoderOpt = None,
    clip_model: ClipModelOpt = None,
    pretrained: PretrainedOpt = None,
    clip_weights: WeightsOpt = None,
    detector: Annotated[Optional[str], typer.Option(
        "--detector", help="motion (default: how things move, no network) | ocsvm | patch-knn (--features tiles)",
    )] = None,
    nu: Annotated[Optional[float], typer.Option("--nu")] = None,
    gamma: Annotated[Optional[str], typer.Option("--gamma", help="'scale', 'auto' or a number")] = None,
    models_dir: ModelsDirOpt = None,
    batch_size: BatchOpt = None,
    features: Annotated[Optional[str], typer.Option("--features", help="frame | tiles")] = None,
    runtime: RuntimeOpt = None,
    target_false_alarm: Annotated[Optional[float], typer.Option(
        "--target-false-alarm", help="motion detector: share of normal frames the threshold may flag")] = None,
) -> None:
    """Learn what normal looks like from videos of normal activity and save the model."""
    pipe = _pipeline(interval_ms=interval_ms, expected_objects=expected_objects, encoder=encoder,
                     clip_model=clip_model, clip_pretrained=pretrained, clip_weights=clip_weights,
                     detector=detector, nu=nu, gamma=gamma, models_dir=models_dir, batch_size=batch_size,
                     features=features, runtime=runtime, target_false_alarm=target_false_alarm)
    with _progress("train") as cb:
        model = pipe.train(name, sources, progress=cb)
    out.print(f"saved model [bold]{esc(name)}[/]: {model.n_frames} frames from {len(model.videos)} video(s), "
              f"encoder {model.encoder_label}, detector {model.detector.name}")
    if "target_false_alarm" in model.extra:
        out.print(f"threshold calibrated to flag {100 * model.extra['target_false_alarm']:.1f} % of normal frames "
                  f"(held-out normal clips: {100 * model.extra.get('heldout_flagged', 0):.1f} %)")
    if model.extra.get("warning"):
        out.print(f"[yellow]warning[/]: {esc(model.extra['warning'])}", highlight=False, soft_wrap=True)


@app.command()
def score(
    name: Annotated[str, typer.Argument(help="model name")],
    source: Annotated[str, typer.Argument(help="video file or frame folder")],
    csv: Annotated[Optional[Path], typer.Option("--csv", help="write per-frame CSV")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write summary + frames JSON")] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", help="decision threshold")] = None,
    interval_ms: IntervalOpt = None,
    clip_weights: WeightsOpt = None,
    models_dir: ModelsDirOpt = None,
    batch_size: BatchOpt = None,
    top: Annotated[int, typer.Option("--top", min=0, help="incidents to list")] = 5,
    runtime: RuntimeOpt = None,
    labels: Annotated[Optional[Path], typer.Option(
        "--labels", help="ground truth: JSON list / 0-1 per line / test_labels.json; prints AUC, AP, EER")] = None,
) -> None:
    """Score a video frame by frame with a saved model."""
    from .atomic import check_writable

    for path in filter(None, (csv, json_out)):  # before the decoding, not after
        check_writable(path)
    pipe = _pipeline(models_dir=models_dir, clip_weights=clip_weights, batch_size=batch_size,
                     runtime=runtime)
    with _progress("score") as cb:
        result = pipe.score(name, source, progress=cb, threshold=threshold, interval_ms=interval_ms)
    if csv:
        result.write_csv(csv)
    if json_out:
        result.write_json(json_out)
    s = result.summary()
    out.print(f"[bold]{esc(Path(source).name)}[/] with model [bold]{esc(name)}[/]: {_summary_text(s)}")
    for g in s["gaps"]:
        out.print(f"[yellow]GAP[/] {esc(Path(source).name)}: missed {g['missed_s']:.1f} s at {g['start_time']:.2f}s: "
                  f"{esc(g['reason'])}", highlight=False, soft_wrap=True)
    if labels is not None:
        from .detection_metrics import parse_frame_labels

        m = result.evaluate(parse_frame_labels(_read_small(labels), name=Path(source).name))
        if m.defined:
            out.print(f"against {labels.name}: frame AUC {m.auc:.4f}  AP {m.ap:.4f}  EER {m.eer:.4f}  "
                      f"({m.anomalous} of {m.frames} scored frames labelled anomalous)", highlight=False)
        else:
            out.print(f"against {labels.name}: only one class among the {m.frames} scored frames, no AUC")
    if s["incidents"]:
        _table(("start", "end", "frames", "worst score", "at"),
               [(f"{g['start_time']:.2f}s", f"{g['end_time']:.2f}s", str(g["frames"]), f"{g['worst_score']:.3f}",
                 f"{g['worst_time']:.2f}s") for g in s["incidents"][:top]],
               title="incidents, worst first (as watch reports them)")
    if result.explanations:  # the detector explains: say why
        _print_explanations(result, top)


def _summary_text(s: dict) -> str:
    """A scored video's summary in one line: frames, anomalous share, lowest score, gaps (as ``watch``)."""
    gaps = f", {len(s['gaps'])} gap(s) ({s['missed_s']:.1f} s missed)" if s["gaps"] else ""
    return (f"{s['frames']} frames, {s['anomalies']} anomalous ({100 * s['anomaly_rate']:.1f}%), "
            f"lowest score {s['lowest_score']}{gaps}")


@app.command()
def describe(
    source: Annotated[str, typer.Argument(help="video file or frame folder")],
    interval_ms: IntervalOpt = None,
    expected_objects: Annotated[Optional[str], typer.Option("--expected-objects")] = None,
    encoder: EncoderOpt = None,
    clip_model: ClipModelOpt = None,
    pretrained: PretrainedOpt = None,
    clip_weights: WeightsOpt = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON lines")] = False,
    runtime: RuntimeOpt = None,
) -> None:
    """Zero-shot description of each sampled frame."""
    pipe = _pipeline(interval_ms=interval_ms, expected_objects=expected_objects, encoder=encoder,
                     clip_model=clip_model, clip_pretrained=pretrained, clip_weights=clip_weights,
                     top_k=top_k, runtime=runtime)
    with _progress("describe") as cb:
        ev, descs = pipe.describe(source, progress=cb)
    for i, t, d in zip(ev.frame_indices, ev.timestamps, descs):
        if json_out:
            out.print_json(json.dumps({"index": int(i), "time": round(float(t), 3),
                                       "labels": list(d.labels), "probs": [round(p, 4) for p in d.probs]}),
                           indent=None)  # JSON lines: one object per line
        else:
            alts = ", ".join(f"{lab} {p:.2f}" for lab, p in zip(d.labels, d.probs))
            out.print(f"{float(t):8.2f}s  #{int(i):<6d} {alts}", highlight=False)


@models_app.command("list")
def models_list(models_dir: ModelsDirOpt = None, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List saved models."""
    store = _model_store(models_dir)
    rows = store.list()
    if json_out:
        out.print_json(json.dumps([r.__dict__ for r in rows]))
        return
    if not rows:
        out.print(f"no models in {store.root}")
        return
    _table(("name", "encoder", "detector", "videos", "frames", "created"),
           [(r.name, r.encoder, r.detector, str(r.videos), str(r.frames), r.created) for r in rows])


@models_app.command("show")
def models_show(name: str, models_dir: ModelsDirOpt = None) -> None:
    """Show a model's metadata as JSON."""
    out.print_json(json.dumps(_model_store(models_dir).show(name)))


@models_app.command("delete")
def models_delete(name: str, models_dir: ModelsDirOpt = None,
                  yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False) -> None:
    """Delete a saved model."""
    store = _model_store(models_dir)
    store.path_for(name)
    if not yes and sys.stdin.isatty() and not typer.confirm(f"delete model {name}?"):
        raise typer.Exit(1)
    store.delete(name)
    out.print(f"deleted model {name}")


@models_app.command("rename")
def models_rename(old: str, new: str, models_dir: ModelsDirOpt = None) -> None:
    """Rename a saved model."""
    _model_store(models_dir).rename(old, new)
    out.print(f"renamed model {old} -> {new}")


def _print_addition(model: str, a) -> None:
    span = "" if a.start_s is None and a.end_s is None else \
        f" {a.start_s if a.start_s is not None else 0:g}-{'end' if a.end_s is None else f'{a.end_s:g}'} s"
    out.print(f"model {model} learnt {a.source}{span} as normal: {a.frames} frames (addition {a.id})",
              highlight=False, markup=False, soft_wrap=True)


@normal_app.command("add")
def normal_add(
    model: Annotated[str, typer.Argument(help="model name")],
    source: Annotated[str, typer.Argument(help="video file or frame folder")],
    start: Annotated[Optional[float], typer.Option("--start", help="seconds of the video (default: its start)")] = None,
    end: Annotated[Optional[float], typer.Option("--end", help="seconds of the video (default: its end)")] = None,
    note: Annotated[str, typer.Option("--note", help="why this footage is normal")] = "",
    models_dir: ModelsDirOpt = None,
) -> None:
    """Learn a video (or a time range of it) as normal: no training video is read again."""
    from .normal import mark_normal

    pipe = _pipeline(models_dir=models_dir)
    with _progress("normal") as cb:
        a = mark_normal(pipe.store, model, source, start_s=start, end_s=end, note=note, progress=cb, pipeline=pipe)
    _print_addition(model, a)


@normal_app.command("event")
def normal_event(
    event_id: Annotated[int, typer.Argument(help="event id (see the dashboard or GET /events)")],
    note: Annotated[str, typer.Option("--note", help="why it was normal")] = "",
    models_dir: ModelsDirOpt = None,
) -> None:
    """Learn an event's footage as normal, in the model that raised it."""
    from .events.store import EventStore
    from .normal import mark_event_normal

    pipe = _pipeline(models_dir=models_dir)
    store = EventStore.from_settings(pipe.settings)
    try:
        with _progress("normal") as cb:
            a = mark_event_normal(store, pipe.store, event_id, note=note, progress=cb, pipeline=pipe)
        _print_addition(store.get(event_id).model, a)
    finally:
        store.close()


@normal_app.command("list")
def normal_list(model: Annotated[str, typer.Argument(help="model name")], models_dir: ModelsDirOpt = None,
                json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What a model learnt as normal since training."""
    from .normal import normal_additions

    rows = normal_additions(_model_store(models_dir), model)
    if json_out:
        out.print_json(json.dumps([a.as_dict() for a in rows]))
        return
    if not rows:
        out.print(f"model {model} has learnt nothing as normal since training")
        return
    _table(("id", "source", "from s", "to s", "frames", "added", "note"),
           [(a.id, a.source, "" if a.start_s is None else f"{a.start_s:g}", "" if a.end_s is None else f"{a.end_s:g}",
             str(a.frames), a.added_at, a.note) for a in rows])


@normal_app.command("undo")
def normal_undo(model: Annotated[str, typer.Argument(help="model name")],
                addition_id: Annotated[str, typer.Argument(help="addition id (see 'normal list')")],
                models_dir: ModelsDirOpt = None) -> None:
    """Forget footage learnt as normal: the model scores as before it was added."""
    from .normal import undo_normal

    pipe = _pipeline(models_dir=models_dir)
    undo_normal(pipe.store, model, addition_id, pipeline=pipe)
    out.print(f"model {model} forgot addition {addition_id}")


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option("--workdir", help="where clips and models go")] = Path(".vlm-anomaly/demo"),
    encoder: EncoderOpt = None,
) -> None:
    """Generate normal clips of a street and one with an intruder, train, and score (offline)."""
    from .atomic import check_writable
    from .synthetic import DEMO_SPAN, demo_clips

    check_writable(workdir / "scores.csv")
    clips, test = demo_clips(workdir)
    pipe = _pipeline(home=workdir, encoder=encoder)
    with _progress("train") as cb:
        pipe.train("demo", clips, progress=cb)
    with _progress("score") as cb:
        r = pipe.score("demo", test, progress=cb)
    r.write_csv(workdir / "scores.csv")
    s = r.summary()
    segs = sorted(s["incidents"], key=lambda g: g["start_time"])
    out.print(f"demo: trained on {len(clips)} normal clips; {s['frames']} frames of {test.name} scored, "
              f"{s['anomalies']} anomalous; the intruder is on screen {DEMO_SPAN[0]:.1f}-{DEMO_SPAN[1]:.1f} s; "
              "incidents found: "
              + (", ".join(f"{g['start_time']:.1f}-{g['end_time']:.1f} s" for g in segs) or "none"))
    out.print(f"per-frame scores: {workdir / 'scores.csv'}")

# -- evaluate --------------------------------------------------------------------------------
def _read_small(path: Path, limit: int = 16 * 2**20) -> bytes:
    """A small user file (labels, lists), with a clear error instead of a traceback."""
    try:
        if path.stat().st_size > limit:
            raise VlmAnomalyError(f"{path}: larger than {limit // 2**20} MB")
        return path.read_bytes()
    except OSError as exc:
        raise VlmAnomalyError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _csv(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


def _num(v: float) -> str:
    return "n/a" if v != v else f"{v:.3f}"


@app.command()
def evaluate(
    dataset: Annotated[Path, typer.Argument(help="dataset folder: train/<clip>, test/<clip>, test_labels.json")],
    encoder: EncoderOpt = None,
    features: Annotated[Optional[str], typer.Option("--features", help="frame | tiles")] = None,
    detector: Annotated[Optional[str], typer.Option("--detector", help="detector or scorer name")] = None,
    interval_ms: Annotated[int, typer.Option("--interval-ms", help="test sampling; 0 = every frame")] = 0,
    train_interval_ms: Annotated[Optional[int], typer.Option(
        "--train-interval-ms", help="training sampling (default: as --interval-ms)")] = None,
    smooth: Annotated[Optional[int], typer.Option("--smooth", help="moving-average window (frames)")] = None,
    normalize: Annotated[str, typer.Option("--normalize", help="per-clip scores: none | zscore | minmax")] = "none",
    nu: Annotated[Optional[float], typer.Option("--nu")] = None,
    train_clips: Annotated[Optional[str], typer.Option("--train-clips", help="comma-separated subset")] = None,
    test_clips: Annotated[Optional[str], typer.Option("--test-clips", help="comma-separated subset")] = None,
    max_frames: Annotated[Optional[int], typer.Option("--max-frames", help="frames per clip (0 = all)")] = None,
    report_dir: Annotated[Optional[Path], typer.Option("--report-dir", help="where report.json and plots go")] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots")] = True,
    clip_model: ClipModelOpt = None,
    pretrained: PretrainedOpt = None,
    clip_weights: WeightsOpt = None,
    batch_size: BatchOpt = None,
) -> None:
    """Train on a labelled dataset's normal clips, score its test clips, report frame-level AUC/AP/EER."""
    from .atomic import check_writable
    from .evaluation import create_scorer, load_dataset, write_report
    from .evaluation import evaluate as run_evaluation

    settings = _settings(encoder=encoder, features=features, detector=detector, interval_ms=interval_ms,
                         train_interval_ms=train_interval_ms, nu=nu,
                         max_frames=max_frames, clip_model=clip_model, clip_pretrained=pretrained,
                         clip_weights=clip_weights, batch_size=batch_size)
    data = load_dataset(dataset, train_clips=_csv(train_clips), test_clips=_csv(test_clips),
                        max_frames=settings.max_frames)
    scorer = create_scorer(settings.detector, settings)
    target = report_dir or Path(f"evaluation-{dataset.resolve().name}-{settings.detector}")
    check_writable(target / "report.json")  # before the fitting, not after
    window = settings.smoothing_window if smooth is None else smooth
    with _progress("evaluate") as cb:
        if hasattr(scorer, "progress"):
            scorer.progress = cb
        report = run_evaluation(data, scorer, smoothing_window=window, normalize=normalize,
                                config={"interval_ms": settings.interval_ms,
                                        "train_interval_ms": settings.train_interval_ms,
                                        "max_frames": settings.max_frames, "nu": settings.nu})
    paths = write_report(report, target, plots=plots)
    _table(("clip", "frames", "anomalous", "AUC", "AP", "EER"),
           [(c.name, str(c.metrics.frames), str(c.metrics.anomalous), _num(c.metrics.auc), _num(c.metrics.ap),
             _num(c.metrics.eer)) for c in report.clips], title=f"{dataset.name}: per-clip frame AUC")
    p, tm = report.pooled, report.timing
    skipped = report.skipped_clips
    out.print(f"[bold]pooled frame AUC {p.auc:.4f}[/]  AP {p.ap:.4f}  EER {p.eer:.4f}  "
              f"(raw, unsmoothed AUC {report.raw_pooled.auc:.4f}); mean per-clip AUC "
              f"{_num(report.mean_clip_auc)} over {len(report.clips) - len(skipped)} clips"
              + (f" (single-class clips skipped: {', '.join(skipped)})" if skipped else ""))
    out.print(f"{p.frames} test frames ({p.anomalous} anomalous); fit {tm['fit_wall_s']:.1f}s, "
              f"score {tm['score_wall_s']:.1f}s ({tm['test_frames_per_s']} frames/s)")
    out.print("report: " + ", ".join(str(v) for v in paths.values()))


# -- dashboard ------------------------------------------------------------------------------
@app.command()
def ui(
    port: Annotated[Optional[int], typer.Option("--port", help="HTTP port (setting ui_port, default 8501)")] = None,
    address: Annotated[str, typer.Option("--address", help="interface to listen on")] = "localhost",
    insecure_no_auth: Annotated[bool, typer.Option(
        "--insecure-no-auth", help="serve a non-loopback address with no login (a trusted network only)")] = False,
    hash_password: Annotated[bool, typer.Option(
        "--hash-password", help="read a password from stdin, print its hash (dashboard_password_hash)")] = False,
) -> None:
    """Start the Streamlit dashboard (train, test, live, models) on http://localhost:8501.

    On an address other than localhost it starts only with a login configured (setting
    dashboard_password_hash, or api_tokens) or with --insecure-no-auth.
    """
    from .credentials import DashboardCredentials, dashboard_exposure

    if hash_password:
        out.print(_password_hash_from_stdin(), highlight=False, markup=False, soft_wrap=True)
        return
    s = _settings()
    why = dashboard_exposure(s, address, insecure_no_auth=insecure_no_auth)
    if why:
        raise ConfigError(why)
    # the app loads its settings itself: the same file, and the owner's --insecure-no-auth
    if _state["config"]:
        os.environ["VLM_ANOMALY_CONFIG"] = str(Path(_state["config"]).resolve())
    if insecure_no_auth:
        os.environ["VLM_ANOMALY_DASHBOARD_INSECURE_NO_AUTH"] = "true"
    app_py = Path(__file__).parent / "ui" / "app.py"
    args = [sys.executable, "-m", "streamlit", "run", str(app_py), "--server.port", str(port or s.ui_port),
            "--server.address", address, "--server.headless", "true",
            "--server.maxUploadSize", str(s.max_upload_mb), "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.showErrorDetails", "type",
            "--client.toolbarMode", "minimal"]
    login = "login required" if DashboardCredentials.from_settings(s).configured else "no login"
    err.print(f"dashboard on http://{address}:{port or s.ui_port} ({login})", highlight=False)
    os.execv(sys.executable, args)


def _password_hash_from_stdin() -> str:
    """A hash of the password typed twice at a terminal, or of stdin's first line when piped."""
    from .credentials import hash_password

    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("dashboard password: ")
        if getpass.getpass("again: ") != first:
            raise ConfigError("the two passwords differ")
        return hash_password(first)
    line = sys.stdin.readline()
    return hash_password(line.removesuffix("\n").removesuffix("\r"))


# -- live monitoring service: watch and serve -----------------------------------------------
def _print_notice(n) -> None:
    """One line per event/gap, as they happen (a source's name or a message is text, never markup:
    a URL with ``[/x]`` in it would make Rich raise and lose the line)."""
    from .cameras import shown_name

    name = shown_name(n.camera, n.source)
    source = esc(name)
    if n.kind == "start":
        r = n.record
        out.print(f"[bold red]EVENT START[/] #{r.id} {source} at {r.start_time:.2f}s "
                  f"(score {r.worst_score:.3f})", highlight=False, soft_wrap=True)
    elif n.kind == "end":
        r = n.record
        extra = esc(f", prompt {r.prompt!r} ({r.prompt_score:.2f})") if r.prompt else ""
        why = f" ({r.end_reason})" if r.end_reason and r.end_reason != "recovered" else ""
        out.print(f"[bold]EVENT END[/] #{r.id} {source} {r.start_time:.2f}-{r.end_time:.2f}s{why} "
                  f"worst {r.worst_score:.3f} at {r.worst_time:.2f}s mean {r.mean_score:.3f}{extra}"
                  f" snapshot {esc(str(r.snapshot or '-'))} clip {esc(str(r.clip or '-'))}",
                  highlight=False, soft_wrap=True)
    elif n.kind in ("gap", "offline"):
        out.print(f"[yellow]{n.kind.upper()}[/] {source}: {esc(n.message)}", highlight=False, soft_wrap=True)
    else:
        msg = n.message if n.message.startswith(n.source) else f"{n.source}: {n.message}"  # named once
        err.print(f"error: {msg}" if name == n.source else f"error: {name}: {msg}", highlight=False, markup=False)


@app.command()
def watch(
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help="model name (default: setting watch_model; a camera's own model wins)")] = None,
    source: Annotated[Optional[list[str]], typer.Option(
        "--source", "-s", help="webcam index, RTSP/HTTP URL, video file or frame folder; repeat for several")] = None,
    frigate: Annotated[Optional[str], typer.Option(
        "--frigate", help="Frigate URL (http://frigate:5000): watch its cameras' restreams")] = None,
    realtime: Annotated[bool, typer.Option("--realtime/--fast",
                                           help="play files at their own rate, or as fast as possible")] = True,
    max_seconds: Annotated[Optional[float], typer.Option("--max-seconds", min=0.0, help="stop after this long")] = None,
    interval_ms: IntervalOpt = None,
    use_ray: Annotated[Optional[bool], typer.Option("--ray/--no-ray", help="spread sources over Ray actors")] = None,
    models_dir: ModelsDirOpt = None,
) -> None:
    """Watch live sources, turn low scores into events (stored, alerted) and print them.

    Without --source/--frigate, the settings' `cameras` and `frigate_url` are watched.
    """
    from .cameras import resolve_cameras, shown_name

    settings = _settings(models_dir=models_dir, interval_ms=interval_ms, ray=use_ray)
    cameras, skipped = resolve_cameras(settings, model=model, sources=source, frigate_url=frigate)
    for name, why in skipped.items():
        err.print(f"Frigate camera {name} skipped: {why}", highlight=False, markup=False, soft_wrap=True)
    if settings.ray:
        from .events import WatchNotice
        from .scale import watch_on_ray

        models = {c.model for c in cameras}
        if len(models) > 1:
            raise typer.BadParameter("--ray watches every camera with one model")
        records = watch_on_ray(settings, models.pop(), [c.source for c in cameras], realtime=realtime,
                               max_seconds=max_seconds)
        for r in records:
            _print_notice(WatchNotice("end", r.source, record=r))
        out.print(f"{len(records)} event(s) from {len(cameras)} source(s) on Ray")
        return
    from .service import watch_cameras
    from .store import ModelStore

    store = ModelStore(settings.models_path)
    missing = sorted({c.model for c in cameras if not store.exists(c.model)})
    if missing:  # said before "watching ...", not after it
        raise ModelNotFoundError(f"no model named {missing[0]!r}", folder=store.root)
    names = ", ".join(shown_name(c.name, redact_url(c.source)) for c in cameras)
    out.print(f"watching {names}", highlight=False, soft_wrap=True, markup=False)
    rows, early = watch_cameras(settings, cameras, realtime=realtime, max_seconds=max_seconds,
                                listener=_print_notice)
    if early:
        out.print(f"stopping after {max_seconds:g} s" if max_seconds else "stopping")
    for st in rows:  # nothing lost silently: dropped frames and failed alerts are in the summary
        shown = shown_name(st["camera"], st["source"])
        line = (f"{shown}: {st['frames']} frames, {st['events']} event(s), {st['gaps']} gap(s) "
                f"({st['missed_s']:.1f} s missed), {st['dropped']} frame(s) dropped, "
                f"{st['alerts_sent']} alert(s) sent, {st['alerts_failed']} failed, "
                + (f"{st['sink_errors']} sink error(s), " if st.get("sink_errors") else "") + st["status"]
                + (f": {st['error']}" if st["error"] else ""))
        out.print(line, highlight=False, soft_wrap=True, markup=False)
        lost = st["dropped"] or st["alerts_failed"] or st.get("sink_errors") or st["status"] == "failed"
        logging.getLogger(__name__).log(logging.WARNING if lost else logging.INFO, "watch summary: %s", line)
    out.print(f"events stored in {redact_url(settings.events_url)}", highlight=False, soft_wrap=True, markup=False)
    if any(st["status"] == "failed" for st in rows):
        raise typer.Exit(2)


@app.command()
def service(
    watch: Annotated[Optional[bool], typer.Option(
        "--watch/--no-watch", help="watch the cameras (default: when cameras or frigate_url are set)")] = None,
    ui: Annotated[bool, typer.Option("--ui/--no-ui", help="run the dashboard")] = True,
    api: Annotated[bool, typer.Option("--api/--no-api", help="run the REST API")] = True,
    grace_s: Annotated[float, typer.Option("--grace-s", min=0.0, help="seconds each process gets to stop")] = 15.0,
) -> None:
    """Run `watch` (the settings' cameras / Frigate), the dashboard and the API under one supervisor.

    One YAML file (--config) configures all three; a crashed process is restarted with back-off;
    SIGTERM or Ctrl-C stops everything gracefully.
    """
    from .cameras import resolve_cameras
    from .service import Supervisor, service_children
    from .video.frigate import FrigateError

    settings = _settings()
    if ui:  # once here, not in the dashboard's restart loop
        from .credentials import dashboard_exposure

        why = dashboard_exposure(settings, settings.ui_address)
        if why:
            raise ConfigError(why)
    if watch is None:
        watch = bool(settings.cameras or settings.frigate_url)
    what = "no cameras"
    if watch:
        try:  # a bad camera list fails here, once, not in a restart loop
            what = "watching " + ", ".join(c.name for c in resolve_cameras(settings)[0])
        except FrigateError as exc:  # Frigate may start after us: the watch process retries with back-off
            what = f"watching Frigate's cameras once it answers ({exc})"
    out.print(f"service: {what}"
              + (f"; API on http://{settings.api_host}:{settings.api_port}" if api else "")
              + (f"; dashboard on http://{settings.ui_address}:{settings.ui_port}" if ui else ""),
              highlight=False, soft_wrap=True, markup=False)
    token = None
    if api and not settings.api_tokens:  # one token for the whole run: a restarted API keeps it
        import secrets

        token = secrets.token_urlsafe(24)
        err.print(f"no api_tokens configured: using a one-time token for this run: {token}",
                  highlight=False, markup=False, soft_wrap=True)
    children = service_children(_state["config"], settings, watch=watch, ui=ui, api=api, api_token=token)
    if not children:
        raise typer.BadParameter("nothing to run: --no-watch, --no-ui and --no-api together")
    sup = Supervisor(children, grace_s=grace_s,
                     on_event=lambda msg: err.print(f"service: {msg}", highlight=False, markup=False))
    code = sup.run()
    out.print("service stopped" + ("" if code == 0 else " (some processes had to be killed)"))
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
) -> None:
    """Run the REST API (OpenAPI docs at /docs) with uvicorn."""
    import secrets

    import uvicorn

    from .api import create_app

    settings = _settings()
    if not settings.api_tokens:
        token = secrets.token_urlsafe(24)
        settings.api_tokens = [token]
        err.print(f"no api_tokens configured: using a one-time token for this run: {token}",
                  highlight=False, markup=False, soft_wrap=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@app.command("score-batch")
def score_batch(
    name: Annotated[str, typer.Argument(help="model name")],
    sources: Annotated[list[str], typer.Argument(help="videos and/or frame folders")],
    out_dir: Annotated[Optional[Path], typer.Option(
        "--out-dir", help="write <video>.csv/.json here (videos sharing a name: a/clip.mp4 -> a__clip.mp4.csv)",
    )] = None,
    use_ray: Annotated[Optional[bool], typer.Option("--ray/--no-ray", help="spread videos over Ray actors")] = None,
    models_dir: ModelsDirOpt = None,
) -> None:
    """Score many videos with a model, on Ray when asked (--ray or setting ray: true).

    Each video's results are written as soon as it is scored; a video that cannot be read is one
    ``error:`` line and the others go on (exit status 2 at the end).
    """
    from .atomic import check_writable
    from .results import output_names

    names = output_names(sources) if out_dir else [None] * len(sources)
    if out_dir and names:
        check_writable(out_dir / f"{names[0]}.csv")
    settings = _settings(models_dir=models_dir, ray=use_ray)
    if settings.ray:
        from .scale import score_batch_on_ray

        results = zip(sources, score_batch_on_ray(settings, name, sources), strict=True)
    else:
        results = _pipeline(models_dir=models_dir).score_each(name, sources)
    failed = 0
    for (src, r), out_name in zip(results, names, strict=True):
        if isinstance(r, VlmAnomalyError):
            failed += 1
            err.print(f"error: {redact_text(r)}", highlight=False, markup=False, soft_wrap=True)
            continue
        out.print(f"{redact_url(src)}: {_summary_text(r.summary())}", highlight=False, soft_wrap=True)
        if out_dir:
            r.write_csv(out_dir / f"{out_name}.csv")
            r.write_json(out_dir / f"{out_name}.json")
            out.print(f"  -> {out_dir / out_name}.csv, .json", highlight=False, markup=False, soft_wrap=True)
    if failed:
        raise typer.Exit(2)


def _print_explanations(result, top: int) -> None:
    """Why the worst frame of each listed incident (or the lowest frame) scored low."""
    import numpy as np

    segs = sorted(result.incidents(), key=lambda g: g.worst_score)[:top]
    positions = [g.worst_position for g in segs] or [int(np.argmin(result.raw_scores))]
    out.print("why:" if segs else "lowest-scoring frame:")
    for i in positions:
        out.print(f"  {float(result.timestamps[i]):.2f}s frame {int(result.frame_indices[i])}: "
                  f"{result.explanations[i].get('text', '')}", highlight=False, markup=False, soft_wrap=True)


def _print_traceback() -> None:
    """--debug: the traceback, with credentials masked as everywhere else."""
    import traceback

    err.print(redact_text(traceback.format_exc()).rstrip(), highlight=False, markup=False, soft_wrap=True)


def main() -> None:
    """Console-script entry: run the app, turning expected errors into one line + exit code."""
    try:
        code = app(standalone_mode=False)  # click returns a command's typer.Exit code here, not raises it
    except VlmAnomalyError as exc:
        if _state["debug"]:
            _print_traceback()
        where = f" in {exc.folder}" if isinstance(exc, ModelNotFoundError) and exc.folder else ""
        err.print(f"error: {redact_text(exc)}{where}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except typer.Abort:
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - usage errors and the unexpected
        # a usage error: click's ClickException, or the copy of click that typer 0.29+ ships
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.message = redact_text(exc.message)
            exc.show()
            sys.exit(exc.exit_code)
        if _state["debug"]:
            _print_traceback()
        err.print(f"error: {type(exc).__name__}: {redact_text(exc)}", highlight=False, markup=False,
                  soft_wrap=True)
        sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
