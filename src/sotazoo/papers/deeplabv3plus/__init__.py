"""DeepLabv3+: Encoder-Decoder with Atrous Separable Convolution for Semantic Image Segmentation."""
