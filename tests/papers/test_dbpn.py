"""DBPN: parameter counts from the layer sizes, the projection unit on a case computed by hand,
the feed-forward ablation, the oracle fixture from the official code, the converter, export and
bad input. Full-size models are only built (for their counts), never run."""

import functools
import json
import math
from pathlib import Path

import pytest
import torch

import sotazoo
from sotazoo.bench import count_params
from sotazoo.cards import load_card
from sotazoo.errors import InputError, WeightsError
from sotazoo.papers.dbpn.convert import convert_state_dict
from sotazoo.papers.dbpn.model import (
    PROJECTION,
    DBPNConfig,
    UpProjection,
    dbpn_ff_mini_x4,
    dbpn_mini_x4,
)
from sotazoo.weights import load_into

from .oracle import within

FIXTURE = Path(__file__).parent / "fixtures" / "dbpn_official.json"
CARD = load_card("dbpn")
VARIANTS = [m for m in CARD.models if not m.laptop]


@functools.cache
def _fixture() -> dict:
    return json.loads(FIXTURE.read_text())


@functools.cache
def _full(name: str) -> torch.nn.Module:
    return sotazoo.create_model(name)


# ---------------------------------------------------------------- parameter counts


def _conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out  # weight and bias; a deconv has the same count


def _count_by_hand(cfg: DBPNConfig) -> int:
    """The layer sizes of the paper and the official code turned into a count, apart from the
    module: every conv/deconv is followed by a one-parameter PReLU except the reconstruction."""
    k = PROJECTION[cfg.scale][0]
    c, n0, nr, t = cfg.in_chans, cfg.n0, cfg.nr, cfg.stages
    n = _conv(c, n0, 3) + 1 + _conv(n0, nr, 1) + 1  # feature extraction
    n += (2 * t - 1) * 3 * (_conv(nr, nr, k) + 1)  # T up and T - 1 down units of three layers
    if cfg.dense:  # merging conv(1, nR) + PReLU: down units 2..T-1 read t maps, up 3..T t-1
        n += sum(_conv(m * nr, nr, 1) + 1 for m in range(2, t))  # down2 .. down(T-1)
        n += sum(_conv((m - 1) * nr, nr, 1) + 1 for m in range(3, t + 1))  # up3 .. upT
    return n + _conv(t * nr, c, cfg.recon_kernel)  # reconstruction, no activation


@pytest.mark.parametrize("entry", VARIANTS, ids=lambda e: e.name)
def test_param_count_matches_the_card_and_the_layer_sizes(entry):
    """Ours against the card's `params` (its `params_source` says where it comes from: the
    official dbpn.py for D-DBPN, our count of the layout for the depth-analysis networks) within
    0.5%, and exactly against the count from the layer sizes."""
    model = _full(entry.name)
    n = count_params(model)
    assert abs(n - entry.params) / entry.params <= 0.005, (n, entry.params, entry.params_source)
    assert n == _count_by_hand(model.cfg)


def test_param_count_ddbpn_rounds_to_the_known_figures():
    """D-DBPN: 5.95M (x2), 10.43M (x4), 23.21M (x8), the card's cost claims; x8 is ~2.2 x4
    because a 12x12 kernel has 2.25 times the weights of an 8x8 one."""
    got = [round(count_params(_full(f"ddbpn_x{s}")) / 1e6, 2) for s in (2, 4, 8)]
    assert got == [5.95, 10.43, 23.21]
    assert CARD.claim("ddbpn_params_x4").value == 10.43
    assert CARD.claim("ddbpn_params_x8").value == 23.21


def test_param_count_of_the_ablation_equals_the_real_network():
    assert count_params(dbpn_ff_mini_x4()) == count_params(dbpn_mini_x4()) == 149_902


# ---------------------------------------------------------------- the projection unit


def _constant_unit(feedback: bool) -> UpProjection:
    """A x2 up-projection unit with one channel, constant kernels and zero biases."""
    k, s, p = PROJECTION[2]
    unit = UpProjection(1, k, s, p, feedback=feedback)
    with torch.no_grad():
        for layer, value in (
            (unit.up_conv1.deconv, 0.5),
            (unit.up_conv2.conv, 0.25),
            (unit.up_conv3.deconv, 2.0),
        ):
            layer.weight.fill_(value)
            layer.bias.zero_()
    return unit


