"""AttnGAN: what is checked against what.

- Parameter counts: the official numbers, obtained by instantiating taoxugit/AttnGAN's
  code/model.py classes at 0d000e652b407e976cb88fab299e8566f3de8a37 with the CUB cfg
  (bird_attn2.yml: G_NET 7,084,592; D_NET64 / 128 / 256 6,313,730 / 19,424,002 / 71,858,946;
  RNN_ENCODER(5450) 2,075,320) and the COCO cfg (coco_attn2.yml: 13,811,456; 13,304,450 /
  42,800,258 / 160,774,274; RNN_ENCODER(27297) 8,629,420), and CNN_ENCODER(256) (721,152
  trainable of 22,506,720), recorded in the fixture and the card, against a layer-by-layer count
  written here from the config alone, and both against our modules.
- Key layout: the official CUB state-dict layouts (keys and shapes, from the fixture) of G_NET,
  RNN_ENCODER, the three Ds and CNN_ENCODER (a hash of its 567 keys and shapes) equal ours.
- Oracle: fixtures/attngan_official.json holds a tiny official RNN_ENCODER, G_NET (2 stages),
  D_NET64/128/256 and CNN_ENCODER's heads (weights in float16, exactly the values the official
  modules ran with; the Inception trunk from a stated hash rule), their inputs, and the official
  outputs; its `source` says how it was made. Our modules load those weights under the official
  keys and agree within 1e-5 (measured 0 to 1.3e-7, see `test_oracle_*`), also end to end from
  the token ids through `AttnGAN.generate` on captions padded one step longer than the official
  batch. G runs with the official mask layout ("official_repeat", issue #93); our default
  per-caption mask differs from it on a batch of unequal captions and equals it at batch 1.
- The LSTM on fixed-length padded captions equals torch's nn.LSTM run on pack_padded_sequence,
  in float64 to 1e-12, for unsorted lengths from 1 to T.
- The word attention ignores padded words: changing their features changes nothing, their
  weights are exactly 0, and every pixel's weights sum to 1; tokens after a caption's first 0
  change nothing either.
- Bad inputs: wrong shapes, dtypes, NaN, empty captions, mask / words mismatch, wrong image
  sizes, bad configs: `InputError`.
"""

import hashlib
import json
import math
import zlib
from pathlib import Path

import pytest
import torch
from torch import nn

from sotazoo.bench import count_params
from sotazoo.cards import load_card
from sotazoo.errors import InputError, WeightsError
from sotazoo.papers.attngan.model import (
    COCO,
    CUB,
    MINI,
    AttnGAN,
    AttnGANConfig,
    Discriminator,
    GNet,
    ImageEncoder,
    TextEncoder,
    attngan_coco,
    attngan_cub,
    attngan_discriminators_coco,
    attngan_discriminators_cub,
    attngan_discriminators_mini,
    attngan_mini,
    caption_lengths,
    damsm_image_encoder,
    damsm_text_encoder_coco,
    damsm_text_encoder_cub,
)

from .oracle import fixture_tensor, fixture_weights, within

FIXTURE = Path(__file__).parent / "fixtures" / "attngan_official.json"
# Counted by instantiating the official classes (module docstring); also in the fixture.
OFFICIAL = {
    "cub": {"netG": 7_084_592, "netD64": 6_313_730, "netD128": 19_424_002,
            "netD256": 71_858_946, "text_encoder": 2_075_320},
    "coco": {"netG": 13_811_456, "netD64": 13_304_450, "netD128": 42_800_258,
             "netD256": 160_774_274, "text_encoder": 8_629_420},
}  # fmt: skip
OFFICIAL_IMAGE_ENCODER = {"trainable": 721_152, "all": 22_506_720}


@pytest.fixture(scope="module")
def fx() -> dict:
    return json.loads(FIXTURE.read_text())


# ---------------------------------------------------------------------- parameter counts


def _conv(c_in: int, c_out: int, k: int, bias: bool = False) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


