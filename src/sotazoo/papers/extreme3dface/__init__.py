"""Extreme 3D faces: Extreme 3D Face Reconstruction: Seeing Through Occlusions."""
