"""NASNet-A: the cells found by neural architecture search, stacked as in the TF-Slim release.

Paper: Zoph, Vasudevan, Shlens, Le. "Learning Transferable Architectures for Scalable Image
Recognition", CVPR 2018, arXiv 1707.07012 (v4). Official code: tensorflow/models,
research/slim/nets/nasnet/{nasnet,nasnet_utils}.py (read at commits 03cdc5fe, 08eebbce).

What is the paper's (and the release's): the Normal and Reduction cells (`NORMAL`, `REDUCTION`
below, the `operations` / `hiddenstate_indices` / `used_hiddenstates` of `nasnet_utils.py`), every
op as ReLU -> conv -> BN, separable convolutions applied twice (Appendix A.4), the ImageNet stem
(a 3x3 stride-2 VALID conv, then two Reduction cells at 1/4 and 1/2 of the filters) and the CIFAR
stem (one 3x3 conv), factorized reduction where the previous cell's output is twice as large, TF
"SAME" padding, ScheduledDropPath (Section 4, A.5) and the auxiliary head (A.7). The configs of
`nasnet.py` (`large_imagenet_config`, `mobile_imagenet_config`, `cifar_config`) give the builders.

Where the release and the paper's text differ, we follow the release: a cell concatenates the
states its fixed `used_hiddenstates` mark unused, which includes h_{i-1} in the Normal cell and
block 2 in the Reduction cell although other blocks read them (Section 3 says "unused hidden
states"); ScheduledDropPath also grows with depth; the large model's Normal cell after a
reduction reads the cell before the reduction's input (`skip_reduction_layer_input`).

What is ours: `nasnet_mini` (the laptop-scale reproduction's network), `count_pool_padding` and
`zero_pad_max_pool` (which reproduce the timm and Keras ports' stride-2 pools, see `SamePool`),
and the auxiliary head being off unless asked for (the released checkpoints' ports carry none, and
it only trains).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sotazoo.errors import InputError
from sotazoo.nn.checks import check_config, check_image_batch, ensure_finite_output, model_dtype
from sotazoo.papers.nasnet.layers import (
    ConvBN,
    FactorizedReduction,
    SameConv2d,
    SamePool,
    ScheduledDropPath,
    SepStack,
)

# A cell: five blocks, each (left op, its input, right op, its input), summed. Inputs index the
# cell's states [h0, h1, block 1, ..., block 5]: h0 is the cell input after ReLU -> 1x1 -> BN,
# h1 the output of the cell before it, matched to h0's shape. `concat` lists the states the cell
# outputs (nasnet_utils.py: NasNetANormalCell, NasNetAReductionCell).
NORMAL = {
    "blocks": (("sep5", 0, "sep3", 1), ("sep5", 1, "sep3", 1), ("avg3", 0, "id", 1),
               ("avg3", 1, "avg3", 1), ("sep3", 0, "id", 0)),
    "concat": (1, 2, 3, 4, 5, 6),  # h1 and the five blocks: 6 x filters channels
}  # fmt: skip
REDUCTION = {
    "blocks": (("sep5", 0, "sep7", 1), ("max3", 0, "sep7", 1), ("avg3", 0, "sep5", 1),
               ("id", 3, "avg3", 2), ("sep3", 2, "max3", 0)),
    "concat": (3, 4, 5, 6),  # blocks 2-5: 4 x filters channels
}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class NASNetConfig:
    """Hyper-parameters of a NASNet-A network (TF-Slim `nasnet.py` names where it has one)."""

    num_cells: int  # Normal cells in all, N per stage over 3 stages (18 = 3 x 6)
    num_conv_filters: int  # filters of the first stage; the penultimate F of "N @ F" is 24x
    stem: Literal["imagenet", "cifar"] = "imagenet"
    stem_multiplier: int = 3  # stem filters: 32x (ImageNet) or num_conv_filters x (CIFAR)
    num_reduction_layers: int = 2
    skip_reduction_layer_input: bool = False  # large: 1; the cell after a reduction reads h_{i-2}
    drop_path_keep_prob: float = 1.0  # of the last cell at the end of training (ScheduledDropPath)
    dropout: float = 0.0  # before the classifier: 1 - dense_dropout_keep_prob
    aux_head: bool = False  # ours off by default: built only for training (A.7), as in TF
    image_size: int = 224  # the training input size, which sets the aux head's last kernel
    bn_eps: float = 1e-3
    bn_momentum: float = 3e-4  # PyTorch's momentum is 1 - TF's decay (0.9997)
    count_pool_padding: bool = False  # ours: True = timm's stride-2 average pools (see SamePool)
    zero_pad_max_pool: bool = False  # ours: True = the Keras port's stride-2 max pools (SamePool)
    num_classes: int = 1001  # TF-Slim ImageNet checkpoints: index 0 is "background"
    in_chans: int = 3
    cells: tuple[dict, dict] | None = None  # ours: (Normal, Reduction) in NORMAL's format in
    # place of NASNet-A's, for the searched-vs-random comparisons (papers/nasnet/repro.py)

    def __post_init__(self) -> None:
        check_config(self)
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"NASNetConfig: dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 < self.drop_path_keep_prob <= 1.0:
            raise InputError(
                f"NASNetConfig: drop_path_keep_prob must be in (0, 1], got {self.drop_path_keep_prob}"
            )
        if self.aux_head and self.num_reduction_layers < 2:
            raise InputError("NASNetConfig: the auxiliary head sits before the second reduction")

    @property
    def reduction_indices(self) -> list[int]:
        """Normal cells that a Reduction cell precedes (nasnet_utils.calc_reduction_layers)."""
        n = self.num_reduction_layers
        return [int(i / (n + 1) * self.num_cells) for i in range(1, n + 1)]

    @property
    def aux_kernel(self) -> int:
        """The last aux conv's kernel: the map's side after the aux head's 5x5/3 pool (TF reads it
        from the graph: 6 for large at 331, 4 for mobile at 224 and CIFAR at 32)."""
        s = self.image_size
        if self.stem == "imagenet":
            s = math.ceil(((s - 3) // 2 + 1) / 4)  # VALID 3x3/2 conv, then two stride-2 cells
        s = math.ceil(s / 2)  # the first reduction
        if s < 5:
            raise InputError(f"NASNetConfig: image_size {self.image_size} leaves the aux head a "
                             f"{s}x{s} map, below its 5x5 pool")  # fmt: skip
        return (s - 5) // 3 + 1


class PoolOp(nn.Module):
    """A pooling op, then 1x1 -> BN (no ReLU) when the input has other channels than the cell."""

    def __init__(self, kind, cin: int, cout: int, stride: int, cfg: NASNetConfig, bn) -> None:
        super().__init__()
        self.pool = SamePool(kind, stride, cfg.count_pool_padding, cfg.zero_pad_max_pool)
        self.proj = ConvBN(cin, cout, bn, relu=False) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.pool(x))


def make_op(name: str, cin: int, cout: int, stride: int, cfg: NASNetConfig, bn) -> nn.Module:
    if name.startswith("sep"):
        return SepStack(cin, cout, int(name[3:]), stride, bn)
    if name in ("avg3", "max3"):
        return PoolOp(name[:3], cin, cout, stride, cfg, bn)
    # "none" in TF: the identity, or ReLU -> 1x1 (strided) -> BN where the shape must change
    return ConvBN(cin, cout, bn, stride=stride) if stride > 1 or cin != cout else nn.Identity()


class Block(nn.Module):
    """One block of a cell: two ops on two states, summed."""

    def __init__(self, left: nn.Module, right: nn.Module, inputs: tuple[int, int], ops) -> None:
        super().__init__()
        self.left, self.right, self.inputs = left, right, inputs
        self.drop_left, self.drop_right = (op != "id" for op in ops)  # identities never drop

    def forward(self, states: list[torch.Tensor], drop: ScheduledDropPath) -> torch.Tensor:
        a, b = self.left(states[self.inputs[0]]), self.right(states[self.inputs[1]])
        return (drop(a) if self.drop_left else a) + (drop(b) if self.drop_right else b)


class Cell(nn.Module):
    """A Normal or Reduction cell (NasNetABaseCell.__call__): h0 = ReLU -> 1x1 -> BN of the input,
    h1 = the previous cell's output matched to it, five blocks, the concatenation."""

    def __init__(self, spec, cfg: NASNetConfig, *, cin: int, prev: tuple[int, str], filters: int,
                 stride: int, drop: ScheduledDropPath) -> None:  # fmt: skip
        super().__init__()
        bn = _bn(cfg)
        prev_ch, how = prev
        self.conv_1x1 = ConvBN(cin, filters, bn)
        if how == "factorized":
            self.prev = FactorizedReduction(prev_ch, filters, bn)
        elif how == "1x1":
            self.prev = ConvBN(prev_ch, filters, bn)
        else:  # "same" shape, or "none": no previous cell, h1 is the raw input (TF: prev None)
            self.prev = nn.Identity()
        self.prev_is_input = how == "none"
        chans = [filters, cin if how == "none" else filters]
        self.comb_iter = nn.ModuleList()
        for op_l, i, op_r, j in spec["blocks"]:
            s_l, s_r = (stride if k < 2 else 1 for k in (i, j))  # stride only on h0, h1
            left = make_op(op_l, chans[i], filters, s_l, cfg, bn)
            right = make_op(op_r, chans[j], filters, s_r, cfg, bn)
            self.comb_iter.append(Block(left, right, (i, j), (op_l, op_r)))
            chans.append(filters)
        self.concat = spec["concat"]
        # A concatenated state with other channels: 1x1 -> BN (TF: cell_output/reduction_<i>,
        # a stride-1 factorized reduction). Only h1 of the CIFAR model's first cell.
        self.cell_output = nn.ModuleDict(
            {str(i): ConvBN(chans[i], filters, bn, relu=False)
             for i in self.concat if chans[i] != filters}
        )  # fmt: skip
        self.drop_path = drop

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
        h1 = x if self.prev_is_input else self.prev(prev)
        states = [self.conv_1x1(x), h1]
        for block in self.comb_iter:
            states.append(block(states, self.drop_path))
        outs = [self.cell_output[str(i)](states[i]) if str(i) in self.cell_output else states[i]
                for i in self.concat]  # fmt: skip
        return torch.cat(outs, 1)


