"""Zero-shot description prompts built from the user's expected objects.

Why a fixed action list: the descriptions must be comparable across videos of one model, and a
user only knows which *objects* belong in the scene, not how to phrase CLIP prompts.
"""

from __future__ import annotations

import hashlib
import json

DEFAULT_OBJECTS = ("person",)
ANIMATE = {"person", "people", "man", "woman", "child", "worker", "pedestrian", "dog", "cat", "animal"}
ACTIONS = (
    "walking",
    "standing",
    "sitting",
    "running",
    "lying on the floor",
    "falling down",
    "fighting",
    "riding a bicycle",
    "riding a skateboard",
    "pushing a cart",
    "carrying a box",
    "talking on a phone",
    "using a computer",
    "eating",
    "waving",
    "jumping",
    "climbing",
    "reading",
)
SCENE_PROMPTS = ("an empty scene", "a vehicle driving", "a crowd of people", "fire or smoke")
TEMPLATE = "a photo of {}"


def _article(word: str) -> str:
    if word.endswith("s") and not word.endswith("ss") or word in {"people"}:
        return word
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def build_prompts(expected_objects: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """Descriptions to choose from: animate objects × actions, other objects alone and in use.

    Example:
        >>> build_prompts(["person", "printer"])[:2]
        ['a person walking', 'a person standing']
    """
    objects = [o.strip().lower() for o in (expected_objects or DEFAULT_OBJECTS) if o and o.strip()]
    objects = list(dict.fromkeys(objects)) or list(DEFAULT_OBJECTS)
    out: list[str] = []
    animate = [o for o in objects if o in ANIMATE] or ["person"]
    for obj in animate:
        out.extend(f"{_article(obj)} {a}" for a in ACTIONS)
    for obj in objects:
        if obj in ANIMATE:
            continue
        out.append(_article(obj))
        out.append(f"a person using {_article(obj)}")
    out.extend(SCENE_PROMPTS)
    return list(dict.fromkeys(out))


def prompt_texts(labels: list[str]) -> list[str]:
    """The sentences actually given to the text encoder."""
    return [TEMPLATE.format(label) for label in labels]


def prompts_key(labels: list[str]) -> str:
    return hashlib.sha256(json.dumps(labels).encode()).hexdigest()[:16]
