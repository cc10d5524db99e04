"""``VLM_ANOMALY_TEST_PED2`` (README, "Tests") decides where every Ped2 test reads the dataset, even
with all test folders collected together (a conftest that cleans the environment must keep it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PED2_TESTS = ["tests/test_cli.py::test_ped2_frame_folders_end_to_end",
              "tests/test_evaluation.py::test_cli_evaluate_on_a_ped2_subset_matches_scikit_learn"]


def test_every_ped2_test_reads_the_folder_the_override_names(tmp_path):
    """The override points at a folder without the dataset: each Ped2 test must say so (proof that
    it looked there) rather than quietly use the copy at ../shared/data/ped2."""
    elsewhere = tmp_path / "my-ped2"
    elsewhere.mkdir()
    env = {**os.environ, "VLM_ANOMALY_TEST_PED2": str(elsewhere), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rE",
                        # collected first, as in a whole-suite run: its conftest cleans the environment
                        "tests/robustness/test_resources.py::test_limits_are_settings_with_validation",
                        *PED2_TESTS],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert "1 passed, 2 errors" in out, out[-3000:]
    assert out.count(f"VLM_ANOMALY_TEST_PED2={elsewhere} is not a UCSD Ped2 folder") >= 2, out[-3000:]
