"""Disentangled 3D face shapes: Disentangling Features in 3D Face Shapes for Joint Face Reconstruction and Recognition."""
