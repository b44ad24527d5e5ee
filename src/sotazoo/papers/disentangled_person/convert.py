"""The released DPIG checkpoints (TF1) mapped to our keys, read without TensorFlow.

The official release (charliememory/Disentangled-Person-Image-Generation, README "Resources":
`Market1501_models.zip`, `DF_models.zip` from homes.esat.kuleuven.be, no published hash) holds one
`tf.train.Saver` checkpoint per training run of `run_market_test.sh`: MODEL1 (stage I: scopes
`Encoder`, `ID_AE` and the DCGAN `Discriminator.*`), MODEL2 (the pose autoencoder, `PoseAE`),
MODEL3 (the fg / bg samplers: `Gaussian_FC_Fg`, `Gaussian_FC_Bg`, `Fg_FCDis_*`, `Bg_FCDis_*`, with
stage I's scopes again) and MODEL4 (`PoseGaussian`, `Pose_emb_*`, with `PoseAE` and stage I's).
Downloaded and unpacked by hand, stage I loads by path into `dpig_market`:

    sotazoo.create_model("dpig_market", weights=".../MODEL1_.../model.ckpt-0.index")

and the stage-II networks into `stage2.Stage2` with `convert_stage2` on `read_tf_checkpoint`'s
dict. There is no `weights.py` entry: the archives have no published sha256 to pin.

The names (TF-Slim numbers each scope's layers in creation order: `Conv`, `Conv_1`, ...,
`fully_connected`, `fully_connected_1`, ...; `official_names` writes them out for our modules):
- `Encoder/G_encoder`: `Conv` the stem, `Conv_1`-`Conv_2` its ResBlock, then the foreground
  stack (per stage two 3x3 convolutions and, but the last, the stride-2 one) and
  `fully_connected` (to 32 per region), then the background stack and `fully_connected_1`;
- `ID_AE/G`: `Conv` the stem, the down stack, `fully_connected` (to z) and `fully_connected_1`
  (back to the 8x4 map), then per up stage its ResBlock's two convolutions and, but the last,
  the 1x1 convolution, and the RGB convolution last;
- `Gaussian_FC_Fg/G_FC`, `Gaussian_FC_Bg/G_FC`, `PoseGaussian/G_FC`: `fully_connected` in,
  two per residual block, the last out; `PoseAE/G_Pose_Encoder` likewise; `PoseAE/G_Pose_Decoder`
  adds `fully_connected_<last>` for the 18 visibilities after the 36 coordinates;
- tflib's layers: `<P>Discriminator.Input.Linear/<P>Discriminator.Input.Linear.W` (and `.b`),
  `.0` to `.2`, `.Out`; `Discriminator.<i>/Discriminator.<i>.Filters` (`.Biases`),
  `Discriminator.BN<i>.scale` / `.offset`, `Discriminator.Output/Discriminator.Output.W` (`.b`).
Kernels [kh, kw, in, out] become (out, in, kh, kw), dense [in, out] become (out, in); the dense
layers after convolutions read NHWC-flattened features, as ours do, so they need no reordering.
Training state (`step`, `g_lr`, `d_lr`, `phase`, Adam / RMSProp slots, `beta1_power`, the
discriminator's unused moving statistics) is dropped.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from sotazoo.papers.disentangled_person.model import MARKET, DpigConfig
from sotazoo.papers.disentangled_person.stage2 import Stage2Config
from sotazoo.weights import WeightsError

ENCODER, DECODER = "Encoder/G_encoder", "ID_AE/G"
_TRAINING = re.compile(r"(/(Adam|Adam_1|RMSProp|RMSProp_1)$|^(step|g_lr|d_lr|phase|beta[12]_power"
                       r"(_\d+)?)$|\.moving_(mean|variance)$)")  # fmt: skip
_STAGE1 = re.compile(rf"^({ENCODER}|{DECODER})/")


def _slim(scope: str, kind: str, k: int) -> str:
    return f"{scope}/{kind}" + (f"_{k}" if k else "")


def _down_stack(prefix: str, repeat: int) -> list[str]:
    """Our ResidualDownStack's convolutions in creation order."""
    rows = []
    for i in range(repeat):
        rows += [f"{prefix}.stages.{i}.block.conv1", f"{prefix}.stages.{i}.block.conv2"]
        rows += [f"{prefix}.stages.{i}.down"] if i < repeat - 1 else []
    return rows


