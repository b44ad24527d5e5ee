"""EDSR / MDSR: parameter counts against the official table and a count by hand, the oracles
(torchsr, a port of the official code with its key names; for MDSR, which torchsr lacks, a
fixture recorded from the official code), the checkpoint layouts, the residual block on a case
computed by hand, export, bad input and the quick reproduction."""

import dataclasses
import functools
import hashlib
import json
import math
from pathlib import Path

import pytest
import torch

import sotazoo
from sotazoo.bench import count_params
from sotazoo.cards import load_card
from sotazoo.errors import InputError, WeightsError
from sotazoo.papers.edsr.convert import convert_state_dict, detect_layout
from sotazoo.papers.edsr.model import EDSRConfig, ResBlock
from sotazoo.weights import load_into

from .oracle import within

CARD = load_card("edsr")
PAPER_MODELS = [m for m in CARD.models if not m.laptop]


def _conv(i: int, o: int, k: int = 3) -> int:
    return i * o * k * k + o


def _count_by_hand(blocks: int, feats: int, scales: tuple[int, ...], mdsr: bool) -> int:
    """Table 1's shapes turned into a count, written apart from the module."""
    n = _conv(3, feats)  # head
    n += blocks * 2 * _conv(feats, feats) + _conv(feats, feats)  # body + its closing conv
    for s in scales:  # sub-pixel upsamplers: one x3 stage, or log2(s) x2 stages
        n += _conv(feats, 9 * feats) if s == 3 else (s.bit_length() - 1) * _conv(feats, 4 * feats)
    if mdsr:
        n += len(scales) * 2 * 2 * _conv(feats, feats, 5)  # two 5x5 residual blocks per scale
    return n + _conv(feats, 3)  # tail conv to RGB


SHAPES = {
    "edsr_baseline_x2": (16, 64, (2,), False),
    "edsr_baseline_x3": (16, 64, (3,), False),
    "edsr_baseline_x4": (16, 64, (4,), False),
    "edsr_x2": (32, 256, (2,), False),
    "edsr_x3": (32, 256, (3,), False),
    "edsr_x4": (32, 256, (4,), False),
    "mdsr": (80, 64, (2, 3, 4), True),
    "mdsr_baseline": (16, 64, (2, 3, 4), True),
}


@pytest.mark.parametrize("entry", PAPER_MODELS, ids=lambda e: e.name)
def test_param_count_matches_the_official_table(entry):
    """The official README's count per scale (e.g. 1.37 M for edsr_baseline_x2), within 0.5%,
    and exactly the count of Table 1's layer shapes worked out by hand."""
    n = count_params(sotazoo.create_model(entry.name))
    assert abs(n - entry.params) / entry.params < 0.005, (n, entry.params)
    assert n == _count_by_hand(*SHAPES[entry.name])


def test_every_paper_variant_has_a_shape_here():
    assert sorted(SHAPES) == sorted(m.name for m in PAPER_MODELS)


