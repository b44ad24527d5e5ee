"""Neural Style Transfer review: Neural Style Transfer: A Review."""
