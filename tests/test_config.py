"""Settings precedence: built-in defaults < config file < VLM_ANOMALY_* environment < explicit overrides."""

from __future__ import annotations

from pathlib import Path

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
    ({"event_end_smoothing_s": -1}, "event_end_smoothing_s"),
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
    from vlm_anomaly.config import KEYS, Settings

    path = REPO / "config.example.yaml"
    text = path.read_text()
    listed = set(re.findall(r"^#?\s*([a-z_][a-z0-9_]*):", text, re.M))
    assert set(KEYS) - listed == set()
    assert listed - set(KEYS) == set()
    example, default = load_settings(path), Settings()
    differ = {k for k in yaml.safe_load(text) if getattr(example, k) != getattr(default, k)}
    assert differ == EXAMPLE_VALUES


def test_nested_sections_equal_flat_keys(tmp_path):
    """A YAML file may group keys in their sections; it means the same as the flat keys."""
    flat = tmp_path / "flat.yaml"
    flat.write_text("interval_ms: 250\nmax_side: 640\nencoder: efficientnet\nbatch_size: 4\n"
                    "detector: patch-knn\nnu: 0.2\nevent_cooldown_s: 3.5\nwebhook_retries: 1\n"
                    "api_port: 9000\nray: true\nlog_level: INFO\n")
    nested = tmp_path / "nested.yaml"
    nested.write_text("sampling: {interval_ms: 250, max_side: 640}\n"
                      "encoder: {encoder: efficientnet, batch_size: 4}\n"
                      "detector:\n  detector: patch-knn\n  nu: 0.2\n"
                      "events: {event_cooldown_s: 3.5}\nalerts: {webhook_retries: 1}\n"
                      "api: {api_port: 9000}\nray: {ray: true}\nservice:\nlog_level: INFO\n")
    a, b = load_settings(flat), load_settings(nested)
    assert a == b
    assert (b.interval_ms, b.encoder, b.detector, b.nu, b.ray, b.api_port) == (250, "efficientnet", "patch-knn",
                                                                              0.2, True, 9000)
    assert a != load_settings(overrides={})  # the files did change something
    # overrides may nest too (and None still means "not given")
    assert load_settings(nested, overrides={"sampling": {"interval_ms": 1000, "max_side": None}}).sampling.max_side \
        == 640


@pytest.mark.parametrize(("text", "message"), [
    ("sampling: {interval: 250}\n", "unknown key 'interval' in section sampling"),
    ("alerts: {api_port: 9000}\n", "unknown key 'api_port' in section alerts"),
    ("sampling: 250\n", "section sampling must be a mapping"),
    ("interval_ms: 250\nsampling: {interval_ms: 500}\n", "interval_ms is set both"),
])
def test_bad_section_is_one_clear_error(tmp_path, text, message):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(cfg)


def test_each_setting_is_defined_once_in_one_section():
    """A setting is a field of exactly one section model (or a general key); the flat names users
    write are exactly those fields, and the top-level model repeats none of them."""
    from vlm_anomaly.config import GENERAL_KEYS, SECTIONS, Settings, section_keys

    for name in SECTIONS:
        assert not set(section_keys(name)) & set(Settings.model_fields), name  # no second copy
    from vlm_anomaly.config import KEYS

    placed = [k for name in SECTIONS for k in section_keys(name)] + list(GENERAL_KEYS)
    assert len(placed) == len(set(placed))  # sections are disjoint
    assert sorted(placed) == sorted(KEYS)  # the flat keys are their union, none invented
    for cls in SECTIONS.values():
        assert all(f.description for f in cls.model_fields.values()), cls  # each has its one-line doc


def test_flat_names_read_and_write_the_key_in_its_section(tmp_path):
    from copy import copy as shallow_copy

    from vlm_anomaly.config import SECTIONS, Settings, section_keys

    s = load_settings(overrides={"interval_ms": 250, "webhook_urls": "http://a/hook", "api_port": 9001,
                                 "ray_address": "auto", "nu": 0.3, "event_hysteresis": 0.2, "top_k": 4,
                                 "frigate_role": "record"})
    views = {"sampling": s.sampling, "encoder": s.encoding, "detector": s.detection, "events": s.events,
             "alerts": s.alerts, "api": s.api, "ray": s.scaling, "service": s.service}
    assert set(views) == set(SECTIONS)
    for name, view in views.items():
        assert isinstance(view, SECTIONS[name])
        assert view.model_dump() == {k: getattr(s, k) for k in section_keys(name)}
    assert (s.sampling.interval_ms, s.alerts.webhook_urls, s.api.api_port, s.scaling.ray_address) == (
        250, ["http://a/hook"], 9001, "auto")
    s.interval_ms = 1000  # a flat write is the section's, validated like a loaded value
    assert s.sampling.interval_ms == 1000 and "interval_ms" in s.model_fields_set
    with pytest.raises(ValueError, match="between 100 and 2000"):
        s.interval_ms = 50
    copy = s.model_copy(update={"interval_ms": 200, "detector": "ocsvm"})
    assert (copy.interval_ms, copy.sampling.interval_ms, copy.detector) == (200, 200, "ocsvm")
    assert (s.interval_ms, s.detector) == (1000, "motion")  # a copy has sections of its own
    shallow = shallow_copy(s)
    shallow.interval_ms = 250
    assert s.interval_ms == 1000
    # what `watch` workers get: only the keys set travel (as JSON), and they arrive as set
    back = Settings.model_validate_json(copy.model_dump_json(exclude_unset=True))
    assert back == copy and {"interval_ms", "detector", "nu"} <= back.model_fields_set
    assert "max_side" not in back.model_fields_set
    # a key written after loading, in a section the file never named, travels too
    bare = load_settings(overrides={"home": str(tmp_path)})
    moved = bare.model_copy(update={"interval_ms": 200})
    assert Settings.model_validate_json(moved.model_dump_json(exclude_unset=True)).interval_ms == 200
    assert "interval_ms" not in bare.model_fields_set


