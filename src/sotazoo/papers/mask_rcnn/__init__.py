"""Mask R-CNN: Mask R-CNN."""
