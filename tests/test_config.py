"""Settings precedence: built-in defaults < config file < VLM_ANOMALY_* environment < explicit overrides."""

from __future__ import annotations

import pytest

from vlm_anomaly.config import load_settings
from vlm_anomaly.errors import ConfigError


def test_precedence_file_env_overrides(tmp_path, monkeypatch):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("interval_ms: 250\nencoder: efficientnet\nexpected_objects: [person, desk]\nnu: 0.2\n")
    s = load_settings(cfg)
    assert (s.interval_ms, s.encoder, s.expected_objects, s.nu) == (250, "efficientnet", ["person", "desk"], 0.2)
    assert s.batch_size == 16 and s.smoothing_window == 5  # untouched defaults

    monkeypatch.setenv("VLM_ANOMALY_INTERVAL_MS", "1000")
    monkeypatch.setenv("VLM_ANOMALY_EXPECTED_OBJECTS", "person, printer")
    s = load_settings(cfg)
    assert (s.interval_ms, s.expected_objects, s.encoder) == (1000, ["person", "printer"], "efficientnet")

    s = load_settings(cfg, overrides={"interval_ms": 100, "encoder": None})  # None = flag not given
    assert (s.interval_ms, s.encoder) == (100, "efficientnet")


def test_config_file_found_by_env_and_paths_follow_home(tmp_path, monkeypatch):
    cfg = tmp_path / "elsewhere.yaml"
    cfg.write_text(f"home: {tmp_path / 'h'}\ntop_k: 5\n")
    monkeypatch.setenv("VLM_ANOMALY_CONFIG", str(cfg))
    s = load_settings()
    assert s.top_k == 5
    assert s.models_path == tmp_path / "h" / "models" and s.cache_path == tmp_path / "h" / "cache"


@pytest.mark.parametrize(("values", "field"), [
    ({"interval_ms": 50}, "interval_ms"), ({"interval_ms": 2500}, "interval_ms"), ({"nu": 0}, "nu"),
    ({"batch_size": 0}, "batch_size"), ({"encoder": "resnet"}, "encoder"), ({"colour": "red"}, "colour"),
])
def test_invalid_values_are_one_clear_error(values, field):
    with pytest.raises(ConfigError, match=f"invalid setting {field}"):
        load_settings(overrides=values)


def test_unreadable_config_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("interval_ms: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(listy)


#: keys whose value in config.example.yaml is an example rather than the default
EXAMPLE_VALUES = {"expected_objects"}


def test_config_example_lists_every_setting_with_its_default():
    """config.example.yaml is where users look up keys: each setting is there (set, or commented
    out when it has no useful default), and what it sets is the built-in default."""
    import re

    import yaml

    from tests.helpers import REPO
    from vlm_anomaly.config import Settings

    path = REPO / "config.example.yaml"
    text = path.read_text()
    listed = set(re.findall(r"^#?\s*([a-z_][a-z0-9_]*):", text, re.M))
    assert set(Settings.model_fields) - listed == set()
    assert listed - set(Settings.model_fields) == set()
    example, default = load_settings(path), Settings()
    differ = {k for k in yaml.safe_load(text) if getattr(example, k) != getattr(default, k)}
    assert differ == EXAMPLE_VALUES