def test_a_new_setting_is_one_line_in_its_section(tmp_path, monkeypatch):
    """Adding a field to a section model is all it takes: it is read flat and nested from YAML, from
    the environment, from overrides, as ``settings.<key>`` and in its section, and validated."""
    import sys
    import types

    import vlm_anomaly.config as config

    text = Path(config.__file__).read_text()
    doc = '    """Which frames are read and how: interval, size and length limits, stream reconnects."""\n'
    assert doc in text
    text = text.replace(doc, doc + '\n    probe_ms: int = Field(7, ge=0, description="a setting added by a test")\n')
    mod = types.ModuleType("vlm_anomaly._config_probe")
    mod.__package__ = "vlm_anomaly"
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    exec(compile(text, config.__file__, "exec"), mod.__dict__)

    assert mod.load_settings(overrides={}).probe_ms == 7
    flat, nested = tmp_path / "flat.yaml", tmp_path / "nested.yaml"
    flat.write_text("probe_ms: 9\n")
    nested.write_text("sampling: {probe_ms: 10}\n")
    assert mod.load_settings(flat).probe_ms == 9 and mod.load_settings(flat).sampling.probe_ms == 9
    assert mod.load_settings(nested).probe_ms == 10
    monkeypatch.setenv("VLM_ANOMALY_PROBE_MS", "11")
    s = mod.load_settings(flat)
    assert s.probe_ms == 11 and mod.updated(s, {"probe_ms": 12}).sampling.probe_ms == 12
    monkeypatch.setenv("VLM_ANOMALY_PROBE_MS", "-1")
    with pytest.raises(ConfigError, match="invalid setting probe_ms"):
        mod.load_settings(flat)


def test_updated_puts_one_requests_options_on_top_and_validates_like_the_loader(tmp_path):
    from vlm_anomaly.config import updated

    cfg = tmp_path / "config.yaml"
    cfg.write_text("sampling: {interval_ms: 250}\nnu: 0.2\n")
    base = load_settings(cfg)
    job = updated(base, {"interval_ms": 1000, "detector": {"nu": 0.3}, "encoder": None})
    assert (job.interval_ms, job.nu, job.encoder) == (1000, 0.3, base.encoder)
    assert base.interval_ms == 250  # the base is not changed
    with pytest.raises(ConfigError, match="invalid setting interval_ms"):
        updated(base, {"interval_ms": 50})
    with pytest.raises(ConfigError, match="unknown key 'interval' in section sampling"):
        updated(base, {"sampling": {"interval": 1000}})


def test_config_example_groups_keys_by_their_section():
    """Under each ``# -- NAME:`` header of config.example.yaml stand exactly that section's keys,
    so the example teaches the sections a nested file may use."""
    import re

    from tests.helpers import REPO
    from vlm_anomaly.config import GENERAL_KEYS, SECTIONS, section_keys

    groups: dict[str, set[str]] = {}
    current = None
    for line in (REPO / "config.example.yaml").read_text().splitlines():
        if m := re.match(r"^# -- ([a-z]+):", line):
            current = groups.setdefault(m.group(1), set())
        elif (m := re.match(r"^#?\s*([a-z_][a-z0-9_]*):", line)) and current is not None:
            current.add(m.group(1))
    assert groups == {"general": set(GENERAL_KEYS), **{name: set(section_keys(name)) for name in SECTIONS}}


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path):
    """It escaped as 'error: UnicodeDecodeError: ...', exit 1."""
    cfg = tmp_path / "bad.yaml"
    cfg.write_bytes(b"\xff\xfe: [")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_settings(cfg)


def test_webhooks_are_checked_when_the_settings_load(monkeypatch):
    """A webhook that can never work (no scheme, another protocol) is refused at start, with its
    secrets masked, not after four failed deliveries of the first alert; a JSON list in the
    environment (as the YAML example shows) is a list, not one URL."""
    monkeypatch.setenv("VLM_ANOMALY_WEBHOOK_URLS", '["http://u:tok3n@127.0.0.1:9005/x", "https://hooks.example/y"]')
    assert load_settings().webhook_urls == ["http://u:tok3n@127.0.0.1:9005/x", "https://hooks.example/y"]
    monkeypatch.setenv("VLM_ANOMALY_WEBHOOK_URLS", "http://a.example/1,https://b.example/2")
    assert load_settings().webhook_urls == ["http://a.example/1", "https://b.example/2"]
    for bad in ("127.0.0.1:9000/hook", "ftp://u:tok3n@h/x", "http:///path-only"):
        monkeypatch.setenv("VLM_ANOMALY_WEBHOOK_URLS", bad)
        with pytest.raises(ConfigError, match="is not an http:// or https:// URL with a host") as refused:
            load_settings()
        assert "tok3n" not in str(refused.value)
