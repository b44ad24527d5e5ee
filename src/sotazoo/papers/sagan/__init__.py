"""SAGAN: Self-Attention Generative Adversarial Networks."""
