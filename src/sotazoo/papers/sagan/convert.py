"""Checkpoint layouts for SAGAN, recognised by their keys and mapped onto ours.

- `sotazoo`: our own files (`sagan_128`, `sagan_mini`, their discriminators, as `state_dict()`
  writes them: `linear.*`, `blocks.<i>.*`, spectral norm as torch's parametrization keys).
  Passed through unchanged, with no config overrides.
- `mmagic_generator_ema`, `mmagic_generator`, `mmagic_discriminator`: open-mmlab/mmagic's SAGAN
  (`SNGANGenerator` registered as `SAGANGenerator`, `ProjDiscriminator`; read at 0a560bba).
  A training checkpoint holds the whole GAN, `{"state_dict": {"generator.*", "discriminator.*",
  and with EMA "generator_ema.module.*" + "generator_ema.steps" (mmengine's averaged model;
  mmgen-era files of 2021 store it as "generator_ema.*")}, "meta": ...}`;
  `sotazoo.weights.read_state_dict` unwraps `state_dict`. Only one network is returned: by
  default the EMA generator where the file has one (mmagic's metrics sample it:
  `sample_model='ema'`), else the generator, else the discriminator; `part=` picks another.
  Files that hold one bare network (`noise2feat.*` or `from_rgb.*` at the top) work too.

mmagic's keys: `noise2feat` (our `linear`), `conv_blocks.<j>` (the residual blocks and the
attention block in one list, so its index counts the attention block too), `conv_1.conv`,
`conv_2.conv`, `shortcut.conv`, `norm_{1,2}.norm` (BN without affine) with
`norm_{1,2}.{weight,bias}_embedding` (our `cbn{1,2}.{gamma,beta}`), `to_rgb.{bn,conv}` (our
`bn`, `conv_out`); D: `from_rgb` (our `blocks.0`), `decision` (`linear`), `proj_y` (`embed`).
Spectral norm is torch's old hook (`weight_orig`, `weight_u`, `weight_v`); in eval mode it
divides by σ = uᵀWv from the stored vectors with no iteration, as our `SpectralNorm` does, and
the vectors have the same shapes (W reshaped to (out, -1)), so they map one to one.

What the converter returns besides the keys (config overrides), and where it comes from:
- read off the shapes: z_dim, num_classes, image_channels, widths (`g_channels`/`g_mults`,
  `d_channels`/`d_mults`), the image size of G (4x4 doubled once per block), where the attention
  block sits (the 128x128 configs put it on the 64x64 maps of both networks,
  `attention_after_nth_block` 4 and 1; the official code and our default: 32x32), whether G's
  layers and CBN's embeddings are spectrally normalised (`g_spectral_norm`,
  `cbn_spectral_norm`; mmagic's `with_embedding_spectral_norm`, off only in its bigGAN-sch
  config);
- not stored in a file, taken from mmagic's published configs (configs/sagan/*.py):
  `cbn_gamma_offset=1.0` (CBN scales by 1 + embedding under its BigGAN and StudioGAN inits,
  which every published config uses; under init type 'SAGAN' it would be 0) and `bn_eps`:
  mmagic's default `norm_eps` 1e-4, except 1e-5 in the bigGAN-sch config, the one config
  without spectral norm on the embeddings, which is how it is recognised. For another eps,
  call `convert_state_dict` and build the model yourself;
- D's image size is not in its weights (sum pooling): the layout must end like the 128x128 one,
  a last block at the same width and without a shortcut (no down-sampling), after which the
  map is 4x4, so S = 4 * 2^(blocks - 1); only the 6-block (128x128) discriminator is accepted.

Not matched, and rejected with a `WeightsError` that names the problem: BigGAN-style
("ajbrock") spectral norm (`u0`/`sv0` buffers), several attention blocks, unconditional
networks, the 32x32 CIFAR-10 discriminator (two blocks without down-sampling; its generator
converts), hidden widths that differ from a block's output.

Channel order is not converted. mmagic treats a generator's output as BGR: its own models learn
the order its image loader reads (BGR by default), and the configs of the `*convert-studio-rgb*`
files flip StudioGAN's RGB output with `rgb_to_bgr=True`, a switch the file does not record. The
converted model outputs the order the file was trained in (read from mmagic's configs; not
checked on a downloaded file, as tests never download).
"""

