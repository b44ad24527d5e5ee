"""Offline datasets: generated, seeded, never downloaded."""

from sotazoo.data.shapes import SHAPE_CLASSES, make_shapes

__all__ = ["SHAPE_CLASSES", "make_shapes"]