def official_names(cfg: DpigConfig = MARKET) -> list[tuple[str, str, str]]:
    """(our module, the official variable scope, "conv" or "dense") of every stage-I layer, in
    the official creation order."""
    if cfg.encoder != "body_roi":
        raise WeightsError("only the paper's encoder (encoder='body_roi') has official weights")
    r = cfg.repeat_num
    enc_convs = ["encoder.stem", "encoder.stem_block.conv1", "encoder.stem_block.conv2",
                 *_down_stack("encoder.fg", r), *_down_stack("encoder.bg", r)]  # fmt: skip
    dec_convs = ["decoder.stem", *_down_stack("decoder.down", r)]
    for i in range(r):
        dec_convs += [f"decoder.up.{i}.block.conv1", f"decoder.up.{i}.block.conv2"]
        dec_convs += [f"decoder.up.{i}.conv"] if i < r - 1 else []
    dec_convs.append("decoder.out")
    rows = []
    fg_at = 3 + len(_down_stack("", r))  # the fg dense layer comes after the fg stack
    for k, ours in enumerate(enc_convs):
        if k == fg_at:
            rows.append(("encoder.fg_fc", _slim(ENCODER, "fully_connected", 0), "dense"))
        rows.append((ours, _slim(ENCODER, "Conv", k), "conv"))
    rows.append(("encoder.bg_fc", _slim(ENCODER, "fully_connected", 1), "dense"))
    fc_at = 1 + len(_down_stack("", r))  # the bottleneck after the down stack
    for k, ours in enumerate(dec_convs):
        if k == fc_at:
            rows += [("decoder.fc_z", _slim(DECODER, "fully_connected", 0), "dense"),
                     ("decoder.fc_up", _slim(DECODER, "fully_connected", 1), "dense")]  # fmt: skip
        rows.append((ours, _slim(DECODER, "Conv", k), "conv"))
    return rows


def _torch_layout(t: torch.Tensor, kind: str) -> torch.Tensor:
    return (t.permute(3, 2, 0, 1) if kind == "conv" else t.T).contiguous()


def _tensors(state_dict: dict) -> dict[str, torch.Tensor]:
    return {k.removesuffix(":0"): torch.as_tensor(np.asarray(v)) for k, v in state_dict.items()}


def detect_layout(keys: set[str]) -> str:
    if f"{ENCODER}/Conv/weights" in keys and f"{DECODER}/Conv/weights" in keys:
        return "official"
    if "encoder.stem.weight" in keys and "decoder.stem.weight" in keys:
        return "sotazoo"
    raise WeightsError(
        "unrecognised DPIG stage-I checkpoint: expected the official TF names "
        f"({ENCODER}/Conv/weights, ..., {DECODER}/Conv_29/biases: MODEL1, MODEL3 or MODEL4 of "
        "Market1501_models.zip) or ours (encoder.stem.weight, decoder.stem.weight, ...); the "
        f"file's first keys are {sorted(keys)[:4]}"
    )


def infer_config(tf: dict[str, torch.Tensor]) -> dict:
    """The `DpigConfig` overrides the stage-I tensors' shapes fix: width, stages, code sizes,
    bottleneck, keypoints. The image and crop sizes only show as products in the dense layers'
    inputs; they stay the builder's (Market-1501's 128x64 and 48), and a mismatch fails the
    strict load, naming the layer."""
    n = int(tf[f"{ENCODER}/Conv/weights"].shape[3])
    convs = sum(bool(re.fullmatch(rf"{ENCODER}/Conv(_\d+)?/weights", k)) for k in tf)
    repeat = (convs - 1) // 6  # the stem, its ResBlock, 2 stacks of 3 r - 1 convolutions
    part = int(tf[f"{ENCODER}/fully_connected/weights"].shape[1])
    bg = int(tf[f"{ENCODER}/fully_connected_1/weights"].shape[1])
    z = int(tf[f"{DECODER}/fully_connected/weights"].shape[1])
    stem_in = int(tf[f"{DECODER}/Conv/weights"].shape[2])
    in_chans = int(tf[f"{ENCODER}/Conv/weights"].shape[2])
    num_parts = MARKET.num_parts
    return {"hidden_num": n, "repeat_num": repeat, "part_dim": part, "bg_dim": bg, "z_dim": z,
            "in_chans": in_chans, "num_keypoints": stem_in - num_parts * part - bg}  # fmt: skip


def convert_state_dict(state_dict: dict) -> tuple[dict, dict, str]:
    """(our stage-I state dict, the config overrides its shapes imply, the layout's name). Other
    scopes of the official checkpoints (discriminator, stage II) are left out; an unknown
    variable inside Encoder/ or ID_AE/ is an error."""
    layout = detect_layout({k.removesuffix(":0") for k in state_dict})
    if layout == "sotazoo":
        return dict(state_dict), {}, layout
    tf = {k: v for k, v in _tensors(state_dict).items()
          if _STAGE1.match(k) and not _TRAINING.search(k)}  # fmt: skip
    overrides = infer_config(tf)
    cfg = DpigConfig(**{**_defaults(), **overrides})
    out: dict[str, torch.Tensor] = {}
    for ours, scope, kind in official_names(cfg):
        for name, tf_name in (("weight", "weights"), ("bias", "biases")):
            key = f"{scope}/{tf_name}"
            if key not in tf:
                raise WeightsError(f"DPIG checkpoint: missing variable {key!r} (for {ours})")
            t = tf.pop(key)
            out[f"{ours}.{name}"] = _torch_layout(t, kind) if name == "weight" else t
    if tf:
        raise WeightsError(f"DPIG checkpoint: {len(tf)} unexpected stage-I variables, e.g. "
                           f"{sorted(tf)[:3]}")  # fmt: skip
    return out, overrides, layout


