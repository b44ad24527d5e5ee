"""Video avatars: Video Based Reconstruction of 3D People Models."""
