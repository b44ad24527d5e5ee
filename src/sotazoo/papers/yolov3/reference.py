"""YOLOv3's reference for `sotazoo bench --vs` (the paper contract's `reference.REFERENCES`):
OpenCV's DNN module running the darknet network, `opencv:NAME[:k=v,...]`.

Why OpenCV. The official YOLOv3 is darknet (C/CUDA), which no package installs; OpenCV's
`cv2.dnn.readNetFromDarknet` is an independent implementation of darknet's layers (convolution,
batch norm, leaky ReLU, `[shortcut]`, `[route]`, `[upsample]`, `[maxpool]`, `[yolo]`) that reads
the official cfg and `.weights` formats, and `opencv-python-headless` installs from PyPI. The
oracle tests (tests/papers/test_yolov3.py) check our network against it on the official cfgs.

What runs. `darknet_cfg` writes the darknet cfg of one of our configurations (our own writer,
section by section as cfg/yolov3.cfg and cfg/yolov3-tiny.cfg lay them out; a test compares it with
the official files), `convert.write_darknet_weights` writes our network's weights in darknet's
format, and OpenCV reads both. `opencv:yolov3_416` is the darknet network of our `yolov3_416`,
with the random weights our builder draws; its options are our builder's config fields (e.g.
`opencv:yolov3_tiny:width=2,num_classes=2`), except `winograd`, OpenCV's own: True (its default,
what its users run) lets OpenCV compute 3x3 convolutions with its Winograd kernels, faster and
with rounding of their own; the oracle tests turn it off.

The module (`OpenCVDarknet`) holds our network's modules under our names, so its state dict is
the one OpenCV got: `sotazoo bench` reads it through `convert_state_dict` (our own layout) and
builds ours with those weights, so both run the same weights (`weights_shared`). Its `forward`
runs OpenCV only: the raw maps of the prediction convolutions (cfg layers 81, 93, 105 of
yolov3.cfg), flattened as ours are, (B, N, 5 + C). OpenCV runs the layers in cfg order up to the
last one asked for, so it also decodes the first two outputs (their `[yolo]` sections): 0.3% of
its time for yolov3_mini (measured with `getPerfProfile`), less at full size. OpenCV's BN
divides by sqrt(var + 1e-6) where ours uses `bn_eps` (1e-5): the variances are written plus the
difference, so that OpenCV computes our function (to float32 rounding), not a neighbour of it.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import torch
from torch import nn

from sotazoo.bench import flag
from sotazoo.errors import InputError, SotazooError
from sotazoo.papers.yolov3.convert import write_darknet_weights
from sotazoo.papers.yolov3.model import YOLOv3Config, flatten_map

# cv2.dnn's darknet importer: BatchNorm layers get eps 1e-6 (darknet's CPU constant).
OPENCV_BN_EPS = 1e-6
MODELS = ("yolov3_320", "yolov3_416", "yolov3_608", "yolov3_tiny", "yolov3_mini")


class _Cfg:
    """A darknet cfg being written: sections in order, each layer's index as darknet counts it
    ([net] is not a layer), and the channels of each layer's output."""

    def __init__(self, cfg: YOLOv3Config, size: int) -> None:
        self.cfg = cfg
        self.lines = ["[net]", "batch=1", "subdivisions=1", f"width={size}", f"height={size}",
                      f"channels={cfg.in_chans}"]  # fmt: skip
        self.channels: list[int] = []
        self.predictions: list[int] = []  # indices of the prediction convolutions

    def _add(self, section: str, channels: int, **keys) -> int:
        self.lines += ["", f"[{section}]", *(f"{k}={v}" for k, v in keys.items())]
        self.channels.append(channels)
        return len(self.channels) - 1

    @property
    def c(self) -> int:
        return self.channels[-1] if self.channels else self.cfg.in_chans

    def conv(self, filters: int, size: int, stride: int = 1) -> int:
        """`batch_normalize=1 activation=leaky`: our ConvBNLeaky."""
        return self._add("convolutional", filters, batch_normalize=1, filters=filters, size=size,
                         stride=stride, pad=1, activation="leaky")  # fmt: skip

    def shortcut(self) -> int:
        """The residual add over the block's two convolutions (`from=-3`)."""
        return self._add("shortcut", self.c, **{"from": -3}, activation="linear")

    def route(self, *layers: int) -> int:
        """Concatenate layers, each given by absolute index, written relative (`-4`) for the
        previous few as the official cfg does, absolute (`61`) for the backbone's."""
        here = len(self.channels)
        idx = [i - here if here - i <= 4 else i for i in layers]
        return self._add("route", sum(self.channels[i] for i in layers),
                         layers=", ".join(map(str, idx)))  # fmt: skip

    def upsample(self) -> int:
        return self._add("upsample", self.c, stride=2)

    def maxpool(self, stride: int) -> int:
        return self._add("maxpool", self.c, size=2, stride=stride)

    def output(self, level: int) -> None:
        """The linear 1x1 prediction convolution and its `[yolo]` section."""
        cfg = self.cfg
        n = cfg.outputs_per_cell
        self.predictions.append(self._add("convolutional", n, size=1, stride=1, pad=1, filters=n,
                                          activation="linear"))  # fmt: skip
        anchors = ",  ".join(f"{w:g},{h:g}" for w, h in cfg.anchors)
        self._add("yolo", n, mask=",".join(map(str, cfg.masks[level])), anchors=anchors,
                  classes=cfg.num_classes, num=len(cfg.anchors))  # fmt: skip

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def darknet_cfg(cfg: YOLOv3Config, size: int = 416) -> tuple[str, list[int]]:
    """The darknet cfg text of our network of config `cfg` at `size` x `size`, and the layer
    indices of its prediction convolutions (OpenCV names their outputs `conv_<index>`).

    The layers are those of `model.YOLOv3` (`YOLOv3Tiny` when `cfg.tiny`), in the order of
    cfg/yolov3.cfg (cfg/yolov3-tiny.cfg), which is the order of `darknet_convs` and so of the
    .weights file.
    """
    d, w = _Cfg(cfg, size), cfg.width
    if cfg.tiny:
        for k in range(6):  # six 3x3 conv + max-pool pairs, the last pool at stride 1
            d.conv(w * 2**k, 3)
            if k == 4:
                c4 = len(d.channels) - 1  # stride 16, routed to the second output (layer 8)
            d.maxpool(2 if k < 5 else 1)
        d.conv(64 * w, 3)
        branch = d.conv(16 * w, 1)
        d.conv(32 * w, 3)
        d.output(0)
        d.route(branch)
        d.conv(8 * w, 1)
        d.upsample()
        d.route(len(d.channels) - 1, c4)
        d.conv(16 * w, 3)
        d.output(1)
        return d.text(), d.predictions
    d.conv(w, 3)
    stage_out = []
    for k, n in enumerate(cfg.blocks):  # Darknet-53: a stride-2 conv, then n residual blocks
        c = 2 * w * 2**k
        d.conv(c, 3, stride=2)
        for _ in range(n):
            d.conv(c // 2, 1)
            d.conv(c, 3)
            d.shortcut()
        stage_out.append(len(d.channels) - 1)
    for level, c in enumerate((16 * w, 8 * w, 4 * w)):
        if level:  # `route -4`, 1x1 conv, x2 upsampling, concatenated with the backbone's map
            d.route(branch)
            d.conv(c, 1)
            d.upsample()
            d.route(len(d.channels) - 1, stage_out[-1 - level])
        for _ in range(2):
            d.conv(c, 1)
            d.conv(2 * c, 3)
        branch = d.conv(c, 1)
        d.conv(2 * c, 3)
        d.output(level)
    return d.text(), d.predictions


def _cv2():
    """The cv2 module, with a darknet importer; `SotazooError` saying what to install if not."""
    try:
        import cv2
    except ImportError as e:
        raise SotazooError(
            "the OpenCV reference needs OpenCV's DNN module: pip install opencv-python-headless"
        ) from e
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromDarknet"):
        raise SotazooError(
            f"OpenCV {cv2.__version__} has no darknet importer (OpenCV 5 removed it): "
            "pip install 'opencv-python-headless>=4.5,<5'"
        )
    return cv2


class OpenCVDarknet(nn.Module):
    """OpenCV's DNN module running the darknet network of one of our YOLOv3 networks.

    Holds `network`'s modules under their names (the state dict OpenCV was given) and, outside
    the module tree, `torch_equivalent`: our network itself, which bench counts multiply-adds on
    (OpenCV's work is invisible to torch's flop counter; the layers are the same). OpenCV reads
    the weights once, here: weights loaded into the module later do not reach it.
    """

    def __init__(self, network: nn.Module, *, winograd: bool = True) -> None:
        super().__init__()
        cv2 = _cv2()
        for name, child in network.named_children():
            self.add_module(name, child)
        object.__setattr__(self, "torch_equivalent", network.eval())  # not a submodule
        self.cfg = network.cfg
        # [net]'s size is darknet's default only: OpenCV runs at the size of each input batch
        text, self.predictions = darknet_cfg(network.cfg)
        self.num_anchors = len(network.cfg.masks[0])
        with tempfile.TemporaryDirectory(prefix="sotazoo-darknet-") as tmp:
            (Path(tmp) / "net.cfg").write_text(text)
            write_darknet_weights(network, Path(tmp) / "net.weights", reader_eps=OPENCV_BN_EPS)
            self.net = cv2.dnn.readNetFromDarknet(str(Path(tmp) / "net.cfg"),
                                                  str(Path(tmp) / "net.weights"))  # fmt: skip
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        if hasattr(self.net, "enableWinograd"):  # OpenCV >= 4.7
            self.net.enableWinograd(winograd)
        self.outputs = [f"conv_{i}" for i in self.predictions]
        # as many threads as torch, which runs ours: the same share of this machine for both
        cv2.setNumThreads(torch.get_num_threads())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> raw logits (B, N, 5 + C), OpenCV's, in our order. OpenCV
        runs on the CPU: an input elsewhere is copied there and the output back."""
        c = self.cfg.in_chans
        if x.ndim != 4 or x.shape[1] != c or x.shape[2] % 32 or x.shape[3] % 32:
            raise InputError(
                f"OpenCV's darknet YOLOv3 takes a (B, {c}, H, W) batch with H and W multiples of "
                f"32, got {tuple(x.shape)}"
            )
        self.net.setInput(x.detach().to("cpu", torch.float32).contiguous().numpy())
        maps = self.net.forward(self.outputs)  # (B, A(5 + C), h, w) each, strides 32, 16(, 8)
        out = [flatten_map(torch.from_numpy(m), self.num_anchors) for m in maps]
        return torch.cat(out, 1).to(x.device)


def opencv_darknet(name: str, opts: dict, spec: str) -> nn.Module:
    """`opencv:NAME[:k=v,...]`: OpenCV running our `NAME` (built with the options, random
    weights) as a darknet network; `winograd` is OpenCV's, the other options our builder's."""
    from sotazoo.registry import create_model

    winograd = flag(opts, "winograd", spec) if "winograd" in opts else True
    try:
        network = create_model(name, **opts)
    except (TypeError, ValueError) as e:
        raise SotazooError(f"reference {spec!r}: {e}") from None
    return OpenCVDarknet(network, winograd=winograd).eval()


REFERENCES = {f"opencv:{name}": functools.partial(opencv_darknet, name) for name in MODELS}
