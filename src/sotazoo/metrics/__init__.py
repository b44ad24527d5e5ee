"""One implementation of each metric, shared by every paper."""

from sotazoo.metrics.classification import accuracy, topk_accuracy

__all__ = ["accuracy", "topk_accuracy"]
