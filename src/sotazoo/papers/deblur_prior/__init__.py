"""Discriminative deblurring prior: Learning a Discriminative Prior for Blind Image Deblurring."""
