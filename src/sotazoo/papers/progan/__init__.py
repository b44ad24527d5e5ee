"""ProGAN: Progressive Growing of GANs for Improved Quality, Stability, and Variation."""
