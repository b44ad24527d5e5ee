"""HDGAN: what is checked against what.

- Parameter counts: the official numbers, obtained by instantiating ypxie/HDGan's
  HDGan/models/hd_networks.py classes at d98e2a85f7ae6ce7bfacd1c15e519558d97cb931 with the
  arguments of train_worker.py (the same for birds, flowers and COCO): Generator 41,378,496;
  Discriminator 25,693,606, of which the 64 / 128 / 256 px networks hold 8,510,466 / 8,582,722 /
  8,600,418 (a scale's modules `*_s`, and `pre_encode` at 256). Recorded in the fixture and the
  card, against a layer-by-layer count written here from the config alone, and both against our
  modules.
- Key layout: the official state-dict layouts (keys, shapes and order, from the fixture) of
  Generator and Discriminator equal ours; a PyTorch 0.3 file (no num_batches_tracked) loads
  strictly.
- Oracle: fixtures/hdgan_official.json holds a small official Generator and Discriminator
  (weights in float16, exactly the values the official modules ran with), their inputs and the
  official outputs; its `source` says how it was made. Our modules load the weights under the
  official keys and agree within 1e-5 in eval and in training mode: mean, log sigma, every side
  output (subgrid and moments), each scale's pair and local logits (measured: see the tests).
- Shapes of every side output and every discriminator map, for the official layout and the
  laptop variant; eps and a `torch.Generator` make the forward deterministic.
- Bad inputs: wrong shapes, dtypes, NaN / inf, wrong image sizes, a batch of 1 in training mode,
  bad configs: `InputError`.
"""

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from sotazoo.bench import count_params
from sotazoo.cards import load_card
from sotazoo.errors import InputError
from sotazoo.papers.hdgan.model import (
    MINI,
    OFFICIAL_256,
    Discriminator,
    Generator,
    HDGANConfig,
    hdgan_256,
    hdgan_discriminators_256,
    hdgan_discriminators_mini,
    hdgan_mini,
    unused_in_forward,
)

from .oracle import fixture_tensor, fixture_weights, within

FIXTURE = Path(__file__).parent / "fixtures" / "hdgan_official.json"
# Counted by instantiating the official classes (module docstring); also in the fixture.
OFFICIAL = {"generator": 41_378_496, "discriminator": 25_693_606, "discriminator_64": 8_510_466,
            "discriminator_128": 8_582_722, "discriminator_256": 8_600_418}  # fmt: skip


@pytest.fixture(scope="module")
def fx() -> dict:
    return json.loads(FIXTURE.read_text())


# ---------------------------------------------------------------------- parameter counts


def _conv(c_in: int, c_out: int, k: int, bias: bool = False) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


def _bn(c: int) -> int:
    return 2 * c  # weight and bias; the running statistics are buffers


