"""Checkpoint layouts for NASNet-A, recognised by their keys and mapped onto ours.

- `sotazoo`: our keys. The cells keep the TF-Slim scope names (`cell_stem_0`, `cell_7`,
  `reduction_cell_1`, `comb_iter.<k>.left|right`, `separable_1`, `bn_sep_1`, `conv0`,
  `conv0_bn`); h1's adapter is `prev` (a 1x1 or a factorized reduction); the classifier is
  `last_linear`, as in the PyTorch ports. Loaded as they are.
- `timm`: timm's `nasnetalarge` (the port of Cadene's `pretrainedmodels` of the TF-Slim release,
  `nasnetalarge-dc4a7b8b.pth`): `conv0.conv` / `conv0.bn`, `comb_iter_<k>_left`,
  `separable_1.depthwise_conv2d`, `conv_prev_1x1` or `path_1.conv` / `path_2.conv` /
  `final_path_bn` at the cell's top level, 1000 classes (TF's background class dropped). The
  tensors need no reshaping, only new names.

- `tf_slim`: the TF-Slim release itself (`nasnet-a_{mobile,large}_04_10_2017`: `model.ckpt.index`
  + `.data-*`, read by `sotazoo.tfcheckpoint`): the variable names of `nasnet.py` and
  `nasnet_utils.py` (`conv0/weights`, `<cell>/1x1/weights` + `beginning_bn`, `prev_1x1` +
  `prev_bn` or `path1_conv` / `path2_conv` + `final_path_bn`, `comb_iter_<k>/<side>/
  separable_<K>x<K>_<j>/{depthwise,pointwise}_weights` + `bn_sep_<K>x<K>_<j>`, pools' `1x1` +
  `bn_1`, `final_layer/FC`, `aux_<n>/aux_logits/...`), kernels in TF's HWIO order, 1001 classes.
  Variables the eval graph does not read (`global_step`, optimizer slots) are left out.
- `keras`: the Keras port (`keras.applications.NASNetMobile` / `NASNetLarge`, the released
  `NASNet-{mobile,large}.h5`, Keras-2 HDF5 read with h5py): layers named by block ids (`stem_1`,
  `stem_2`, `0`.., `reduce_<N>`, ...), `normal_left1_<b>` style separable blocks, `adjust_*` for
  h1, `predictions` with 1000 classes (the background class dropped).

Computing what timm computes also needs `count_pool_padding=True` (its stride-2 average pools
count the zero padding at the borders, TF's do not; see `model.SamePool`), and what Keras computes
also `zero_pad_max_pool=True` (its stride-2 max pools see zero padding). The converter imposes
neither: the weights are TF's, and our default computes as TF does. The oracle tests set them.

The config a checkpoint needs (classes, cells, filters, stem width) is read from its tensors'
shapes, so a file of another size than the builder's loads into the right network.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from sotazoo.weights import WeightsError

_CELL = r"(cell_stem_\d|cell_\d+|reduction_cell_\d)"
# timm key (after the cell's name) -> ours; tried in order, the first full match wins.
_TIMM_RULES = [
    (r"conv_1x1\.(conv\.weight|bn\.\w+)", r"conv_1x1.\1"),
    (r"conv_prev_1x1\.(conv\.weight|bn\.\w+)", r"prev.\1"),
    (r"path_([12])\.conv\.weight", r"prev.path_\1.weight"),
    (r"final_path_bn\.(\w+)", r"prev.bn.\1"),
    (
        r"comb_iter_(\d)_(left|right)\.separable_([12])\.(depthwise|pointwise)_conv2d\.weight",
        r"comb_iter.\1.\2.separable_\3.\4.weight",
    ),
    (r"comb_iter_(\d)_(left|right)\.bn_sep_([12])\.(\w+)", r"comb_iter.\1.\2.bn_sep_\3.\4"),
]
_TIMM_TOP = {"conv0.conv.weight": "conv0.weight"}


def detect_layout(keys: set[str]) -> str:
    """Name the layout of a NASNet checkpoint from its keys; `WeightsError` when none fits."""
    if "last_linear.weight" in keys and any(".comb_iter.0." in k for k in keys):
        return "sotazoo"
    if "conv0.conv.weight" in keys and any(".comb_iter_0_left." in k for k in keys):
        return "timm"
    if any(re.fullmatch(r"cell_\d+/comb_iter_0/left/.*", k) for k in keys) and (
        "conv0/weights" in keys or "l1_stem_3x3/weights" in keys
    ):
        return "tf_slim"
    if "stem_conv1/kernel" in keys and any(k.startswith("normal_conv_1_") for k in keys):
        return "keras"
    sample = sorted(keys)[:8]
    raise WeightsError(
        "unrecognised NASNet checkpoint layout: expected '<cell>.comb_iter.0.*' + "
        "'last_linear.*' (sotazoo), 'conv0.conv.weight' + '<cell>.comb_iter_0_left.*' (timm "
        "nasnetalarge, Cadene's pretrainedmodels), 'conv0/weights' + 'cell_0/comb_iter_0/...' "
        "(the TF-Slim checkpoint) or 'stem_conv1/kernel' + 'normal_conv_1_*' (Keras); the "
        f"file's first keys are {sample}"
    )


def _timm_key(key: str) -> str | None:
    if key in _TIMM_TOP:
        return _TIMM_TOP[key]
    if key.startswith("conv0.bn."):
        return "conv0_bn." + key[len("conv0.bn.") :]
    if key.startswith("last_linear."):
        return key
    m = re.fullmatch(_CELL + r"\.(.+)", key)
    if m is None:
        return None
    for pattern, repl in _TIMM_RULES:
        if re.fullmatch(pattern, m[2]):
            return f"{m[1]}.{re.sub(pattern, repl, m[2])}"
    return None


# ---------------------------------------------------------------- TF-Slim and Keras

_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
       "moving_variance": "running_var"}  # fmt: skip
# Variables of a training checkpoint that the network does not read.
_TF_UNUSED = re.compile(r"global_step|.*/(Momentum|RMSProp\w*|ExponentialMovingAverage|Adam\w*)$")


def _cell_spec(cell: str) -> dict:
    from sotazoo.papers.nasnet.model import NORMAL, REDUCTION

    return NORMAL if re.fullmatch(r"cell_\d+", cell) else REDUCTION


def _op_prefix(cell: str, k: int, side: str) -> str:
    """Our path of the 1x1 + BN inside op (k, side): a pool's projection or a strided 'none'."""
    block = _cell_spec(cell)["blocks"][k]
    op = block[0] if side == "left" else block[2]
    return f"{cell}.comb_iter.{k}.{side}." + ("proj." if op in ("avg3", "max3") else "")


