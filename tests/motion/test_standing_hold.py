"""A standing object that someone passes in front of stays one incident: the ``scene`` attribute
keeps the verdict a cell had when it last stood while its content is hidden for a moment, ends it
as soon as the place looks as in training again, carries it across the chunks of a clip and the
frames of a live stream alike, and models saved before it keep their behaviour."""

from __future__ import annotations

import numpy as np

from vlm_anomaly.motion.scene import hold_standing
from vlm_anomaly.motion.scorer import MotionConfig

TS = np.arange(0, 10, 0.5)  # two samples a second, as the default samples


def _bag_then_walker() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ten cells over 10 s, eight of them empty places that stand all along. Cell 0 an empty place
    (z about 0, still except while the walker crosses it at 3-5 s); cell 1 a bag set down at 1 s
    (z 50 once still), hidden by the walker 4-6 s (the walker's patch is unusual there too: z 30)
    and not still for a second after, then taken away at 8 s (busy while it goes, then the empty
    place again: z 0)."""
    n = len(TS)
    z = np.zeros((n, 10))
    still = np.ones((n, 10), bool)
    still[(TS >= 3) & (TS < 5), 0] = False
    z[(TS >= 1.5), 1] = 50.0
    still[TS < 1.5, 1] = False
    z[(TS >= 4) & (TS < 6), 1] = 30.0
    still[(TS >= 4) & (TS < 7), 1] = False
    z[TS >= 8, 1] = 0.0
    still[(TS >= 8) & (TS < 9), 1] = False
    busy = np.zeros((n, 10), bool)  # where something moves: the walker, and the bag while taken away
    busy[(TS >= 3) & (TS < 5), 0] = busy[(TS >= 4) & (TS < 6), 1] = busy[(TS >= 8) & (TS < 8.5), 1] = True
    return z, still, busy


def test_a_walker_in_front_of_a_standing_bag_does_not_cut_the_incident():
    z, still, busy = _bag_then_walker()
    held = hold_standing(z, still, busy, TS, 3.0, {})
    bag = (TS >= 1.5) & (TS < 8)
    assert (held[bag, 1] >= 30).all(), held[bag, 1]  # hidden, it keeps (at most) what it is now
    # nothing passed over it (grain, flicker: not still, nothing moving): judged as before, not held
    grain = hold_standing(z, still, np.zeros_like(busy), TS, 3.0, {})
    assert (grain[(TS >= 4) & (TS < 7), 1] == 0).all()
    assert (held[(TS >= 6) & (TS < 7), 1] == 50).all()  # the walker gone, not yet still: the bag's z
    assert (held[TS >= 8, 1] == 0).all()  # taken away: the place looks as in training, at once
    assert np.abs(held[:, 0]).max() == 0  # the empty place stays what it was
    # without the hold (models saved before): the hidden and settling seconds judge nothing
    plain = hold_standing(z, still, busy, TS, 0.0, {})
    assert (plain[(TS >= 4) & (TS < 7), 1] == 0).all()


def test_the_hold_lasts_at_most_its_time_after_the_cell_last_stood():
    z, still, busy = _bag_then_walker()
    still[TS >= 3, 1] = False  # hidden from 3 s on, for good (a crowd gathers in front)
    busy[TS >= 3, 1] = True
    z[TS >= 3, 1] = 60.0
    held = hold_standing(z, still, busy, TS, 2.0, {})
    last = TS[still[:, 1]].max()
    assert (held[(TS > last) & (TS <= last + 2.0), 1] == 50).all()
    assert (held[TS > last + 2.0, 1] == 0).all()


def test_chunks_and_single_frames_of_one_stream_hold_as_the_whole_clip():
    z, still, busy = _bag_then_walker()
    whole = hold_standing(z, still, busy, TS, 3.0, {})
    for step in (1, 3, 7):
        memory: dict = {}
        parts = [hold_standing(z[i:i + step], still[i:i + step], busy[i:i + step], TS[i:i + step], 3.0, memory)
                 for i in range(0, len(TS), step)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    # a new stream (a new memory, as after a gap) remembers nothing from the old one
    j = int(np.argmax(TS >= 6.0))  # the walker gone, the bag not yet still again
    later = hold_standing(z[j:], still[j:], busy[j:], TS[j:], 3.0, {})
    assert later[0, 1] == 0 and whole[j, 1] == 50


def test_new_models_hold_and_models_saved_before_do_not():
    assert MotionConfig().scene_hold_s > 0
    assert MotionConfig.from_dict(MotionConfig().as_dict()).scene_hold_s == MotionConfig().scene_hold_s
    old = {k: v for k, v in MotionConfig().as_dict().items() if k != "scene_hold_s"}
    assert MotionConfig.from_dict(old).scene_hold_s == 0.0


def test_nothing_is_held_across_a_change_of_the_whole_view():
    """A lens covered for a while, then uncovered: every cell stops standing at once. Someone
    walking there right after is judged as they are, not by the dark lens's verdict."""
    n, cells = len(TS), 10
    z = np.where(TS[:, None] < 5, 40.0, 0.0) * np.ones((1, cells))  # covered until 5 s
    still = np.ones((n, cells), bool)
    still[(TS >= 5) & (TS < 6)] = False  # uncovered: every patch changed within the last second
    z[TS >= 5, 3] = 20.0  # a walker in cell 3 after the lens is uncovered
    still[TS >= 5, 3] = False
    busy = ~still  # the walker, and (for the flow) the whole view at the moment it is uncovered
    held = hold_standing(z, still, busy, TS, 3.0, {})
    assert (held[TS >= 5].max(1) == 0).all(), held[TS >= 5]
    # the same walker after only part of the view changed (cells 0-3): its cell is held
    part = still.copy()
    part[(TS >= 5) & (TS < 6), 4:] = True
    assert hold_standing(z, part, busy, TS, 3.0, {})[int(np.argmax(TS >= 5)), 3] == 20.0
