"""DPIG (Ma, Sun, Georgoulis, Van Gool, Schiele, Fritz, CVPR 2018, arXiv 1712.02621): stage I.

Paper: "Disentangled Person Image Generation". Official code (TensorFlow 1, Python 2):
charliememory/Disentangled-Person-Image-Generation at e4703860bb1b351050ce50f339985ff0811f1d64.
The Market-1501 model is the one `run_market_train.sh` trains as `--model=1`
(`trainer.DPIG_Encoder_GAN_BodyROI_FgBg`): the encoder
`models.GeneratorCNN_ID_Encoder_BodyROIVis_FgBgFeaTwoBranch` and the decoder
`models.GeneratorCNN_ID_UAEAfterResidual`, with img 128x64, conv_hidden_num 128 (config.py's
default), repeat_num = log2(128) - 2 = 5, z_num 64, 7 body regions of 32 numbers each.

The idea: an image x is taken apart into three factors and put back together by one decoder,
x ~ G(e_fg, e_bg, P). The pose P is given, as 18 keypoint heatmaps. The appearance is encoded
from features of x, f = F(x), split by a rough body mask M: the foreground code e_fg is seven
32-d codes, one per body region (boxes from the keypoints), each from a weight-shared encoder
on the region of f M cropped and resized to 48x48; the background code e_bg (128-d) encodes
f (1 - M). Because a factor's code sees only its own part of f, any code can be swapped
between images or, in stage II (`stage2.py`), drawn from a network that maps Gaussian noise
into that code's space. The decoder is a U-Net whose input is the codes tiled over H x W and
stacked with the heatmaps.

Networks (relu after every convolution but the last; TF 'SAME' padding, `layers.py`):
- features F: 3x3 conv to n = 128 channels, one ResBlock; then f M and f (1 - M);
- foreground: crop_and_resize of f M at each box to 48x48, a ResidualDownStack of 5 stages
  (widths n..5n, 48 -> 3), a linear layer to 32, times the region's visibility flag;
- background: the same stack (its own weights) on f (1 - M) at 128x64 -> 8x4, linear to 128;
- decoder: [tiled e_fg (224) | e_bg (128) | heatmaps (18)] -> 3x3 conv to n, a
  ResidualDownStack (5 stages, each stage's output kept), linear to z (64), linear to 8x4xn; then
  5 stages of [concat the skip of the same size, ResBlock at the concatenated width, and (but the
  last) nearest x2 upsampling and a 1x1 conv to the next width], and a 3x3 conv to RGB, no
  activation (the official code clips to the pixel range only to save images).

What follows the official code rather than the paper's words: the background code is 128-d
(z_num * 4 with the encoder's z_num 32); the heatmaps are binary discs, not Gaussians
(`keypoints.py`); the encoder's fully connected layers read NHWC-flattened features (kept, so
the official weights keep their layout); stride-2 convolutions pad as TF does; crops are divided
by the image size, not size - 1 (`layers.crop_and_resize`).

What is ours: the inputs are NCHW tensors and are checked; boxes may be floats; the laptop variant
`dpig_mini` (64x32 images, width 16, 4 stages, 24x24 crops) for the synthetic persons; the
decoder's first convolution is computed in two parts (`DpigDecoder.stem_conv`: the heatmaps
convolved as usual, the codes, constant over the image, through a per-image 3x3 kernel and the
map of which taps fall inside the image), the same sum in another order, which spares convolving
370 constant channels (exact within float rounding; the oracle test checks it); and the
ablation `encoder="entangled"` (`DpigConfig`): one encoder of the whole image, no mask and no
body regions, to one code of the same length, which the decoder takes unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from sotazoo.errors import InputError
from sotazoo.nn.checks import (
    build_configured,
    check_config,
    check_dtype,
    check_image_batch,
    ensure_finite,
    ensure_finite_output,
    model_dtype,
)
from sotazoo.papers.disentangled_person.layers import (
    Conv2dSame,
    ResBlock,
    ResidualDownStack,
    crop_and_resize,
    flatten_nhwc,
)


@dataclass(frozen=True, kw_only=True)
class DpigConfig:
    """The stage-I networks' sizes (Market-1501 defaults: run_market_train.sh, config.py,
    trainer.DPIG_Encoder_GAN_BodyROI_FgBg)."""

    img_h: int = 128  # --img_H; the fully connected layers fix the input size
    img_w: int = 64  # --img_W
    in_chans: int = 3
    num_keypoints: int = 18  # pose heatmap channels (COCO-18 keypoints)
    num_parts: int = 7  # body regions: parts 1-7 of get_part_bbox37 ("BodyROI7")
    hidden_num: int = 128  # --conv_hidden_num, config.py's default (the scripts keep it)
    repeat_num: int = 5  # int(log2(img_H)) - 2 (trainer._common_init)
    part_dim: int = 32  # code of one body region (the encoder's z_num argument)
    bg_dim: int = 128  # background code: z_num * 4 in FgBgFeaTwoBranch
    z_dim: int = 64  # the decoder's bottleneck, --z_num=64
    roi_size: int = 48  # crop_and_resize size (the encoder's roi_size default)
    # Ours, the ablation of the reproduction: "entangled" replaces the three branches by one
    # encoder of the whole image (no mask, no body regions: stem, ResBlock, the background
    # branch's stack) to one code of fg_dim + bg_dim numbers, split at fg_dim only so that the
    # decoder and its API stay the same; the paper's model is "body_roi".
    encoder: Literal["body_roi", "entangled"] = "body_roi"

    def __post_init__(self) -> None:
        check_config(self, {"roi_size": 2})
        step = 2 ** (self.repeat_num - 1)
        if self.img_h % step or self.img_w % step:
            raise InputError(
                f"DpigConfig: img_h x img_w = {self.img_h}x{self.img_w} must be divisible by "
                f"2^(repeat_num - 1) = {step}, so that the decoder's upsampling meets its skips"
            )

    @property
    def fg_dim(self) -> int:
        """Length of the foreground code: one part_dim code per body region."""
        return self.num_parts * self.part_dim

    @property
    def code_dim(self) -> int:
        """Length of the appearance code the decoder takes: foreground then background."""
        return self.fg_dim + self.bg_dim


class DpigEncoder(nn.Module):
    """Image, body mask and region boxes -> (foreground code, background code)
    (`GeneratorCNN_ID_Encoder_BodyROIVis_FgBgFeaTwoBranch`, variable scope Encoder/G_encoder;
    modules in the order the official layers are created).

    With `encoder="entangled"` (the ablation) one stack reads the features of the whole image
    into one code of the same length, returned cut at fg_dim; the mask and boxes are not read.
    """

    def __init__(self, cfg: DpigConfig) -> None:
        super().__init__()
        self.cfg = cfg
        hw, n = (cfg.img_h, cfg.img_w), cfg.hidden_num
        self.stem = Conv2dSame(cfg.in_chans, n, 3, 1, hw)
        self.stem_block = ResBlock(n, hw)
        if cfg.encoder == "entangled":
            self.whole = ResidualDownStack(n, cfg.repeat_num, hw)
            self.whole_fc = nn.Linear(self.whole.out_channels * _area(self.whole.out_hw),
                                      cfg.code_dim)  # fmt: skip
            return
        self.fg = ResidualDownStack(n, cfg.repeat_num, (cfg.roi_size, cfg.roi_size))
        self.fg_fc = nn.Linear(self.fg.out_channels * _area(self.fg.out_hw), cfg.part_dim)
        self.bg = ResidualDownStack(n, cfg.repeat_num, hw)
        self.bg_fc = nn.Linear(self.bg.out_channels * _area(self.bg.out_hw), cfg.bg_dim)

    def features(self, image: torch.Tensor, fg_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The shared features split by the mask: (f M, f (1 - M)), each (B, n, H, W)."""
        f = self.stem_block(torch.relu(self.stem(image)))
        return f * fg_mask, f * (1 - fg_mask)

    def encode_foreground(self, f_fg: torch.Tensor, boxes: torch.Tensor,
                          box_vis: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """(B, num_parts * part_dim): each region's code, zero where its flag is 0."""
        cfg, b = self.cfg, boxes.shape[0]
        crops = crop_and_resize(f_fg, boxes, cfg.roi_size, (cfg.img_h, cfg.img_w))  # (B*P, n, r, r)
        codes = self.fg_fc(flatten_nhwc(self.fg(crops)))  # one weight-shared encoder, (B*P, d)
        codes = codes.reshape(b, cfg.num_parts, cfg.part_dim) * box_vis[..., None]
        return codes.reshape(b, cfg.fg_dim)

    def encode_background(self, f_bg: torch.Tensor) -> torch.Tensor:
        """(B, bg_dim) from the features outside the mask."""
        return self.bg_fc(flatten_nhwc(self.bg(f_bg)))

    def forward(self, image: torch.Tensor, fg_mask: torch.Tensor, boxes: torch.Tensor,
                box_vis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        if self.cfg.encoder == "entangled":
            f = self.stem_block(torch.relu(self.stem(image)))
            code = self.whole_fc(flatten_nhwc(self.whole(f)))  # (B, fg_dim + bg_dim)
            return code[:, : self.cfg.fg_dim], code[:, self.cfg.fg_dim :]
        f_fg, f_bg = self.features(image, fg_mask)
        return self.encode_foreground(f_fg, boxes, box_vis), self.encode_background(f_bg)


class UpStage(nn.Module):
    """A ResBlock at the width of [x | skip]; then (but in the last stage) nearest x2
    upsampling and a 1x1 conv + ReLU to `c_next`."""

    def __init__(self, channels: int, c_next: int | None, hw: tuple[int, int]) -> None:
        super().__init__()
        self.block = ResBlock(channels, hw)
        up_hw = (2 * hw[0], 2 * hw[1])
        self.conv = None if c_next is None else Conv2dSame(channels, c_next, 1, 1, up_hw)


class DpigDecoder(nn.Module):
    """Tiled codes and pose heatmaps -> image (`GeneratorCNN_ID_UAEAfterResidual`, variable
    scope ID_AE/G): a U-Net with a fully connected bottleneck."""

    def __init__(self, cfg: DpigConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n, r = cfg.hidden_num, cfg.repeat_num
        self.stem = Conv2dSame(cfg.code_dim + cfg.num_keypoints, n, 3, 1, (cfg.img_h, cfg.img_w))
        self.down = ResidualDownStack(n, r, (cfg.img_h, cfg.img_w))
        self.bottom_hw = self.down.out_hw
        self.fc_z = nn.Linear(self.down.out_channels * _area(self.bottom_hw), cfg.z_dim)
        self.fc_up = nn.Linear(cfg.z_dim, _area(self.bottom_hw) * n)
        self.up = nn.ModuleList()
        width = n  # channels coming up, before the skip is concatenated
        for idx in range(r):
            skip = n * (r - idx)  # the skip of this size: stage r - 1 - idx of the way down
            c_next = n * (r - idx - 1) if idx < r - 1 else None
            hw = self.down.stages[r - 1 - idx].hw
            self.up.append(UpStage(width + skip, c_next, hw))
            width = c_next or width + skip
        self.out = Conv2dSame(width, cfg.in_chans, 3, 1, (cfg.img_h, cfg.img_w))
        # taps[k, y, x] = 1 where tap k = (i, j) of the stem's 3x3 kernel reads a pixel of the
        # image at output pixel (y, x), 0 where it reads the zero padding (not saved)
        ones = nn.functional.pad(torch.ones(1, 1, cfg.img_h, cfg.img_w), (1, 1, 1, 1))
        taps = [
            ones[0, 0, i : i + cfg.img_h, j : j + cfg.img_w] for i in range(3) for j in range(3)
        ]
        self.register_buffer("taps", torch.stack(taps).flatten(1), persistent=False)  # (9, H*W)

    def stem_conv(self, codes: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
        """The stem convolution of [codes tiled over H x W | heatmaps], (B, n, H, W), without
        tiling: a code c is the same at every pixel, so its part of the convolution at (y, x) is
        sum over the taps k inside the image of W_k c, i.e. a per-image 3x3 kernel K = W c
        weighted by `taps`. The same sum as the official op in another order."""
        cfg, c = self.cfg, codes.shape[1]
        w = self.stem.weight  # (n, code_dim + K, 3, 3); one module keeps the official layout
        pose = nn.functional.conv2d(heatmaps, w[:, c:], self.stem.bias, padding=self.stem.padding)
        kernel = codes @ w[:, :c].transpose(0, 1).reshape(c, -1)  # (B, n * 9)
        out = kernel.reshape(-1, cfg.hidden_num, 9) @ self.taps  # (B, n, H*W)
        return pose + out.reshape(pose.shape)

    def forward(self, codes: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        b = codes.shape[0]
        x = torch.relu(self.stem_conv(codes, heatmaps))
        skips: list[torch.Tensor] = []
        x = self.down(x, skips)
        z = self.fc_z(flatten_nhwc(x))  # (B, z_dim), no activation
        h, w = self.bottom_hw
        x = self.fc_up(z).reshape(b, h, w, cfg.hidden_num).permute(0, 3, 1, 2)  # NHWC -> NCHW
        for idx, stage in enumerate(self.up):
            x = stage.block(torch.cat([x, skips[-1 - idx]], 1))  # the U-Net skip, after x
            if stage.conv is not None:
                x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
                x = torch.relu(stage.conv(x))
        return self.out(x)


class Dpig(nn.Module):
    """Stage I: `forward(image, heatmaps, fg_mask, boxes, box_vis)` encodes the appearance of
    `image` and renders it in the pose of `heatmaps` (the source pose reconstructs the image; a
    target pose is the pose-guided task the official test script runs as `--model=12`).

    Inputs (batch first, NCHW, the model's dtype): image (B, 3, H, W) in [-1, 1]; heatmaps
    (B, 18, H, W) of +1 / -1 (`keypoints.keypoint_heatmaps`); fg_mask (B, 1, H, W) of 0 / 1;
    boxes (B, 7, 4) [y1, x1, y2, x2] pixels; box_vis (B, 7) of 0 / 1 (all ones when omitted).
    Returns the image (B, 3, H, W) in [-1, 1] up to the decoder's range.
    """

    def __init__(self, cfg: DpigConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = DpigEncoder(cfg)
        self.decoder = DpigDecoder(cfg)

    # ------------------------------------------------------------------ factor API

    def encode(self, image: torch.Tensor, fg_mask: torch.Tensor, boxes: torch.Tensor,
               box_vis: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """(foreground code (B, 224), background code (B, 128)) of `image`."""
        box_vis = self._check_appearance(image, fg_mask, boxes, box_vis)
        fg, bg = self.encoder(image, fg_mask, boxes, box_vis)
        ensure_finite_output((fg, bg), {"image": image, "fg_mask": fg_mask}, self)
        return fg, bg

    def decode(self, fg: torch.Tensor, bg: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
        """The image of codes (fg, bg) in the pose of `heatmaps`; any of the three may come from
        another image or from a stage-II sampler."""
        cfg, dtype = self.cfg, model_dtype(self)
        for name, t, d in (("fg", fg, cfg.fg_dim), ("bg", bg, cfg.bg_dim)):
            check_dtype(t, dtype, name)
            if t.ndim != 2 or t.shape[1] != d:
                raise InputError(f"{name}: expected a (B, {d}) code, got shape {tuple(t.shape)}")
        if fg.shape[0] != bg.shape[0]:
            raise InputError(f"fg and bg codes of {fg.shape[0]} and {bg.shape[0]} images")
        self._check_map("heatmaps", heatmaps, cfg.num_keypoints, fg.shape[0])
        out = self.decoder(torch.cat([fg, bg], 1), heatmaps)
        ensure_finite_output(out, {"fg": fg, "bg": bg, "heatmaps": heatmaps}, self)
        return out

    def forward(self, image: torch.Tensor, heatmaps: torch.Tensor, fg_mask: torch.Tensor,
                boxes: torch.Tensor, box_vis: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        box_vis = self._check_appearance(image, fg_mask, boxes, box_vis)
        self._check_map("heatmaps", heatmaps, self.cfg.num_keypoints, image.shape[0])
        fg, bg = self.encoder(image, fg_mask, boxes, box_vis)
        out = self.decoder(torch.cat([fg, bg], 1), heatmaps)
        inputs = {"image": image, "heatmaps": heatmaps, "fg_mask": fg_mask, "boxes": boxes,
                  "box_vis": box_vis}  # fmt: skip
        ensure_finite_output(out, inputs, self)
        return out

    # ------------------------------------------------------------------ input checks

    def _check_map(self, name: str, t: torch.Tensor, channels: int, batch: int) -> None:
        cfg = self.cfg
        want = (batch, channels, cfg.img_h, cfg.img_w)
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != want:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise InputError(f"{name}: expected shape (B, {channels}, H, W) = {want}, got {got}")
        check_dtype(t, model_dtype(self), name)

    def _check_appearance(self, image, fg_mask, boxes, box_vis) -> torch.Tensor:
        cfg, dtype = self.cfg, model_dtype(self)
        check_image_batch(image, cfg.in_chans, dtype=dtype)
        if tuple(image.shape[2:]) != (cfg.img_h, cfg.img_w):
            raise InputError(
                f"expected {cfg.img_h}x{cfg.img_w} images (img_h x img_w: the fully connected "
                f"layers fix the size), got {image.shape[2]}x{image.shape[3]}"
            )
        b = image.shape[0]
        self._check_map("fg_mask", fg_mask, 1, b)
        if box_vis is None:
            box_vis = image.new_ones(b, cfg.num_parts)
        for name, t, shape in (("boxes", boxes, (b, cfg.num_parts, 4)),
                               ("box_vis", box_vis, (b, cfg.num_parts))):  # fmt: skip
            if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape:
                got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise InputError(f"{name}: expected shape {shape}, got {got}")
            check_dtype(t, dtype, name, hint=f"; convert with {name}.float()")
            ensure_finite(t, name)  # a NaN box would reach grid_sample
        return box_vis


def _area(hw: tuple[int, int]) -> int:
    return hw[0] * hw[1]


MARKET = DpigConfig()
# Ours, for the laptop-scale synthetic persons: half the image side, an eighth of the width
# (4.8M parameters at width 32 were 19 MB of demo weights; 16 gives a quarter of the convolutions),
# 4 stages (the official rule log2(H) - 2 at H = 64), crops scaled like the image.
MINI = DpigConfig(img_h=64, img_w=32, hidden_num=16, repeat_num=4, roi_size=24)


def dpig_market(**overrides) -> Dpig:
    """Stage I of the released Market-1501 model (BodyROI7, foreground / background / pose)."""
    return build_configured(Dpig, MARKET, overrides)


def dpig_mini(**overrides) -> Dpig:
    """The laptop variant at 64x32 for the synthetic persons (`persons.py`)."""
    return build_configured(Dpig, MINI, overrides)


def tiny_overrides(name: str) -> dict:
    """Narrow widths and small codes at the card's image size (the registry tests feed it)."""
    return {"hidden_num": 4, "part_dim": 4, "bg_dim": 8, "z_dim": 8, "roi_size": 8}
