"""One implementation of each metric, shared by every paper."""

from sotazoo.metrics.classification import accuracy, topk_accuracy
from sotazoo.metrics.detection import coco_map
from sotazoo.metrics.sr import psnr_rgb, psnr_y, rgb_to_y, sr_metrics, ssim_y

__all__ = [
    "accuracy",
    "coco_map",
    "psnr_rgb",
    "psnr_y",
    "rgb_to_y",
    "sr_metrics",
    "ssim_y",
    "topk_accuracy",
]
