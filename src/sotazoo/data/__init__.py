"""Offline datasets: generated, seeded, never downloaded."""

from sotazoo.data.detection_shapes import DETECTION_CLASSES, make_detection_scenes, to_coco
from sotazoo.data.shapes import SHAPE_CLASSES, make_shapes

__all__ = ["DETECTION_CLASSES", "SHAPE_CLASSES", "make_detection_scenes", "make_shapes", "to_coco"]
