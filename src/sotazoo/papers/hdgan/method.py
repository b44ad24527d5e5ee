"""HDGAN's objective, its optimisers and learning-rate schedule, and one training step.

ypxie/HDGan at d98e2a85f7ae6ce7bfacd1c15e519558d97cb931: `HDGan/HDGan.py` (get_KL_Loss,
compute_d_pair_loss, compute_d_img_loss, compute_g_loss, train_gans), `train/train_gan/
train_worker.py` and `train_{birds,flower,coco}.sh`, `HDGan/fuel/datasets_basic.py` (birds and
flowers) and `datasets_multithread.py` (COCO). The paper's own equations were not at hand: every
statement below is the code's; what the facts file (§1) says is marked [facts].

Each side output s (64 / 128 / 256 px) has its discriminator D_s with a pair head D_s(x, t) and
a local image head D_s(x) (one logit at 64 / 128, a 5 x 5 map of patch logits at 256). With the
real image x_s, a "wrong" image w_s (a real image of another class, paired with the same text
t), the fake G(z, t)_s, and m(.) the mean over the batch and the patches, the losses are least
squares (MSE to 1 / 0), not cross-entropy:

    L_D = sum_s  m((D_s(x, t) - 1)^2) + [m(D_s(w, t)^2) + m(D_s(G_s, t)^2)] / 2      (pair)
               + m(D_s(G_s)^2) + [m((D_s(w) - 1)^2) + m((D_s(x) - 1)^2)] / 2         (local)
    L_G = kl_w KL + sum_s  m((D_s(G_s, t) - 1)^2) + m((D_s(G_s) - 1)^2)
    KL  = mean over batch and code dims of 1/2 (mu^2 + sigma^2 - 1) - log sigma

KL is that of N(mu, sigma^2) from N(0, I) on the CA's (mean, log sigma): get_KL_Loss names its
argument `logvar`, but computes exp(2 x) and -x, the formula for x = log sigma, and the
Generator passes it log sigma: the two agree (checked by the oracle and by hand in the tests).

What the official code does that the summary "matching / mismatched pairs and fakes" leaves
open (we do as the code):
- The mismatched pair is a wrong *image* with the batch's text, not the real image with
  another caption; birds / flowers draw it from another class (a clashing draw is shifted by
  a random 100-199 indices, which can clash again), COCO uniformly at random (it can be the
  image itself). The wrong images are real, so the local head learns them as real (weight 1/2,
  with the real images' 1/2). The callers of `train_step` draw them.
- Weights: pair real 1, wrong 1/2, fake 1/2; local fake 1, real 1/2, wrong 1/2; G 1 per head
  and scale; KL weight (--KL_COE) 4 for birds and flowers (the default), 2 for COCO
  (train_coco.sh). The scales add with weight 1; the 5 x 5 map is a mean, not a sum. The
  label tensors are built once for --batch_size (a smaller batch would fail); ours take any.
- The text t of a training image is the mean of 4 of its caption embeddings drawn at random
  (--num_emb 4, sample_embeddings) [facts: "4 captions per image"].
- One D step then one G step per batch (--ncritic 1); D scores real, wrong and fake in three
  separate forwards per scale (each its own BatchNorm batch statistics), the fakes detached; the
  G step reuses those same fakes (no new z: "TODO Test if we do need to sample again") and
  scores them with the D just updated, D's parameters frozen (requires_grad False).
- Adam lr 2e-4, betas (0.5, 0.999), for G and for D (one module holding the three scales).
  The lr of both halves at the start of every epoch e with e % epoch_decay == 0 (epochs count
  from 1): lr = 2e-4 / 2^floor(e / epoch_decay), epoch_decay 100 (birds, flowers), 50 (COCO).
  --maxepoch 600 runs epochs 1..599. Resuming from epoch k divides by 2^floor((k + 1) /
  epoch_decay) and then halves again if k + 1 is itself a decay epoch (twice at a boundary).
- Batch 10 for birds and flowers, 8 for COCO (the scripts; the worker's default is 16 [facts]).
- Real images per scale (datasets_basic.py): the stored 304 x 304 images are randomly cropped
  to 256 (COCO: resized to 256, no crop) and flipped, then each side output's target is a
  resized copy of that crop by scipy.misc.imresize (bilinear, PIL), mapped to [-1, 1]. imresize
  first byte-scales a float image from its own min..max to 0..255 (scipy < 1.3's
  pilutil.toimage), and resize_images' early return compares the batch size, not the height,
  with the size, so every copy, 256 included, is contrast-stretched per image and quantised to
  8 bits (read in the sources; not run here). `resized_copies` makes antialiased bilinear copies
  without the stretch.
- The end-of-epoch test samples run G in training mode (train_gans never calls eval), so they
  also move G's BatchNorm running statistics, which the saved checkpoints hold.

Ours: `local_w` weighs the local terms of D and G (1 as the code; 0 gives the pair-only arm of
the laptop study); noise and eps can be passed (else drawn from a `torch.Generator`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sotazoo.errors import InputError
from sotazoo.train.gan import frozen, optimizer_step

G_LR = D_LR = 2e-4  # --g_lr / --d_lr in every train_*.sh
BETAS = (0.5, 0.999)  # train_gans: optim.Adam(..., betas=(0.5, 0.999)) for G and D
EPOCHS = 600  # --maxepoch: range(1, 600) runs 599 epochs (COCO: "need about 150 epochs")
EPOCH_DECAY = {"birds": 100, "flowers": 100, "coco": 50}  # --epoch_decay (train_coco.sh: 50)
BATCH_SIZE = {"birds": 10, "flowers": 10, "coco": 8}  # train_*.sh, per GPU
NUM_EMB = 4  # --num_emb: the training text is the mean of 4 caption embeddings


@dataclass(frozen=True, kw_only=True)
class HDGANLoss:
    """The weights of train_gans that change between runs."""

    kl_w: float = 4.0  # --KL_COE: 4 (the default: birds, flowers), 2 in train_coco.sh
    local_w: float = 1.0  # ours: the local image terms (D's and G's); the code has 1


BIRDS_LOSS = FLOWERS_LOSS = HDGANLoss()
COCO_LOSS = HDGANLoss(kl_w=2.0)


# ---------------------------------------------------------------------- the losses


def kl_loss(mean: Tensor, log_sigma: Tensor) -> Tensor:
    """KL(N(mean, exp(log_sigma)^2) || N(0, I)), a mean over all entries (get_KL_Loss)."""
    return torch.mean(0.5 * (mean.square() + torch.exp(2 * log_sigma) - 1) - log_sigma)


def _mse(logit: Tensor, target: float) -> Tensor:
    return F.mse_loss(logit, torch.full_like(logit, target))  # nn.MSELoss: a mean


def d_pair_loss(real: Tensor, wrong: Tensor, fake: Tensor) -> Tensor:
    """compute_d_pair_loss: real pairs -> 1, wrong and fake pairs -> 0, those two at 1/2."""
    return _mse(real, 1.0) + (_mse(wrong, 0.0) + _mse(fake, 0.0)) / 2


def d_local_loss(real: Tensor, wrong: Tensor, fake: Tensor) -> Tensor:
    """compute_d_img_loss: fake patches -> 0; real and wrong (also real) patches -> 1, at 1/2."""
    return _mse(fake, 0.0) + (_mse(wrong, 1.0) + _mse(real, 1.0)) / 2


def g_adversarial_loss(logit: Tensor) -> Tensor:
    """compute_g_loss: the fake's logits -> 1."""
    return _mse(logit, 1.0)