def _bn(c: int) -> int:
    return 2 * c  # weight and bias; the running statistics are buffers


def _up(c_in: int, c_out: int) -> int:
    """nearest x2, conv3x3 to 2 c_out (GLU halves it), BN."""
    return _conv(c_in, 2 * c_out, 3) + _bn(2 * c_out)


def _generator(cfg: AttnGANConfig) -> int:
    """CA fc (D -> 4 c_dim, bias), the first stage (fc without bias to 16 ngf * 4 * 4 * 2, BN1d,
    up-blocks halving from 16 ngf), each later stage (1x1 word projection D -> ngf, r_num GLU
    residual blocks at 2 ngf, an up-block 2 ngf -> ngf) and an RGB conv per stage."""
    ngf, nef, z, c = cfg.gf_dim, cfg.embedding_dim, cfg.z_dim, cfg.condition_dim
    n_up = int(math.log2(cfg.base_size // 4))
    top = ngf * 2**n_up
    ca = nef * 4 * c + 4 * c
    init = (z + c) * top * 16 * 2 + _bn(top * 16 * 2)
    init += sum(_up(top // 2**k, top // 2 ** (k + 1)) for k in range(n_up))
    res = _conv(2 * ngf, 4 * ngf, 3) + _bn(4 * ngf) + _conv(2 * ngf, 2 * ngf, 3) + _bn(2 * ngf)
    nxt = _conv(nef, ngf, 1) + cfg.r_num * res + _up(2 * ngf, ngf)
    return ca + init + (cfg.branch_num - 1) * nxt + cfg.branch_num * _conv(ngf, 3, 3)


def _text_encoder(cfg: AttnGANConfig) -> int:
    """Embedding, then per direction W_ih (4H x E), W_hh (4H x H), b_ih and b_hh (4H each)."""
    h, e = cfg.embedding_dim // 2, cfg.word_dim
    return cfg.n_words * e + 2 * (4 * h * (e + h) + 2 * 4 * h)


def _discriminator(ndf: int, nef: int, size: int) -> int:
    """The 16x encoder (4x4 stride-2 convs 3 -> ndf -> ... -> 8 ndf, BN after all but the first),
    the extra blocks of the 128 / 256 px Ds, and two heads: 4x4 stride-4 conv 8 ndf -> 1 with bias,
    the conditional one after a 3x3 block from 8 ndf + D."""
    n = _conv(3, ndf, 4) + sum(_conv(ndf * 2**k, ndf * 2 ** (k + 1), 4) + _bn(ndf * 2 ** (k + 1))
                               for k in range(3))  # fmt: skip
    if size >= 128:
        n += _conv(8 * ndf, 16 * ndf, 4) + _bn(16 * ndf)
    if size == 128:
        n += _conv(16 * ndf, 8 * ndf, 3) + _bn(8 * ndf)
    if size == 256:
        n += _conv(16 * ndf, 32 * ndf, 4) + _bn(32 * ndf)
        n += (
            _conv(32 * ndf, 16 * ndf, 3)
            + _bn(16 * ndf)
            + _conv(16 * ndf, 8 * ndf, 3)
            + _bn(8 * ndf)
        )
    logits = _conv(8 * ndf, 1, 4, bias=True)
    return n + 2 * logits + _conv(8 * ndf + nef, 8 * ndf, 3) + _bn(8 * ndf)


def test_parameter_counts_by_hand_and_official(fx):
    # the CUB text encoder, spelled out: 5450 x 300 embedding, 2 x (512 x 300 + 512 x 128 + 1024)
    assert _text_encoder(CUB) == 5450 * 300 + 2 * (512 * 300 + 512 * 128 + 1024) == 2_075_320
    # CUB's first stage: fc 200 -> 512 * 16 * 2 without bias, BN1d, up-blocks 512 -> 32 channels
    assert _generator(CUB) - _generator(AttnGANConfig(branch_num=1)) == 2 * (
        256 * 32 + 2 * (_conv(64, 128, 3) + _bn(128) + _conv(64, 64, 3) + _bn(64))
        + _up(64, 32) + _conv(32, 3, 3)
    )  # fmt: skip
    for name, cfg in (("cub", CUB), ("coco", COCO)):
        want = OFFICIAL[name]
        assert _generator(cfg) == want["netG"], name
        assert _text_encoder(cfg) == want["text_encoder"], name
        for size in (64, 128, 256):
            assert _discriminator(cfg.df_dim, 256, size) == want[f"netD{size}"], (name, size)
        assert fx[name]["params"] == want
    assert OFFICIAL_IMAGE_ENCODER["trainable"] == 768 * 256 + 2048 * 256 + 256
    assert fx["image_encoder_params"] == OFFICIAL_IMAGE_ENCODER
    card = {m.name: m for m in load_card("attngan").models}
    for name in ("cub", "coco"):
        assert (
            card[f"attngan_{name}"].params
            == OFFICIAL[name]["netG"] + OFFICIAL[name]["text_encoder"]
        )


def test_our_modules_have_the_counted_parameters():
    for name, cfg, build, build_d, build_t in (
        ("cub", CUB, attngan_cub, attngan_discriminators_cub, damsm_text_encoder_cub),
        ("coco", COCO, attngan_coco, attngan_discriminators_coco, damsm_text_encoder_coco),
    ):
        with torch.device("meta"):
            model, ds, text = build(), build_d(), build_t()
        assert count_params(model.netG) == OFFICIAL[name]["netG"]
        assert count_params(text) == count_params(model.text_encoder) == _text_encoder(cfg)
        assert [count_params(d) for d in ds] == [OFFICIAL[name][f"netD{s}"] for s in (64, 128, 256)]
    with torch.device("meta"):
        image = damsm_image_encoder()
        mini, mini_ds = attngan_mini(), attngan_discriminators_mini()
    assert count_params(image) == OFFICIAL_IMAGE_ENCODER["all"]
    assert sum(p.numel() for p in image.parameters() if p.requires_grad) == 721_152
    assert count_params(mini) == _generator(MINI) + _text_encoder(MINI)
    # the 32 px D (ours): the 16x encoder less its first conv, the next one (3 -> 2 ndf) unnormalised
    d32 = (
        _discriminator(16, 64, 64) - _conv(3, 16, 4) - _conv(16, 32, 4) - _bn(32) + _conv(3, 32, 4)
    )
    assert [count_params(d) for d in mini_ds] == [d32, _discriminator(16, 64, 64)]


# ---------------------------------------------------------------------- the official layout


def _layout(module: nn.Module) -> dict:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def test_official_layouts(fx):
    cub = fx["cub"]
    with torch.device("meta"):
        model, ds, image = attngan_cub(), attngan_discriminators_cub(), damsm_image_encoder()
    assert _layout(model.netG) == cub["netG_layout"]
    assert _layout(model.text_encoder) == cub["text_encoder_layout"]
    assert [_layout(d) for d in ds] == cub["discriminator_layouts"]
    lines = "\n".join(f"{k}:{list(v.shape)}" for k, v in image.state_dict().items())
    assert len(image.state_dict()) == cub["image_encoder_keys"]
    assert hashlib.sha256(lines.encode()).hexdigest() == cub["image_encoder_layout_sha256"]
    # a released G_NET file (PyTorch 0.3: no num_batches_tracked) loads strictly
    ckpt = {k: torch.empty(s, device="meta") for k, s in cub["netG_layout"].items()
            if not k.endswith("num_batches_tracked")}  # fmt: skip
    model.netG.load_state_dict(ckpt, strict=True, assign=True)


def test_load_inception_reads_torchvision_weights():
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    tv = inception_v3(weights=None, aux_logits=True, init_weights=False)  # the ImageNet file's keys
    enc = damsm_image_encoder(embedding_dim=4)
    enc.load_inception(tv.state_dict())
    ours = enc.state_dict()
    for k, v in tv.state_dict().items():
        if not k.startswith(("AuxLogits.", "fc.")):
            assert torch.equal(ours[k], v), k
    with pytest.raises(WeightsError, match="not an Inception-v3 state dict"):
        enc.load_inception({"fc.weight": torch.zeros(1000, 2048)})


# ---------------------------------------------------------------------- the oracle


def _oracle_cfg(fx: dict, **extra) -> AttnGANConfig:
    c = fx["config"]
    return AttnGANConfig(n_words=c["n_words"], word_dim=c["word_dim"],
                         embedding_dim=c["embedding_dim"], branch_num=c["branch_num"],
                         gf_dim=c["gf_dim"], df_dim=c["df_dim"], z_dim=c["z_dim"],
                         condition_dim=c["condition_dim"], r_num=c["r_num"], **extra)  # fmt: skip


def _oracle_model(fx: dict, attention_mask: str = "official_repeat") -> AttnGAN:
    model = AttnGAN(_oracle_cfg(fx, attention_mask=attention_mask))
    model.text_encoder.load_state_dict(fixture_weights(fx["text_encoder"]), strict=True)
    model.netG.load_state_dict(fixture_weights(fx["generator"]), strict=True)
    return model.eval()


def _moments(t: torch.Tensor) -> tuple[float, float, float]:
    x = t.double().flatten()
    ramp = (torch.arange(x.numel(), dtype=torch.float64) % 7) - 3
    return float(x.sum()), float((x * x).sum()), float((x * ramp).sum())


def _check_image(got: torch.Tensor, fx: dict, name: str, step: int) -> None:
    """The stored subgrid (every `step`-th pixel) to 1e-5, and the whole tensor's moments to 1e-5
    of its L1 mass (each a sum of ~10^5 terms that differ by ~1e-7)."""
    want = fx["outputs"][name]
    sub = fixture_tensor(fx["outputs"][f"{name}_sub{step}"])
    assert list(got.shape) == want["shape"]
    within((got[:, :, ::step, ::step] - sub).abs().max(), 1e-5, f"official G_NET {name}")
    mass = float(got.double().abs().sum())
    for g, w in zip(_moments(got), (want["sum"], want["sum_sq"], want["ramp_sum"]), strict=True):
        within(abs(g - w) / mass, 1e-5, f"official G_NET {name} moments (relative to L1)")


def test_oracle_text_encoder(fx):
    """Our fixed-T encoder against RNN_ENCODER on pack_padded_sequence: the official words stop
    at the batch's longest caption (5 of T = 6); ours are 0 past each caption's length. Bound
    1e-5, the usual float32 bound: our cell adds x W_ih + b and h W_hh in another order than
    torch's fused LSTM over 5 steps (measured 1.5e-8)."""
    model = _oracle_model(fx)
    captions = torch.tensor(fx["inputs"]["captions"])
    lengths = torch.tensor(fx["inputs"]["lengths"])
    assert torch.equal(caption_lengths(captions), lengths)
    with torch.no_grad():
        words, sentence = model.text_encoder(captions, lengths)
    want = fixture_tensor(fx["outputs"]["words"])
    t = want.shape[2]
    assert words.shape == (3, 8, 6) and t == 5
    within((words[:, :, :t] - want).abs().max(), 1e-5, "official RNN_ENCODER words")
    assert torch.all(words[:, :, t:] == 0)
    within((sentence - fixture_tensor(fx["outputs"]["sentence"])).abs().max(), 1e-5,
           "official RNN_ENCODER sentence")  # fmt: skip


def test_oracle_generator(fx):
    """G_NET with the official words (T = 5) and mask (captions == 0), and then end to end from the
    token ids (T = 6, our encoder): images, attention, mu, logvar, with the official mask layout
    (`attention_mask="official_repeat"`). Bound 1e-5: float32 rounding in another summation order
    (bmm shapes, the text encoder's cell) through up to 13 convs (measured 1.3e-7 on the 128 px
    image, 0 on the 64 px one, moments 1e-9 of the L1 mass)."""
    model = _oracle_model(fx)
    inputs, out = fx["inputs"], fx["outputs"]
    noise, eps = fixture_tensor(inputs["noise"]), fixture_tensor(inputs["eps"])
    words, sentence = fixture_tensor(out["words"]), fixture_tensor(out["sentence"])
    captions = torch.tensor(inputs["captions"])
    pad = (captions == 0)[:, : words.shape[2]]
    with torch.no_grad():
        runs = {
            "official words": model.netG(noise, sentence, words, pad, eps),
            "token ids": model.generate(noise, captions, eps),
        }
        final = model(noise, captions, eps)
    for how, (images, attns, mu, logvar) in runs.items():
        within((mu - fixture_tensor(out["mu"])).abs().max(), 1e-5, f"official G_NET mu ({how})")
        within((logvar - fixture_tensor(out["logvar"])).abs().max(), 1e-5, f"G_NET logvar ({how})")
        _check_image(images[0], fx, "image64", 4)
        _check_image(images[1], fx, "image128", 8)
        (attn,) = attns
        _check_image(attn[:, :5], fx, "attention", 4)
        if how == "token ids":  # the padded 6th step gets no weight
            assert attn.shape[1] == 6 and torch.all(attn[:, 5] == 0)
    torch.testing.assert_close(final, runs["token ids"][0][-1], rtol=0, atol=0)


def test_official_mask_layout_quirk(fx):
    """The official attention pairs pixel j of caption b with caption (b H W + j) mod B's padding
    (issue #93): our per-caption mask differs from it on a batch of captions of different lengths
    (lengths 5, 3, 2 here), and equals it caption by caption (batch 1)."""
    official, ours = _oracle_model(fx), _oracle_model(fx, "per_caption")
    noise, eps = fixture_tensor(fx["inputs"]["noise"]), fixture_tensor(fx["inputs"]["eps"])
    captions = torch.tensor(fx["inputs"]["captions"])
    with torch.no_grad():
        batch = [m.generate(noise, captions, eps)[0][1] for m in (official, ours)]
        singles = [torch.cat([m.generate(noise[i : i + 1], captions[i : i + 1], eps[i : i + 1])[0][1]
                              for i in range(3)]) for m in (official, ours)]  # fmt: skip
    assert (batch[0] - batch[1]).abs().max() > 1e-3
    torch.testing.assert_close(singles[0], singles[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(singles[1], batch[1], rtol=0, atol=1e-6)  # ours: batch-independent


def test_oracle_discriminators(fx):
    """D_NET64 / 128 / 256 on the stored image upsampled (nearest) to their sizes, with the first
    two sentences. Bound 1e-5, the usual float32 bound (the same torch ops in the same order:
    measured 0)."""
    cfg = _oracle_cfg(fx)
    image = fixture_tensor(fx["inputs"]["d_image"])
    sentence = fixture_tensor(fx["outputs"]["sentence"])[:2]
    for k, size in enumerate((64, 128, 256)):
        d = Discriminator(cfg.df_dim, cfg.embedding_dim, size)
        d.load_state_dict(fixture_weights(fx["discriminators"][k]), strict=True)
        x = nn.functional.interpolate(image, scale_factor=2 ** (k + 1), mode="nearest")
        with torch.no_grad():
            cond, uncond = d.eval()(x, sentence)
        want = fx["outputs"]["discriminators"][k]
        assert cond.shape == uncond.shape == (2,)
        within((cond - fixture_tensor(want["cond"])).abs().max(), 1e-5, f"official D_NET{size} cond")
        within((uncond - fixture_tensor(want["uncond"])).abs().max(), 1e-5, f"D_NET{size} uncond")


def _hashed(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The fixture's `trunk_rule`: uniform [0, 1) from an integer hash of (name, index)."""
    k = torch.arange(math.prod(shape), dtype=torch.int64) + zlib.crc32(name.encode())
    x = (k * 2654435761) % 2**32
    x = ((x ^ (x >> 16)) * 0x45D9F3B) % 2**32
    x = x ^ (x >> 16)
    return (x.double() / 2**32).reshape(shape)


def _trunk_weights(encoder: ImageEncoder) -> dict[str, torch.Tensor]:
    out = {}
    for name, t in encoder.state_dict().items():
        if name.startswith("emb_") or not t.is_floating_point():
            continue
        u = _hashed(name, tuple(t.shape))
        if name.endswith("running_var"):
            v = 1 + 0.5 * u
        elif name.endswith(("running_mean", "bias")):
            v = 0.2 * u - 0.1
        elif t.ndim == 1:
            v = 0.8 + 0.4 * u
        else:
            v = (2 * u - 1) * (6 / math.prod(t.shape[1:])) ** 0.5
        out[name] = v.float().half().float()
    return out


def test_oracle_image_encoder(fx):
    """CNN_ENCODER(2) with the hashed trunk and the official heads, on a 32 px image it resizes to
    299. Bound 1e-5, the usual float32 bound (the trunk is torchvision's, called in the official
    order: measured 0)."""
    enc = damsm_image_encoder(embedding_dim=2)
    enc.load_state_dict({**_trunk_weights(enc), **fixture_weights(fx["image_encoder_heads"])},
                        strict=False)  # fmt: skip
    with torch.no_grad():
        regions, code = enc.eval()(fixture_tensor(fx["inputs"]["ie_image"]))
    within((regions - fixture_tensor(fx["outputs"]["regions"])).abs().max(), 1e-5, "CNN_ENCODER regions")
    within((code - fixture_tensor(fx["outputs"]["code"])).abs().max(), 1e-5, "CNN_ENCODER code")


# ---------------------------------------------------------------------- the LSTM and the mask


def test_masked_lstm_equals_packed_sequence():
    """Random weights, unsorted lengths 1..T, float64: torch's nn.LSTM on pack_padded_sequence,
    its outputs padded back to T with zeros and [h_n forward, h_n backward] as the sentence."""
    torch.manual_seed(0)
    cfg = AttnGANConfig(n_words=30, word_dim=5, embedding_dim=6)
    enc = TextEncoder(cfg).double().eval()
    t = 7
    lengths = torch.tensor([3, 7, 1, 5, 7, 2])
    captions = torch.randint(1, 30, (6, t)) * (torch.arange(t)[None] < lengths[:, None])
    ref = nn.LSTM(5, 3, 1, batch_first=True, bidirectional=True).double()
    ref.load_state_dict(enc.rnn.state_dict())
    with torch.no_grad():
        words, sentence = enc(captions, lengths)
        packed = nn.utils.rnn.pack_padded_sequence(enc.encoder(captions), lengths,
                                                   batch_first=True, enforce_sorted=False)  # fmt: skip
        out, (h_n, _) = ref(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=t)
    torch.testing.assert_close(words, out.transpose(1, 2), rtol=0, atol=1e-12)
    torch.testing.assert_close(sentence, h_n.transpose(0, 1).reshape(6, 6), rtol=0, atol=1e-12)


def test_attention_ignores_padded_words():
    torch.manual_seed(0)
    g = GNet(AttnGANConfig(embedding_dim=8, gf_dim=2, z_dim=4, condition_dim=3, r_num=1)).eval()
    b, t = 2, 6
    noise, sentence, eps = torch.randn(b, 4), torch.randn(b, 8), torch.randn(b, 3)
    words = torch.randn(b, 8, t)
    pad = torch.arange(t)[None] >= torch.tensor([4, 2])[:, None]
    other = words.clone()
    other[pad.unsqueeze(1).expand_as(words)] = 1e3 * torch.randn(int(pad.sum()) * 8)
    with torch.no_grad():
        a, atts_a, *_ = g(noise, sentence, words, pad, eps)
        b_, atts_b, *_ = g(noise, sentence, other, pad, eps)
    for x, y in zip([*a, *atts_a], [*b_, *atts_b], strict=True):
        assert torch.equal(x, y)
    for attn in atts_a:
        assert torch.all(attn[pad[:, :, None, None].expand_as(attn)] == 0)
        torch.testing.assert_close(attn.sum(1), torch.ones_like(attn[:, 0]))
    # the registered model: tokens after a caption's first 0 are not read
    model = attngan_mini(gf_dim=2, word_dim=4, embedding_dim=4).eval()
    caps = torch.tensor([[5, 6, 7, 0, 0, 0], [8, 9, 0, 0, 0, 0]])
    noisy = caps.clone()
    noisy[0, 4:], noisy[1, 3] = torch.tensor([11, 12]), 13
    z, e = torch.randn(2, 32), torch.randn(2, 32)
    with torch.no_grad():
        assert torch.equal(model(z, caps, e), model(z, noisy, e))


# ---------------------------------------------------------------------- shapes and behaviour


def test_shapes_of_every_stage():
    torch.manual_seed(0)
    model = attngan_cub(word_dim=8, embedding_dim=8, gf_dim=2, r_num=1).eval()
    caps = torch.tensor([[4, 5, 6, 0], [7, 8, 9, 10]])
    z, e = torch.randn(2, 100), torch.randn(2, 100)
    with torch.no_grad():
        images, attns, mu, logvar = model.generate(z, caps, e)
        final = model(z, caps, e)
    assert [tuple(x.shape) for x in images] == [(2, 3, 64, 64), (2, 3, 128, 128), (2, 3, 256, 256)]
    assert [tuple(a.shape) for a in attns] == [(2, 4, 64, 64), (2, 4, 128, 128)]
    assert mu.shape == logvar.shape == (2, 100)
    assert torch.equal(final, images[-1]) and final.abs().max() <= 1
    ds = attngan_discriminators_cub(df_dim=2, embedding_dim=8)
    sentence = torch.randn(2, 8)
    with torch.no_grad():
        outs = [d.eval()(x, sentence) for d, x in zip(ds, images, strict=True)]
        code = ds[2].features(images[2])
    assert all(c.shape == u.shape == (2,) and (c >= 0).all() and (c <= 1).all() for c, u in outs)
    assert code.shape == (2, 16, 4, 4)
    mini = attngan_mini(gf_dim=4).eval()
    with torch.no_grad():
        images, attns, *_ = mini.generate(torch.randn(2, 32), caps)  # eps drawn: N(0, I)
    assert [tuple(x.shape) for x in images] == [(2, 3, 32, 32), (2, 3, 64, 64)]
    assert [tuple(a.shape) for a in attns] == [(2, 4, 32, 32)]
    mds = attngan_discriminators_mini(df_dim=2)
    assert [d(x, torch.randn(2, 64))[0].shape for d, x in zip(mds, images, strict=True)] == [
        (2,)
    ] * 2
    enc = damsm_image_encoder().eval()
    with torch.no_grad():
        regions, code = enc(torch.rand(1, 3, 64, 64) * 2 - 1)
    assert regions.shape == (1, 256, 17, 17) and code.shape == (1, 256)


def test_eps_and_generator_make_the_forward_deterministic():
    model = attngan_mini(gf_dim=2).eval()
    caps, z = torch.tensor([[4, 5, 0]]), torch.randn(1, 32)
    with torch.no_grad():
        a = model(z, caps, generator=torch.Generator().manual_seed(3))
        b = model(z, caps, generator=torch.Generator().manual_seed(3))
        c = model(z, caps, generator=torch.Generator().manual_seed(4))
        mean = model(z, caps, torch.zeros(1, 32))  # eps = 0: c = mu
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, mean)
    model.train()
    assert not model.text_encoder.training  # the frozen encoder stays in eval mode
    assert not any(p.requires_grad for p in model.text_encoder.parameters())


# ---------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def mini() -> AttnGAN:
    return attngan_mini(gf_dim=2, word_dim=4, embedding_dim=4).eval()


def test_bad_inputs(mini):
    z, caps, eps = torch.randn(2, 32), torch.tensor([[4, 5, 0], [6, 0, 0]]), torch.randn(2, 32)
    bad = [
        ((torch.randn(2, 31), caps, eps), r"noise must have shape \(B, 32\), got \(2, 31\)"),
        ((torch.randn(3, 32), caps, eps), r"noise has 3 rows for 2 captions"),
        ((torch.randn(32, 1, 1), caps, eps), r"noise must have shape \(B, 32\)"),
        ((z.double(), caps, eps), r"noise: expected torch.float32"),
        ((z.index_fill(1, torch.tensor([0]), math.nan), caps, eps), r"noise holds 2 NaN"),
        ((z, caps.float(), eps), r"captions must hold integer token ids"),
        ((z, caps[0], eps), r"captions must have shape \(B, T\), got \(3,\)"),
        ((z, caps + 70, eps), r"captions out of range: ids must lie in \[0, 64\)"),
        ((z, torch.tensor([[4, 5, 0], [0, 6, 0]]), eps), r"captions \[1\] are empty"),
        ((z, caps, torch.randn(2, 8)), r"eps must have shape \(2, 32\), got \(2, 8\)"),
        ((z, caps, torch.full((2, 32), math.inf)), r"eps holds 0 NaN and 64 infinite"),
    ]
    for args, match in bad:
        with pytest.raises(InputError, match=match), torch.no_grad():
            mini(*args)
    g = mini.netG
    words, sentence = torch.randn(2, 4, 3), torch.randn(2, 4)
    pad = torch.tensor([[False, False, True], [False, True, True]])
    bad_g = [
        (
            (z, sentence, words, pad[:, :2]),
            r"pad \(B, T\) and words \(B, D, T\) disagree on T: 2 vs 3",
        ),
        ((z, sentence, words, pad.float()), r"pad must be a bool tensor"),
        ((z, sentence, torch.randn(2, 5, 3), pad), r"words must have shape \(2, 4, T\)"),
        ((z, torch.randn(2, 4, 1), words, pad), r"sentence must have shape \(2, 4\)"),
        (
            (z, sentence, words.index_fill(2, torch.tensor([1]), math.nan), pad),
            r"words holds 8 NaN",
        ),
    ]
    for args, match in bad_g:
        with pytest.raises(InputError, match=match), torch.no_grad():
            g(*args)
    with pytest.raises(InputError, match=r"lengths must lie in \[1, T = 3\]"):
        mini.text_encoder(caps, torch.tensor([4, 1]))
    with pytest.raises(InputError, match=r"lengths must have shape \(2\)"):
        mini.text_encoder(caps, torch.tensor([2]))
    d64 = Discriminator(2, 4, 64)
    with pytest.raises(InputError, match="takes 64 x 64 images, got 32 x 32"):
        d64(torch.randn(2, 3, 32, 32), torch.randn(2, 4))
    with pytest.raises(InputError, match="expected 3 input channels, got 1"):
        d64(torch.randn(2, 1, 64, 64), torch.randn(2, 4))
    with pytest.raises(InputError, match="takes 32, 64, 128 or 256 px"):
        Discriminator(2, 4, 48)
    with pytest.raises(InputError, match="base_size must be 4 \\* 2\\^k >= 8, got 48"):
        AttnGANConfig(base_size=48)
    with pytest.raises(InputError, match="embedding_dim must be even"):
        AttnGANConfig(embedding_dim=7)
    with pytest.raises(InputError, match="text_dropout must be in"):
        AttnGANConfig(text_dropout=1.0)