_TF_CELL_RULES = [  # (TF name inside a cell, ours) ; {bn} is a BN variable's suffix
    (r"1x1/weights", "conv_1x1.conv.weight"),
    (r"beginning_bn/(\w+)", "conv_1x1.bn.{bn}"),
    (r"prev_1x1/weights", "prev.conv.weight"),
    (r"prev_bn/(\w+)", "prev.bn.{bn}"),
    (r"path([12])_conv/weights", "prev.path_{0}.weight"),
    (r"final_path_bn/(\w+)", "prev.bn.{bn}"),
    (r"comb_iter_(\d)/(left|right)/separable_(\d)x\3_([12])/(depthwise|pointwise)_weights",
     "comb_iter.{0}.{1}.separable_{3}.{4}.weight"),
    (r"comb_iter_(\d)/(left|right)/bn_sep_(\d)x\3_([12])/(\w+)", "comb_iter.{0}.{1}.bn_sep_{3}.{bn}"),
    (r"cell_output/reduction_(\d)/path_conv/weights", "cell_output.{0}.conv.weight"),
    (r"cell_output/reduction_(\d)/path_bn/(\w+)", "cell_output.{0}.bn.{bn}"),
]  # fmt: skip
_TF_TOP = {"conv0/weights": "conv0.weight", "l1_stem_3x3/weights": "l1_stem_3x3.weight",
           "final_layer/FC/weights": "last_linear.weight",
           "final_layer/FC/biases": "last_linear.bias"}  # fmt: skip


def _tf_key(key: str) -> str | None:
    """Our key of a TF-Slim variable; "" for one we leave out; None for an unknown one."""
    if _TF_UNUSED.fullmatch(key) or re.fullmatch(r"aux_\d+/aux_logits/.*", key):
        return ""  # the auxiliary head trains only; ours is built without it (model.py)
    if key in _TF_TOP:
        return _TF_TOP[key]
    m = re.fullmatch(r"(conv0_bn|l1_stem_bn)/(\w+)", key)
    if m:
        return f"{m[1]}.{_BN[m[2]]}" if m[2] in _BN else None
    m = re.fullmatch(r"(cell_stem_\d|cell_\d+|reduction_cell_\d)/(.+)", key)
    if m is None:
        return None
    cell, rest = m[1], m[2]
    op = re.fullmatch(r"comb_iter_(\d)/(left|right)/(1x1/weights|bn_1/(\w+))", rest)
    if op:
        prefix = _op_prefix(cell, int(op[1]), op[2])
        if op[4] is None:
            return prefix + "conv.weight"
        return prefix + f"bn.{_BN[op[4]]}" if op[4] in _BN else None
    for pattern, target in _TF_CELL_RULES:
        r = re.fullmatch(pattern, rest)
        if r:
            groups = list(r.groups())
            if "{bn}" in target:
                if groups[-1] not in _BN:
                    return None
                return f"{cell}." + target.format(*groups, bn=_BN[groups[-1]])
            return f"{cell}." + target.format(*groups)
    return None