def test_up_projection_unit_on_a_case_computed_by_hand():
    """The up-projection equations on a 1x1 input L = 1, at x2 (6x6 kernels, stride 2, padding
    2), one channel, kernels of constant value c1 = 0.5, c2 = 0.25, c3 = 2, PReLU slopes 0.25.

    A 6x6 deconv of a single pixel, cropped by the padding, leaves the kernel's central 2x2:
    H0 = 0.5 everywhere (positive, so PReLU keeps it). The 6x6 conv of that 2x2 map (padded by
    2) sums the same central 2x2: L0 = 4 * 0.25 * 0.5 = 0.5. The error is L0 - L = -0.5, its
    deconvolution 2 * -0.5 = -1, and PReLU gives H1 = -0.25. The unit outputs H0 + H1 = 0.25.
    Without error feedback the third layer reads L0 = 0.5: H1 = 1 and the output is 1.5."""
    x = torch.ones(1, 1, 1, 1)
    assert torch.allclose(_constant_unit(True)(x), torch.full((1, 1, 2, 2), 0.25))
    assert torch.allclose(_constant_unit(False)(x), torch.full((1, 1, 2, 2), 1.5))


def test_ablation_differs_from_the_real_units_only_in_the_error_feedback():
    """Same keys and shapes; with the same weights every unit of the ablation computes what the
    real unit computes when the subtraction of its input is left out, and nothing else."""
    torch.manual_seed(0)
    real, ff = dbpn_mini_x4().eval(), dbpn_ff_mini_x4().eval()
    assert {k: v.shape for k, v in real.state_dict().items()} == {
        k: v.shape for k, v in ff.state_dict().items()
    }
    ff.load_state_dict(real.state_dict())
    x = torch.rand(2, 16, 5, 5)  # a low-resolution feature map, nR = 16
    with torch.no_grad():
        up, up_ff = real.unit("up", 1), ff.unit("up", 1)
        h0 = up.up_conv1(x)
        l0 = up.up_conv2(h0)
        # the unit's own layers called one by one: the same ops, equal (measured); ulps allowed
        assert torch.allclose(up(x), h0 + up.up_conv3(l0 - x), atol=1e-6)
        assert torch.allclose(up_ff(x), h0 + up.up_conv3(l0), atol=1e-6)
        h = torch.rand(2, 16, 20, 20)
        down, down_ff = real.unit("down", 1), ff.unit("down", 1)
        l0 = down.down_conv1(h)
        h0 = down.down_conv2(l0)
        assert torch.allclose(down(h), l0 + down.down_conv3(h0 - h), atol=1e-6)
        assert torch.allclose(down_ff(h), l0 + down.down_conv3(h0), atol=1e-6)
        img = torch.rand(1, 3, 8, 8)
        assert real(img).shape == ff(img).shape == (1, 3, 32, 32)
        assert not torch.allclose(real(img), ff(img))


def test_init_follows_the_official_code():
    """Kaiming normal (fan-in as torch computes it, gain sqrt(2)) for every conv and deconv,
    zero biases, PReLU slopes 0.25 (the official dbpn.py loop over its modules)."""
    model = _full("ddbpn_x4")
    for name, fan_in in (("up1.up_conv1.deconv", 64 * 64), ("feat0.conv", 3 * 9)):
        w = model.get_submodule(name).weight
        assert abs(w.std().item() / math.sqrt(2 / fan_in) - 1) < 0.05, name
    convs = [
        m for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)
    ]
    assert len(convs) == 3 * 13 + 10 + 3 and all(m.bias.abs().max() == 0 for m in convs)
    assert all(m.weight.item() == 0.25 for m in model.modules() if isinstance(m, torch.nn.PReLU))


def test_output_size_is_exactly_s_times_the_input_for_any_size():
    for s in (2, 4, 8):
        model = sotazoo.create_model(f"ddbpn_x{s}", n0=4, nr=2, stages=3).eval()
        with torch.no_grad():
            assert model(torch.rand(1, 3, 3, 5)).shape == (1, 3, 3 * s, 5 * s)


# ---------------------------------------------------------------- oracle: the official code


def seeded_state_dict(shapes: dict[str, list[int]], seed: int) -> dict[str, torch.Tensor]:
    """Deterministic weights for a key -> shape map, independent of any module's init order:
    the i-th key in sorted order is drawn from `torch.Generator().manual_seed(seed + i)`.
    Conv and deconv weights get std sqrt(2 / fan-in) as in the official init, biases small
    values, PReLU slopes values around 0.25 (so that wrong slopes cannot hide)."""
    sd = {}
    for i, key in enumerate(sorted(shapes)):
        g = torch.Generator().manual_seed(seed + i)
        shape = tuple(shapes[key])
        t = torch.randn(shape, generator=g)
        if key.endswith(".act.weight"):
            t = 0.25 + 0.1 * t
        elif key.endswith(".bias"):
            t = 0.05 * t
        else:
            t = t * math.sqrt(2 / math.prod(shape[1:]))
        sd[key] = t
    return sd


def fixture_input(seed: int, shape: list[int]) -> torch.Tensor:
    return torch.rand(tuple(shape), generator=torch.Generator().manual_seed(seed))


def _case_names() -> list[str]:
    return [c["name"] for c in _fixture()["cases"]]


