"""When the ``scene`` attribute counts a cell as still: at the fixed level 0.5, or higher where the
camera's own noise (grain, a night mode's gain, a low bit rate) changes an empty cell's patch by
more than that - learnt at fit from the training clips, kept in the saved model, and models saved
before it keep their fixed level. Real H.264 files of ``vlm_anomaly.synthetic_nuisance``."""

from __future__ import annotations

from vlm_anomaly.motion.extract import extract_cells, iter_source
from vlm_anomaly.motion.features import GridConfig, grid_cols
from vlm_anomaly.motion.scene import learn_still
from vlm_anomaly.motion.scorer import MotionConfig
from vlm_anomaly.synthetic_nuisance import SIZE, write_scene


def _level(path) -> float:
    grid = GridConfig()
    cols = grid_cols(SIZE[0] / SIZE[1], grid.rows)
    feats = extract_cells(str(path), grid, cols, frames=iter_source(str(path), interval_ms=100, config=grid))
    cfg = MotionConfig()
    return learn_still([feats], cfg.scene_still, cfg.scene_still_noise)


def test_a_grainy_camera_learns_a_higher_stillness_level_a_clean_one_keeps_the_fixed_one(tmp_path):
    clean = _level(write_scene(tmp_path / "clean.mp4", "clean", seconds=6))
    grainy = _level(write_scene(tmp_path / "ir.mp4", "ir_night_grain", seconds=6))
    assert clean == MotionConfig().scene_still == 0.5
    assert grainy > 1.0, grainy  # an empty cell of this camera changes by 0.5-0.9 between samples


def test_the_learnt_level_is_saved_and_models_saved_before_keep_theirs():
    learnt = MotionConfig(scene_still=1.43)
    again = MotionConfig.from_dict(learnt.as_dict())
    assert again.scene_still == 1.43 and again.scene_still_noise == learnt.scene_still_noise
    old = {k: v for k, v in MotionConfig().as_dict().items() if k != "scene_still_noise"}
    loaded = MotionConfig.from_dict(old)
    assert loaded.scene_still == 0.5 and loaded.scene_still_noise == 0.0


def test_fitting_again_learns_afresh_not_from_the_last_fit(tmp_path):
    """The same scorer fitted on a grainy camera, then on a clean one, learns the clean camera's
    level: the level a fit learnt is not where the next fit starts from."""
    from vlm_anomaly.motion.scorer import MotionScorer

    grid = GridConfig()
    cols = grid_cols(SIZE[0] / SIZE[1], grid.rows)

    def clips(scene):
        paths = [write_scene(tmp_path / f"{scene}{i}.mp4", scene, seconds=4, start_s=4 * i) for i in range(2)]
        return [extract_cells(str(p), grid, cols, frames=iter_source(str(p), interval_ms=100, config=grid))
                for p in paths]

    scorer = MotionScorer(MotionConfig(fused=("object", "scene")))
    assert scorer.fit_cells(clips("ir_night_grain")).config.scene_still > 1.0
    assert scorer.fit_cells(clips("clean")).config.scene_still == 0.5
