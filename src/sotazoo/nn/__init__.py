"""Blocks that two or more papers use unchanged."""

from sotazoo.errors import InputError
from sotazoo.nn.checks import check_image_batch, ensure_finite
from sotazoo.nn.se import SqueezeExcite

__all__ = ["InputError", "SqueezeExcite", "check_image_batch", "ensure_finite"]
