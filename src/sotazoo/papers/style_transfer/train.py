"""Training at laptop scale: the stand-in feature network, Johnson et al.'s network for one style
and AdaIN's decoder, shared by the recipes of the demo weights (`sotazoo train johnson_mini`,
`sotazoo train adain_mini`) and by the reproduction (`repro.py`).

The stand-in feature network. No VGG weights can be downloaded here, so the losses are measured
with a small network of VGG's kind (`model.MINI_VGG`: 3x3 convolutions with ReLU, 16-16 / 32-32 /
64 / 64 channels, max pooling between blocks) that we train ourselves, for `STANDIN_STEPS` Adam
steps, to tell which of 13 sources a 32 px patch comes from (`data.source_patches`: photographs,
textures and pattern families): a task that needs colour and texture features, the statistics
the style losses compare. With the user's VGG-19 file the same code runs on the real one.

The objectives, on the stand-in's layers (the paper's VGG layers in brackets):
- `johnson_objective`: content at relu2_2 [relu2_2], style Grams at relu1_2, relu2_2, relu3_1,
  relu4_1 [relu1_2, relu2_2, relu3_3, relu4_3], style weight 0.3: in pilots of 500 steps a weight
  of 1 to 10 let the style term win outright (coloured blobs, the content gone) and 0.3 kept the
  outlines. Gatys et al.'s optimisation is run on this same objective, so that the two families
  are compared at equal loss.
- AdaIN's: content at the encoder's last layer (relu3_1 for `adain_mini`) against the AdaIN
  target, style means and stds at relu1_1, relu2_1, relu3_1 [and relu4_1], style weight 10 (its
  release's).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from sotazoo.papers.style_transfer import data, method
from sotazoo.papers.style_transfer.model import (
    MINI_VGG,
    AdaINNet,
    TransformNet,
    adain_mini,
    johnson_mini,
)
from sotazoo.papers.style_transfer.vgg import VGGConfig, VGGFeatures
from sotazoo.train.recipes import Recipe, Trained

STANDIN_STEPS = 1500
STANDIN_POOL = 4096  # patches drawn for the stand-in's training
CONTENT_LAYERS = ("relu2_2",)
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_1", "relu4_1")
ADAIN_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
CONTENT_WEIGHT = 1.0
STYLE_WEIGHT = 0.3
ADAIN_STYLE_WEIGHT = 0.3
JOHNSON_STYLE_SEED = 7  # the demo network's one style (`data.random_style(7)`)
JOHNSON_LR = 2e-3
ADAIN_LR = 1e-3


def standin(*, seed: int = 0, steps: int = STANDIN_STEPS, progress: bool = False) -> tuple[VGGFeatures, dict]:
    """The stand-in feature network, trained (see the module's docstring), frozen, eval mode."""
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    feats = VGGFeatures(VGGConfig(widths=MINI_VGG, last="relu4_1"))
    head = nn.Linear(feats.out_channels, len(data.SOURCES))
    opt = torch.optim.Adam([*feats.parameters(), *head.parameters()], lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    pool_x, pool_y = data.source_patches(STANDIN_POOL, 32, g)  # drawn once, batches resampled
    log = {"loss": [], "accuracy": []}
    for _ in tqdm(range(steps), desc="stand-in feature network", disable=not progress):
        idx = torch.randint(STANDIN_POOL, (64,), generator=g)
        x, y = pool_x[idx], pool_y[idx]
        x = torch.where(torch.rand(64, 1, 1, 1, generator=g) < 0.5, x, x.flip(-1))
        (f,) = feats(x)
        logits = head(f.mean((2, 3)))
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        log["loss"].append(round(float(loss.detach()), 4))
    x, y = data.source_patches(512, 32, torch.Generator().manual_seed(10_000 + seed))
    with torch.no_grad():
        log["accuracy"] = round(float((head(feats(x)[0].mean((2, 3))).argmax(1) == y).float().mean()), 4)
    for p in feats.parameters():
        p.requires_grad_(False)
    return feats.eval(), log


def johnson_objective(features: VGGFeatures, style: torch.Tensor):
    """loss(y, content) -> (total, content term, style term) for one style image (1, 3, H, W)."""
    with torch.no_grad():
        grams = [method.gram(f) for f in features(style, STYLE_LAYERS)]
    layers = list(dict.fromkeys([*CONTENT_LAYERS, *STYLE_LAYERS]))

    def loss(y: torch.Tensor, content: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            target = features(content, CONTENT_LAYERS)
        out = dict(zip(layers, features(y, layers), strict=True))
        c = CONTENT_WEIGHT * method.content_loss([out[k] for k in CONTENT_LAYERS], target)
        s = STYLE_WEIGHT * method.gram_style_loss([out[k] for k in STYLE_LAYERS], grams)
        return c + s, c, s

    return loss


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    steps: int
    size: int = 64
    batch_size: int = 4
    lr: float = 1e-3


def train_johnson(features: VGGFeatures, style: torch.Tensor, cfg: TrainConfig, *, seed: int,
                  tick=None) -> tuple[TransformNet, dict]:  # fmt: skip
    """Johnson et al.: the transformation network for one style, Adam on `johnson_objective` over
    random content crops, batch 4 (the example's; its lr of 1e-3 is raised to 2e-3 in the laptop
    runs, `JOHNSON_LR`: a few hundred steps instead of 40,000)."""
    torch.manual_seed(seed)
    net = johnson_mini()
    loss_fn = johnson_objective(features, style)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(seed)
    log: dict = {"loss": [], "content": [], "style": []}
    for _ in range(cfg.steps):
        x = data.crops(data.TRAIN_CONTENTS, cfg.batch_size, cfg.size, g)
        total, c, s = loss_fn(net(x), x)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        for k, v in (("loss", total), ("content", c), ("style", s)):
            log[k].append(round(float(v.detach()), 5))
        if tick is not None:
            tick()
    return net.eval(), log


def adain_layers(net: AdaINNet) -> list[str]:
    """AdaIN's style layers up to the encoder's last (its output: the content loss's layer)."""
    return [k for k in ADAIN_STYLE_LAYERS if net.encoder.taps[k] <= net.encoder.taps[net.cfg.last]]


def train_adain(features: VGGFeatures, cfg: TrainConfig, *, seed: int, style_seeds: range,
                tick=None) -> tuple[AdaINNet, dict]:  # fmt: skip
    """AdaIN: the stand-in as the frozen encoder (to relu4_1), the mirrored decoder trained with
    Adam on content crops and random styles of `style_seeds` (the release's loss, style weight 10,
    batch 8; its lr of 1e-4 is 1e-3 in the laptop runs, `ADAIN_LR`: thousands of steps instead of 160,000)."""
    torch.manual_seed(seed)
    net = adain_mini()
    mine = net.encoder.state_dict()  # the stand-in's layers up to the encoder's last
    net.encoder.load_state_dict({k: v for k, v in features.state_dict().items() if k in mine})
    for p in net.encoder.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(net.decoder.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(seed)
    layers = adain_layers(net)
    log: dict = {"loss": [], "content": [], "style": []}
    for _ in range(cfg.steps):
        x = data.crops(data.TRAIN_CONTENTS, cfg.batch_size, cfg.size, g)
        picks = torch.randint(len(style_seeds), (cfg.batch_size,), generator=g).tolist()
        s = data.styles([style_seeds[i] for i in picks], cfg.size)
        with torch.no_grad():
            (fc,), fs = net.encoder(x), net.encoder(s, layers)
            t = method.adain(fc, fs[-1], net.cfg.eps)
        y = net.decoder(t)
        fy = net.encoder(y, layers)
        c = F.mse_loss(fy[-1], t)
        st = ADAIN_STYLE_WEIGHT * method.stats_style_loss(fy, fs, net.cfg.eps)
        total = c + st
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        for k, v in (("loss", total), ("content", c), ("style", st)):
            log[k].append(round(float(v.detach()), 5))
        if tick is not None:
            tick()
    return net.eval(), log


# ---------------------------------------------------------------- the demo recipes

DEFAULT_HSTEPS = {"johnson": 20, "adain": 30}  # the budgets of the committed weights (hundreds of steps)
STEPS_PER_UNIT = 100  # (a test's smoke run makes it 2, and the stand-in's steps 2)
TRAIN_STYLE_SEEDS = range(1000, 1000 + 2000)  # AdaIN's training styles; the tests use others


def held_out_loss(net: nn.Module, features: VGGFeatures, *, johnson: bool) -> dict[str, float]:
    """The mean losses on 16 crops of the test photographs (never trained on): Johnson's objective
    with its style, or AdaIN's style distance to 16 unseen styles."""
    g = torch.Generator().manual_seed(12_345)
    x = data.crops(data.TEST_CONTENTS, 16, 64, g)
    with torch.no_grad():
        if johnson:
            total, c, s = johnson_objective(features, data.random_style(JOHNSON_STYLE_SEED)[None])(net(x), x)
            return {"test_loss": float(total), "test_content": float(c), "test_style": float(s)}
        s = data.styles(range(90_000, 90_016), 64)
        fs = net.encoder(s, adain_layers(net))
        fy = net.encoder(net(x, s), adain_layers(net))
        return {"test_style_unseen": float(ADAIN_STYLE_WEIGHT * method.stats_style_loss(fy, fs))}


def _recipe(kind: str, *, seed: int, budget: int | None, progress: bool) -> Trained:
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    features, standin_log = standin(seed=seed, steps=STANDIN_STEPS, progress=progress)
    cfg = TrainConfig(steps=(budget or DEFAULT_HSTEPS[kind]) * STEPS_PER_UNIT, lr=JOHNSON_LR if kind == "johnson" else ADAIN_LR,
                      batch_size=4 if kind == "johnson" else 8)
    with tqdm(total=cfg.steps, desc=f"train {kind}_mini", disable=not progress) as bar:
        if kind == "johnson":
            net, log = train_johnson(features, data.random_style(JOHNSON_STYLE_SEED)[None], cfg, seed=seed,
                                     tick=lambda: bar.update(1))  # fmt: skip
        else:
            net, log = train_adain(features, cfg, seed=seed, style_seeds=TRAIN_STYLE_SEEDS, tick=lambda: bar.update(1))
    metrics = {k: round(v, 5) for k, v in held_out_loss(net, features, johnson=kind == "johnson").items()}
    log = {"recipe": asdict(cfg) | {"standin_steps": STANDIN_STEPS}, "standin": standin_log, **log,
           "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    return Trained(model=net, metrics=metrics, log=log)


def train_johnson_mini(*, seed: int, budget: int | None, progress: bool) -> Trained:
    return _recipe("johnson", seed=seed, budget=budget, progress=progress)


def train_adain_mini(*, seed: int, budget: int | None, progress: bool) -> Trained:
    return _recipe("adain", seed=seed, budget=budget, progress=progress)


RECIPES = {
    "johnson_mini": Recipe(train_johnson_mini, unit="hundred steps", default=DEFAULT_HSTEPS["johnson"]),
    "adain_mini": Recipe(train_adain_mini, unit="hundred steps", default=DEFAULT_HSTEPS["adain"]),
}
