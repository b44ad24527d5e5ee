"""TEMPLATE — the paper's checkpoints as data (the contract's `weights.WEIGHTS`).

Each entry is a `sotazoo.weights.Weights`: the public checkpoint (URL, full sha256, the converter
from its layout in `convert.py`, its metrics with their source, licence), and small weights
trained by our own recipe (`sotazoo.weights.trained_here`, beside their log). This module is
data only: it imports neither torch nor the paper's model, so listing weights stays fast.
"""

WEIGHTS = ()
