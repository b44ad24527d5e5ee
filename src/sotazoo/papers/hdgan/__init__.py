"""HDGAN: Photographic Text-to-Image Synthesis with a Hierarchically-nested Adversarial Network."""