def _generator(cfg: HDGANConfig) -> int:
    """CA Linear(sent -> 2 emb, bias); Linear(emb + z -> 16 * 8 hid, bias) + BN1d; per scale a
    3x3 conv + BN halving the width at reduce_dim_at and num_resblock residual blocks (two 3x3
    convs + BN at the width); a 3x3 RGB conv without bias per side output."""
    top = 8 * cfg.hid_dim
    n = cfg.sent_dim * 2 * cfg.emb_dim + 2 * cfg.emb_dim
    n += (cfg.emb_dim + cfg.noise_dim + 1) * 16 * top + _bn(16 * top)
    width = top
    for k in range(int(math.log2(cfg.side_output_at[-1] // 4)) + 1):
        scale = 4 * 2**k
        if scale in cfg.reduce_dim_at:
            n += _conv(width, width // 2, 3) + _bn(width // 2)
            width //= 2
        n += cfg.num_resblock * 2 * (_conv(width, width, 3) + _bn(width))
        if scale in cfg.side_output_at:
            n += _conv(width, 3, 3)
    return n


def _discriminator(cfg: HDGANConfig, size: int) -> int:
    """The image encoder: 3x3 stride-2 convs from d_width_x_size / size channels, doubling, down
    to 8 x 8 (BN after all but the first), then a 5x5 conv + BN to enc = 4 d_hid_dim, or at the
    patch scale the last strided conv to enc and `pre_encode` (5x5 conv + BN); the pair head (1x1
    conv + BN from enc + emb to enc, 4x4 conv with bias to 1); the local head (4x4 conv with bias
    to 1); the sentence code Linear(sent -> emb, bias)."""
    enc, emb = 4 * cfg.d_hid_dim, cfg.emb_dim
    widths = [cfg.d_width_x_size // size * 2**k for k in range(int(math.log2(size // 8)))]
    patch = size == cfg.local_patch_at
    if patch:
        widths[-1] = enc
    n = _conv(3, widths[0], 3) + sum(_conv(a, b, 3) + _bn(b)
                                     for a, b in zip(widths, widths[1:], strict=False))  # fmt: skip
    # the 5x5 conv: pre_encode (enc -> enc) at the patch scale, else the encoder's last
    n += _conv(enc if patch else widths[-1], enc, 5) + _bn(enc)
    n += _conv(enc + emb, enc, 1) + _bn(enc) + _conv(enc, 1, 4, bias=True)
    n += _conv(enc, 1, 4, bias=True) + cfg.sent_dim * emb + emb
    return n


def test_parameter_counts_by_hand_and_official(fx):
    # the 64 px D spelled out: 3x3 convs 3 -> 128 -> 256 -> 512, a 5x5 conv 512 -> 512, the pair
    # head from 512 + 128, the local head, the sentence code 1024 -> 128
    assert _discriminator(OFFICIAL_256, 64) == (
        3 * 128 * 9 + (128 * 256 * 9 + 512) + (256 * 512 * 9 + 1024) + (512 * 512 * 25 + 1024)
        + (640 * 512 + 1024 + 512 * 16 + 1) + (512 * 16 + 1) + (1024 * 128 + 128)
    )  # fmt: skip
    # G up to 16 px: CA 1024 -> 256, Linear 228 -> 16384 + BN1d, a residual block at 1024 (4 x 4),
    # the conv 1024 -> 512 and a block at 8 x 8, a block at 16 x 16 and its RGB head
    assert _generator(HDGANConfig(side_output_at=(16,), reduce_dim_at=(8,), local_patch_at=16)) == (
        1024 * 256 + 256 + 229 * 16384 + 2 * 16384 + 2 * (1024 * 1024 * 9 + 2048)
        + (1024 * 512 * 9 + 1024) + 2 * (2 * (512 * 512 * 9 + 1024)) + 512 * 3 * 9
    )  # fmt: skip
    assert _generator(OFFICIAL_256) == OFFICIAL["generator"]
    per_scale = [_discriminator(OFFICIAL_256, s) for s in (64, 128, 256)]
    assert per_scale == [OFFICIAL[f"discriminator_{s}"] for s in (64, 128, 256)]
    assert sum(per_scale) == OFFICIAL["discriminator"]
    assert fx["params"] == OFFICIAL
    card = {m.name: m for m in load_card("hdgan").models}
    assert card["hdgan_256"].params == OFFICIAL["generator"]
    assert card["hdgan_mini"].laptop


def test_our_modules_have_the_counted_parameters():
    with torch.device("meta"):
        gs = [hdgan_256()]
        d, mini, mini_d = hdgan_discriminators_256(), hdgan_mini(), hdgan_discriminators_mini()
    assert [count_params(g) for g in gs] == [OFFICIAL["generator"]]
    assert count_params(d) == OFFICIAL["discriminator"]
    for s in (64, 128, 256):
        n = sum(count_params(m) for m in d.scale_modules(s).values())
        assert n == OFFICIAL[f"discriminator_{s}"], s
    assert count_params(mini) == _generator(MINI)
    assert count_params(mini_d) == sum(_discriminator(MINI, s) for s in (16, 32, 64))


# ---------------------------------------------------------------------- the official layout


def _layout(module: nn.Module) -> dict:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def test_official_layouts(fx):
    with torch.device("meta"):
        g, d = hdgan_256(), hdgan_discriminators_256()
    assert list(_layout(g).items()) == list(fx["generator_layout"].items())
    assert list(_layout(d).items()) == list(fx["discriminator_layout"].items())
    # a released G_epochN.pth (PyTorch 0.3: no num_batches_tracked) loads strictly
    ckpt = {k: torch.empty(s, device="meta") for k, s in fx["generator_layout"].items()
            if not k.endswith("num_batches_tracked")}  # fmt: skip
    g.load_state_dict(ckpt, strict=True, assign=True)


# ---------------------------------------------------------------------- the oracle


def _oracle_cfg(fx: dict) -> HDGANConfig:
    c = fx["config"]
    return HDGANConfig(sent_dim=c["sent_dim"], noise_dim=c["noise_dim"], emb_dim=c["emb_dim"],
                       hid_dim=c["hid_dim"], num_resblock=c["num_resblock"],
                       d_hid_dim=c["d_hid_dim"], d_width_x_size=c["d_width_x_size"])  # fmt: skip


def _moments(t: torch.Tensor) -> tuple[float, float, float]:
    x = t.double().flatten()
    ramp = (torch.arange(x.numel(), dtype=torch.float64) % 7) - 3
    return float(x.sum()), float((x * x).sum()), float((x * ramp).sum())


def _check_moments(got: torch.Tensor, want: dict, what: str) -> None:
    """The whole tensor's moments to 1e-5 of its L1 mass (sums of ~10^5 terms)."""
    assert list(got.shape) == want["shape"]
    mass = float(got.double().abs().sum())
    for g, w in zip(_moments(got), (want["sum"], want["sum_sq"], want["ramp_sum"]), strict=True):
        within(abs(g - w) / mass, 1e-5, f"{what} moments (relative to L1)")


def test_oracle_generator(fx):
    """The official Generator's outputs in eval mode (running statistics) and in training mode
    (batch statistics), eps given. Bound 1e-5, the usual float32 bound, where the same torch
    ops run in the same order (measured 0 on every output with one thread). In training mode
    the 64 px subgrid is bounded by 1e-4: its batch statistics are taken over few values of a
    1-to-4-channel network and divide by small standard deviations, which magnify the rounding
    of a multi-threaded sum (measured 5.0e-6 with 2 threads on an AMD EPYC, 0 with one)."""
    g = Generator(_oracle_cfg(fx))
    g.load_state_dict(fixture_weights(fx["generator"]), strict=True)
    inputs, out = fx["inputs"], fx["outputs"]
    noise, emb, eps = (fixture_tensor(inputs[k]) for k in ("noise", "embedding", "eps"))
    with torch.no_grad():
        images, mean, log_sigma = g.eval().generate(noise, emb, eps)
        final = g(noise, emb, eps)
        train_images, *_ = g.train().generate(noise, emb, eps)
    within((mean - fixture_tensor(out["mean"])).abs().max(), 1e-5, "official Generator mean")
    within((log_sigma - fixture_tensor(out["log_sigma"])).abs().max(), 1e-5, "Generator log sigma")
    for img, (name, step) in zip(images, (("image64", 4), ("image128", 8), ("image256", 16)),
                                 strict=True):  # fmt: skip
        sub = fixture_tensor(out[f"{name}_sub{step}"])
        within((img[:, :, ::step, ::step] - sub).abs().max(), 1e-5, f"official Generator {name}")
        _check_moments(img, out[name], f"official Generator {name}")
    torch.testing.assert_close(final, images[-1], rtol=0, atol=0)
    train = out["train"]
    sub = fixture_tensor(train["image64_sub4"])
    within((train_images[0][:, :, ::4, ::4] - sub).abs().max(), 1e-4, "Generator 64 (training)")
    for img, name in zip(train_images, ("image64", "image128", "image256"), strict=True):
        _check_moments(img, train[name], f"official Generator {name} (training)")


def _texture(size: int, b: int = 2, c: int = 3) -> torch.Tensor:
    """The fixture's texture: 0.25 cos(0.7 i + 1.3 j + 2.1 c + 0.5 b), float64 -> float32."""
    grids = torch.meshgrid(*(torch.arange(n, dtype=torch.float64) for n in (b, c, size, size)),
                           indexing="ij")  # fmt: skip
    bb, cc, ii, jj = grids
    return (0.25 * torch.cos(0.7 * ii + 1.3 * jj + 2.1 * cc + 0.5 * bb)).float()


def test_oracle_discriminators(fx):
    """Each scale's network of the official Discriminator on the stored 16 px image upsampled
    (nearest) plus the stated texture, with the stored embedding: pair logit (B, 1) and local
    logits (B, 1, 1, 1) / (B, 1, 5, 5), in eval and training mode. Bound 1e-5, the usual float32
    bound (the same torch ops in the same order: measured 0)."""
    d = Discriminator(_oracle_cfg(fx))
    d.load_state_dict(fixture_weights(fx["discriminator"]), strict=True)
    image, emb = fixture_tensor(fx["inputs"]["d_image"]), fixture_tensor(fx["inputs"]["embedding"])
    for size in (64, 128, 256):
        want = fx["outputs"]["discriminators"][str(size)]
        x = nn.functional.interpolate(image, scale_factor=size // 16, mode="nearest")
        x = x + _texture(size)
        with torch.no_grad():
            runs = {"": d.eval()(x, emb), "train_": d.train()(x, emb)}
        for mode, (pair, local) in runs.items():
            assert pair.shape == (2, 1) and local.shape == (2, 1, *[5 if size == 256 else 1] * 2)
            how = "training" if mode else "eval"
            within((pair - fixture_tensor(want[f"{mode}pair"])).abs().max(), 1e-5,
                   f"official D{size} pair logit ({how})")  # fmt: skip
            within((local - fixture_tensor(want[f"{mode}local"])).abs().max(), 1e-5,
                   f"official D{size} local logits ({how})")  # fmt: skip


# ---------------------------------------------------------------------- shapes and behaviour


def test_shapes_of_every_side_output_and_map():
    """The official layout at 1/64 of the width (G: 16 channels at 4 x 4 down to 1 at 256; D:
    8-channel codes), and the laptop variant at its own width."""
    torch.manual_seed(0)
    g = hdgan_256(hid_dim=2).eval()
    z, emb, eps = torch.randn(2, 100), torch.randn(2, 1024), torch.randn(2, 128)
    with torch.no_grad():
        images, mean, log_sigma = g.generate(z, emb, eps)
        final = g(z, emb, eps)
    assert [tuple(x.shape) for x in images] == [(2, 3, 64, 64), (2, 3, 128, 128), (2, 3, 256, 256)]
    assert mean.shape == log_sigma.shape == (2, 128)
    assert torch.equal(final, images[-1]) and final.abs().max() <= 1
    d = hdgan_discriminators_256(d_hid_dim=2, d_width_x_size=256).eval()
    with torch.no_grad():
        maps = [d(x, emb) for x in images]
    assert [(tuple(p.shape), tuple(loc.shape)) for p, loc in maps] == [
        ((2, 1), (2, 1, 1, 1)), ((2, 1), (2, 1, 1, 1)), ((2, 1), (2, 1, 5, 5))
    ]  # fmt: skip
    codes = [d.img_encoder_64(images[0]), d.img_encoder_256(images[2])]
    assert [tuple(c.shape) for c in codes] == [(2, 8, 4, 4), (2, 8, 8, 8)]
    mini, mini_d = hdgan_mini().eval(), hdgan_discriminators_mini().eval()
    with torch.no_grad():
        images, mean, _ = mini.generate(torch.randn(2, 32), torch.randn(2, 64))  # eps drawn
        maps = [mini_d(x, torch.randn(2, 64)) for x in images]
    assert [tuple(x.shape) for x in images] == [(2, 3, 16, 16), (2, 3, 32, 32), (2, 3, 64, 64)]
    assert mean.shape == (2, 32)
    assert [tuple(loc.shape) for _, loc in maps] == [(2, 1, 1, 1), (2, 1, 1, 1), (2, 1, 5, 5)]
    assert all(p.shape == (2, 1) for p, _ in maps)
    assert MINI.scales == (4, 8, 16, 32, 64)
    assert [MINI.width(s) for s in MINI.scales] == [128, 64, 64, 32, 16]
    assert [OFFICIAL_256.width(s) for s in OFFICIAL_256.scales] == [1024, 512, 512, 256, 256,
                                                                     128, 64]  # fmt: skip
    assert unused_in_forward("hdgan_256") == ("tensor_to_img_64.", "tensor_to_img_128.")


def test_conditioning_augmentation_and_determinism():
    """c = mean + exp(log_sigma) * eps (eps = 0 gives the mean); a torch.Generator makes the draw
    of eps repeatable."""
    g = hdgan_mini(hid_dim=2).eval()
    z, emb = torch.randn(1, 32), torch.randn(1, 64)
    with torch.no_grad():
        a = g(z, emb, generator=torch.Generator().manual_seed(3))
        b = g(z, emb, generator=torch.Generator().manual_seed(3))
        c = g(z, emb, generator=torch.Generator().manual_seed(4))
        at_mean = g(z, emb, torch.zeros(1, 32))
        eps = torch.randn(1, 32)
        c_vec, mean, log_sigma = g.condEmbedding(emb, eps)
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, at_mean)
    torch.testing.assert_close(c_vec, mean + log_sigma.exp() * eps)
    out = nn.functional.leaky_relu(g.condEmbedding.linear(emb), 0.2)
    torch.testing.assert_close(torch.cat((mean, log_sigma), 1), out, rtol=0, atol=0)


# ---------------------------------------------------------------------- bad input


def test_bad_inputs():
    g = hdgan_mini(hid_dim=2).eval()
    z, emb, eps = torch.randn(2, 32), torch.randn(2, 64), torch.randn(2, 32)
    bad = [
        ((torch.randn(2, 31), emb, eps), r"noise must have shape \(B, 32\), got \(2, 31\)"),
        ((torch.randn(32), emb, eps), r"noise must have shape \(B, 32\), got \(32,\)"),
        ((z.double(), emb, eps), r"noise: expected torch.float32"),
        ((z.long(), emb, eps), r"noise: expected a floating-point tensor"),
        ((z.index_fill(1, torch.tensor([0]), math.nan), emb, eps), r"noise holds 2 NaN"),
        (("z", emb, eps), r"noise must be a torch.Tensor, got str"),
        ((z, torch.randn(2, 1024), eps), r"embedding must have shape \(2, 64\), got \(2, 1024\)"),
        ((z, torch.randn(3, 64), eps), r"embedding must have shape \(2, 64\)"),
        ((z, emb.half(), eps), r"embedding: expected torch.float32"),
        ((z, emb, torch.randn(2, 8)), r"eps must have shape \(2, 32\), got \(2, 8\)"),
        ((z, emb, torch.full((2, 32), math.inf)), r"eps holds 0 NaN and 64 infinite"),
    ]
    for args, match in bad:
        with pytest.raises(InputError, match=match), torch.no_grad():
            g(*args)
        with pytest.raises(InputError, match=match), torch.no_grad():
            g.generate(*args)
    with pytest.raises(InputError, match="a batch of 1 in training mode"):
        g.train()(z[:1], emb[:1], eps[:1])
    d = hdgan_discriminators_mini(d_hid_dim=2).eval()
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    bad_d = [
        ((torch.rand(2, 3, 48, 48), emb), r"take square images of 16 / 32 / 64 px, got 48 x 48"),
        ((torch.rand(2, 3, 32, 16), emb), r"got 32 x 16"),
        ((torch.rand(2, 1, 32, 32), emb), r"expected 3 input channels, got 1"),
        ((image[0], emb), r"expected a 4-D batch"),
        ((image.double(), emb), r"expected torch.float32"),
        ((image.index_fill(2, torch.tensor([3]), math.nan), emb), r"images holds 192 NaN"),
        ((image, torch.randn(2, 63)), r"embedding must have shape \(2, 64\), got \(2, 63\)"),
        ((image, emb.index_fill(1, torch.tensor([5]), math.inf)), r"embedding holds 0 NaN and 2"),
    ]
    for args, match in bad_d:
        with pytest.raises(InputError, match=match), torch.no_grad():
            d(*args)
    for kwargs, match in [
        ({"side_output_at": (64, 32)}, "side_output_at must be increasing powers of 2 from 16"),
        ({"side_output_at": (8, 64)}, "from 16"),
        ({"side_output_at": (48,)}, "from 16"),
        ({"reduce_dim_at": (8, 512)}, r"must be scales of G: \(4, 8, 16, 32, 64, 128, 256\)"),
        ({"hid_dim": 1, "reduce_dim_at": (8, 16, 32, 64, 128)}, "below one channel"),
        ({"local_patch_at": 512}, "local_patch_at must be one of side_output_at"),
        ({"d_width_x_size": 100}, "d_width_x_size 100 must be a multiple"),
        ({"noise_dim": 0}, "noise_dim must be an integer >= 1"),
    ]:
        with pytest.raises(InputError, match=match):
            HDGANConfig(**kwargs)