def _torchsr(builder: str, scale: int):
    import torchsr.models

    torch.manual_seed(scale)
    ref = getattr(torchsr.models, builder)(scale=scale).eval()
    with torch.no_grad():  # random but non-trivial weights: the default init has zero biases
        for p in ref.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.01)
    return ref


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_oracle_torchsr_edsr_baseline(scale, tmp_path):
    """torchsr's EDSR (a port of the official code, same keys, input in [0, 1]) and ours, with
    the same weights loaded from a file through our converter, agree to 1e-5."""
    ref = _torchsr("edsr_baseline", scale)
    path = tmp_path / "ref.pt"
    torch.save(ref.state_dict(), path)
    ours = sotazoo.create_model(f"edsr_baseline_x{scale}", weights=path)
    x = torch.rand(2, 3, 12, 10, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = ours(x), ref(x)
    assert a.shape == (2, 3, 12 * scale, 10 * scale)
    # Same weights, the same torch ops in the same order, so the same kernels on any CPU and
    # thread count (measured: equal); 1e-5 is ~80 ulps of outputs in [0, 1].
    within((a - b).abs().max().item(), 1e-5, f"x{scale} vs torchsr")


def test_oracle_torchsr_edsr_full_x4(tmp_path):
    """The wide EDSR (B32, F256, residual scaling 0.1): the converter infers all three."""
    ref = _torchsr("edsr", 4)
    sd, needed, layout = convert_state_dict(ref.state_dict())
    assert layout == "official"
    assert needed == {"n_resblocks": 32, "n_feats": 256, "res_scale": 0.1, "scales": (4,)}
    ours = sotazoo.create_model("edsr_x4")
    ours.load_state_dict(sd)
    x = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        within((ours.eval()(x) - ref(x)).abs().max().item(), 1e-5, "full x4 vs torchsr")


def test_convert_through_the_official_weights_entry(tmp_path, monkeypatch):
    """`weights="official"` fetches from the entry's URL, checks the full sha256 (which starts
    with the file name's prefix), converts. The URL is pointed at a synthetic local file of the
    official layout. An entry known only by its prefix is not fetched."""
    from sotazoo.papers.edsr import weights as edsr_weights

    path = tmp_path / "edsr_baseline_x2-synthetic.pt"
    torch.save(_torchsr("edsr_baseline", 2).state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    real = next(w for w in edsr_weights.WEIGHTS if w.model == "edsr_baseline_x2")
    assert real.filename == "edsr_baseline_x2-1bc95232.pt" and real.full_hash
    assert real.sha256.startswith("1bc95232")
    fake = dataclasses.replace(real, urls=(path.as_uri(),), sha256=digest)
    monkeypatch.setattr(edsr_weights, "WEIGHTS", (fake,))
    model = sotazoo.create_model("edsr_baseline_x2", weights="official", progress=False)
    assert not model.training and model.scale == 2
    prefix_only = dataclasses.replace(fake, sha256=digest[:8])
    monkeypatch.setattr(edsr_weights, "WEIGHTS", (prefix_only,))
    with pytest.raises(WeightsError, match="only the sha256 prefix .* pass its path"):
        sotazoo.create_model("edsr_baseline_x2", weights="official", progress=False)


# ---------------------------------------------------------------- oracle: the official MDSR

MDSR_FIXTURE = Path(__file__).parent / "fixtures" / "mdsr_official.json"


@functools.cache
def _mdsr_fixture() -> dict:
    return json.loads(MDSR_FIXTURE.read_text())


def seeded_state_dict(shapes: dict[str, list[int]], seed: int) -> dict[str, torch.Tensor]:
    """Deterministic weights for a key -> shape map, independent of any module's init order, as
    in tests/papers/test_dbpn.py: the i-th key in sorted order is drawn from
    `torch.Generator().manual_seed(seed + i)`; weights get std sqrt(2 / fan-in), biases small
    values. The mean shift is drawn too: a random 1x1 conv, so a port that skipped its weight
    or applied it in the wrong place could not hide."""
    sd = {}
    for i, key in enumerate(sorted(shapes)):
        shape = tuple(shapes[key])
        t = torch.randn(shape, generator=torch.Generator().manual_seed(seed + i))
        sd[key] = 0.05 * t if key.endswith(".bias") else t * math.sqrt(2 / math.prod(shape[1:]))
    return sd


def fixture_input(seed: int, shape: list[int]) -> torch.Tensor:
    return torch.rand(tuple(shape), generator=torch.Generator().manual_seed(seed))


def _mdsr_case(scale: int) -> dict:
    return next(c for c in _mdsr_fixture()["cases"] if c["scale"] == scale)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_oracle_official_mdsr_fixture(scale):
    """The fixture holds the outputs of the official sanghyun-son/EDSR-PyTorch MDSR (mdsr.py,
    common.py, B = 2 and F = 16 with the three scales' heads and tails) run on seeded weights
    and a seeded input while developing, one scale at a time (`set_scale(scale_idx)`). Ours,
    given the same weights through the converter, must agree to 1e-5 of the output's scale."""
    case = _mdsr_case(scale)
    official = seeded_state_dict(case["shapes"], case["weights_seed"])
    sd, overrides, layout = convert_state_dict(official)
    assert layout == "official_mdsr"
    assert overrides == {**case["expect_overrides"], "scales": tuple(case["args"]["scale"])}
    model = sotazoo.create_model("mdsr", **overrides)
    load_into(model, sd, "mdsr_official.json")
    with torch.no_grad():
        ours = model.eval()(fixture_input(case["input_seed"], case["input_shape"]), scale)
    expected = torch.tensor(case["output"]).reshape(case["output_shape"])
    # The official code works on [0, 255]; ours takes and returns [0, 1] (model.py), so its
    # output times rgb_range is the official one.
    ours = ours * model.cfg.rgb_range
    assert ours.shape == expected.shape == (1, 3, 6 * scale, 5 * scale)
    # Outputs up to 1.6e4 in magnitude (random weights, the mean shift included, on pixels in
    # [0, 255]), stored to 8 digits. The same convolutions in the same order: on the recording
    # CPU ours is 3.2e-8 of the output's scale away (the 8 digits and the /255, x255 round
    # trip). Another CPU's kernels (scalar ATen, MKL's compatible mode) sum each conv in
    # another order, which moves the result by about as much as the whole float32 rounding,
    # measured against the same network in float64: 9.2e-7 of the output's scale. 1e-5 leaves
    # ten times that; a wrong mean shift or scale head is off by the output's whole scale.
    scale_of_output = expected.abs().max().item()
    within((ours - expected).abs().max().item(), 1e-5 * scale_of_output, f"MDSR x{scale}")


def test_oracle_real_mdsr_key_layout_and_param_count():
    """The full-size official MDSR (B = 80, F = 64, x2/x3/x4): every key and shape, as the
    fixture recorded them from the official module, is ours, and the converter reads the
    `mdsr` defaults off it. The official module counts 24 parameters more: its two mean-shift
    1x1 convs (3x3 weights + 3 biases each), which are buffers here."""
    model = sotazoo.create_model("mdsr")
    layout = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert layout == _mdsr_fixture()["mdsr_layout"]
    meta = {k: torch.empty(v, device="meta") for k, v in _mdsr_fixture()["mdsr_layout"].items()}
    _, overrides, layout_name = convert_state_dict(meta)
    assert layout_name == "official_mdsr"
    assert overrides == {"n_resblocks": 80, "n_feats": 64, "res_scale": 1.0, "scales": (2, 3, 4)}
    mean_shift = sum(b.numel() for k, b in model.named_buffers() if "_mean." in k)
    assert mean_shift == 24
    assert count_params(model) + mean_shift == _mdsr_fixture()["mdsr_params"]


@pytest.mark.parametrize("w", [w for m in ("edsr_baseline_x2", "edsr_x4")
                               for w in sotazoo.list_weights(m)], ids=lambda w: w.name)  # fmt: skip
def test_convert_entries_declare_the_counted_params(w):
    assert count_params(sotazoo.create_model(w.model)) == w.num_params


def _basicsr_layout(sd: dict) -> dict:
    """Our keys renamed the way BasicSR's EDSR names them, mean shift dropped, wrapped."""
    out = {}
    for k, v in sd.items():
        parts = k.split(".")
        if parts[0] in ("sub_mean", "add_mean"):
            continue
        if parts[0] == "head":
            k = "conv_first." + parts[-1]
        elif parts[0] == "body" and len(parts) == 5:
            k = f"body.{parts[1]}.conv{1 if parts[3] == '0' else 2}.{parts[4]}"
        elif parts[0] == "body":
            k = "conv_after_body." + parts[-1]
        elif parts[:2] == ["tail", "0"]:
            k = f"upsample.{parts[2]}.{parts[3]}"
        elif parts[:2] == ["tail", "1"]:
            k = "conv_last." + parts[-1]
        out[k] = v
    return {"params": out}


def test_convert_basicsr_layout(tmp_path):
    ref = _torchsr("edsr_baseline", 4)
    path = tmp_path / "EDSR_Mx4_f64b16_DIV2K_official-synthetic.pth"
    torch.save(_basicsr_layout(ref.state_dict()), path)
    ours = sotazoo.create_model("edsr_baseline_x4", weights=path)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max().item() <= 1e-5  # as in the torchsr oracle


def test_convert_mdsr_official_layout(tmp_path):
    """An MDSR file (pre_process.<s>, upsample.<s>) gives the model its scales and depth."""
    src = sotazoo.create_model("mdsr", n_resblocks=2, n_feats=8)
    path = tmp_path / "mdsr-synthetic.pt"
    torch.save({"module." + k: v for k, v in src.state_dict().items()}, path)
    ours = sotazoo.create_model("mdsr", weights=path)
    assert ours.cfg.scales == (2, 3, 4) and ours.cfg.n_resblocks == 2 and ours.cfg.n_feats == 8
    x = torch.rand(1, 3, 5, 5)
    with torch.no_grad():
        for s in (2, 3, 4):
            assert torch.equal(ours(x, s), src.eval()(x, s))
            assert ours(x, s).shape[-1] == 5 * s


def test_convert_rejects_unknown_layouts():
    with pytest.raises(WeightsError, match="unrecognised EDSR checkpoint layout.*'conv1.weight'"):
        detect_layout({"conv1.weight", "fc.weight"})


def test_residual_block_on_a_case_computed_by_hand():
    """One channel, 1x1 'image': conv3x3 with only a centre tap is a multiplication, so the block
    is x + 0.1 * (w2 * relu(w1 * x + b1) + b2) (Fig. 2c with the residual scaling of §3.2)."""
    block = ResBlock(1, 3, res_scale=0.1)
    conv1, conv2 = block.body[0], block.body[2]
    with torch.no_grad():
        for conv, w, b in ((conv1, 2.0, -1.0), (conv2, -3.0, 0.5)):
            conv.weight.zero_()
            conv.weight[0, 0, 1, 1] = w
            conv.bias.fill_(b)
    for x in (0.25, 2.0):
        expected = x + 0.1 * (-3.0 * max(0.0, 2.0 * x - 1.0) + 0.5)
        got = block(torch.full((1, 1, 1, 1), x)).item()
        assert got == pytest.approx(expected, abs=1e-6)  # 1x1 products in float32: an ulp or two


def test_batch_norm_ablation_is_the_same_network_plus_bn():
    """The reproduction's ablation: BN after each conv of every block, nothing else changes."""
    plain = sotazoo.create_model("edsr_mini_x2")
    bn = sotazoo.create_model("edsr_mini_x2", norm="batch")
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in bn.modules())
    assert n_bn == 2 * plain.cfg.n_resblocks
    assert count_params(bn) - count_params(plain) == n_bn * 2 * plain.cfg.n_feats


def test_export_edsr_mini(tmp_path):
    from sotazoo.export import export_onnx

    model = sotazoo.create_model("edsr_mini_x4").eval()
    r = export_onnx(model, (3, 24, 20), tmp_path / "m.onnx")
    assert r.max_rel_diff <= 1e-4  # of max(1, max |output|), sotazoo.export's rule


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.rand(1, 1, 8, 8), "expected 3 input channels, got 1"),
        (torch.rand(3, 8, 8), "add a batch dimension"),
        (torch.randint(0, 255, (1, 3, 8, 8), dtype=torch.uint8), "floating-point"),
        (torch.full((1, 3, 8, 8), float("nan")), "NaN"),
    ],
    ids=["channels", "rank", "dtype", "nan"],
)
def test_bad_input_is_a_clear_error(x, match):
    model = sotazoo.create_model("edsr_baseline_x2", n_resblocks=1).eval()
    with pytest.raises(InputError, match=match):
        model(x)


