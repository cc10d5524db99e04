"""A place whose look changes gradually (a shadow moving with the sun) is not "something never
there", while something that arrives at once (a bag, a person who stops) still is, even where the
shadow has moved: the ``scene`` attribute follows a standing cell's look by steps smaller than the
stillness level from where it last looked as in training, keeps that chain while something passes
over it, and carries it between the calls of one stream."""

from __future__ import annotations

import numpy as np

from vlm_anomaly.motion.scene import follow_gradual
from vlm_anomaly.motion.scorer import MotionConfig

STEP = 0.5  # the stillness level: a standing patch changes less than this in a second
NORMAL_Z = 1.0  # a cell looks as in training up to this z
TS = np.arange(0, 60, 0.5)  # two samples a second, as the default samples


def _judged(X, z, still, ts=TS, memory=None) -> np.ndarray:
    """Each cell's z as the ``scene`` attribute judges it: a gradual change keeps the normal level."""
    gradual = follow_gradual(X, z <= NORMAL_Z, still, ts, STEP, {} if memory is None else memory)
    return np.where(gradual, np.minimum(z, NORMAL_Z), z)


def _drifting(n: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two cells, two samples a second for a minute. Cell 0: a shadow creeps over it by 0.05 a
    sample (a tenth of the stillness level) and its distance from training grows with it (z 0 ->
    24); cell 1: an empty place (z 0) where a bag is set down at 30 s (its patch jumps by 3, z 40),
    busy and so not standing for the two seconds it takes."""
    X = np.zeros((n, 2, 16), np.float32)
    z = np.zeros((n, 2))
    X[:, 0, 0] = 0.05 * np.arange(n)
    z[:, 0] = 0.2 * np.arange(n)
    X[60:, 1, 3] = 3.0
    z[60:, 1] = 40.0
    still = np.ones((n, 2), bool)
    still[56:60, 1] = False
    return X, z, still


def test_a_creeping_shadow_is_followed_and_a_bag_is_not():
    X, z, still = _drifting()
    out = _judged(X, z, still)
    assert out[:, 0].max() <= 1.0  # the shadow keeps the verdict it had where training saw it
    assert (out[60:, 1] == 40).all()  # the bag, set down at once, is judged as before
    assert (out[:60, 1] == 0).all()


def test_a_bag_set_down_where_the_shadow_has_moved_is_still_seen():
    X, z, still = _drifting()
    X[80:, 0, 5] += 3.0  # a bag lands in the shadow at 40 s (the cell busy 38-40 s)
    z[80:, 0] += 40.0
    still[76:80, 0] = False
    out = _judged(X, z, still)
    assert (out[80:, 0] >= 40).all()
    assert out[:76, 0].max() <= 1.0


def test_what_passes_over_the_shadow_does_not_break_the_chain():
    X, z, still = _drifting()
    still[40:50, 0] = False  # walkers cross the shadowed cell for 5 s (it creeps 0.5 meanwhile)
    X[40:50, 0, 7] = 4.0
    z[40:50, 0] = 30.0
    out = _judged(X, z, still)
    assert out[50:, 0].max() <= 1.0


def test_a_look_never_seen_from_the_start_is_judged_as_before():
    X, z, still = _drifting()
    z[:, 0] += 10.0  # the shadow is already where training never had it when the stream starts
    out = _judged(X, z, still)
    np.testing.assert_array_equal(out[:, 0], z[:, 0])


def test_one_stream_in_pieces_is_followed_as_in_one_piece():
    X, z, still = _drifting()
    whole = _judged(X, z, still)
    memory: dict = {}
    parts = [_judged(X[a:a + 25], z[a:a + 25], still[a:a + 25], TS[a:a + 25], memory)
             for a in range(0, 120, 25)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_models_saved_before_do_not_follow():
    assert MotionConfig().scene_follow is True
    old = MotionConfig().as_dict()
    del old["scene_follow"]
    assert MotionConfig.from_dict(old).scene_follow is False
    assert MotionConfig.from_dict(MotionConfig().as_dict()).scene_follow is True
