"""DPIG: Disentangled Person Image Generation."""
