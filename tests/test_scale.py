"""Ray scale-out (local Ray, 2 CPUs): the same results as the single-process run, with a model of the
shipped default detector (``motion``)."""

import numpy as np
import pytest
import ray  # the [ray] extra is part of `make test`'s install (Makefile EXTRAS)

from vlm_anomaly import Pipeline, load_settings
from vlm_anomaly.events import EventStore, Monitor
from vlm_anomaly.synthetic import write_video


@pytest.fixture(scope="module")
def setup(tmp_path_factory, default_street_model):
    d = tmp_path_factory.mktemp("ray")
    tests = [
        write_video(d / "a.mp4", seconds=10, seed=0, anomaly_span=(3.0, 6.0)),
        write_video(d / "b.avi", seconds=6, seed=0),
    ]
    # no embedding cache: Ray's actors must really encode, not read the first run's cache
    settings = load_settings(
        overrides={
            "home": d / "home",
            "encoder": "efficientnet",
            "interval_ms": 500,
            "embedding_cache": False,
            "threads": 1,
        }
    )
    pipe = Pipeline(settings)
    default_street_model.install(d / "home")  # shipped defaults (motion), trained every 250 ms
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield settings, pipe, [str(t) for t in tests]
    ray.shutdown()


def test_score_batch_on_ray_equals_single_process(setup):
    from vlm_anomaly.scale import score_batch_on_ray

    settings, pipe, tests = setup
    model = pipe.store.load("street")
    local = [pipe.score(model, t, interval_ms=500) for t in tests]
    remote = score_batch_on_ray(settings, "street", tests, interval_ms=500)
    assert len(remote) == len(local) == 2
    for a, b in zip(local, remote, strict=True):
        assert b.source == a.source
        np.testing.assert_array_equal(b.frame_indices, a.frame_indices)
        # the same to 1e-4: another process's OpenCV/BLAS can differ in the 5th decimal on some
        # machines (one frame of 20 by 5.7e-5 on one, with code that matched to 1e-5 on another)
        np.testing.assert_allclose(b.raw_scores, a.raw_scores, atol=1e-4)
        assert (b.labels == a.labels).all() and b.descriptions == a.descriptions
    assert local[0].n_anomalies > 0 and local[1].n_anomalies == 0


def test_watch_on_ray_gives_the_same_events(setup):
    from vlm_anomaly.scale import watch_on_ray

    settings, pipe, tests = setup
    local_store = EventStore("sqlite://", settings.home / "local-media")
    mon = Monitor(pipe, store=local_store)
    for t in tests:
        mon.start("street", t, realtime=False)
    assert mon.wait(120)
    remote = watch_on_ray(settings, "street", tests, realtime=False)

    def key(e):
        return (e.source, round(e.start_time, 3), round(e.end_time, 3), round(e.worst_score, 4))

    local = local_store.list()
    assert sorted(map(key, remote)) == sorted(map(key, local))
    assert [e.source for e in local] == tests[:1]  # one event, in the anomalous video
    stored = EventStore.from_settings(settings).list()  # Ray's actors wrote to the shared store
    assert sorted(map(key, stored)) == sorted(map(key, remote))
