"""Smoke test of the benchmark: ``bench/bench_pipeline.py --quick`` runs and writes its JSON.

The numbers themselves are machine-dependent and are not asserted here (speed is measured in
bench/, not in timed tests); what is asserted is that every part of the report is produced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: real processes, servers or a browser: tens of seconds (deselect with -m "not slow")
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_bench_quick_writes_json(tmp_path):
    out = tmp_path / "results.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")}
    p = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "bench_pipeline.py"),
            "--quick",
            "--out",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
            "--runtimes",
            "torch,onnx",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["quick"] is True
    assert res["clip"]["size"] == [640, 480] and res["clip"]["frames"] >= 60
    assert res["machine"]["cores"] >= 1 and res["peak_gflops"] > 0
    r = res["encoders"]["efficientnet-lite0"]
    assert r["gflops"] > 0.3 and r["compute_bound_fps"] > 0
    for rt in ("torch", "onnx"):
        lib = r["library"][rt]
        assert lib["effective_runtime"] == rt
        assert lib["500"]["frames"] == r["naive"]["500"]["frames"]  # same clip, same sampling
        assert lib["0"]["frames"] == res["every_frame_limit"]
        assert lib["500"]["fps"] > 0 and lib["0"]["fps"] > 0
        assert set(lib["encoder_only_fps"]) == {"1", "4"}
        assert lib["500"]["timing"]["runtime"] == rt
        assert r["speedup"][rt]["500"] > 0
    assert r["rss"]["4x"]["frames"] > 3 * r["rss"]["1x"]["frames"]  # really 4x the clip
    assert r["rss"]["1x"]["max_rss_mb"] > 0 and "flat" in r["rss"]
    assert r["cache"]["videos"] == 2 and r["cache"]["rerun_s"] < r["cache"]["first_s"]
    assert "efficientnet-lite0" in p.stdout and str(out) in p.stdout