class AuxHead(nn.Module):
    """The auxiliary classifier (A.7; nasnet.py _build_aux_head): on ReLU of the cell before the
    second reduction, 5x5/3 VALID average pool, 1x1 -> 128, BN, ReLU, a conv over the whole map
    -> 768, BN, ReLU, linear. Its loss weight, 0.4, belongs to the training recipe."""

    def __init__(self, cin: int, cfg: NASNetConfig) -> None:
        super().__init__()
        bn = _bn(cfg)
        self.kernel = cfg.aux_kernel
        self.proj = nn.Conv2d(cin, 128, 1, bias=False)
        self.aux_bn0 = bn(128)
        self.conv = nn.Conv2d(128, 768, self.kernel, bias=False)
        self.aux_bn1 = bn(768)
        self.fc = nn.Linear(768, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.aux_bn0(self.proj(F.avg_pool2d(F.relu(x), 5, 3))))
        if x.shape[-2:] != (self.kernel, self.kernel):
            raise InputError(f"the auxiliary head was built for a {self.kernel}x{self.kernel} map "
                             f"(NASNetConfig.image_size); this input gives "
                             f"{x.shape[-2]}x{x.shape[-1]}")  # fmt: skip
        x = F.relu(self.aux_bn1(self.conv(x)))  # (B, 768, 1, 1)
        return self.fc(x.flatten(1))


