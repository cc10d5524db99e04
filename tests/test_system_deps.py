"""scripts/system-deps.sh: the system programs the suite drives (Chromium, chromedriver, mosquitto)
are installed by ``make test`` when missing and the user may, else named in one clear line.

The script runs for real; only the commands that would change this machine or that decide who the
user is (``apt-get``, ``id``, ``sudo``) are replaced by small recording scripts put first on PATH,
and the program paths it checks are pointed at a scratch folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "system-deps.sh"
PROGRAMS = ("CHROMIUM", "CHROMEDRIVER", "MOSQUITTO")


def _stub(folder: Path, name: str, body: str) -> None:
    p = folder / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(0o755)


@pytest.fixture
def box(tmp_path):
    """A scratch world: program paths under ``tmp_path/usr``, stubs in ``tmp_path/bin``."""
    bin_, usr = tmp_path / "bin", tmp_path / "usr"
    bin_.mkdir()
    usr.mkdir()
    log = tmp_path / "calls.log"
    # apt-get "installs" by creating the programs the script was told to look for
    _stub(bin_, "apt-get", f'echo "apt-get $*" >> {log}\n'
          'case "$1" in install) for p in "$CHROMIUM" "$CHROMEDRIVER" "$MOSQUITTO"; do '
          '[ -e "$p" ] || { printf "#!/bin/sh\\n" > "$p"; chmod +x "$p"; }; done;; esac')
    env = dict(os.environ, PATH=f"{bin_}:{os.environ['PATH']}",
               **{k: str(usr / k.lower()) for k in PROGRAMS})

    def run(*args: str, uid: int = 0, sudo: bool = False, present: tuple[str, ...] = ()):
        _stub(bin_, "id", f'[ "$1" = -u ] && echo {uid} || exec /usr/bin/id "$@"')
        _stub(bin_, "sudo", f'echo "sudo $*" >> {log}\n' + ('shift; exec "$@"' if sudo else "exit 1"))
        for k in present:
            _stub(usr, k.lower(), "")
        r = subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)
        calls = log.read_text().splitlines() if log.exists() else []
        return r, calls

    return run


def test_nothing_missing_installs_nothing(box):
    r, calls = box(uid=1000, present=PROGRAMS)
    assert r.returncode == 0 and r.stderr == "" and calls == []


def test_root_installs_only_what_is_missing(box):
    r, calls = box(uid=0, present=("CHROMIUM",))
    assert r.returncode == 0, r.stderr
    installs = [c for c in calls if " install " in c]
    assert installs and all(c.endswith("install -y -qq --no-install-recommends chromium-driver mosquitto")
                            for c in installs), calls
    assert not any(c.startswith("sudo") for c in calls)


def test_password_less_sudo_is_used_by_an_ordinary_user(box):
    r, calls = box(uid=1000, sudo=True)
    assert r.returncode == 0, r.stderr
    assert any(c.startswith("sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install") and
               c.endswith("chromium chromium-driver mosquitto") for c in calls), calls


def test_a_user_who_may_not_install_gets_one_line_naming_the_packages(box):
    r, calls = box(uid=1000, sudo=False, present=("CHROMIUM",))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "chromium-driver mosquitto" in lines[0] and "apt-get install -y chromium-driver mosquitto" in lines[0]
    assert "chromium " not in lines[0].replace("chromium-driver", "")
    assert not any("apt-get" in c for c in calls), calls


def test_check_only_reports(box):
    r, calls = box("--check", uid=0, present=("CHROMEDRIVER", "MOSQUITTO"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "chromium" in r.stderr
    assert calls == []


def test_make_test_and_ci_both_go_through_the_script():
    dry = subprocess.run(["make", "-n", "test"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "scripts/system-deps.sh" in dry.stdout
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci and "apt-get" not in ci  # no second copy of the install logic


def test_readme_states_the_python_version_pyproject_requires():
    import re
    import tomllib

    required = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    stated = re.findall(r"Python ≥ (3\.\d+)", (REPO / "README.md").read_text())
    assert stated and set(stated) == {required.removeprefix(">=")}, (stated, required)