# Keras: the separable blocks by (cell kind, side, number in the layer name) -> block index.
_KERAS_SEP = {("normal", "left", 1): 0, ("normal", "right", 1): 0, ("normal", "left", 2): 1,
              ("normal", "right", 2): 1, ("normal", "left", 5): 4, ("reduction", "left", 1): 0,
              ("reduction", "right", 1): 0, ("reduction", "right", 2): 1,
              ("reduction", "right", 3): 2, ("reduction", "left", 4): 4}  # fmt: skip


def _keras_cells(keys: set[str]) -> dict[str, str]:
    """Keras block id -> our cell name (keras/applications/nasnet.py numbers Normal cells
    0..N-1, N+1..2N, 2N+1..3N and the reductions reduce_N, reduce_2N)."""
    normal = {m[1] for k in keys if (m := re.match(r"normal_conv_1_(\d+)/", k))}
    n = len(normal) // 3
    cells = {"stem_1": "cell_stem_0", "stem_2": "cell_stem_1", f"reduce_{n}": "reduction_cell_0",
             f"reduce_{2 * n}": "reduction_cell_1"}  # fmt: skip
    for i in sorted(int(b) for b in normal):
        cells[str(i)] = f"cell_{i - i // (n + 1)}"  # skip the numbers the reductions took
    return cells


def _keras_key(key: str, cells: dict[str, str]) -> str | None:
    layer, _, var = key.partition("/")
    if layer == "stem_conv1" and var == "kernel":
        return "conv0.weight"
    if layer == "stem_bn1":
        return f"conv0_bn.{_BN[var]}" if var in _BN else None
    if layer == "predictions":
        return {"kernel": "last_linear.weight", "bias": "last_linear.bias"}.get(var)
    m = re.fullmatch(r"separable_conv_([12])_(bn_)?(normal|reduction)_(left|right)(\d)_(.+)", layer)
    if m:
        k = _KERAS_SEP.get((m[3], m[4], int(m[5])))
        cell = cells.get(m[6])
        if k is None or cell is None:
            return None
        base = f"{cell}.comb_iter.{k}.{m[4]}."
        if m[2]:
            return base + f"bn_sep_{m[1]}.{_BN[var]}" if var in _BN else None
        kind = {"depthwise_kernel": "depthwise", "pointwise_kernel": "pointwise"}.get(var)
        return base + f"separable_{m[1]}.{kind}.weight" if kind else None
    m = re.fullmatch(r"(normal|reduction)_(conv|bn)_1_(.+)", layer)
    if m and m[3] in cells:
        return f"{cells[m[3]]}.conv_1x1." + ("conv.weight" if m[2] == "conv" else f"bn.{_BN[var]}")
    m = re.fullmatch(r"adjust_(conv_1|conv_2|conv_projection|bn)_(.+)", layer)
    if m and m[2] in cells:
        part = {"conv_1": "path_1.weight", "conv_2": "path_2.weight",
                "conv_projection": "conv.weight"}.get(m[1])  # fmt: skip
        return f"{cells[m[2]]}.prev." + (part if part else f"bn.{_BN[var]}")
    return None


def _to_torch_layout(their_key: str, value: torch.Tensor) -> torch.Tensor:
    """TF's kernels to PyTorch's: HWIO convolutions, (K, K, C, 1) depthwise, (in, out) dense."""
    if value.ndim == 4:
        depthwise = "depthwise" in their_key
        return value.permute(2, 3, 0, 1) if depthwise else value.permute(3, 2, 0, 1)
    if value.ndim == 2:
        return value.t()
    return value


def _map(sd: dict[str, torch.Tensor], name_of, layout: str) -> dict[str, torch.Tensor]:
    out, unknown = {}, []
    for k, v in sd.items():
        new = name_of(k)
        if new is None:
            unknown.append(k)
        elif new:
            out[new] = _to_torch_layout(k, v).contiguous() if layout != "timm" else v
    if unknown:
        raise WeightsError(
            f"{len(unknown)} keys of the {layout} NASNet layout have no counterpart in ours, "
            f"e.g. {sorted(unknown)[:5]}"
        )
    return out