def _bn(cfg: NASNetConfig):
    return lambda c: nn.BatchNorm2d(c, eps=cfg.bn_eps, momentum=cfg.bn_momentum)


# ---------------------------------------------------------------------- the network


class NASNet(nn.Module):
    """Stem, cells in the order of `cell_names`, ReLU, global average pool, dropout, linear."""

    def __init__(self, cfg: NASNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        bn = _bn(cfg)
        f = cfg.num_conv_filters
        normal, reduction = cfg.cells or (NORMAL, REDUCTION)
        if cfg.stem == "imagenet":  # 3x3/2 VALID, BN, no ReLU (the cells begin with one)
            stem_ch = 32 * cfg.stem_multiplier
            self.conv0 = nn.Conv2d(cfg.in_chans, stem_ch, 3, stride=2, bias=False)
            self.conv0_bn = bn(stem_ch)
            plan = [("cell_stem_0", reduction, f // 4, 2), ("cell_stem_1", reduction, f // 2, 2)]
        else:  # CIFAR: one 3x3 SAME conv, BN
            stem_ch = f * cfg.stem_multiplier
            self.l1_stem_3x3 = SameConv2d(cfg.in_chans, stem_ch, 3)
            self.l1_stem_bn = bn(stem_ch)
            plan = []
        # The main cells (nasnet.py _build_nasnet_base): filters double at each reduction.
        reductions = cfg.reduction_indices
        for n in range(cfg.num_cells):
            if n in reductions:
                f *= 2
                plan.append((f"reduction_cell_{reductions.index(n)}", reduction, f, 2))
            plan.append((f"cell_{n}", normal, f, 1))
        # Wire the cells: each reads the last output and, as h1, an earlier one (`prev_offset`
        # back from the end of the list of outputs), as TF's cell_outputs[-2] does.
        outs: list[tuple[int, int] | None] = [None, (stem_ch, 0)]  # (channels, reductions)
        self.cell_names, self.prev_offsets = [], []
        total = len(plan)  # every cell, stem cells included, counts in the drop-path depth
        for index, (name, spec, filters, stride) in enumerate(plan):
            # TF's skip_reduction_layer_input: the Normal cell after a reduction takes as h1 the
            # reduction's own h1 (outputs[-3]) instead of the reduction's input (outputs[-2]).
            after = index > 0 and plan[index - 1][0].startswith("reduction_cell")
            offset = 3 if cfg.skip_reduction_layer_input and after else 2
            (cin, level), prev = outs[-1], outs[-offset]
            if prev is None:
                how = "none"
            elif prev[1] != level:
                how = "factorized"
            else:
                how = "1x1" if prev[0] != filters else "same"
            if filters < 1 or (how == "factorized" and filters % 2):
                raise InputError(f"NASNetConfig: num_conv_filters={cfg.num_conv_filters} gives "
                                 f"{name} {filters} filters (a cell needs 1 or more, a "
                                 "factorized reduction an even number)")  # fmt: skip
            drop = ScheduledDropPath(cfg.drop_path_keep_prob, index, total)
            cell = Cell(spec, cfg, cin=cin, prev=(prev[0] if prev else cin, how), filters=filters,
                        stride=stride, drop=drop)  # fmt: skip
            self.add_module(name, cell)
            self.cell_names.append(name)
            self.prev_offsets.append(offset)
            outs.append((filters * len(spec["concat"]), level + (stride > 1)))
        self.num_features = outs[-1][0]
        self.aux_after = f"cell_{reductions[1] - 1}" if cfg.aux_head else None
        if cfg.aux_head:
            aux_in = outs[2 + self.cell_names.index(self.aux_after)][0]
            self.aux_head = AuxHead(aux_in, cfg)
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.last_linear = nn.Linear(self.num_features, cfg.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """TF's variance_scaling_initializer(mode="FAN_OUT"): a normal truncated at 2 sigma, sigma
        = sqrt(1.3 x 2 / fan_out), fan_out = k x k x outputs per group (a depthwise conv's: k x
        k); zero biases; BN scale 1, shift 0 (PyTorch's default)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                w = m.weight
                fan_out = w.shape[0] // getattr(m, "groups", 1) * math.prod(w.shape[2:])
                std = math.sqrt(2.6 / fan_out)
                nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def set_drop_path_progress(self, fraction: float) -> None:
        """Tell ScheduledDropPath how far training is: step / total training steps (TF: 937.5k
        CIFAR steps, 250k ImageNet steps); the drop rate grows linearly until 1."""
        for m in self.modules():
            if isinstance(m, ScheduledDropPath):
                m.progress = float(fraction)

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.cfg.stem == "imagenet":
            x = self.conv0_bn(self.conv0(x))
        else:
            x = self.l1_stem_bn(self.l1_stem_3x3(x))
        outs: list[torch.Tensor | None] = [None, x]
        aux_input = None
        for name, offset in zip(self.cell_names, self.prev_offsets, strict=True):
            outs = [*outs[-2:], getattr(self, name)(outs[-1], outs[-offset])]
            if name == self.aux_after:
                aux_input = outs[-1]
        return F.relu(outs[-1]), aux_input

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._features(x)[0]

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = x.mean(dim=(2, 3))  # global average pool: (B, C, H, W) -> (B, C)
        return self.last_linear(self.dropout(x))

    def _check(self, x: torch.Tensor) -> None:
        min_size = 3 if self.cfg.stem == "imagenet" else 1  # the VALID 3x3 stem conv
        check_image_batch(x, self.cfg.in_chans, min_size=min_size, dtype=model_dtype(self))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        out = self.forward_head(self.forward_features(x))
        ensure_finite_output(out, {"input": x}, self)
        return out

    def forward_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, auxiliary logits), for training with the aux loss (weight 0.4 in TF)."""
        if self.aux_after is None:
            raise InputError("this model has no auxiliary head: build it with aux_head=True")
        self._check(x)
        features, aux_input = self._features(x)
        out = (self.forward_head(features), self.aux_head(aux_input))
        ensure_finite_output(out, {"input": x}, self)
        return out


def _build(cfg: NASNetConfig, overrides: dict) -> NASNet:
    try:
        return NASNet(replace(cfg, **overrides))
    except TypeError as e:
        known = ", ".join(NASNetConfig.__dataclass_fields__)
        raise TypeError(f"{e}; NASNetConfig takes: {known}") from None


# The configs of TF-Slim nasnet.py (large_imagenet_config, mobile_imagenet_config, cifar_config).
def nasnet_a_large(**overrides) -> NASNet:
    """NASNet-A 6 @ 4032 at 331x331 (Table 2). 1001 outputs as released: index 0 is the TF-Slim
    "background" class and index i the ImageNet class i - 1 (timm's port drops index 0)."""
    cfg = NASNetConfig(num_cells=18, num_conv_filters=168, skip_reduction_layer_input=True,
                       drop_path_keep_prob=0.7, dropout=0.5, image_size=331)  # fmt: skip
    return _build(cfg, overrides)


def nasnet_a_mobile(**overrides) -> NASNet:
    """NASNet-A 4 @ 1056 at 224x224 (Table 3), 1001 outputs as released (index 0: background).
    The release trains it without drop path (keep probability 1.0)."""
    cfg = NASNetConfig(num_cells=12, num_conv_filters=44, stem_multiplier=1, dropout=0.5,
                       image_size=224)  # fmt: skip
    return _build(cfg, overrides)


def nasnet_cifar(**overrides) -> NASNet:
    """NASNet-A 6 @ 768 for 32x32 CIFAR-10 images (Table 1), with TF's CIFAR BN (decay 0.9,
    eps 1e-5) and drop-path keep probability 0.6."""
    cfg = NASNetConfig(num_cells=18, num_conv_filters=32, stem="cifar", drop_path_keep_prob=0.6,
                       image_size=32, bn_eps=1e-5, bn_momentum=0.1, num_classes=10)  # fmt: skip
    return _build(cfg, overrides)


def nasnet_mini(**overrides) -> NASNet:
    """Ours: the CIFAR model with N = 1 and 16 first-stage filters (1 @ 384), for the laptop
    reproduction on 32x32 images, 10 classes."""
    return nasnet_cifar(**{"num_cells": 3, "num_conv_filters": 16, **overrides})


def tiny_overrides(name: str) -> dict:
    """One Normal cell per stage and 8 first-stage filters: the registry-wide tests' version."""
    return {"num_cells": 3, "num_conv_filters": 8, "num_classes": 10}
