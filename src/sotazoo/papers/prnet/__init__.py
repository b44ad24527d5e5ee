"""PRNet: Joint 3D Face Reconstruction and Dense Alignment with Position Map Regression Network."""
