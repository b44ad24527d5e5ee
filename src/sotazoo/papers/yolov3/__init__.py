"""YOLOv3: YOLOv3: An Incremental Improvement."""
