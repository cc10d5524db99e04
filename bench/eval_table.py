"""Tabulate evaluation reports (report.json files) as the Markdown table of docs/results.md.

Usage: python bench/eval_table.py REPORT_DIR... (each holding report.json and a `command` file);
the last column links each report.json relative to docs/ (where docs/results.md lives).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(folder: Path) -> str:
    d = json.loads((folder / "report.json").read_text())
    c, m, t = d["config"], d["metrics"], d["timing"]
    cmd = (folder / "command").read_text().strip() if (folder / "command").is_file() else ""
    cfg = (f"{c.get('features', 'frame')} / {c.get('detector')} / smooth {c['smoothing_window']} / "
           f"norm {c['normalize']}")
    p = m["pooled"]
    mean = m["mean_clip_auc"]
    return (f"| {cfg} | `{cmd}` | {p['auc']:.4f} | {m['raw_pooled']['auc']:.4f} | "
            f"{mean:.4f} | {p['ap']:.4f} | {p['eer']:.4f} | {t['fit_wall_s']:.0f} s + {t['score_wall_s']:.0f} s "
            f"({t['test_frames_per_s']:.0f} f/s) | [report.json]({_link(folder / 'report.json')}) |")


def _link(path: Path) -> str:
    docs = Path(__file__).resolve().parents[1] / "docs"
    try:
        return path.resolve().relative_to(docs).as_posix()
    except ValueError:
        return path.as_posix()


def main(argv: list[str]) -> None:
    print("| configuration (features / detector / smoothing / per-clip norm) | exact command | pooled AUC "
          "| pooled AUC before smoothing and normalisation | mean clip AUC | AP | EER "
          "| time: fit + score (test frames/s) | report |")
    print("|---|---|---|---|---|---|---|---|---|")
    for a in argv:
        print(row(Path(a)))


if __name__ == "__main__":
    main(sys.argv[1:])
