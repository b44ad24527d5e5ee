"""Fréchet Inception Distance (FID), with Inception-v3 from a file you provide, or an offline proxy.

The metric is Heusel et al.'s (NeurIPS 2017, arXiv 1706.08500; the distance between Gaussians is
Dowson & Landau's, 1982): fit a Gaussian to a network's features of real images (mu_r, Sigma_r)
and of generated ones (mu_g, Sigma_g);

    FID = |mu_r - mu_g|^2 + Tr(Sigma_r + Sigma_g - 2 (Sigma_r Sigma_g)^(1/2)).

Lower is better; 0 means equal statistics. The arithmetic — the matrix square root with its
singular-product fallback and the check on the imaginary part it may leave — is pytorch-fid's
`calculate_frechet_distance` (mseitzer/pytorch-fid 0.3.0), called here, not rewritten. Statistics
are float64 means and sample covariances (`np.cov(rowvar=False)`), as pytorch-fid computes them.

Two feature networks:
- "inception": the 2048-d pool3 features of the TF Inception of 2015-12-05 that every published
  FID uses, as pytorch-fid ports it (torchvision's Inception3 with its `FIDInceptionA/C/E_1/E_2`
  blocks, 1008 classes; the weights `pt_inception-2015-12-05-6726825d.pth`). sotazoo never
  downloads it: pass `inception_path=`, or put the file at
  `$SOTAZOO_HOME/weights/pt_inception-2015-12-05-6726825d.pth`. Inputs follow pytorch-fid's
  `InceptionV3`: grey is replicated to RGB, images are resized to 299x299 (bilinear,
  align_corners=False) and fed in [-1, 1]. Published FIDs also fix the sample count (usually
  50,000) and the image format; this function does neither for you.
- "proxy" (default): the 64-d embedding of a 36k-parameter digit classifier that ships with
  sotazoo (`sotazoo.metrics.fid_proxy`), for the 16x16 digits of `sotazoo.data.digits`. Images
  are converted to grey (BT.601 luma) and resampled to 16x16 as that dataset is. A proxy FID is
  lower-is-better but on its own scale: never compare it with published FIDs.

Ours: the input checks, the proxy, and `reference_fids`, the numbers that give the proxy a scale
(held-out real digits against the training ones, versus noise, one class, blurred digits).

    python -m sotazoo.metrics.fid --train-proxy      # retrain the proxy, rewrite its files
    python -m sotazoo.metrics.fid --reference        # print the proxy's reference FIDs
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sotazoo.errors import InputError, SotazooError, WeightsError
from sotazoo.weights import Weights

__all__ = [
    "INCEPTION_WEIGHTS",
    "FIDInceptionFeatures",
    "ProxyFeatures",
    "feature_stats",
    "fid",
    "frechet_distance",
    "load_fid_inception",
    "reference_fids",
]

Stats = tuple[np.ndarray, np.ndarray]
FeatureName = Literal["proxy", "inception"]

# pytorch-fid's port of the TF FID Inception (pytorch_fid/inception.py, FID_WEIGHTS_URL). The
# file name carries the torch.hub prefix 6726825d of its sha256; the full digest (and the size,
# 95,628,359 bytes) is the one genforce's metrics/inception.py lists beside that URL in its
# `_MODEL_URL_SHA256` table, recorded identically by several other projects that pin the file.
_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS = Weights(
    model="fid_inception_v3",
    tag="official",
    urls=(
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + _INCEPTION_FILE,
    ),
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    filename=_INCEPTION_FILE,
    format="pth",
    # torchvision's Inception3 (27,161,264 with AuxLogits and 1000 classes) less AuxLogits
    # (3,326,696) plus 8 more classes (8 x 2049); tests recompute both ways.
    num_params=23_850_960,
    license="Apache-2.0 (TensorFlow's inception-2015-12-05; pytorch-fid's port)",
    recipe="http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz, "
    "ported by mseitzer/pytorch-fid",
    transforms={"size": 299, "interpolation": "bilinear", "range": (-1.0, 1.0)},
    notes="Never downloaded by sotazoo: pass its path, or place it in the weights cache.",
)
INCEPTION_DIM = 2048
_RANGE_SLACK = 1e-3  # generator outputs are tanh'd; anything past [-1, 1] + slack is a mistake


# --------------------------------------------------------------------------- the distance


def _as_stats(mu: np.ndarray, sigma: np.ndarray, which: str) -> Stats:
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise InputError(
            f"{which}: expected a mean of shape (D,) and a covariance of shape (D, D), got "
            f"{mu.shape} and {sigma.shape}"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise InputError(f"{which}: the statistics hold NaN or infinite values")
    return mu, sigma


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), by pytorch-fid's arithmetic.

    Returns:
        |mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)), as a float. Rounding can
        leave a value a hair below zero for equal statistics.
    """
    from pytorch_fid.fid_score import calculate_frechet_distance

    mu1, sigma1 = _as_stats(mu1, sigma1, "first")
    mu2, sigma2 = _as_stats(mu2, sigma2, "second")
    if mu1.shape != mu2.shape:
        raise InputError(f"feature dimensions differ: {mu1.shape[0]} and {mu2.shape[0]}")
    if mu1.shape[0] < 2:
        # SciPy 1.16-1.17 return a bare matrix, not the (sqrtm, error) pair pytorch-fid unpacks,
        # for 1x1 inputs; features are vectors anyway.
        raise InputError("features must have at least 2 dimensions")
    # pytorch-fid prints a note when it has to regularise a singular product; make it a warning.
    # Its `sqrtm(..., disp=False)` is deprecated since SciPy 1.16 (hence scipy<1.18 in
    # pyproject.toml); silence that notice, which is about pytorch-fid, not the caller.
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*`disp` argument", category=DeprecationWarning)
        d = calculate_frechet_distance(mu1, sigma1, mu2, sigma2)
    if out.getvalue().strip():
        warnings.warn(out.getvalue().strip(), RuntimeWarning, stacklevel=2)
    return float(d)


