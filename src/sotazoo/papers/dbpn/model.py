"""DBPN and D-DBPN (Haris, Shakhnarovich, Ukita, CVPR 2018, arXiv 1803.02735): the models.

Paper: "Deep Back-Projection Networks for Super-Resolution". Official code (PyTorch):
alterzero/DBPN-Pytorch (`base_networks.py` for the units, `dbpn.py` for D-DBPN, `dbpns.py` for
the T = 2 network without dense connections, `dbpn_v1.py` for the T = 10 NTIRE 2018 model); the
Caffe original is alterzero/DBPN-caffe. Our modules keep the official state-dict keys (`feat0`,
`feat1`, `up<t>.up_conv{1,2,3}`, `down<t>.down_conv{1,2,3}`, the dense units' `conv`,
`output_conv`), so the released checkpoints load without renaming. What is ours: one module and
one config for every variant, and `feedback=False`, the feed-forward ablation trained against
the real units by the reproduction (not a model of the paper).

The idea. Iterative back-projection, a classical super-resolution method, upsamples a guess,
simulates the degradation to get back a low-resolution image, and corrects the guess with the
upsampled error. DBPN makes each step learnable in its projection units (written here by their
form: we read the paper through quotations and did not check its equation numbers), with s the
scale factor:

    up-projection            H0 = (L_{t-1} * p_t) up s        scale up
                             L0 = (H0 * g_t) down s           scale down again
                             eL = L0 - L_{t-1}                low-resolution error
                             H1 = (eL * q_t) up s             error to high resolution
                             H_t = H0 + H1                    corrected estimate
    down-projection          L0 = (H_t * g'_t) down s,  H0 = (L0 * p'_t) up s,
                             eH = H0 - H_t,  L1 = (eH * g''_t) down s,  L_t = L0 + L1

Every "up s" is a strided deconvolution, every "down s" a strided convolution, each followed
by its own one-parameter PReLU. The network alternates T up and T - 1 down units after a
feature extraction conv(3, n0) -> conv(1, nR), and reconstructs the image from the
concatenation of all T high-resolution maps (I_sr = f_Rec([H_1, ..., H_T])). D-DBPN (Fig. 4)
feeds each unit the concatenation of all earlier outputs of the right resolution, merged by a
conv(1, nR) + PReLU.

Inputs are RGB in [0, 1] (the official data loader applies `ToTensor()` and nothing else: no
mean shift, no bicubic skip in the CVPR models); the output is not clamped (the official
`eval.py` clamps only when writing the image file).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from sotazoo.errors import InputError
from sotazoo.nn.checks import check_config, check_image_batch, ensure_finite_output, model_dtype

# Kernel, stride and padding of every projection conv/deconv, per scale (the paper's
# implementation details and the official dbpn.py): a deconvolution maps n pixels to s*n and
# the convolution maps them back, for any n.
PROJECTION = {2: (6, 2, 2), 4: (8, 4, 2), 8: (12, 8, 2)}


@dataclass(frozen=True, kw_only=True)
class DBPNConfig:
    """Hyper-parameters of one back-projection network (the paper's D-DBPN by default)."""

    scale: int = 4  # 2, 4 or 8 (PROJECTION)
    n0: int = 256  # feature extraction: conv(3, n0) (D-DBPN 256; S/M/L 128; SS 64)
    nr: int = 64  # projection width: conv(1, nR) and every unit (D-DBPN 64; S/M/L 32; SS 18)
    stages: int = 7  # T: up-projection units, with T - 1 down-projection units between them
    dense: bool = True  # D-DBPN: units read all earlier outputs (Fig. 4); DBPN: the previous
    in_chans: int = 3  # RGB for D-DBPN; the depth analysis (S/M/L/SS) is on luminance only
    recon_kernel: int = 3  # D-DBPN: conv(3, 3); the depth analysis networks: conv(1, 1)
    feedback: bool = True  # ours: False is the feed-forward ablation (see UpProjection)

    def __post_init__(self) -> None:
        if self.scale not in PROJECTION or isinstance(self.scale, bool):
            raise InputError(f"scale must be one of {sorted(PROJECTION)}, got {self.scale}")
        check_config(self)
        if self.recon_kernel % 2 != 1:
            raise InputError(f"recon_kernel must be odd (same padding), got {self.recon_kernel}")

    @property
    def projection(self) -> tuple[int, int, int]:
        """(kernel, stride, padding) of the projection layers at this scale."""
        return PROJECTION[self.scale]


class ConvPReLU(nn.Module):
    """conv -> one-parameter PReLU (or no activation: the reconstruction layer)."""

    def __init__(self, c_in: int, c_out: int, k: int, s: int, p: int, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, s, p)
        self.act = nn.PReLU() if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x if self.act is None else self.act(x)


class DeconvPReLU(nn.Module):
    """Strided transposed conv -> one-parameter PReLU: the "up s" of the projection units."""

    def __init__(self, c_in: int, c_out: int, k: int, s: int, p: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(c_in, c_out, k, s, p)
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.deconv(x))


class UpProjection(nn.Module):
    """Up-projection unit: L_{t-1} (B, nR, h, w) -> H_t (B, nR, s*h, s*w).

    `in_maps` > 1 makes it a dense unit (Fig. 4): its input is the concatenation of that many
    low-resolution maps, first merged by conv(1, nR) + PReLU (`conv`, as in the official code).

    `feedback=False` is our feed-forward ablation: the third layer reads L0 instead of the error
    L0 - L_{t-1}, so the unit is deconv -> conv -> deconv with H0 added back. Same layers, same
    parameters, same skip; the only change is that the back-projected estimate is never
    compared with the unit's input.
    """

    def __init__(
        self, nr: int, k: int, s: int, p: int, in_maps: int = 1, feedback: bool = True
    ) -> None:
        super().__init__()
        self.feedback = feedback
        self.conv = ConvPReLU(in_maps * nr, nr, 1, 1, 0) if in_maps > 1 else None
        self.up_conv1 = DeconvPReLU(nr, nr, k, s, p)  # p_t
        self.up_conv2 = ConvPReLU(nr, nr, k, s, p)  # g_t
        self.up_conv3 = DeconvPReLU(nr, nr, k, s, p)  # q_t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is not None:
            x = self.conv(x)  # (B, t*nR, h, w) -> (B, nR, h, w)
        h0 = self.up_conv1(x)  # scale up: the first high-resolution guess
        l0 = self.up_conv2(h0)  # scale down: the guess seen at low resolution
        err = l0 - x if self.feedback else l0  # the low-resolution error (ablation: none)
        h1 = self.up_conv3(err)  # the error brought to high resolution
        return h0 + h1  # the corrected estimate H_t


class DownProjection(nn.Module):
    """Down-projection unit: H_t (B, nR, s*h, s*w) -> L_t (B, nR, h, w), the mirror image.

    `in_maps` and `feedback` as in `UpProjection` (ablation: the third layer reads H0, not
    H0 - H_t).
    """

    def __init__(
        self, nr: int, k: int, s: int, p: int, in_maps: int = 1, feedback: bool = True
    ) -> None:
        super().__init__()
        self.feedback = feedback
        self.conv = ConvPReLU(in_maps * nr, nr, 1, 1, 0) if in_maps > 1 else None
        self.down_conv1 = ConvPReLU(nr, nr, k, s, p)
        self.down_conv2 = DeconvPReLU(nr, nr, k, s, p)
        self.down_conv3 = ConvPReLU(nr, nr, k, s, p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is not None:
            x = self.conv(x)
        l0 = self.down_conv1(x)  # scale down
        h0 = self.down_conv2(l0)  # scale up again
        err = h0 - x if self.feedback else h0  # the high-resolution error (ablation: none)
        l1 = self.down_conv3(err)
        return l0 + l1


class DBPN(nn.Module):
    """Feature extraction, T up / T - 1 down projection units, reconstruction from all H_t.

    Dense connections follow the official dbpn.py exactly: the first up unit reads L^0 (the
    extracted features); later up units read [L_{t-1}, ..., L_1] and down units
    [H_t, ..., H_1], newest first, with L^0 never concatenated; a unit gets the merging
    conv(1, nR) only when its input holds two or more maps (so down2 and up3 are the first).
    """

    def __init__(self, cfg: DBPNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k, s, p = cfg.projection
        nr, n_up = cfg.nr, cfg.stages
        self.feat0 = ConvPReLU(cfg.in_chans, cfg.n0, 3, 1, 1)  # conv(3, n0)
        self.feat1 = ConvPReLU(cfg.n0, nr, 1, 1, 0)  # conv(1, nR): L^0
        for t in range(1, n_up + 1):
            up_maps = t - 1 if cfg.dense and t >= 3 else 1
            self.add_module(f"up{t}", UpProjection(nr, k, s, p, up_maps, cfg.feedback))
            if t < n_up:
                down_maps = t if cfg.dense else 1
                self.add_module(f"down{t}", DownProjection(nr, k, s, p, down_maps, cfg.feedback))
        rk = cfg.recon_kernel
        self.output_conv = ConvPReLU(n_up * nr, cfg.in_chans, rk, 1, rk // 2, act=False)
        # Official init: Kaiming normal (fan-in, gain sqrt(2)) for every conv and deconv, zero
        # bias; PReLU slopes keep PyTorch's 0.25.
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def unit(self, kind: str, t: int) -> UpProjection | DownProjection:
        """The t-th (1-based) up or down projection unit."""
        return getattr(self, f"{kind}{t}")

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The high-resolution maps [H_1, ..., H_T], each (B, nR, s*H, s*W)."""
        dense = self.cfg.dense
        low = self.feat1(self.feat0(x))  # L^0, (B, nR, H, W): the first up unit's input
        hs: list[torch.Tensor] = []
        ls: list[torch.Tensor] = []
        for t in range(1, self.cfg.stages + 1):
            if t > 1:
                low = torch.cat(ls[::-1], dim=1) if dense else ls[-1]  # (B, (t-1)*nR, H, W)
            hs.append(self.unit("up", t)(low))
            if t < self.cfg.stages:
                high = torch.cat(hs[::-1], dim=1) if dense else hs[-1]  # (B, t*nR, sH, sW)
                ls.append(self.unit("down", t)(high))
        return hs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, C, s*H, s*W)."""
        check_image_batch(x, self.cfg.in_chans, dtype=model_dtype(self))
        hs = self.forward_features(x)
        y = self.output_conv(torch.cat(hs[::-1], dim=1))  # f_Rec([H_T, ..., H_1])
        ensure_finite_output(y, {"input": x}, self)
        return y


def _build(preset: dict, overrides: dict) -> DBPN:
    names = {f.name for f in fields(DBPNConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"unknown options {unknown}; DBPNConfig takes: {', '.join(sorted(names))}")
    return DBPN(DBPNConfig(**{**preset, **overrides}))


# D-DBPN, the paper's final network (implementation details): conv(3, 256), conv(1, 64), T = 7, conv(3, 3), RGB.
_DDBPN = {"n0": 256, "nr": 64, "stages": 7, "dense": True}
# The depth analysis networks (model analysis): conv(3, 128), conv(1, 32), reconstruction conv(1, 1), on
# the luminance channel; no dense connections. SS is the narrower S (conv(3, 64), conv(1, 18)).
_LUMA = {"in_chans": 1, "recon_kernel": 1, "dense": False}
_S = {**_LUMA, "n0": 128, "nr": 32}
_SS = {**_LUMA, "n0": 64, "nr": 18, "stages": 2}


def ddbpn_x2(**overrides) -> DBPN:
    """D-DBPN for 2x (Table 2): T = 7, 6x6 projection kernels."""
    return _build({**_DDBPN, "scale": 2}, overrides)


def ddbpn_x4(**overrides) -> DBPN:
    """D-DBPN for 4x (Table 2): T = 7, 8x8 projection kernels."""
    return _build({**_DDBPN, "scale": 4}, overrides)


def ddbpn_x8(**overrides) -> DBPN:
    """D-DBPN for 8x (Table 2): T = 7, 12x12 projection kernels."""
    return _build({**_DDBPN, "scale": 8}, overrides)


def dbpn_ss_x4(**overrides) -> DBPN:
    """DBPN-SS, 4x: the smallest network of the parameter comparison (T = 2, luminance)."""
    return _build({**_SS, "scale": 4}, overrides)


def dbpn_s_x4(**overrides) -> DBPN:
    """DBPN-S, 4x: T = 2 (the layout of the official dbpns.py), luminance."""
    return _build({**_S, "stages": 2, "scale": 4}, overrides)


def dbpn_m_x4(**overrides) -> DBPN:
    """DBPN-M, 4x: T = 4, luminance."""
    return _build({**_S, "stages": 4, "scale": 4}, overrides)


def dbpn_l_x4(**overrides) -> DBPN:
    """DBPN-L, 4x: T = 6, luminance."""
    return _build({**_S, "stages": 6, "scale": 4}, overrides)


def dbpn_s_x8(**overrides) -> DBPN:
    """DBPN-S, 8x: T = 2, luminance."""
    return _build({**_S, "stages": 2, "scale": 8}, overrides)


def dbpn_m_x8(**overrides) -> DBPN:
    """DBPN-M, 8x: T = 4, luminance."""
    return _build({**_S, "stages": 4, "scale": 8}, overrides)


def dbpn_l_x8(**overrides) -> DBPN:
    """DBPN-L, 8x: T = 6, luminance."""
    return _build({**_S, "stages": 6, "scale": 8}, overrides)


def ddbpn_l_x4(**overrides) -> DBPN:
    """D-DBPN-L, 4x: DBPN-L with dense connections (the dense-connection comparison)."""
    return _build({**_S, "stages": 6, "dense": True, "scale": 4}, overrides)


def ddbpn_l_x8(**overrides) -> DBPN:
    """D-DBPN-L, 8x: DBPN-L with dense connections."""
    return _build({**_S, "stages": 6, "dense": True, "scale": 8}, overrides)


# Ours, for the laptop-scale reproduction: the up-down-up layout of the official dbpns.py at an
# eighth of DBPN-S's width, RGB in and out with a 3x3 reconstruction as in the official code.
_MINI = {"n0": 32, "nr": 16, "stages": 2, "dense": False, "scale": 4}


def dbpn_mini_x4(**overrides) -> DBPN:
    """Ours: a tiny DBPN (n0 = 32, nR = 16, T = 2) for 4x, the reproduction's network."""
    return _build(_MINI, overrides)


def dbpn_ff_mini_x4(**overrides) -> DBPN:
    """Ours: `dbpn_mini_x4` with the error feedback removed from every unit, same parameters."""
    return _build({**_MINI, "feedback": False}, overrides)


def tiny_overrides(name: str) -> dict:
    """Narrow widths and T = 3 for the registry-wide tests, whatever the variant's T; the scale
    and the dense units are kept (at T = 3 a dense network has its first merging convs)."""
    return {"n0": 8, "nr": 4, "stages": 3}