from __future__ import annotations

import re

import torch

from sotazoo.weights import WeightsError

_SN_KEYS = {
    "weight_orig": "parametrizations.weight.original",
    "weight_u": "parametrizations.weight.0._u",
    "weight_v": "parametrizations.weight.0._v",
}
_G_MARK, _D_MARK = "noise2feat.bias", "from_rgb.conv_1.conv.bias"
_RES = (
    ("conv_1.conv", "conv1"),
    ("conv_2.conv", "conv2"),
    ("shortcut.conv", "shortcut"),
)  # a residual block's convs
PARTS = ("auto", "generator_ema", "generator", "discriminator")


class _Mapper:
    """Moves the tensors of one mmagic module at a time to our names; remembers what it used."""

    def __init__(self, sd: dict[str, torch.Tensor]) -> None:
        self.sd, self.out, self.used = sd, {}, set()

    def module(self, src: str, dst: str) -> None:
        keys = [k for k in self.sd if k.startswith(src + ".")]
        if not keys:
            raise WeightsError(f"the mmagic SAGAN checkpoint has no '{src}.*' tensors")
        for k in keys:
            rest = k[len(src) + 1 :]
            self.out[f"{dst}.{_SN_KEYS.get(rest, rest)}"] = self.sd[k]
            self.used.add(k)

    def tensor(self, src: str, dst: str) -> None:
        self.out[dst] = self.sd[src]
        self.used.add(src)

    def done(self) -> dict[str, torch.Tensor]:
        left = sorted(set(self.sd) - self.used)
        if left:
            raise WeightsError(
                f"{len(left)} tensors of the mmagic SAGAN checkpoint fit no layer of ours, "
                f"e.g. {left[:5]}"
            )
        return self.out


def _weight(sd: dict[str, torch.Tensor], module: str) -> torch.Tensor:
    for suffix in ("weight_orig", "weight"):
        if f"{module}.{suffix}" in sd:
            return sd[f"{module}.{suffix}"]
    raise WeightsError(f"the mmagic SAGAN checkpoint has no weight for '{module}'")


def _blocks(sd: dict[str, torch.Tensor]) -> list[tuple[int, str]]:
    """`conv_blocks.<j>` in order, each 'res' (a residual block) or 'attn' (self-attention)."""
    found = sorted({int(m.group(1)) for k in sd if (m := re.match(r"conv_blocks\.(\d+)\.", k))})
    if found != list(range(len(found))):
        raise WeightsError(f"the conv_blocks of this mmagic checkpoint are numbered {found}")
    kinds = []
    for j in found:
        if any(k.startswith(f"conv_blocks.{j}.theta.") for k in sd):
            kinds.append((j, "attn"))
        elif any(k.startswith(f"conv_blocks.{j}.conv_1.") for k in sd):
            kinds.append((j, "res"))
        else:
            raise WeightsError(f"conv_blocks.{j} is neither a residual nor an attention block")
    if sum(kind == "attn" for _, kind in kinds) > 1:
        raise WeightsError("this mmagic checkpoint has several attention blocks; ours has one")
    return kinds


def _res_width(sd: dict[str, torch.Tensor], src: str) -> int:
    hidden, out = _weight(sd, f"{src}.conv_1.conv").shape[0], _weight(sd, f"{src}.conv_2.conv")
    if out.shape[1] != hidden or out.shape[0] != hidden:
        raise WeightsError(
            f"{src} has hidden width {hidden} and output width {out.shape[0]}: ours are equal"
        )
    return hidden