# --------------------------------------------------------------------------- feature networks


def _check_images(x: torch.Tensor) -> None:
    from sotazoo.nn import ensure_finite
    from sotazoo.nn.checks import check_image_batch

    if not isinstance(x, torch.Tensor):
        raise InputError(f"expected a torch.Tensor of images, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise InputError(f"expected images of shape (N, 1 or 3, H, W), got {tuple(x.shape)}")
    check_image_batch(x, x.shape[1])
    ensure_finite(x)
    lo, hi = float(x.min()), float(x.max())
    if lo < -1 - _RANGE_SLACK or hi > 1 + _RANGE_SLACK:
        raise InputError(
            f"images must be in [-1, 1] (the generators' tanh range), got values in "
            f"[{lo:.3g}, {hi:.3g}]; map [0, 1] images with 2 * x - 1, uint8 with x / 127.5 - 1"
        )


class ProxyFeatures(nn.Module):
    """Images in [-1, 1], (N, 1 or 3, H, W) -> the proxy's (N, 64) embedding."""

    dim = 64

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from sotazoo.data.digits import resample
        from sotazoo.metrics.fid_proxy import PROXY_SIZE

        if x.shape[1] == 3:  # BT.601 luma; its weights sum to 1, so [-1, 1] maps onto itself
            w = torch.tensor((0.299, 0.587, 0.114), dtype=x.dtype, device=x.device)
            x = (x * w.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
        return self.net.features(resample(x, PROXY_SIZE))


class FIDInceptionFeatures(nn.Module):
    """Images in [-1, 1], (N, 1 or 3, H, W) -> the 2048-d pool3 features of the FID Inception.

    The layer sequence is pytorch-fid's `InceptionV3` with `output_blocks=[3]`; `inception` is
    the whole network (its `fc` is kept so that the published file loads strictly, but unused).
    """

    dim = INCEPTION_DIM

    def __init__(self, inception: nn.Module) -> None:
        super().__init__()
        self.inception = inception

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grey -> RGB by replication
        # pytorch-fid's order: [0, 1] -> bilinear 299x299 -> 2x - 1.
        x = F.interpolate((x + 1) / 2, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        m = self.inception
        x = m.Conv2d_2b_3x3(m.Conv2d_2a_3x3(m.Conv2d_1a_3x3(x)))  # (N, 64, 147, 147)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (N, 64, 73, 73)
        x = m.Conv2d_4a_3x3(m.Conv2d_3b_1x1(x))  # (N, 192, 71, 71)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (N, 192, 35, 35)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c"):
            x = getattr(m, name)(x)
        for name in ("Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(m, name)(x)  # ends at (N, 2048, 8, 8)
        return F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)  # (N, 2048)


def build_fid_inception() -> nn.Module:
    """The FID Inception's architecture, untrained: pytorch-fid's `fid_inception_v3` less its
    download (torchvision's Inception3, 1008 classes, no aux head, FID blocks swapped in)."""
    import torchvision
    from pytorch_fid.inception import (
        FIDInceptionA,
        FIDInceptionC,
        FIDInceptionE_1,
        FIDInceptionE_2,
    )

    net = torchvision.models.inception_v3(
        weights=None, aux_logits=False, num_classes=1008, init_weights=False
    )
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE_1(1280)
    net.Mixed_7c = FIDInceptionE_2(2048)
    return net


def load_fid_inception(
    path: str | Path | None = None, *, sha256: str | None = INCEPTION_WEIGHTS.sha256
) -> FIDInceptionFeatures:
    """The FID Inception feature network from pytorch-fid's weight file; never downloads.

    Args:
        path: the `.pth` file; None looks in the sotazoo weights cache.
        sha256: the full digest the file must have; the published one by default. None
            skips the check (for a re-saved copy you trust); the keys and shapes are checked
            either way.
    """
    from sotazoo.weights import cache_path, load_into, read_state_dict, verify

    if path is None:
        path = cache_path(INCEPTION_WEIGHTS)
        if not path.is_file():
            raise WeightsError(
                f"the FID Inception weights are not here and sotazoo does not download them: get "
                f"{INCEPTION_WEIGHTS.urls[0]} and pass its path as inception_path=..., or place "
                f"it at {path} (sha256 {INCEPTION_WEIGHTS.sha256[:16]}...)"
            )
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"no FID Inception weight file at {path}")
    if sha256:
        verify(path, sha256)
    net = build_fid_inception()
    load_into(net, read_state_dict(path), str(path))
    return FIDInceptionFeatures(net).eval()


def _network(features: FeatureName | nn.Module, inception_path: str | Path | None) -> nn.Module:
    if isinstance(features, nn.Module):
        return features.eval()
    if features == "proxy":
        from sotazoo.metrics.fid_proxy import load_proxy

        return ProxyFeatures(load_proxy()).eval()
    if features == "inception":
        return load_fid_inception(inception_path)
    raise ValueError(f"features must be 'proxy', 'inception' or a feature module, got {features!r}")


# --------------------------------------------------------------------------- statistics and FID


@torch.inference_mode()
def feature_stats(
    images: torch.Tensor,
    *,
    features: FeatureName | nn.Module = "proxy",
    inception_path: str | Path | None = None,
    batch_size: int = 200,
) -> Stats:
    """Mean and covariance of the feature network's embedding of `images`.

    Args:
        images: (N, 1 or 3, H, W) float tensor in [-1, 1], N >= 2.
        features: "proxy", "inception", or a loaded feature module (`ProxyFeatures`,
            `load_fid_inception(...)`) to avoid loading it at every call.
        inception_path: the FID Inception weight file, for features="inception".
        batch_size: images per forward pass.

    Returns:
        (mu, sigma): float64 arrays of shapes (D,) and (D, D); reuse them as `fid(real=...)`.
    """
    _check_images(images)
    if len(images) < 2:
        raise InputError(f"need at least 2 images for a covariance, got {len(images)}")
    net = _network(features, inception_path)
    device = next(net.parameters()).device
    feats = [
        net(images[i : i + batch_size].to(device, torch.float32)).double().cpu()
        for i in range(0, len(images), batch_size)
    ]
    f = torch.cat(feats).numpy()
    if not np.isfinite(f).all():
        raise InputError("the feature network produced NaN or infinite features")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def fid(
    real: torch.Tensor | Stats,
    fake: torch.Tensor | Stats,
    *,
    features: FeatureName | nn.Module = "proxy",
    inception_path: str | Path | None = None,
    batch_size: int = 200,
) -> float:
    """FID between two image sets (or their precomputed `feature_stats`).

    With features="proxy" (default) the value is a proxy FID: lower is better, but it is
    measured with sotazoo's shipped digit classifier and is NOT comparable with published FIDs,
    which use the Inception network (features="inception", weights from `inception_path`).

    Args:
        real: (N, 1 or 3, H, W) images in [-1, 1], or their (mu, sigma).
        fake: the generated images, likewise.
        features: "proxy", "inception", or a loaded feature module.
        inception_path: the FID Inception weight file, for features="inception".
        batch_size: images per forward pass.
    """
    net = None
    stats = []
    for x in (real, fake):
        if isinstance(x, tuple):
            stats.append(x)
            continue
        if net is None:
            net = _network(features, inception_path)
        stats.append(feature_stats(x, features=net, batch_size=batch_size))
    return frechet_distance(*stats[0], *stats[1])


def reference_fids(net: nn.Module | None = None, *, seed: int = 0) -> dict[str, float]:
    """Proxy FIDs against the digits' TRAIN split that give its values a scale.

    "heldout": the 359 held-out real digits (what a perfect, non-memorising generator scores);
    "blurred": those digits shrunk to 4x4 and enlarged back (lost detail); "one_class": the
    training 0s only (mode collapse); "noise": 359 images of uniform noise in [-1, 1].
    """
    from sotazoo.data.digits import load_digits, resample
    from sotazoo.metrics.fid_proxy import PROXY_SIZE, load_proxy

    net = ProxyFeatures(net if net is not None else load_proxy()).eval()
    x, y = load_digits(size=PROXY_SIZE, split="train", seed=seed)
    xh, _ = load_digits(size=PROXY_SIZE, split="heldout", seed=seed)
    real = feature_stats(x, features=net)
    g = torch.Generator().manual_seed(seed)
    sets = {
        "heldout": xh,
        "blurred": resample(resample(xh, 4), PROXY_SIZE).clamp(-1, 1),
        "one_class": x[y == 0],
        "noise": torch.rand(xh.shape, generator=g) * 2 - 1,
    }
    return {k: round(fid(real, v, features=net), 4) for k, v in sets.items()}


def write_proxy(
    out_dir: Path | None = None, *, seed: int = 0, epochs: int | None = None
) -> dict[str, Any]:
    """Train the FID proxy (`sotazoo.metrics.fid_proxy.train_proxy`), then write its weights and
    JSON log, with the reference FIDs under it, into `out_dir` (default: the package's folder),
    atomically. Here and not beside the network: the log needs this module's FID arithmetic."""
    from sotazoo.fileio import write_json_atomic
    from sotazoo.metrics.fid_proxy import FEATURE_DIM, FILE, LOG, PROXY_DIR, train_proxy
    from sotazoo.provenance import git_commit, machine, versions
    from sotazoo.weights import save_safetensors

    commit, dirty = git_commit()  # before anything is written into the checkout
    if out_dir is None and dirty:
        raise SotazooError(
            "the checkout has uncommitted changes (git status): the shipped proxy's log would "
            "not say which code made it. Commit first, or write it elsewhere with --out DIR."
        )
    out_dir = out_dir or PROXY_DIR
    t0 = time.perf_counter()
    model, log = train_proxy(seed=seed, epochs=epochs)
    weights = out_dir / FILE
    sha = save_safetensors(model.state_dict(), weights, model="digits_fid_proxy", seed=str(seed))
    record = {
        "model": "digits_fid_proxy",
        "seed": seed,
        "command": "python -m sotazoo.metrics.fid --train-proxy"
        + f" --seed {seed}"
        + (f" --epochs {epochs}" if epochs else ""),
        "sha256": sha,
        "size_bytes": weights.stat().st_size,
        "num_params": sum(p.numel() for p in model.parameters()),
        "feature_dim": FEATURE_DIM,
        "metrics": log.pop("metrics"),
        # FIDs of reference sets under this network: see sotazoo.metrics.fid.reference_fids.
        "reference_fid": reference_fids(model),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "git_commit": commit,
        "git_dirty": dirty,
        "versions": versions(),
        "machine": machine(),
        **log,
    }
    log_path = out_dir / LOG
    write_json_atomic(record, log_path)
    return {"weights": weights, "log": log_path, **record}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sotazoo.metrics.fid", description="FID tools: the offline proxy."
    )
    p.add_argument("--train-proxy", action="store_true", help="retrain the shipped proxy")
    p.add_argument("--reference", action="store_true", help="print the proxy's reference FIDs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: the package's)")
    args = p.parse_args(argv)
    if args.train_proxy:
        r = write_proxy(args.out, seed=args.seed, epochs=args.epochs)
        print(f"wrote {r['weights']} ({r['size_bytes']:,} bytes, sha256 {r['sha256']})")
        print(f"wrote {r['log']}: {r['metrics']}, reference FIDs {r['reference_fid']}")
        print("update PROXY_WEIGHTS (sha256, metrics) in sotazoo/metrics/fid_proxy if they moved")
        return 0
    if args.reference:
        print(reference_fids(seed=args.seed))
        return 0
    p.print_help()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
