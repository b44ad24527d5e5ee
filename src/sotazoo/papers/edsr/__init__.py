"""EDSR / MDSR: Enhanced Deep Residual Networks for Single Image Super-Resolution."""