def _check_scales(netD: nn.Module, named: dict[str, Sequence[Tensor]], b: int) -> None:
    sizes = tuple(netD.cfg.side_output_at)
    for name, images in named.items():
        got = tuple(x.shape[-1] for x in images)
        if got != sizes:
            raise InputError(f"{name} must hold one image batch per side output {sizes}, "
                             f"got sizes {got}")  # fmt: skip
        if any(x.shape[0] != b for x in images):
            raise InputError(f"{name}: every batch must have the embeddings' {b} samples")


def discriminator_loss(netD: nn.Module, images: Sequence[Tensor], wrong_images: Sequence[Tensor],
                       fakes: Sequence[Tensor], embedding: Tensor, *,
                       loss: HDGANLoss = BIRDS_LOSS) -> dict[str, Tensor]:  # fmt: skip
    """train_gans' D loss for our `Discriminator`: per side output s (images ordered as
    netD.cfg.side_output_at, each (B, 3, s, s)) "pair{s}" and "local{s}"; "total" = sum over s
    of pair + local_w local. Real, wrong and fake (detached) go through D separately, in that
    order, as the code does (BatchNorm statistics and running averages)."""
    named = {"images": images, "wrong_images": wrong_images, "fakes": fakes}
    _check_scales(netD, named, embedding.shape[0])
    terms, total = {}, 0.0
    for x, w, f in zip(images, wrong_images, fakes, strict=True):
        s = x.shape[-1]
        real_pair, real_local = netD(x, embedding)
        wrong_pair, wrong_local = netD(w, embedding)
        fake_pair, fake_local = netD(f.detach(), embedding)
        terms[f"pair{s}"] = d_pair_loss(real_pair, wrong_pair, fake_pair)
        terms[f"local{s}"] = d_local_loss(real_local, wrong_local, fake_local)
        total = total + (terms[f"pair{s}"] + loss.local_w * terms[f"local{s}"])  # the code's order
    terms["total"] = total
    return terms


