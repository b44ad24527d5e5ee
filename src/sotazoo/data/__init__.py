"""Offline datasets: generated, seeded, never downloaded."""

from sotazoo.data.detection_shapes import DETECTION_CLASSES, make_detection_scenes, to_coco
from sotazoo.data.shapes import SHAPE_CLASSES, make_shapes

DIGIT_CLASSES = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")  # sotazoo.data.digits' labels

__all__ = ["DETECTION_CLASSES", "SHAPE_CLASSES", "make_detection_scenes", "make_shapes", "to_coco"]