def _load_official_case(case: dict) -> tuple[torch.nn.Module, dict]:
    """Our model for a fixture case: the official layout in a DataParallel-style dict, through
    the converter, into the D-DBPN builder with the overrides the converter reads off it."""
    official = seeded_state_dict(case["shapes"], case["weights_seed"])
    sd, overrides, layout = convert_state_dict({f"module.{k}": v for k, v in official.items()})
    assert layout == "official"
    model = sotazoo.create_model("ddbpn_x4", **overrides)
    load_into(model, sd, case["file"])
    return model.eval(), overrides


@pytest.mark.parametrize("i", range(len(_fixture()["cases"])), ids=_case_names())
def test_oracle_official_fixture(i):
    """The fixture holds the outputs of the official alterzero/DBPN-Pytorch modules (dbpn.py,
    dbpns.py, dbpn_v1.py at narrow widths, all three scales, RGB and luminance) run on seeded
    weights and inputs while developing. Ours, given the same weights through the converter,
    must agree to 1e-5 (float32; the same convolutions in the same order, so the residual is
    only the CPU kernels' summation order)."""
    case = _fixture()["cases"][i]
    model, overrides = _load_official_case(case)
    assert {k: overrides[k] for k in case["expect_overrides"]} == case["expect_overrides"]
    with torch.no_grad():
        ours = model(fixture_input(case["input_seed"], case["input_shape"]))
    expected = torch.tensor(case["output"]).reshape(case["output_shape"])
    assert ours.shape == expected.shape
    # outputs up to 1.4 (ulp 1.2e-7), stored to 8 digits: 7.5e-9 apart on the recording CPU's
    # kernels, 1.4e-6 on others (scalar ATen, MKL's compatible mode); ~80 ulps allowed
    within((ours - expected).abs().max().item(), 1e-5, case["name"])


def test_oracle_real_ddbpn_x4_key_layout():
    """The full-size official D-DBPN x4 (dbpn.py, base_filter=64, feat=256, T = 7): every key
    and shape, as the fixture recorded them from the official module, is ours."""
    layout = {k: list(v.shape) for k, v in _full("ddbpn_x4").state_dict().items()}
    assert layout == _fixture()["ddbpn_x4_layout"]


# ---------------------------------------------------------------- converter


def _official_file(tmp_path, case: dict) -> Path:
    """A synthetic checkpoint as the official main.py writes it: a DataParallel state dict."""
    sd = seeded_state_dict(case["shapes"], case["weights_seed"])
    path = tmp_path / f"{case['name']}.pth"
    torch.save({f"module.{k}": v for k, v in sd.items()}, path)
    return path


@pytest.mark.parametrize(("name", "i"), [("ddbpn_x4", 0), ("ddbpn_x8", 2), ("dbpn_s_x4", 3)])
def test_convert_official_file_through_create_model(tmp_path, name, i):
    """create_model(name, weights=path) reads the official layout, strips `module.`, reads the
    configuration off the shapes, and reproduces the official output."""
    case = _fixture()["cases"][i]
    model = sotazoo.create_model(name, weights=_official_file(tmp_path, case))
    assert not model.training
    for key, value in case["expect_overrides"].items():
        assert getattr(model.cfg, key) == value
    with torch.no_grad():
        ours = model(fixture_input(case["input_seed"], case["input_shape"]))
    expected = torch.tensor(case["output"]).reshape(case["output_shape"])
    assert (ours - expected).abs().max().item() <= 1e-5  # as in the fixture oracle


def test_convert_reads_the_full_size_configuration():
    """On the real D-DBPN x4 layout the converter asks for exactly the ddbpn_x4 defaults."""
    meta = {k: torch.empty(v, device="meta") for k, v in _fixture()["ddbpn_x4_layout"].items()}
    _, overrides, layout = convert_state_dict(meta)
    assert layout == "official"
    assert overrides == {
        "scale": 4,
        "in_chans": 3,
        "n0": 256,
        "nr": 64,
        "stages": 7,
        "dense": True,
        "recon_kernel": 3,
    }


def test_convert_rejects_other_layouts():
    with pytest.raises(WeightsError, match="unrecognised DBPN checkpoint layout.*head.0.weight"):
        convert_state_dict({"head.0.weight": torch.zeros(1), "tail.1.weight": torch.zeros(1)})
    shapes = dict(_fixture()["cases"][0]["shapes"])
    sd = {k: torch.empty(v, device="meta") for k, v in shapes.items()}
    # the *Pix units of base_networks.py (sub-pixel upsampling): no deconv in up1
    pix = {k.replace("up1.up_conv1.deconv", "up1.up_conv1.up.0.conv"): v for k, v in sd.items()}
    with pytest.raises(WeightsError, match=r"missing \['up1.up_conv1.deconv.weight'\]"):
        convert_state_dict(pix)
    bad_kernel = {**sd, "up1.up_conv1.deconv.weight": torch.empty(8, 8, 5, 5, device="meta")}
    with pytest.raises(WeightsError, match="kernel 5x5 .* matches no DBPN scale"):
        convert_state_dict(bad_kernel)
    # dbpn_iterative.py (DBPN-RES-MR64-3): 7 up units but a reconstruction over 3 maps
    recurrent = {**sd, "output_conv.conv.weight": torch.empty(3, 24, 3, 3, device="meta")}
    with pytest.raises(WeightsError, match="output_conv reads 24 channels.*DBPN-RES-MR64-3"):
        convert_state_dict(recurrent)