def _config_of(sd: dict[str, torch.Tensor]) -> dict[str, object]:
    """The config a checkpoint in our keys needs, read from its shapes."""
    cfg: dict[str, object] = {}
    if "last_linear.weight" in sd:
        cfg["num_classes"] = sd["last_linear.weight"].shape[0]
    cells = {m[1] for k in sd if (m := re.match(r"(cell_\d+)\.", k))}
    if "cell_0.conv_1x1.conv.weight" in sd:
        cfg["num_cells"] = len(cells)
        cfg["num_conv_filters"] = sd["cell_0.conv_1x1.conv.weight"].shape[0]
    if "conv0.weight" in sd:
        cfg["stem"], cfg["stem_multiplier"] = "imagenet", sd["conv0.weight"].shape[0] // 32
    elif "l1_stem_3x3.weight" in sd and "num_conv_filters" in cfg:
        cfg["stem"] = "cifar"
        cfg["stem_multiplier"] = sd["l1_stem_3x3.weight"].shape[0] // int(cfg["num_conv_filters"])
    return cfg


def convert_state_dict(
    sd: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, object], str]:
    """Map a checkpoint onto our keys.

    Returns the state dict, the config overrides it needs (classes, cells, filters and stem, read
    from its shapes) and the layout's name. A key of a known layout that no rule maps is an error
    that names it.
    """
    layout = detect_layout(set(sd))
    if layout == "timm":
        sd = _map(sd, _timm_key, layout)
    elif layout == "tf_slim":
        sd = _map(sd, _tf_key, layout)
    elif layout == "keras":
        cells = _keras_cells(set(sd))
        sd = _map(sd, lambda k: _keras_key(k, cells), layout)
    return sd, _config_of(sd), layout


# ---------------------------------------------------------------- reading the files


def read_keras_h5(path: Path) -> dict[str, torch.Tensor]:
    """The weights of a Keras HDF5 file (the Keras-2 layout of the released files: a group per
    layer listed in the root's `layer_names`, its `weight_names` naming datasets), keyed
    `<layer>/<weight>` with the weight's last name (`kernel`, `gamma`, ...; `:0` dropped)."""
    try:
        import h5py
    except ImportError:
        raise WeightsError(f"{path} is a Keras HDF5 file: reading it needs h5py "
                           "(pip install \"sotazoo[keras]\")") from None  # fmt: skip
    out = {}
    try:
        with h5py.File(path, "r") as f:
            root = f.get("model_weights", f)  # a whole-model save keeps them in a group
            if "layer_names" not in root.attrs:
                raise WeightsError(f"{path}: an HDF5 file without Keras's layer_names")
            for layer in root.attrs["layer_names"]:
                layer = layer.decode() if isinstance(layer, bytes) else str(layer)
                group = root[layer]
                for wname in group.attrs.get("weight_names", []):
                    wname = wname.decode() if isinstance(wname, bytes) else str(wname)
                    short = wname.rsplit("/", 1)[-1].removesuffix(":0")
                    out[f"{layer}/{short}"] = torch.from_numpy(group[wname][()].copy())
    except OSError as e:
        raise WeightsError(f"cannot read {path} as HDF5: {e}") from None
    return out


def read_tf_slim(path: Path) -> dict[str, torch.Tensor]:
    """The float tensors of a TensorFlow checkpoint (`sotazoo.tfcheckpoint`), as torch tensors."""
    from sotazoo.tfcheckpoint import read_tf_checkpoint

    arrays = read_tf_checkpoint(path)
    return {k: torch.from_numpy(v) for k, v in arrays.items() if v.dtype.kind == "f"}


def load(path: Path, model: str, overrides: dict) -> tuple[dict, dict]:
    """The contract's reader: a Keras `.h5`, a TensorFlow checkpoint (its `.index` file, or a
    `.data-*` shard), or a torch / safetensors file; each mapped by `convert_state_dict`."""
    from sotazoo.papers._contract import default_load

    path = Path(path)
    if path.suffix in (".h5", ".hdf5"):
        sd, needed = default_load(path, convert_state_dict, read=read_keras_h5)
    elif path.suffix == ".index" or re.search(r"\.data-\d+-of-\d+$", path.name):
        sd, needed = default_load(path, convert_state_dict, read=read_tf_slim)
    else:
        sd, needed = default_load(path, convert_state_dict)
    # A file of ours is not converted, but it too says its network's size (e.g. the 1000-class
    # network converted from Keras and saved again).
    return sd, {**_config_of(sd), **needed}
