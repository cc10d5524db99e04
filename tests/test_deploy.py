"""The Dockerfile, compose.yaml and example configs are valid and agree with pyproject.toml and the
settings (nothing is built or run here: the Dockerfile goes through BuildKit's own parser)."""

import re
import tomllib

import dockerfile
import yaml

from tests.helpers import REPO
from vlm_anomaly.config import Settings, load_settings


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
        assert key.removeprefix("VLM_ANOMALY_").lower() in Settings.model_fields, key
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
