"""The README's "One event end to end" example, run as a newcomer would: its commands as written in a
fresh folder (only the webhook's port is swapped for a free one, with a real listener there), then
what the README says came out - the printed event and summary lines, the webhook's ``end`` body and
when the event ends with the model's window alone."""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers import REPO, cli_env, free_port

pytestmark = pytest.mark.slow

#: an event's snapshot/clip name holds the day and a random suffix: the README shows one run's
EVIDENCE = re.compile(r"/\d{8}/event-(\d+)-[0-9a-f]{6}\.")


def _section() -> tuple[list[str], list[str], str]:
    """The example's commands, the output lines it shows (its ``# `` lines) and the prose after it."""
    text = (REPO / "README.md").read_text()
    text = text[text.index("One event end to end"):]
    start = text.index("```bash\n") + len("```bash\n")
    end = text.index("```", start)
    commands, shown = [], []
    for line in text[start:end].replace("\\\n", " ").splitlines():
        (shown if line.startswith("# ") else commands).append(line[2:] if line.startswith("# ") else line)
    return [c for c in commands if c.strip()], shown, text[end:text.index("\n## ", end)]


def _listener() -> tuple[int, list[dict], http.server.HTTPServer]:
    bodies: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the stdlib's name)
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    port = free_port()
    server = http.server.HTTPServer(("127.0.0.1", port), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return port, bodies, server


def _run(command: str, cwd: Path, **env: str) -> str:
    """One line of the example in bash, ``python`` and ``vlm-anomaly`` being this checkout's."""
    prelude = (f'python() {{ "{sys.executable}" "$@"; }}\n'
               f'vlm-anomaly() {{ "{sys.executable}" -m vlm_anomaly.cli "$@"; }}\n')
    done = subprocess.run(["bash", "-c", prelude + command], cwd=cwd, env=cli_env(None, **env),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (command, done.stdout, done.stderr[-3000:])
    return done.stdout


def test_the_end_to_end_example_gives_what_the_readme_shows(tmp_path):
    commands, shown, prose = _section()
    port, bodies, server = _listener()
    try:
        out = ""
        for command in commands:
            assert "127.0.0.1:9000" in command or "9000" not in command
            out = _run(command.replace("127.0.0.1:9000", f"127.0.0.1:{port}"), tmp_path)
        # the last command is `watch`: its lines as the README prints them
        printed = [EVIDENCE.sub(r"/DAY/event-\1-ID.", ln) for ln in out.splitlines()]
        assert printed == [EVIDENCE.sub(r"/DAY/event-\1-ID.", ln) for ln in shown], out
        assert [b["type"] for b in bodies] == ["new", "end"]
        after = prose[prose.index('"after": {'):prose.index("...}}")]
        stated = json.loads("{" + after[len('"after": {'):].rstrip().rstrip(",") + "}")
        # scores to the last printed digits can differ between machines (BLAS, OpenCV builds): 1e-5
        assert {k: bodies[1]["after"][k] for k in stated} == {
            k: pytest.approx(v, abs=1e-5) if isinstance(v, float) else v for k, v in stated.items()}
        # "with the model's 5-sample window alone (`event_end_smoothing_s: 100`) it ends at 10.0 s"
        alone = re.search(r"window alone \(`event_end_smoothing_s: (\d+)`\) it ends at ([\d.]+) s", prose)
        watch = commands[-1]
        again = _run(watch, tmp_path, VLM_ANOMALY_EVENT_END_SMOOTHING_S=alone.group(1))
        end = re.search(r"EVENT END #\d+ \S+ ([\d.]+)-([\d.]+)s", again)
        assert float(end.group(2)) == float(alone.group(2)), again
    finally:
        server.shutdown()
