"""The Dockerfile, compose.yaml and example configs are valid and agree with pyproject.toml and the
settings (the Dockerfile goes through BuildKit's own parser), and the container's command line starts
as the image would run it (in namespaces of its own: no image builder answers here)."""

import re
import tomllib
from pathlib import Path

import dockerfile
import pytest
import yaml

from tests.helpers import REPO
from vlm_anomaly.config import KEYS, Settings, load_settings


def test_dockerfile_parses_and_installs_this_project():
    cmds = dockerfile.parse_file(str(REPO / "Dockerfile"))  # BuildKit's parser: raises on bad syntax
    by = {}
    for c in cmds:
        by.setdefault(c.cmd, []).append(c)
    assert len(by["FROM"]) == 2 and by["FROM"][1].value[0].startswith("python:")
    copies = [c.value for c in by["COPY"]]
    assert ("pyproject.toml", "README.md", "./") in copies and ("src", "./src") in copies
    extras = {e for c in by["RUN"] for m in re.findall(r'install "\.\[([a-z,]+)\]"', c.value[0])
              for e in m.split(",")}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert extras == {"ui", "api"} and extras <= set(project["optional-dependencies"])
    assert "vlm-anomaly" in project["scripts"]
    assert by["ENTRYPOINT"][0].json and by["ENTRYPOINT"][0].value == ("vlm-anomaly",)
    assert by["CMD"][0].value == ("service",)
    s = Settings()
    assert set(by["EXPOSE"][0].value) == {str(s.api_port), str(s.ui_port)}
    env = {k: v for c in by["ENV"] for k, v in zip(c.value[::2], c.value[1::2], strict=True)}
    for key in ("VLM_ANOMALY_HOME", "VLM_ANOMALY_API_HOST", "VLM_ANOMALY_UI_ADDRESS"):
        assert key.removeprefix("VLM_ANOMALY_").lower() in KEYS, key
    assert env["VLM_ANOMALY_API_HOST"] == "0.0.0.0" and env["VLM_ANOMALY_CONFIG"] == "/config/vlm-anomaly.yaml"
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_compose_builds_the_image_and_mounts_the_service_file():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    svc = compose["services"]["vlm-anomaly"]
    assert svc["build"] == "." and (REPO / "Dockerfile").is_file()
    assert svc["init"] is True and "./service.yaml:/config/vlm-anomaly.yaml:ro" in svc["volumes"]
    assert {p.split(":")[1] for p in svc["ports"]} == {"8000", "8501"}
    assert "VLM_ANOMALY_API_TOKENS" in svc["environment"]


def test_example_configs_load():
    s = load_settings(REPO / "service.example.yaml")
    assert [c.name for c in s.cameras] == ["back_yard", "lobby"] and s.frigate_url and s.watch_model
    assert s.ha_discovery_prefix == "homeassistant"
    load_settings(REPO / "config.example.yaml")


# -- the container's command line, run as it is where no image builder answers ------------------------------

SANDBOX = r'''
set -eu
ip link set lo up                                     # the container's own network: ports 8000/8501 are its own
mount -t tmpfs tmpfs "$T"                             # a root of its own, this machine's folders bound into it
R="$T/root"; mkdir "$R"
for e in /* /.[!.]*; do
  [ -e "$e" ] || continue
  n=${e#/}
  case "$n" in proc|sys|dev|tmp|root|home|data|config) continue;; esac
  if [ -L "$e" ]; then cp -P "$e" "$R/$n"
  elif [ -d "$e" ]; then mkdir "$R/$n"; mount --rbind "$e" "$R/$n"
  fi
done
mkdir "$R/proc" "$R/sys" "$R/dev" "$R/tmp" "$R/root" "$R/home"
for d in proc sys dev; do mount --rbind "/$d" "$R/$d"; done
mount -t tmpfs tmpfs "$R/tmp"
for top in root home; do                              # where the interpreter may live (the image's /opt/venv)
  for e in /$top/* /$top/.[!.]*; do
    [ -d "$e" ] && [ ! -L "$e" ] && [ ! -e "$R$e" ] || continue
    mkdir "$R$e"; mount --rbind "$e" "$R$e"
  done
done
# a checkout (or venv) under a folder the image's user may not enter, e.g. a mode-700 clone: the image
# keeps its code in folders of its own that it can read, so here the same folders are reached through
# fresh, readable parents (a tmpfs over the first closed one, the folder itself bound back in)
for pair in $EXPOSE; do
  closed=${pair%%=*}; keep=${pair#*=}
  if ! mountpoint -q "$R$closed"; then mount -t tmpfs -o mode=0755 tmpfs "$R$closed"; fi
  mkdir -p "$R$keep"; mount --rbind "$keep" "$R$keep"
done
# the image's RUN step: `useradd --uid 1000 vlm && mkdir -p /data /config && chown vlm /data /config`
mkdir -p "$R/data" "$R/config" "$R/home/vlm"
if [ "$AS_UID" != 0 ]; then chown "$AS_UID" "$R/data" "$R/config" "$R/home/vlm"; fi
cp "$SERVICE_FILE" "$R/config/vlm-anomaly.yaml"       # compose: ./service.yaml:/config/vlm-anomaly.yaml:ro
chmod 0444 "$R/config/vlm-anomaly.yaml"
SWITCH=""
if [ "$AS_UID" != 0 ]; then SWITCH="setpriv --reuid=$AS_UID --regid=$AS_UID --clear-groups"; fi
chroot "$R" $SWITCH env -i $CONTAINER_ENV sh -c "cd $WORKDIR && exec $COMMAND" > "$R/tmp/service.log" 2>&1 &
pid=$!
chroot "$R" "$PYTHON" -c "$CHECK" "$pid" || true
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" || echo "exit code $?"
echo "--- service log"
cat "$R/tmp/service.log"
'''

