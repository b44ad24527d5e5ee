"""Checkpoint layouts for ProGAN, recognised by their keys; the configuration is read from shapes.

- `sotazoo_generator` / `sotazoo_discriminator`: our own modules' keys (`blocks.0.dense.weight`,
  `blocks.0.dense1.weight`), passed through unchanged with no overrides.
- `gan_zoo_generator` / `gan_zoo_discriminator`: facebookresearch/pytorch_GAN_zoo (torch.hub
  `PGAN`), `models/networks/progressive_conv_net.py` `GNet` (`formatLayer`, `groupScale0.0`,
  `scaleLayers.<i>.<j>`, `toRGBLayers.<i>`, each `.module.{weight,bias}`) and `DNet`
  (`fromRGBLayers.<i>`, `scaleLayers.<i>.<j>`, `groupScaleZero.{0,1}`, `decisionLayer`). Its
  hub files (`celebaHQ_s6_i80000-6196db68.pth`, 256x256; `celebaHQ16_december_s7_i96000-
  9c72988c.pth`, 512x512; `celebaCropped_s5_i83000-2b0acc76.pth` and `testDTD_s5_i96000-
  04efa39f.pth`, 128x128) are `BaseGAN.getStateDict()`: `{"config": BaseConfig, "netG": ...,
  "netD": ..., "avgG": ...}`, read by `read_gan_zoo_file` (through `read_checkpoint`, so
  `sotazoo.create_model("progan_1024", weights="celebaHQ_s6_i80000-6196db68.pth")` works);
  `convert_state_dict` takes that nested dict too and converts `avgG` (the moving average the
  hub samples with) by default.

What differs between pytorch_GAN_zoo and the official networks.py (which ours follows), and how
each is handled:
1. Every equalised layer computes He * (W x + b): the port scales the bias by the He constant
   too, the official code adds it afterwards. Folded: b_ours = He * b_port (exact up to one
   float32 rounding).
2. The port's He gain is sqrt(2) everywhere; official: sqrt(2)/4 for G's first dense layer, 1
   for toRGB and for D's last dense layer. A pure scale of the weight, folded: W_ours =
   W_port * sqrt(2) / gain (x4, x sqrt(2), x sqrt(2)).
3. G's first dense layer has a bias per unit (16 C of them) in the port, per channel in the
   official code: config field `g_dense_bias="unit"` (a (C, 4, 4) bias).
4. Minibatch stddev: the port groups consecutive samples, takes the unbiased variance, treats a
   batch that 4 does not divide as one group and gives zeros for a batch of one:
   `mbstd_variant="gan_zoo"` (layers.py).
5. The fade-in: the port's alpha is the weight of the OLD (upsampled / pooled) path, 0 when
   grown; ours is 1 - it. The hub files are grown (alpha 0 in theirs, 1 in ours). The port's D
   does not fade at all while only one block has been added (its `mergeLayer` needs two); ours
   does: the only function difference we do not reproduce, and no grown file is affected.
6. Widths: the port takes a list per scale (pgan_config.py: 512, 512, 512, 512, 256, 128, 64,
   32, 16 = the official min(8192 / 2^stage, 512)); the converter reads them off the tensors
   and fits `fmap_base` / `fmap_max` to them, or raises. D's decision layers (conv 3x3, dense
   16 C -> C, dense -> 1) are the official conv 3x3 / Dense0 / Dense1, with C = nf(1) = nf(0).
7. The port keeps a toRGB (fromRGB) layer for every scale; a grown network only uses the last,
   so the others are dropped (`fading=True` also keeps the one before, for a network built one
   stage lower and grown).
The latent pixelnorm, LeakyReLU 0.2, pixelnorm eps 1e-8, nearest upsampling and 2x2 average
pooling are the same. Not readable from a file, and assumed as in the hub's configuration:
`equalizedlR=True` (a file trained without it would convert wrongly) and an identity output
(the WGANGP loss; a `config` whose lossCriterion has a tanh output is rejected).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from sotazoo.weights import WeightsError, read_state_dict

_G_OURS, _D_OURS = "blocks.0.dense.weight", "blocks.0.dense1.weight"
_G_ZOO = ("formatLayer.module.weight", "groupScale0.0.module.weight")
_D_ZOO = ("decisionLayer.module.weight", "groupScaleZero.0.module.weight")
_TANH_LOSSES = ("MSE", "DCGAN")  # base_loss_criterions.py: generationActivation = tanh


def _key(stage: int) -> str:
    return f"{4 * 2**stage}x{4 * 2**stage}"


def detect_layout(keys: set[str]) -> str:
    """Name the layout of a ProGAN checkpoint from its keys; `WeightsError` when none fits."""
    if _G_OURS in keys:
        return "sotazoo_generator"
    if _D_OURS in keys:
        return "sotazoo_discriminator"
    if set(_G_ZOO) <= keys:
        return "gan_zoo_generator"
    if set(_D_ZOO) <= keys:
        return "gan_zoo_discriminator"
    raise WeightsError(
        f"unrecognised ProGAN checkpoint layout: expected sotazoo's keys ({_G_OURS!r} for G, "
        f"{_D_OURS!r} for D) or pytorch_GAN_zoo's ({list(_G_ZOO)} for GNet, {list(_D_ZOO)} for "
        f"DNet); the file's first keys are {sorted(keys)[:8]}"
    )


def _fit_widths(widths: list[int]) -> tuple[int, int]:
    """(fmap_base, fmap_max) with min(fmap_base // 2^(k+1), fmap_max) == widths[k] for every
    scale k (widths[k]: the features of the 4 * 2^k block), preferring the official 8192/512."""
    s = len(widths)

    def fits(base: int, top: int) -> bool:
        return all(min(base // 2 ** (k + 1), top) == w for k, w in enumerate(widths))

    top = widths[0]
    first_smaller = next((k for k, w in enumerate(widths) if w < top), None)
    base = (
        top * 2 ** (s + 1)
        if first_smaller is None
        else widths[first_smaller] * 2 ** (first_smaller + 1)
    )
    for cand in ((8192, 512), (base, top)):
        if fits(*cand):
            return cand
    raise WeightsError(
        f"the widths per scale of this pytorch_GAN_zoo checkpoint, {widths}, are not "
        "min(fmap_base / 2^stage, fmap_max) for any fmap_base, fmap_max (ProGANConfig)"
    )


def _scales(keys: set[str], prefix: str) -> int:
    found = {int(m.group(1)) for k in keys if (m := re.match(rf"{prefix}\.(\d+)\.", k))}
    if found != set(range(len(found))):
        raise WeightsError(f"the {prefix} of this checkpoint are not numbered 0..n: {found}")
    return len(found)


def _fold(w: torch.Tensor, b: torch.Tensor, gain: float) -> tuple[torch.Tensor, torch.Tensor]:
    """pytorch_GAN_zoo's He * (W x + b) as ours, (He * gain_ours / sqrt(2)) * W' x + b'."""
    he = math.sqrt(2.0 / math.prod(w.shape[1:]))  # custom_layers.getLayerNormalizationFactor
    return w * (math.sqrt(2.0) / gain), b * he


def _layer(out: dict, sd: Mapping, src: str, dst: str, gain: float = math.sqrt(2.0)) -> None:
    out[f"{dst}.weight"], out[f"{dst}.bias"] = _fold(
        sd[f"{src}.module.weight"], sd[f"{src}.module.bias"], gain
    )


def _from_gan_zoo_g(sd: Mapping, fading: bool) -> tuple[dict, dict]:
    keys = set(sd)
    n = _scales(keys, "scaleLayers")  # the final stage
    if _scales(keys, "toRGBLayers") != n + 1:
        raise WeightsError(f"a GNet with {n} added scales has {n + 1} toRGB layers")
    fmt_w, fmt_b = sd["formatLayer.module.weight"], sd["formatLayer.module.bias"]
    c = sd["groupScale0.0.module.weight"].shape[0]
    if fmt_w.shape[0] != 16 * c:
        raise WeightsError(f"formatLayer gives {fmt_w.shape[0]} features, not 16 x {c}")
    widths = [c] + [sd[f"scaleLayers.{i}.1.module.weight"].shape[0] for i in range(n)]
    fmap_base, fmap_max = _fit_widths(widths)
    out: dict[str, torch.Tensor] = {}
    w, b = _fold(fmt_w, fmt_b, math.sqrt(2.0) / 4)  # official G_paper's gain for this layer
    out["blocks.0.dense.weight"], out["blocks.0.dense_bias"] = w, b.reshape(c, 4, 4)
    _layer(out, sd, "groupScale0.0", "blocks.0.conv")
    for i in range(n):
        for j in range(2):
            _layer(out, sd, f"scaleLayers.{i}.{j}", f"blocks.{i + 1}.conv{j}")
    for s in (n - 1, n) if fading and n else (n,):
        _layer(out, sd, f"toRGBLayers.{s}", f"rgb.{_key(s)}", gain=1.0)  # official toRGB gain
    overrides = {
        "resolution": 4 * 2**n,
        "latent_dim": int(fmt_w.shape[1]),
        "img_channels": int(sd[f"toRGBLayers.{n}.module.weight"].shape[0]),
        "fmap_base": fmap_base,
        "fmap_max": fmap_max,
        "g_dense_bias": "unit",
    }
    return out, overrides


def _from_gan_zoo_d(sd: Mapping, fading: bool) -> tuple[dict, dict]:
    keys = set(sd)
    n = _scales(keys, "scaleLayers")
    if _scales(keys, "fromRGBLayers") != n + 1:
        raise WeightsError(f"a DNet with {n} added scales has {n + 1} fromRGB layers")
    if sd["decisionLayer.module.weight"].shape[0] != 1:
        raise WeightsError(
            f"this DNet's decision layer has {sd['decisionLayer.module.weight'].shape[0]} "
            "outputs (an AC-GAN's classes); ProGAN's critic has one"
        )
    conv = sd["groupScaleZero.0.module.weight"]
    c = conv.shape[0]
    if conv.shape[1] not in (c, c + 1):
        raise WeightsError(f"groupScaleZero.0 reads {conv.shape[1]} channels, not {c} or {c + 1}")
    widths = [c] + [sd[f"scaleLayers.{i}.0.module.weight"].shape[0] for i in range(n)]
    fmap_base, fmap_max = _fit_widths(widths)
    out: dict[str, torch.Tensor] = {}
    for s in (n - 1, n) if fading and n else (n,):
        _layer(out, sd, f"fromRGBLayers.{s}", f"rgb.{_key(s)}")
    for i in range(n):
        for j in range(2):
            _layer(out, sd, f"scaleLayers.{i}.{j}", f"blocks.{i + 1}.conv{j}")
    _layer(out, sd, "groupScaleZero.0", "blocks.0.conv")
    _layer(out, sd, "groupScaleZero.1", "blocks.0.dense0")
    _layer(out, sd, "decisionLayer", "blocks.0.dense1", gain=1.0)  # official Dense1 gain
    mbstd = conv.shape[1] == c + 1
    overrides = {
        "resolution": 4 * 2**n,
        "img_channels": int(sd[f"fromRGBLayers.{n}.module.weight"].shape[1]),
        "fmap_base": fmap_base,
        "fmap_max": fmap_max,
        "mbstd_group_size": 4 if mbstd else 0,  # miniBatchStdDev's subGroupSize
        "mbstd_variant": "gan_zoo" if mbstd else "official",
    }
    return out, overrides


def _config_value(config: object, name: str) -> object:
    return config.get(name) if isinstance(config, Mapping) else getattr(config, name, None)


def convert_state_dict(
    sd: Mapping, *, net: str = "avgG", fading: bool = False
) -> tuple[dict[str, torch.Tensor], dict[str, object], str]:
    """Map a checkpoint onto our keys; returns it, the config fields it needs, and its layout.

    Args:
        sd: a flat state dict (ours, or a pytorch_GAN_zoo GNet/DNet one), or a whole
            pytorch_GAN_zoo file as `read_gan_zoo_file` returns it.
        net: which network of a whole file: `avgG` (the averaged generator), `netG` or `netD`.
        fading: keep the toRGB/fromRGB layer of the stage below too, for a network built one
            stage lower and grown (alpha < 1); only for pytorch_GAN_zoo layouts.
    """
    if any(isinstance(v, Mapping) for v in sd.values()):  # a whole BaseGAN.getStateDict()
        if net not in sd:
            raise WeightsError(f"this pytorch_GAN_zoo file has no {net!r}; it has {sorted(sd)}")
        loss = _config_value(sd.get("config"), "lossCriterion")
        if net != "netD" and loss in _TANH_LOSSES:
            raise WeightsError(
                f"this generator was trained with the {loss} loss, whose output goes through a "
                "tanh that ProGAN's generator does not have"
            )
        sd = sd[net]
    layout = detect_layout(set(sd))
    if layout.startswith("sotazoo"):
        return dict(sd), {}, layout
    if layout == "gan_zoo_generator":
        out, overrides = _from_gan_zoo_g(sd, fading)
    else:
        out, overrides = _from_gan_zoo_d(sd, fading)
    return out, overrides, layout


class _GanZooConfig:
    """Stands in for pytorch_GAN_zoo's `models.utils.config.BaseConfig` (a plain attribute bag)
    so that its files load with `weights_only=True`: nothing in them runs."""


def read_checkpoint(path: str | Path) -> dict:
    """`sotazoo.create_model`'s reader for ProGAN files: a state dict as
    `sotazoo.weights.read_state_dict` reads it (ours, or one network saved alone); failing that,
    a whole pytorch_GAN_zoo file (`read_gan_zoo_file`), which `convert_state_dict` takes as it is
    (its averaged generator, `avgG`, by default)."""
    try:
        return read_state_dict(path)
    except WeightsError as plain:
        try:
            return read_gan_zoo_file(path)
        except WeightsError as zoo:
            raise WeightsError(f"{plain}; nor as a pytorch_GAN_zoo file: {zoo}") from None


def load(path: Path, model: str, overrides: dict) -> tuple[dict, dict]:
    """The contract's reader (`sotazoo.papers._contract`): `read_checkpoint`, then
    `convert_state_dict`."""
    from sotazoo.papers._contract import default_load

    return default_load(Path(path), convert_state_dict, read=read_checkpoint)


def read_gan_zoo_file(path: str | Path) -> dict:
    """Read a pytorch_GAN_zoo checkpoint (`{"config", "netG", "netD", "avgG"}`) safely.

    `config` comes back as a dict. `sotazoo.create_model("progan_1024", weights=path)` reads
    such a file through `read_checkpoint` (its averaged generator); `convert_state_dict(data,
    net="netG" | "netD")` converts the others.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"no weight file at {path}")
    allowed = [(_GanZooConfig, "models.utils.config.BaseConfig")]
    try:
        with torch.serialization.safe_globals(allowed):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(
            f"cannot read {path} as a pytorch_GAN_zoo checkpoint: {type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}"
        ) from e
    if not isinstance(data, dict) or not ({"netG", "netD"} <= set(data)):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise WeightsError(f"{path} is not a pytorch_GAN_zoo file (netG, netD, ...): {found}")
    if isinstance(data.get("config"), _GanZooConfig):
        data["config"] = dict(vars(data["config"]))
    return data
