"""AttnGAN: Fine-Grained Text to Image Generation with Attentional Generative Adversarial Networks."""