def generator_loss(netD: nn.Module, fakes: Sequence[Tensor], embedding: Tensor, mean: Tensor,
                   log_sigma: Tensor, *, loss: HDGANLoss = BIRDS_LOSS) -> dict[str, Tensor]:  # fmt: skip
    """train_gans' G loss: "kl", per side output s "pair{s}" and "local{s}" (the fake's logits
    -> 1); "total" = kl_w kl + sum over s of pair + local_w local."""
    _check_scales(netD, {"fakes": fakes}, embedding.shape[0])
    terms = {"kl": kl_loss(mean, log_sigma)}
    total = loss.kl_w * terms["kl"]
    for f in fakes:
        s = f.shape[-1]
        pair, local = netD(f, embedding)
        terms[f"pair{s}"], terms[f"local{s}"] = g_adversarial_loss(pair), g_adversarial_loss(local)
        total = total + terms[f"pair{s}"] + loss.local_w * terms[f"local{s}"]
    terms["total"] = total
    return terms


# ---------------------------------------------------------------------- the recipe


class Optimizers(NamedTuple):
    gen: torch.optim.Adam
    dis: torch.optim.Adam


def optimizers(netG: nn.Module, netD: nn.Module, *, lr_g: float = G_LR,
               lr_d: float = D_LR) -> Optimizers:  # fmt: skip
    """Adam for G and one for D (all scales' networks), betas (0.5, 0.999) (train_gans)."""
    return Optimizers(torch.optim.Adam(netG.parameters(), lr=lr_g, betas=BETAS),
                      torch.optim.Adam(netD.parameters(), lr=lr_d, betas=BETAS))  # fmt: skip


def learning_rate(epoch: int, *, epoch_decay: int = EPOCH_DECAY["birds"],
                  base: float = G_LR) -> float:  # fmt: skip
    """The lr of epoch `epoch` (from 1) of an uninterrupted run: halved at the start of every
    epoch that is a multiple of `epoch_decay`, so base / 2^floor(epoch / epoch_decay)."""
    if epoch < 1 or epoch_decay < 1:
        raise InputError(f"epoch and epoch_decay count from 1, got {epoch} and {epoch_decay}")
    return base / 2 ** (epoch // epoch_decay)


def set_epoch(opts: Optimizers, epoch: int, *, epoch_decay: int = EPOCH_DECAY["birds"]) -> float:
    """Set G's and D's lr for `epoch` (set_lr on both, as train_gans); returns it."""
    lr = learning_rate(epoch, epoch_decay=epoch_decay)
    for opt in opts:
        for group in opt.param_groups:
            group["lr"] = lr
    return lr


def resized_copies(images: Tensor, sizes: Sequence[int]) -> list[Tensor]:
    """The real images of every side output from one batch (B, 3, S, S) in [-1, 1]: resized
    copies (bilinear, antialiased; the largest size kept as is when it equals S), as the loaders
    make them with scipy's imresize (see the module docstring for its byte-scaling)."""
    if images.ndim != 4 or images.shape[2] != images.shape[3]:
        raise InputError(f"images must be square (B, C, S, S), got {tuple(images.shape)}")
    return [images if s == images.shape[-1] else
            F.interpolate(images, size=(s, s), mode="bilinear", align_corners=False,
                          antialias=True) for s in sizes]  # fmt: skip


def train_step(netG: nn.Module, netD: nn.Module, opts: Optimizers, images: Sequence[Tensor],
               embeddings: Tensor, wrong_images: Sequence[Tensor], *,
               loss: HDGANLoss = BIRDS_LOSS, noise: Tensor | None = None,
               eps: Tensor | None = None,
               generator: torch.Generator | None = None) -> dict[str, float]:  # fmt: skip
    """One iteration of train_gans (ncritic 1) for our `Generator` and `Discriminator`: G makes
    every side output once; D takes an Adam step on `discriminator_loss` (real `images` and
    `wrong_images`, one batch per side output, ordered as side_output_at); then G takes one on
    `generator_loss` of the same fakes under the updated, frozen D. `noise` (B, noise_dim) and
    CA's `eps` (B, emb_dim) are drawn from `generator` unless given. The modes (train / eval)
    are the caller's: train_gans keeps both in training mode. Returns "d_*" and "g_*" terms."""
    b = embeddings.shape[0]
    if noise is None:
        noise = torch.randn(b, netG.cfg.noise_dim, generator=generator,
                            device=embeddings.device, dtype=embeddings.dtype)  # fmt: skip
    fakes, mean, log_sigma = netG.generate(noise, embeddings, eps, generator=generator)
    d_terms = discriminator_loss(netD, images, wrong_images, fakes, embeddings, loss=loss)
    optimizer_step(opts.dis, d_terms["total"])
    with frozen(netD):
        g_terms = generator_loss(netD, fakes, embeddings, mean, log_sigma, loss=loss)
        optimizer_step(opts.gen, g_terms["total"])
    return {**{f"d_{k}": float(v.detach()) for k, v in d_terms.items()},
            **{f"g_{k}": float(v.detach()) for k, v in g_terms.items()}}  # fmt: skip
