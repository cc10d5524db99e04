"""Live scoring samples like offline scoring: at the model's own interval unless someone chose one."""

from vlm_anomaly.config import load_settings
from vlm_anomaly.events.watcher import SourceWatcher
from vlm_anomaly.pipeline import Pipeline


def test_watcher_samples_at_the_models_interval_unless_one_is_chosen(tmp_path, street_model, normal_video):
    home = street_model.install(tmp_path / "home")
    assert street_model.model.interval_ms == 250

    def interval(**overrides) -> int:
        s = load_settings(overrides={"detector": "ocsvm", "home": home, "encoder": "efficientnet", **overrides})
        assert s.interval_ms == 500 or "interval_ms" in overrides  # the settings' default differs from the model's
        return SourceWatcher(Pipeline(s), "street", str(normal_video), realtime=False).interval_ms

    assert interval() == 250  # nothing chosen: the model's own sampling
    assert interval(interval_ms=1000) == 1000  # --interval-ms / YAML / environment
    s = load_settings(overrides={"detector": "ocsvm", "home": home, "encoder": "efficientnet"})
    assert SourceWatcher(Pipeline(s), "street", str(normal_video), realtime=False, interval_ms=0).interval_ms == 0