def _defaults() -> dict:
    from dataclasses import asdict

    return asdict(MARKET)


def load(path: Path, model: str, overrides: dict) -> tuple[dict, dict]:
    """The contract's reader: a TensorFlow checkpoint (its `.index`, a `.data-*` shard or the
    prefix), or a torch / safetensors file; each mapped by `convert_state_dict`."""
    from sotazoo.papers._contract import tf_aware_load

    return tf_aware_load(path, convert_state_dict)


# ---------------------------------------------------------------- stage II


def _mlp(ours: str, scope: str, blocks: int, outputs: tuple[str, ...]) -> list[tuple[str, str]]:
    """A `stage2.ResidualMLP` (fc_in, blocks x 2) and its output layers, as slim numbers them."""
    layers = [f"{ours}.fc_in"] + [f"{ours}.blocks.{b}.{j}" for b in range(blocks) for j in (0, 1)]
    layers += list(outputs)
    return [(m, _slim(scope, "fully_connected", k)) for k, m in enumerate(layers)]


def stage2_names(s2: Stage2Config | None = None) -> list[tuple[str, str, str]]:
    """(our `stage2.Stage2` module, the official name prefix, kind) of every stage-II layer and
    of the DCGAN discriminator; kind "dense" (slim: `/weights`, `/biases`), "tflib" (`.W`,
    `.b`), "tflib_conv" (`.Filters`, `.Biases`) or "bn" (`.scale`, `.offset`)."""
    s2 = s2 or Stage2Config()
    b = s2.blocks
    rows = [(m, s, "dense") for m, s in
            _mlp("pose_ae.encoder", "PoseAE/G_Pose_Encoder", b, ("pose_ae.encoder_out",))
            + _mlp("pose_ae.decoder", "PoseAE/G_Pose_Decoder", b,
                   ("pose_ae.coords", "pose_ae.visible"))
            + _mlp("fg_map.body", "Gaussian_FC_Fg/G_FC", b, ("fg_map.fc_out",))
            + _mlp("bg_map.body", "Gaussian_FC_Bg/G_FC", b, ("bg_map.fc_out",))
            + _mlp("pose_map.body", "PoseGaussian/G_FC", b, ("pose_map.fc_out",))]  # fmt: skip
    for ours, prefix in (("fg_critic", "Fg_FCDis_"), ("bg_critic", "Bg_FCDis_"),
                         ("pose_critic", "Pose_emb_")):  # fmt: skip
        names = [("fc_in", "Input.Linear")]
        names += [(f"hidden.{i}", f"{i}.Linear") for i in range(s2.critic_layers)]
        names += [("fc_out", "Out")]
        for m, t in names:
            n = f"{prefix}Discriminator.{t}"
            rows.append((f"{ours}.{m}", f"{n}/{n}", "tflib"))
    for i in range(4):
        n = f"Discriminator.{i + 1}"
        rows.append((f"discriminator.convs.{i}", f"{n}/{n}", "tflib_conv"))
    rows += [(f"discriminator.norms.{i - 2}", f"Discriminator.BN{i}", "bn") for i in (2, 3, 4)]
    rows.append(("discriminator.fc", "Discriminator.Output/Discriminator.Output", "tflib"))
    return rows


def convert_stage2(state_dict: dict, s2: Stage2Config | None = None) -> dict[str, torch.Tensor]:
    """The stage-II variables (and the discriminator's) of one or more official checkpoints,
    merged into one dict, -> a `stage2.Stage2` state dict. Scopes a checkpoint lacks are left
    out (MODEL3 has no pose networks): load with `strict=False` and check what is missing."""
    tf = {k: v for k, v in _tensors(state_dict).items() if not _TRAINING.search(k)}
    suffix = {"dense": ("/weights", "/biases"), "tflib": (".W", ".b"),
              "tflib_conv": (".Filters", ".Biases"), "bn": (".scale", ".offset")}  # fmt: skip
    out: dict[str, torch.Tensor] = {}
    for ours, name, kind in stage2_names(s2):
        w_key, b_key = (name + s for s in suffix[kind])
        if w_key not in tf:
            continue
        w = tf[w_key]
        out[f"{ours}.weight"] = (w if kind == "bn" else _torch_layout(w, "conv" if w.ndim == 4
                                                                       else "dense"))  # fmt: skip
        if b_key not in tf:
            raise WeightsError(f"DPIG checkpoint: {w_key!r} without {b_key!r}")
        out[f"{ours}.bias"] = tf[b_key]
    if not out:
        raise WeightsError("no stage-II variable of the official names in this checkpoint")
    return out
