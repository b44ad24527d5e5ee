"""MUNIT: Multimodal Unsupervised Image-to-Image Translation."""