def _mults(widths: list[int], base: int, what: str) -> tuple[int, ...]:
    if any(w % base for w in widths):
        raise WeightsError(f"{what} widths {widths} are not multiples of {base}")
    return tuple(w // base for w in widths)


def _attention(m: _Mapper, j: int) -> None:
    for name in ("theta", "phi", "g", "o"):
        m.module(f"conv_blocks.{j}.{name}.conv", f"attention.{name}")
    m.tensor(f"conv_blocks.{j}.gamma", "attention.gamma")


def _generator(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    if not any(".weight_embedding." in k for k in sd):
        raise WeightsError("an unconditional mmagic generator (no CBN embeddings): not SAGAN's")
    m, widths, attention_after = _Mapper(sd), [], None
    stem = _weight(sd, "noise2feat")
    if stem.shape[0] % 16:
        raise WeightsError(f"noise2feat has {stem.shape[0]} outputs: not a 4x4 map")
    widths.append(stem.shape[0] // 16)
    m.module("noise2feat", "linear")
    for j, kind in _blocks(sd):
        if kind == "attn":
            attention_after = len(widths) - 1  # the number of residual blocks before it
            _attention(m, j)
            continue
        i, src = len(widths) - 1, f"conv_blocks.{j}"
        widths.append(_res_width(sd, src))
        for a, b in _RES:
            m.module(f"{src}.{a}", f"blocks.{i}.{b}")
        for n in (1, 2):
            m.module(f"{src}.norm_{n}.norm", f"blocks.{i}.cbn{n}.bn")
            m.module(f"{src}.norm_{n}.weight_embedding", f"blocks.{i}.cbn{n}.gamma")
            m.module(f"{src}.norm_{n}.bias_embedding", f"blocks.{i}.cbn{n}.beta")
    m.module("to_rgb.bn", "bn")
    m.module("to_rgb.conv", "conv_out")
    out_conv = _weight(sd, "to_rgb.conv")
    base = out_conv.shape[1]
    cbn_sn = "conv_blocks.0.norm_1.weight_embedding.weight_orig" in sd
    overrides: dict[str, object] = {
        "image_size": 4 * 2 ** (len(widths) - 1),
        "image_channels": out_conv.shape[0],
        "z_dim": stem.shape[1],
        "num_classes": _weight(sd, "conv_blocks.0.norm_1.weight_embedding").shape[0],
        "g_channels": base,
        "g_mults": _mults(widths, base, "generator"),
        "attention": attention_after is not None,
        "g_spectral_norm": "noise2feat.weight_orig" in sd,
        "cbn_spectral_norm": cbn_sn,
        "cbn_gamma_offset": 1.0,  # mmagic's BigGAN/StudioGAN inits: gamma = 1 + embedding
        "bn_eps": 1e-4 if cbn_sn else 1e-5,  # norm_eps: its default / the bigGAN-sch config
    }
    if attention_after is not None:
        overrides["g_attention_at"] = 4 * 2**attention_after
    return m.done(), overrides


def _discriminator(
    sd: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    if not any(k.startswith("proj_y.") for k in sd):
        raise WeightsError("an unconditional mmagic discriminator (no proj_y): not SAGAN's")
    m = _Mapper(sd)
    first = _weight(sd, "from_rgb.conv_1.conv")
    widths, shortcuts, attention_after = [first.shape[0]], [True], None
    for a, b in _RES:
        m.module(f"from_rgb.{a}", f"blocks.0.{b}")
    for j, kind in _blocks(sd):
        if kind == "attn":
            attention_after = len(widths) - 1
            _attention(m, j)
            continue
        i, src = len(widths), f"conv_blocks.{j}"
        widths.append(_res_width(sd, src))
        shortcuts.append(any(k.startswith(f"{src}.shortcut.") for k in sd))
        for a, b in _RES:
            if a != "shortcut.conv" or shortcuts[-1]:
                m.module(f"{src}.{a}", f"blocks.{i}.{b}")
    n = len(widths)
    if n != 6 or not all(shortcuts[:-1]) or shortcuts[-1] or widths[-1] != widths[-2]:
        raise WeightsError(
            "this mmagic discriminator is not laid out as the 128x128 one (6 blocks, each "
            "down-sampling with a learned shortcut except the last, which keeps its width): "
            f"widths {widths}, shortcuts {shortcuts}"
        )
    m.module("decision", "linear")
    m.module("proj_y", "embed")
    size = 4 * 2 ** (n - 1)
    overrides: dict[str, object] = {
        "image_size": size,
        "image_channels": first.shape[1],
        "num_classes": _weight(sd, "proj_y").shape[0],
        "d_channels": widths[0],
        "d_mults": _mults(widths, widths[0], "discriminator"),
        "attention": attention_after is not None,
        "d_spectral_norm": "decision.weight_orig" in sd,
    }
    if attention_after is not None:
        overrides["d_attention_at"] = size // 2 ** min(attention_after + 1, n - 1)
    return m.done(), overrides


def _parts(keys: set[str]) -> dict[str, str]:
    """The networks a file holds: part name -> key prefix."""
    found = {}
    for part, prefixes in (
        ("generator_ema", ("generator_ema.module.", "generator_ema.")),
        ("generator", ("generator.", "")),
        ("discriminator", ("discriminator.", "")),
    ):
        mark = _D_MARK if part == "discriminator" else _G_MARK
        for p in prefixes:
            if p + mark in keys:
                found[part] = p
                break
    return found


def detect_layout(keys: set[str]) -> str:
    """Name the layout of a SAGAN checkpoint from its keys; `WeightsError` when none fits."""
    if "linear.bias" in keys and any(k.startswith("blocks.0.") for k in keys):
        return "sotazoo"
    parts = _parts(keys)
    if parts:
        return "mmagic_" + next(iter(parts))
    raise WeightsError(
        "unrecognised SAGAN checkpoint layout: expected ours ('linear.*' and 'blocks.<i>.*', "
        "as sagan_128 and sagan_mini save them) or mmagic's SAGAN (SNGANGenerator: "
        f"'{_G_MARK}', 'conv_blocks.*', 'to_rgb.*'; ProjDiscriminator: '{_D_MARK}', "
        "'decision.*', 'proj_y.*'; either bare or under 'generator.', 'generator_ema.' or "
        f"'discriminator.'); the file's first keys are {sorted(keys)[:8]}"
    )


def convert_state_dict(
    sd: dict[str, torch.Tensor], part: str = "auto"
) -> tuple[dict[str, torch.Tensor], dict[str, object], str]:
    """Map a checkpoint onto our keys; returns it, the config it needs, and the layout's name.

    Args:
        sd: the state dict (`read_state_dict` has removed a `state_dict` wrapper).
        part: which network of an mmagic GAN checkpoint: "auto" (the EMA generator, else the
            generator, else the discriminator), "generator_ema", "generator", "discriminator".
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    layout = detect_layout(set(sd))
    if layout == "sotazoo":
        return dict(sd), {}, layout
    if any(k.endswith((".u0", ".sv0")) for k in sd):
        raise WeightsError(
            "this mmagic checkpoint uses BigGAN-style ('ajbrock') spectral norm (u0/sv0 "
            "buffers), which is not supported: only sn_style='torch'"
        )
    parts = _parts(set(sd))
    if part == "auto":
        part = next(iter(parts))
    if part not in parts:
        raise WeightsError(
            f"this mmagic SAGAN checkpoint holds no {part}; it holds {sorted(parts)}"
        )
    prefix = parts[part]
    if prefix:
        sub = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
        sub.pop("steps", None)  # the EMA wrapper's update counter
    else:
        sub = dict(sd)
    convert = _discriminator if part == "discriminator" else _generator
    out, overrides = convert(sub)
    return out, overrides, "mmagic_" + part
