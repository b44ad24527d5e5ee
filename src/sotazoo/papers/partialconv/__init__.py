"""PConv: Image Inpainting for Irregular Holes Using Partial Convolutions."""
