"""Revisiting depth: Revisiting Single Image Depth Estimation: Toward Higher Resolution Maps with Accurate Object Boundaries."""
