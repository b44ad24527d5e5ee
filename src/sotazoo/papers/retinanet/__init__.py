"""RetinaNet: Focal Loss for Dense Object Detection."""
