"""The motion attributes, by name: adding one is its class and one line here."""

from __future__ import annotations

from .attribute import Attribute
from .camera import CameraAttribute
from .cells import DirectionAttribute, MotionCellAttribute, ShapeAttribute
from .regions import AppearanceAttribute, ObjectAttribute
from .scene import SceneAttribute

#: in the order their phrases appear in explanations
ATTRIBUTES: dict[str, Attribute] = {a.name: a for a in (
    CameraAttribute(),
    ObjectAttribute(),
    AppearanceAttribute(),
    MotionCellAttribute(),
    ShapeAttribute(),
    DirectionAttribute(),
    SceneAttribute(),
)}
