"""docs/results.md: every number that came from an ``evaluate`` run has its ``report.json`` committed
beside it (docs/results/NAME/), and the table says what that report says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
DOC = DOCS / "results.md"
LINK = re.compile(r"\]\((results/[^)]+/report\.json)\)")


def _rows() -> list[list[str]]:
    """Cells of the rows of the evaluate tables (those with a "report" column)."""
    rows, in_table = [], False
    for line in DOC.read_text().splitlines():
        if line.startswith("| configuration (features / detector"):
            in_table = line.rstrip().endswith("| report |")
            continue
        if in_table and line.startswith("| ") and not line.startswith("|---"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif not line.startswith("|"):
            in_table = False
    return rows


def _report(link: str) -> dict:
    path = DOCS / link
    assert path.is_file(), f"{link} is linked from docs/results.md but not committed"
    return json.loads(path.read_text())


def test_every_evaluate_row_links_its_report_or_says_why_not():
    rows = _rows()
    assert len(rows) >= 18  # the three tables of evaluate runs
    for cells in rows:
        assert LINK.search(cells[-1]) or cells[-1].startswith("not re-run"), cells


@pytest.mark.parametrize("cells", [r for r in _rows() if LINK.search(r[-1])], ids=lambda r: r[0][:60])
def test_each_row_says_what_its_report_says(cells):
    link = LINK.search(cells[-1]).group(1)
    d = _report(link)
    c, m = d["config"], d["metrics"]
    cfg = cells[0].replace("*", "")
    assert cfg.startswith(c["features"]) and f"/ {c['detector']} /" in cfg, (cfg, c)
    assert f"smooth {c['smoothing_window']}" in cfg and (f"norm {c['normalize']}" in cfg or
                                                        (c["normalize"] == "none" and "norm" not in cfg)), (cfg, c)
    command = (DOCS / link).with_name("command").read_text().strip()
    if cells[1].startswith("`"):  # a full command (later rows of a table may describe theirs by the first)
        assert cells[1] == f"`{command}`"
    shown = [float(x.strip("*")) for x in cells[2:7]]
    stored = [m["pooled"]["auc"], m["raw_pooled"]["auc"], m["mean_clip_auc"], m["pooled"]["ap"], m["pooled"]["eer"]]
    assert shown == [round(x, 4) for x in stored], (cells[0], shown, stored)
    assert len(d["frames"]["score"]) == d["dataset"]["test_frames"] == 2010


def test_figures_outside_the_tables_match_their_reports():
    text = DOC.read_text()
    para = re.search(r"\*\*The default command, every training frame\.\*\*(.+?)\n\n", text, re.S).group(1)
    d = _report(LINK.search(para).group(1))
    m = d["metrics"]
    shown = re.search(r"pooled AUC\s+\*\*([0-9.]+)\*\*, AP ([0-9.]+), EER ([0-9.]+), mean clip AUC ([0-9.]+)", para)
    assert [float(x) for x in shown.groups()] == [round(x, 3) for x in (
        m["pooled"]["auc"], m["pooled"]["ap"], m["pooled"]["eer"], m["mean_clip_auc"])]
    assert d["dataset"]["train_frames"] == 2550 and d["config"]["detector"] == "ocsvm"
    for link in LINK.findall(text):  # plots and anything else: the report is there
        _report(link)