def test_bad_input_scale_and_config():
    model = sotazoo.create_model("mdsr", n_resblocks=1, n_feats=8).eval()
    with pytest.raises(InputError, match=r"scales \(2, 3, 4\), not x5"):
        model(torch.rand(1, 3, 4, 4), 5)
    with pytest.raises(ValueError, match="scales must be"):
        EDSRConfig(scales=(5,))
    with pytest.raises(TypeError, match="unknown EDSR config fields \\['blocks'\\]"):
        sotazoo.create_model("edsr_x2", blocks=3)


def test_self_ensemble_averages_the_eight_transformed_passes():
    """EDSR+ (§4.3) on a model that is not flip/rotation-equivariant: the result equals the mean
    of the eight passes, each undone by hand (transposes and flips written out here)."""
    from sotazoo.papers.edsr.method import self_ensemble

    torch.manual_seed(0)
    model = sotazoo.create_model("edsr_mini_x2", n_resblocks=1).eval()
    x = torch.rand(1, 3, 6, 5)
    t = lambda a: a.transpose(-2, -1)  # noqa: E731
    h = lambda a: a.flip(-1)  # noqa: E731
    v = lambda a: a.flip(-2)  # noqa: E731
    # the 8 elements of D4 as (forward, inverse) pairs
    group = [
        (lambda a: a, lambda a: a),
        (h, h),
        (v, v),
        (lambda a: h(v(a)), lambda a: v(h(a))),
        (t, t),
        (lambda a: h(t(a)), lambda a: t(h(a))),
        (lambda a: v(t(a)), lambda a: t(v(a))),
        (lambda a: h(v(t(a))), lambda a: t(v(h(a)))),
    ]
    with torch.no_grad():
        want = torch.stack([inv(model(fwd(x))) for fwd, inv in group]).mean(0)
        got = self_ensemble(model, x)
        assert (got - want).abs().max().item() <= 1e-6  # the mean of 8 in another order: ulps
        assert (got - model(x)).abs().max().item() > 1e-4  # it does change the output


