"""Description prompts built from the user's expected objects."""

from __future__ import annotations

from vlm_anomaly.encoders import build_prompts
from vlm_anomaly.encoders.prompts import ACTIONS, SCENE_PROMPTS, prompt_texts


def test_defaults_describe_people_and_the_scene():
    prompts = build_prompts(None)
    assert prompts == build_prompts([])
    assert prompts[:2] == ["a person walking", "a person standing"]
    assert {"a person falling down", "a person fighting", "a person lying on the floor"} <= set(prompts)
    assert set(SCENE_PROMPTS) <= set(prompts)
    assert len(prompts) == len(set(prompts)) == len(ACTIONS) + len(SCENE_PROMPTS)


def test_expected_objects_add_object_prompts():
    prompts = build_prompts(["person", "desk", "printer"])
    assert {"a desk", "a person using a desk", "a printer", "a person using a printer"} <= set(prompts)
    assert "a person walking" in prompts
    assert "a desk walking" not in prompts  # inanimate objects get no actions


def test_animate_objects_get_the_actions_instead_of_person():
    prompts = build_prompts(["dog", "umbrella"])
    assert "a dog running" in prompts and "a person running" not in prompts
    assert "an umbrella" in prompts and "a person using an umbrella" in prompts
    assert "people walking" in build_prompts(["people"])


def test_objects_are_normalised_and_deduplicated():
    assert build_prompts(["Person", " person ", "", "PRINTER"]) == build_prompts(["person", "printer"])


def test_prompt_texts_use_the_template():
    assert prompt_texts(["a person walking"]) == ["a photo of a person walking"]