#: inside the container's network: both servers answer, then the result as one JSON line
CHECK = r'''
import json, os, sys, time, urllib.request
pid, seen, deadline = int(sys.argv[1]), {}, time.monotonic() + 240
urls = {"api": "http://127.0.0.1:8000/health", "dashboard": "http://127.0.0.1:8501/_stcore/health"}
while time.monotonic() < deadline and len(seen) < len(urls) and os.path.exists(f"/proc/{pid}"):
    for k, u in urls.items():
        try:
            with urllib.request.urlopen(u, timeout=3) as r:
                seen[k] = r.status
        except OSError:
            pass
    time.sleep(1)
uid = next((int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("Uid:")), None) \
    if os.path.exists(f"/proc/{pid}") else None
print("CHECK " + json.dumps(seen, sort_keys=True), "uid", uid, flush=True)
'''


def _closed_parents() -> str:
    """``closed=folder`` pairs: the checkout and the venv, each with its first parent that others may
    not enter (mode 700), or nothing when they are reachable as they are."""
    import stat
    import sys

    pairs = []
    for folder in (REPO.resolve(), Path(sys.prefix).resolve()):
        for parent in reversed(folder.parents[:-1]):  # from the top down, "/" left out
            if not parent.stat().st_mode & stat.S_IXOTH:
                pairs.append(f"{parent}={folder}")
                break
    assert all(" " not in p for p in pairs), pairs
    return " ".join(dict.fromkeys(pairs))


def container_command(extra_env: dict[str, str]) -> tuple[dict[str, str], str, str, int]:
    """The image's environment (ENV lines, /opt/venv mapped to this venv, the code of this checkout),
    its WORKDIR, its ENTRYPOINT + CMD and its user's uid, all read from the Dockerfile."""
    import os
    import shlex
    import sys

    cmds = dockerfile.parse_file(str(REPO / "Dockerfile"))
    final = cmds[max(i for i, c in enumerate(cmds) if c.cmd == "FROM"):]  # the runtime stage
    by: dict = {}
    for c in final:
        by.setdefault(c.cmd, []).append(c)
    base_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # python:*-slim's PATH
    venv_bin = str(Path(sys.executable).parent)
    env = {"PATH": base_path, "HOME": "/home/vlm"}
    for c in by["ENV"]:
        for k, v in zip(c.value[::2], c.value[1::2], strict=True):
            env[k] = v.replace("$PATH", env["PATH"]).replace("/opt/venv/bin", venv_bin)
    env["PYTHONPATH"] = str(REPO / "src")  # the image installs this checkout; here it is imported from it
    env.update(extra_env)
    [user] = by["USER"]
    uid = int(re.search(rf"useradd .*--uid (\d+) {user.value[0]}\b", " ".join(c.value[0] for c in by["RUN"]))[1])
    command = shlex.join([*by["ENTRYPOINT"][0].value, *by["CMD"][0].value])
    return env, by["WORKDIR"][0].value[0], command, uid if os.geteuid() == 0 else 0


def run_container(tmp_path, extra_env: dict[str, str]) -> str:
    import os
    import shlex
    import shutil
    import subprocess
    import sys

    env, workdir, command, uid = container_command(extra_env)
    tmp_path.mkdir(parents=True)
    service_file = tmp_path / "service.yaml"
    service_file.write_text("log_level: INFO\n")  # compose mounts the owner's file; no cameras here
    (tmp_path / "t").mkdir()
    vars_ = {"T": str(tmp_path / "t"), "AS_UID": str(uid), "SERVICE_FILE": str(service_file), "WORKDIR": workdir,
             "COMMAND": command, "PYTHON": sys.executable, "CHECK": CHECK, "EXPOSE": _closed_parents(),
             "CONTAINER_ENV": " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())}
    # root: namespaces of its own; anyone else: a user namespace where it is root (then the uid is its own)
    ns = ["unshare", "--mount", "--net", "--propagation", "private"]
    if os.geteuid() != 0:
        ns[1:1] = ["--user", "--map-root-user"]
    assert shutil.which("unshare") and shutil.which("chroot") and shutil.which("ip"), "util-linux, iproute2 needed"
    r = subprocess.run([*ns, "bash", "-c", SANDBOX], env={**os.environ, **vars_}, capture_output=True, text=True,
                       timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


@pytest.mark.slow
def test_container_starts_its_dashboard_only_with_a_login(tmp_path):
    """`vlm-anomaly service` as the image runs it - its user (uid 1000), its ENV, /data and /config, its
    network (ports 8000 and 8501 of its own) - with compose's environment; no image builder runs here."""
    from vlm_anomaly.credentials import hash_password

    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    assert set(compose["services"]["vlm-anomaly"]["environment"]) == {"VLM_ANOMALY_API_TOKENS",
                                                                   "VLM_ANOMALY_DASHBOARD_PASSWORD_HASH"}
    # the image alone, no credentials given: one clear line and exit 2, not a dashboard open to all
    out = run_container(tmp_path / "bare", {})
    assert "CHECK {}" in out and "exit code 2" in out, out
    assert ("error: the dashboard would listen on 0.0.0.0 with no login: set dashboard_password_hash" in out), out
    # compose's environment: the token (required there) and a password hash from `ui --hash-password`
    out = run_container(tmp_path / "compose", {"VLM_ANOMALY_API_TOKENS": "tok-" + "x" * 28,
                                               "VLM_ANOMALY_DASHBOARD_PASSWORD_HASH": hash_password("a long pw!")})
    uid = container_command({})[3]
    assert f'CHECK {{"api": 200, "dashboard": 200}} uid {uid}' in out, out
    assert "dashboard on http://0.0.0.0:8501 (login required)" in out, out