def test_self_ensemble_leaves_an_equivariant_model_unchanged():
    from sotazoo.papers.edsr.method import self_ensemble

    def up(a):
        return torch.nn.functional.interpolate(a, scale_factor=2, mode="nearest")

    x = torch.rand(2, 3, 5, 7)
    assert torch.allclose(self_ensemble(up, x), up(x), atol=1e-7)  # mean of 8 equal values: ulps


def test_repro_quick(tmp_path):
    from sotazoo.repro import run_repro, validate_result

    data = run_repro("edsr", quick=True, out_dir=tmp_path, progress=False)
    assert data["quick"] and validate_result(data) == []
    assert (tmp_path / "edsr.quick.json").is_file() and (tmp_path / "edsr.quick.svg").is_file()
    ids = [c["id"] for c in data["claims"]]
    assert ids == [
        "no_bn_baseline_div2k_x2_psnr",
        "no_bn_baseline_div2k_x4_psnr",
        "edsr_plus_div2k_x4_psnr",
    ]
    bicubic = data["details"]["x4"]["bicubic"]["psnr"]
    assert 20 < bicubic < 40  # 16 x 16 LR crops of the held-out photographs


@pytest.mark.parametrize("scale", [2, 4])
def test_packaged_weights_reproduce_their_log(scale):
    """Our demo weights, evaluated again on the held-out photographs, give the PSNR/SSIM their
    training log recorded, and beat bicubic upscaling there."""
    import json
    from pathlib import Path

    from sotazoo.data.sr_photos import held_out_pairs
    from sotazoo.train.sr import evaluate_sr

    name = f"edsr_baseline_x{scale}"
    w = sotazoo.get_weights(name, "sotazoo")
    log_path = (Path(sotazoo.__file__).parent / w.packaged).with_name(f"{name}.sotazoo.log.json")
    log = json.loads(log_path.read_text())
    assert log["sha256"] == w.sha256 and log["metrics"] == dict(w.metrics)
    model = sotazoo.create_model(name, weights="sotazoo")
    got = evaluate_sr(model, held_out_pairs(scale), scale)
    # The log keeps 3 decimals (PSNR) and 4 (SSIM); another CPU's float32 kernels move the
    # outputs by ~1e-7 of themselves, PSNR by ~1e-5 dB: the bounds are the log's rounding.
    assert got["psnr"] == pytest.approx(log["metrics"]["heldout_psnr_y"], abs=0.01)
    assert got["ssim"] == pytest.approx(log["metrics"]["heldout_ssim_y"], abs=0.001)
    assert got["psnr"] > log["metrics"]["bicubic_psnr_y"]


def test_sr_training_is_seeded_end_to_end():
    """Initialisation, patches and updates all follow the seed: two runs with the same seed
    give the same weights, whatever ran before them in the process."""
    from sotazoo.train import seeded_model
    from sotazoo.train.sr import SRTrainConfig, train_sr

    cfg = SRTrainConfig(steps=3, batch_size=2, lr_patch=8)

    def weights(seed: int) -> list[torch.Tensor]:
        torch.rand(5)  # disturb the global generator, as an earlier run would
        model = seeded_model("edsr_mini_x2", seed, n_resblocks=1, n_feats=8, norm="batch")
        train_sr(model, cfg, scale=2, seed=seed)
        return list(model.state_dict().values())

    a, b, c = weights(0), weights(0), weights(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
