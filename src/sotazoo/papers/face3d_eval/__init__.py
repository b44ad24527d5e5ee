"""FG2018 face benchmark: Evaluation of Dense 3D Reconstruction from 2D Face Images in the Wild."""
