"""Scoring DPIG on the synthetic persons: factor classifiers, factor swaps and a person FID.

Ours entirely (the paper shows swaps and samples as pictures, and scores Market-1501 images by SSIM
and Inception score): the synthetic persons (`persons.py`) know every factor of every image, so a
small CNN trained on real renders to read them back (`FactorClassifier`: the pose template, the
colours of the upper clothes, trousers, hair and skin, the background picture) can say which
person each factor of a generated image came from.

- `swap_scores`: take pairs (recipient r, donor d) of held-out persons; for each factor group
  (foreground, background, pose) decode r's codes with that group's code taken from d. A label
  of the swapped group should now read as d's ("follows"), every other label as r's ("keeps").
  Per group the score is the mean of the two accuracies, each over the pairs whose two labels
  differ, so that copying the recipient unchanged scores 50 % and a perfect swap 100 %.
- `PersonFeatures` and `person_fid`: the classifier's 128-d penultimate features stand in for
  Inception's in a Fréchet distance (`sotazoo.metrics.fid`, which accepts any feature module).
  The shipped proxy (`sotazoo.metrics.fid_proxy`) is a digit network for 16x16 grey images: it
  would read these persons at 16x16 in grey, where the clothes' and backgrounds' colours, the
  very factors compared, are lost. Like the proxy, this FID is lower-is-better and on its own
  scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sotazoo.errors import InputError
from sotazoo.nn.checks import check_image_batch
from sotazoo.papers.disentangled_person.persons import (
    BACKGROUNDS,
    FACTOR_GROUPS,
    HAIR,
    LABELS,
    LOWER,
    POSES,
    SKIN,
    UPPER,
    Persons,
)

NUM_CLASSES = {"pose": len(POSES), "upper": len(UPPER), "lower": len(LOWER), "hair": len(HAIR),
               "skin": len(SKIN), "background": len(BACKGROUNDS)}  # fmt: skip
# Which labels each factor group of the model owns (`persons.FACTOR_GROUPS` holds the factors).
GROUP_LABELS = {"foreground": ("upper", "lower", "hair", "skin"), "background": ("background",),
                "pose": ("pose",)}  # fmt: skip
FEATURE_DIM = 128


class FactorClassifier(nn.Module):
    """Image (B, 3, H, W) in [-1, 1], H and W multiples of 8 -> {label: logits (B, classes)} for
    the six labels of `persons.LABELS`; `features` is the shared 128-d embedding."""

    def __init__(self, img_h: int, img_w: int, width: int = 16) -> None:
        super().__init__()
        if img_h % 8 or img_w % 8:
            raise InputError(f"FactorClassifier: {img_h}x{img_w} is not a multiple of 8")
        self.img_hw = (img_h, img_w)

        def block(a: int, b: int) -> list[nn.Module]:
            return [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]

        w = width
        self.body = nn.Sequential(*block(3, w), *block(w, w), nn.MaxPool2d(2), *block(w, 2 * w),
                                  nn.MaxPool2d(2), *block(2 * w, 4 * w), nn.MaxPool2d(2))  # fmt: skip
        self.fc = nn.Linear(4 * w * (img_h // 8) * (img_w // 8), FEATURE_DIM)
        self.heads = nn.ModuleDict({k: nn.Linear(FEATURE_DIM, NUM_CLASSES[k]) for k in LABELS})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 128) before the ReLU the heads read (no dead dimensions for a covariance)."""
        check_image_batch(x, 3)
        if tuple(x.shape[2:]) != self.img_hw:
            raise InputError(f"expected {self.img_hw} images, got {tuple(x.shape[2:])}")
        return self.fc(self.body(x).flatten(1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = torch.relu(self.features(x))
        return {k: head(f) for k, head in self.heads.items()}


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Each image of x (B, C, H, W) blurred by a Gaussian of its own `sigma` (B,) (5 taps)."""
    t = torch.arange(-2, 3, dtype=x.dtype)
    k = torch.exp(-(t**2)[None] / (2 * sigma[:, None].clamp_min(1e-3) ** 2))
    k = k / k.sum(1, keepdim=True)  # (B, 5)
    b, c, h, w = x.shape
    y = x.reshape(1, b * c, h, w)
    kk = k.repeat_interleave(c, 0)  # (B*C, 5)
    y = F.conv2d(F.pad(y, (2, 2, 0, 0), mode="replicate"), kk[:, None, None, :], groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, 2, 2), mode="replicate"), kk[:, None, :, None], groups=b * c)
    return y.reshape(b, c, h, w)


@dataclass(frozen=True, kw_only=True)
class ClassifierConfig:
    steps: int = 300
    batch_size: int = 64
    lr: float = 2e-3
    max_blur: float = 1.0  # sigma in pixels: generated images are smoother than renders
    noise: float = 0.05


def train_classifier(persons: Persons, cfg: ClassifierConfig, *, seed: int,
                     on_step=None) -> FactorClassifier:  # fmt: skip
    """A `FactorClassifier` trained on the real renders `persons` (cross-entropy summed over the
    six labels, Adam), each batch blurred by a random amount and lightly noised so that it also
    reads the smoother images a decoder makes. Returned in eval mode."""
    torch.manual_seed(seed)
    h, w = persons.images.shape[2:]
    net = FactorClassifier(h, w)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / cfg.steps)
    g = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(cfg.steps):
        idx = torch.randint(len(persons), (cfg.batch_size,), generator=g)
        x = persons.images[idx]
        x = _blur(x, torch.rand(len(idx), generator=g) * cfg.max_blur)
        x = (x + cfg.noise * torch.randn(x.shape, generator=g)).clamp(-1, 1)
        logits = net(x)
        loss = sum(F.cross_entropy(logits[k], persons.labels[k][idx]) for k in LABELS)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if on_step is not None:
            on_step()
    return net.eval()


@torch.no_grad()
def predict(
    net: FactorClassifier, images: torch.Tensor, batch: int = 256
) -> dict[str, torch.Tensor]:
    """{label: predicted class (N,)} of images clamped to [-1, 1]."""
    net.eval()
    out: dict[str, list[torch.Tensor]] = {k: [] for k in LABELS}
    for i in range(0, len(images), batch):
        for k, v in net(images[i : i + batch].clamp(-1, 1)).items():
            out[k].append(v.argmax(1))
    return {k: torch.cat(v) for k, v in out.items()}


def accuracy(pred: dict[str, torch.Tensor], labels: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per-label accuracy in %."""
    return {k: 100 * float((pred[k] == labels[k]).float().mean()) for k in LABELS}


@torch.no_grad()
def decode_swaps(
    model: nn.Module, persons: Persons, donor: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The images of `persons` with one factor group taken from person `donor[i]`:
    {"reconstruction", "foreground", "background", "pose"} -> (N, 3, H, W)."""
    model.eval()
    fg, bg = model.encode(persons.images, persons.fg_mask, persons.boxes, persons.box_vis)
    hm = persons.heatmaps
    return {
        "reconstruction": model.decode(fg, bg, hm),
        "foreground": model.decode(fg[donor], bg, hm),
        "background": model.decode(fg, bg[donor], hm),
        "pose": model.decode(fg, bg, hm[donor]),
    }


def swap_scores(net: FactorClassifier, images: dict[str, torch.Tensor],
                labels: dict[str, torch.Tensor], donor: torch.Tensor) -> dict:  # fmt: skip
    """Score the swapped images of `decode_swaps` (see the module docstring): per group the
    accuracy of `follows` (its labels read as the donor's) and `keeps` (the others read as the
    recipient's) in %, their mean `score`, and `score` over the three groups; plus the
    classifier's accuracy on the reconstructions."""
    assert set(GROUP_LABELS) == set(FACTOR_GROUPS)
    out: dict = {"reconstruction": accuracy(predict(net, images["reconstruction"]), labels)}
    for group, own in GROUP_LABELS.items():
        pred = predict(net, images[group])
        follows, keeps = [], []
        for k in LABELS:
            differ = labels[k] != labels[k][donor]
            if not differ.any():
                continue
            source = labels[k][donor] if k in own else labels[k]
            hit = 100 * float((pred[k] == source)[differ].float().mean())
            (follows if k in own else keeps).append(hit)
        f, kp = sum(follows) / len(follows), sum(keeps) / len(keeps)
        out[group] = {"follows": f, "keeps": kp, "score": (f + kp) / 2}
    out["score"] = sum(out[g]["score"] for g in GROUP_LABELS) / len(GROUP_LABELS)
    return out


class PersonFeatures(nn.Module):
    """A `FactorClassifier`'s features as a feature network for `sotazoo.metrics.fid`."""

    def __init__(self, net: FactorClassifier) -> None:
        super().__init__()
        self.net = net.eval()
        self.dim = FEATURE_DIM

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)


def person_fid(features: PersonFeatures, real: torch.Tensor | tuple, fake: torch.Tensor) -> float:
    """Fréchet distance between the features of `real` images (or their statistics) and of
    `fake` ones, clamped to [-1, 1] (a decoder's output is not squashed)."""
    from sotazoo.metrics.fid import fid

    return float(fid(real, fake.clamp(-1, 1), features=features))
