"""Semantic segmentation metrics from a confusion matrix: mean IoU over the classes, and the same
restricted to a narrow band around the label boundaries (DeepLab's "trimap" experiment: Chen et
al. 2018, Figure 5, after Kohli et al. 2009).

`confusion(pred, target, k)` counts target class (rows) against predicted class (columns);
pixels whose target is `ignore` (or outside [0, k)) are left out. IoU of class c =
cm[c, c] / (row c + column c - cm[c, c]); `mean_iou` averages over the classes that occur in
the targets or the predictions (a class absent from both has no IoU), as the usual VOC code
does. `boundary_band(target, width)`: the pixels within `width` pixels (Euclidean distance) of a
pixel whose 4-neighbour has another label, the boundary pixels included.
"""

from __future__ import annotations

import numpy as np


def confusion(pred: np.ndarray, target: np.ndarray, k: int, *, ignore: int = 255,
              where: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """(k, k) int64: rows the target class, columns the predicted one."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} differ in shape")
    keep = (target != ignore) & (target >= 0) & (target < k)
    if where is not None:
        keep &= np.asarray(where, dtype=bool)
    idx = target[keep].astype(np.int64) * k + np.clip(pred[keep].astype(np.int64), 0, k - 1)
    return np.bincount(idx, minlength=k * k).reshape(k, k)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """IoU of every class (NaN where the class is in neither targets nor predictions)."""
    cm = np.asarray(cm, dtype=np.float64)
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def mean_iou(cm: np.ndarray) -> float:
    return float(np.nanmean(iou_per_class(cm)))


def pixel_accuracy(cm: np.ndarray) -> float:
    cm = np.asarray(cm)
    return float(np.trace(cm) / cm.sum()) if cm.sum() else float("nan")


def boundary_band(target: np.ndarray, width: float) -> np.ndarray:
    """Boolean map of the pixels within `width` of a label boundary (module docstring)."""
    from scipy.ndimage import distance_transform_edt

    t = np.asarray(target)
    edge = np.zeros(t.shape, dtype=bool)
    dy, dx = t[1:] != t[:-1], t[:, 1:] != t[:, :-1]
    edge[1:] |= dy
    edge[:-1] |= dy
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    if not edge.any():
        return edge
    return distance_transform_edt(~edge) <= width
