"""The offline FID proxy: a small digit classifier whose penultimate features stand in for Inception.

Why: FID (Heusel et al., NeurIPS 2017, arXiv 1706.08500) compares the Gaussian statistics of a
network's features on real and generated images. The standard network is the TF Inception-v3 of
2015 (`sotazoo.metrics.fid` loads pytorch-fid's port from a file you provide); it is ~100 MB,
not shipped, and trained on ImageNet photographs. For the laptop-scale GAN experiments on the
16x16 digits of `sotazoo.data.digits` we ship this classifier instead, trained by the recipe
below on the TRAIN split only. A FID measured with it is a proxy: lower is better, but its values
are on another scale and are never comparable with published (Inception) FIDs.

Ours entirely (no paper): a VGG-style net for 16x16 grey inputs in [-1, 1]: two 3x3 conv-BN-ReLU
at 16 channels, 2x2 max-pool, two at 32, 2x2 max-pool, one at 64, global average pooling -> the
64-d embedding (`features`), then a linear layer to the 10 classes. 35,674 parameters. Trained
with the project's plain loop (`sotazoo.train.fit`: SGD with Nesterov momentum, warm-up, cosine
decay) without flips (a flipped digit is another symbol).

    python -m sotazoo.metrics.fid --train-proxy            # writes the two files beside this one

The log beside the weights records the command, commit, machine, losses, the accuracy on the
held-out split and the reference FIDs; the tests recompute the accuracy and the reference FIDs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from sotazoo.errors import InputError
from sotazoo.nn.checks import check_image_batch, ensure_finite_output
from sotazoo.train import TrainConfig, evaluate, fit
from sotazoo.weights import Weights

PROXY_SIZE = 16  # input side; other sizes are resampled to it by sotazoo.data.digits.resample
FEATURE_DIM = 64
PROXY_DIR = Path(__file__).parent
FILE = "digits_fid_proxy.sotazoo.safetensors"
LOG = "digits_fid_proxy.sotazoo.log.json"
COMMAND = "python -m sotazoo.metrics.fid --train-proxy --seed 0"


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


class DigitsFeatureNet(nn.Module):
    """16x16 grey digit classifier; `features` is the embedding the proxy FID uses."""

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64)):
        super().__init__()
        w1, w2, w3 = widths
        self.body = nn.Sequential(
            *_conv_bn_relu(1, w1),
            *_conv_bn_relu(w1, w1),
            nn.MaxPool2d(2),  # 16 -> 8
            *_conv_bn_relu(w1, w2),
            *_conv_bn_relu(w2, w2),
            nn.MaxPool2d(2),  # 8 -> 4
            *_conv_bn_relu(w2, w3),
        )
        self.head = nn.Linear(w3, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 16, 16) in [-1, 1] -> (B, 64) non-negative embedding."""
        check_image_batch(x, 1, min_size=PROXY_SIZE)
        if tuple(x.shape[-2:]) != (PROXY_SIZE, PROXY_SIZE):
            raise InputError(f"expected 16x16 inputs, got {x.shape[-2]}x{x.shape[-1]}")
        f = self.body(x).mean(dim=(2, 3))  # (B, C, 4, 4) -> (B, C)
        # a NaN names the input that held it, or says the features overflowed from finite input
        ensure_finite_output(f, {"input": x}, self)
        return f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass(frozen=True, kw_only=True)
class ProxyRecipe:
    split_seed: int = 0  # the train / held-out split of sotazoo.data.digits
    size: int = PROXY_SIZE
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            epochs=40, batch_size=64, lr=0.05, weight_decay=5e-4, warmup_epochs=1, flips=False
        )
    )


def train_proxy(*, seed: int = 0, epochs: int | None = None) -> tuple[DigitsFeatureNet, dict]:
    """Train the proxy on the digits' train split; return it (eval mode) and its log."""
    from sotazoo.data.digits import load_digits

    r = ProxyRecipe()
    if epochs:
        r = replace(r, train=replace(r.train, epochs=epochs))
    x, y = load_digits(size=r.size, split="train", seed=r.split_seed)
    xv, yv = load_digits(size=r.size, split="heldout", seed=r.split_seed)
    torch.manual_seed(seed)
    model = DigitsFeatureNet()
    log = fit(model, x, y, r.train, seed=seed)
    acc = evaluate(model, xv, yv)
    return model.eval(), {
        "recipe": asdict(r),
        "n_train": len(x),
        "n_heldout": len(xv),
        "epoch_loss": [round(v, 5) for v in log["epoch_loss"]],
        "metrics": {"digits_heldout_top1": round(100 * acc, 2)},
    }


# The shipped file: `python -m sotazoo.metrics.fid --train-proxy --seed 0` on CPU; the log beside
# it holds the run. Regenerating it changes the sha256 below only if the arithmetic changed.
PROXY_WEIGHTS = Weights(
    model="digits_fid_proxy",
    tag="sotazoo",
    packaged=f"metrics/fid_proxy/{FILE}",
    sha256="412a924dd1963448d6fb2bfd28e643ceddb98e439d733b9adfa7ea9f67970cba",
    filename=FILE,
    format="safetensors",
    num_params=35_674,
    metrics={"digits_heldout_top1": 99.16},
    metrics_source=f"metrics/fid_proxy/{LOG}: the 359 held-out digits (split seed 0), "
    "never trained on",
    recipe=COMMAND + " (sotazoo/metrics/fid_proxy/__init__.py)",
    license="MIT (weights); the digits are from scikit-learn's bundled copy of the UCI set",
    transforms={"size": PROXY_SIZE, "range": (-1.0, 1.0), "channels": 1},
    notes="FID proxy: lower is better; not comparable with Inception FIDs.",
)


def load_proxy() -> DigitsFeatureNet:
    """The shipped proxy network, its sha256 checked, in eval mode."""
    from sotazoo.weights import fetch, load_into, read_state_dict

    path = fetch(PROXY_WEIGHTS)
    model = DigitsFeatureNet()
    load_into(model, read_state_dict(path), str(path))
    return model.eval()
