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
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .config import Settings, load_settings
from .errors import VlmAnomalyError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Video anomaly detection with vision-language models.")
models_app = typer.Typer(no_args_is_help=True, help="Manage saved models.")
app.add_typer(models_app, name="models")

out = Console()
err = Console(stderr=True)
_state: dict = {"config": None, "debug": False}

# -- shared options -------------------------------------------------------------------------
IntervalOpt = Annotated[Optional[int], typer.Option("--interval-ms", help="sampling interval; 0 = every frame")]
EncoderOpt = Annotated[Optional[str], typer.Option("--encoder", help="auto | openclip | efficientnet")]
ClipModelOpt = Annotated[Optional[str], typer.Option("--clip-model", help="ViT-B-32 | ViT-B-16 | ViT-L-14")]
PretrainedOpt = Annotated[Optional[str], typer.Option("--pretrained", help="openai | laion400m_e32 | laion2b_s34b_b79k | none")]
WeightsOpt = Annotated[Optional[Path], typer.Option("--clip-weights", help="local OpenCLIP weights file")]
ModelsDirOpt = Annotated[Optional[Path], typer.Option("--models-dir", help="model store folder")]
BatchOpt = Annotated[Optional[int], typer.Option("--batch-size")]
# speed (issue 5): where the image tower runs
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


def _pipeline(**overrides):
    from .pipeline import Pipeline

    return Pipeline(_settings(**overrides))


@contextlib.contextmanager
def _progress(label: str) -> Iterator:
    """A Rich progress bar fed by the pipeline's (done, total, stage) callback."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("frames"), TimeRemainingColumn(), console=err, transient=False,
                  disable=not err.is_terminal and os.environ.get("VLM_ANOMALY_PROGRESS") != "1") as prog:
        task = prog.add_task(label, total=None)

        def update(done: int, total: int, stage: str) -> None:
            prog.update(task, completed=done, total=total or None, description=f"{label}: {stage}")

        yield update


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
    detector: Annotated[Optional[str], typer.Option("--detector", help="detector short name")] = None,
    nu: Annotated[Optional[float], typer.Option("--nu")] = None,
    gamma: Annotated[Optional[str], typer.Option("--gamma", help="'scale', 'auto' or a number")] = None,
    models_dir: ModelsDirOpt = None,
    batch_size: BatchOpt = None,
    runtime: RuntimeOpt = None,
) -> None:
    """Learn what normal looks like from videos of normal activity and save the model."""
    pipe = _pipeline(interval_ms=interval_ms, expected_objects=expected_objects, encoder=encoder,
                     clip_model=clip_model, clip_pretrained=pretrained, clip_weights=clip_weights,
                     detector=detector, nu=nu, gamma=gamma, models_dir=models_dir, batch_size=batch_size,
                     runtime=runtime)
    with _progress("train") as cb:
        model = pipe.train(name, sources, progress=cb)
    out.print(f"saved model [bold]{name}[/]: {model.n_frames} frames from {len(model.videos)} video(s), "
              f"encoder {model.encoder.label}, detector {model.detector.name}")


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
    top: Annotated[int, typer.Option("--top", help="segments to list")] = 5,
    runtime: RuntimeOpt = None,
) -> None:
    """Score a video frame by frame with a saved model."""
    pipe = _pipeline(models_dir=models_dir, clip_weights=clip_weights, batch_size=batch_size,
                     runtime=runtime)
    model = pipe.store.load(name)
    iv = interval_ms if interval_ms is not None else model.interval_ms
    with _progress("score") as cb:
        result = pipe.score(model, source, progress=cb, threshold=threshold, interval_ms=iv)
    if csv:
        result.write_csv(csv)
    if json_out:
        result.write_json(json_out)
    s = result.summary()
    out.print(f"[bold]{Path(source).name}[/] with model [bold]{name}[/]: {s['frames']} frames, "
              f"{s['anomalies']} anomalous ({100 * s['anomaly_rate']:.1f}%), lowest score {s['lowest_score']}")
    if s["segments"]:
        t = Table(title="lowest-scoring segments")
        for col in ("start", "end", "frames", "worst score", "at"):
            t.add_column(col)
        for seg in s["segments"][:top]:
            t.add_row(f"{seg['start_time']:.2f}s", f"{seg['end_time']:.2f}s", str(seg["frames"]),
                      f"{seg['worst_score']:.3f}", f"{seg['worst_time']:.2f}s")
        out.print(t)


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
                                       "labels": list(d.labels), "probs": [round(p, 4) for p in d.probs]}))
        else:
            alts = ", ".join(f"{lab} {p:.2f}" for lab, p in zip(d.labels, d.probs))
            out.print(f"{float(t):8.2f}s  #{int(i):<6d} {alts}", highlight=False)


@models_app.command("list")
def models_list(models_dir: ModelsDirOpt = None, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List saved models."""
    from .store import ModelStore

    store = ModelStore(_settings(models_dir=models_dir).models_path)
    rows = store.list()
    if json_out:
        out.print_json(json.dumps([r.__dict__ for r in rows]))
        return
    if not rows:
        out.print(f"no models in {store.root}")
        return
    t = Table()
    for col in ("name", "encoder", "detector", "videos", "frames", "created"):
        t.add_column(col)
    for r in rows:
        t.add_row(r.name, r.encoder, r.detector, str(r.videos), str(r.frames), r.created)
    out.print(t)