def test_convert_rejects_a_file_that_does_not_fit(tmp_path):
    case = _fixture()["cases"][0]
    sd = seeded_state_dict(case["shapes"], case["weights_seed"])
    del sd["up3.conv.act.weight"]
    path = tmp_path / "broken.pth"
    torch.save(sd, path)
    with pytest.raises(WeightsError, match=r"1 missing keys, e.g. \['up3.conv.act.weight'\]"):
        sotazoo.create_model("ddbpn_x4", weights=path)


# ---------------------------------------------------------------- export and bad input


def test_export_dbpn_mini_x4(tmp_path):
    from sotazoo.export import export_onnx

    r = export_onnx(dbpn_mini_x4().eval(), (3, 32, 32), tmp_path / "dbpn_mini_x4.onnx")
    # max_rel_diff: of max(1, max |output|), sotazoo.export's rule
    assert r.max_rel_diff <= 1e-4 and r.opset >= 17


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.rand(1, 1, 16, 16), "expected 3 input channels, got 1"),
        (torch.rand(3, 16, 16), r"4-D batch \(B, C, H, W\).*add a batch dimension"),
        (torch.randint(0, 255, (1, 3, 16, 16), dtype=torch.uint8), "floating-point tensor"),
        (torch.full((1, 3, 8, 8), float("nan")), "NaN"),
        (torch.tensor(float("inf")).expand(1, 3, 8, 8).clone(), "infinite|NaN"),
    ],
    ids=["channels", "rank", "dtype", "nan", "inf"],
)
def test_bad_input_is_a_clear_error(x, match):
    model = dbpn_mini_x4().eval()
    with pytest.raises(InputError, match=match):
        model(x)


def test_bad_input_luminance_model_wants_one_channel():
    with pytest.raises(InputError, match="expected 1 input channels, got 3"):
        sotazoo.create_model("dbpn_s_x4", n0=4, nr=2)(torch.rand(1, 3, 8, 8))


def test_bad_config_is_named():
    with pytest.raises(ValueError, match=r"scale must be one of \[2, 4, 8\], got 3"):
        sotazoo.create_model("ddbpn_x4", scale=3)
    with pytest.raises(TypeError, match="DBPNConfig takes"):
        sotazoo.create_model("ddbpn_x4", colour="red")


def test_repro_quick(tmp_path):
    from sotazoo.repro import run_repro, validate_result

    data = run_repro("dbpn", quick=True, out_dir=tmp_path, progress=False)
    assert data["quick"] and validate_result(data) == []
    assert (tmp_path / "dbpn.quick.json").is_file() and (tmp_path / "dbpn.quick.svg").is_file()
    assert [c["id"] for c in data["claims"]] == ["ddbpn_set5_x4_psnr", "ddbpn_set5_x8_psnr"]


def test_packaged_weights_reproduce_their_log():
    """Our demo weights, evaluated again on the held-out photographs, give the PSNR/SSIM their
    training log recorded, and beat bicubic upscaling there."""
    from sotazoo.data.sr_photos import held_out_pairs
    from sotazoo.train.sr import evaluate_sr

    w = sotazoo.get_weights("dbpn_mini_x4", "sotazoo")
    log_path = (Path(sotazoo.__file__).parent / w.packaged).with_name(
        "dbpn_mini_x4.sotazoo.log.json"
    )
    log = json.loads(log_path.read_text())
    assert log["sha256"] == w.sha256 and log["metrics"] == dict(w.metrics)
    model = sotazoo.create_model("dbpn_mini_x4", weights="sotazoo")
    got = evaluate_sr(model, held_out_pairs(4), 4)
    # The log keeps 3 decimals (PSNR) and 4 (SSIM); another CPU's float32 kernels move the
    # outputs by ~1e-7 of themselves, PSNR by ~1e-5 dB: the bounds are the log's rounding.
    assert got["psnr"] == pytest.approx(log["metrics"]["heldout_psnr_y"], abs=0.01)
    assert got["ssim"] == pytest.approx(log["metrics"]["heldout_ssim_y"], abs=0.001)
    assert got["psnr"] > log["metrics"]["bicubic_psnr_y"]