@models_app.command("show")
def models_show(name: str, models_dir: ModelsDirOpt = None) -> None:
    """Show a model's metadata as JSON."""
    from .store import ModelStore

    out.print_json(json.dumps(ModelStore(_settings(models_dir=models_dir).models_path).show(name)))


@models_app.command("delete")
def models_delete(name: str, models_dir: ModelsDirOpt = None,
                  yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False) -> None:
    """Delete a saved model."""
    from .store import ModelStore

    store = ModelStore(_settings(models_dir=models_dir).models_path)
    store.path_for(name)
    if not yes and sys.stdin.isatty() and not typer.confirm(f"delete model {name}?"):
        raise typer.Exit(1)
    store.delete(name)
    out.print(f"deleted model {name}")


@models_app.command("rename")
def models_rename(old: str, new: str, models_dir: ModelsDirOpt = None) -> None:
    """Rename a saved model."""
    from .store import ModelStore

    ModelStore(_settings(models_dir=models_dir).models_path).rename(old, new)
    out.print(f"renamed model {old} -> {new}")


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option("--workdir", help="where clips and models go")] = Path(".vlm-anomaly/demo"),
    encoder: EncoderOpt = None,
) -> None:
    """Generate two normal clips and one with an intruder, train, and score (offline)."""
    from .synthetic import write_video

    workdir.mkdir(parents=True, exist_ok=True)
    clips = [write_video(workdir / f"normal{i}.mp4", seconds=20, seed=0) for i in (1, 2)]
    test = write_video(workdir / "intruder.mp4", seconds=20, seed=0, anomaly_span=(8.0, 14.0))
    pipe = _pipeline(home=workdir, encoder=encoder)
    with _progress("train") as cb:
        pipe.train("demo", clips, progress=cb)
    with _progress("score") as cb:
        r = pipe.score("demo", test, progress=cb)
    r.write_csv(workdir / "scores.csv")
    s = r.summary()
    out.print(f"demo: {s['frames']} frames scored, {s['anomalies']} anomalous; the intruder is on screen "
              f"8.0-14.0 s; segments found: "
              + ", ".join(f"{g['start_time']:.1f}-{g['end_time']:.1f} s" for g in s["segments"]))
    out.print(f"per-frame scores: {workdir / 'scores.csv'}")


def main() -> None:
    """Console-script entry: run the app, turning expected errors into one line + exit code."""
    try:
        app(standalone_mode=False)
    except VlmAnomalyError as exc:
        if _state["debug"]:
            raise
        err.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - click usage errors and the unexpected
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if _state["debug"]:
            raise
        err.print(f"error: {type(exc).__name__}: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
