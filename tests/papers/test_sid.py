"""Learning to See in the Dark: the U-Net's layer list and parameter counts against the official
code counted by hand, the depth-to-space layout, the packing of Bayer and X-Trans mosaics as
train_Sony.py / train_Fuji.py pack them, the amplification cap, and the raw simulator's
statistics."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from sotazoo.errors import InputError
from sotazoo.papers.sid import raw
from sotazoo.papers.sid.model import sid_fuji, sid_mini, sid_sony


def _hand_count(cin: int, cout: int) -> int:
    """network() of the official scripts layer by layer: g_conv1..5 (two 3x3 convs with biases
    each, 32 to 512 channels), four bias-free 2x2 transposed convs each halving the channels,
    g_conv6..9 (two 3x3 convs on the concatenation), g_conv10 (1x1 to cout)."""
    w, n, c = (32, 64, 128, 256, 512), 0, cin
    for k in w:
        n += (c * 9 + 1) * k + (k * 9 + 1) * k
        c = k
    for lo in (256, 128, 64, 32):
        n += 4 * (2 * lo) * lo + (2 * lo * 9 + 1) * lo + (lo * 9 + 1) * lo
    return n + (32 + 1) * cout


@pytest.mark.parametrize("builder, cin, cout", [(sid_sony, 4, 12), (sid_fuji, 9, 27)])
def test_parameter_counts_are_the_official_layer_lists(builder, cin, cout):
    with torch.device("meta"):
        net = builder()
    n = sum(p.numel() for p in net.parameters())
    assert n == _hand_count(cin, cout)
    assert all(m.bias is None for m in net.up)  # the official deconv filters have no bias
    if builder is sid_sony:
        assert round(n / 1e6, 2) == 7.76  # the card's unet_params claim


def test_the_network_maps_a_packed_patch_to_full_resolution_rgb():
    torch.manual_seed(0)
    for builder, cin, s in ((sid_mini, 4, 2), (lambda: sid_fuji(widths=(4, 8, 16)), 9, 3)):
        net = builder().eval()
        with torch.no_grad():
            out = net(torch.rand(1, cin, 32, 48))
        assert out.shape == (1, 3, 32 * s, 48 * s)
    with pytest.raises(InputError, match="multiples of 16"):
        sid_mini()(torch.rand(1, 4, 40, 48))
    with pytest.raises(InputError, match="expected 4 input channels"):
        sid_mini()(torch.rand(1, 3, 32, 32))


def test_depth_to_space_is_pixel_shuffle_and_tf_order_is_a_channel_permutation():
    """Ours: channel c * s^2 + i * s + j lands on pixel (i, j) of colour c (CRD). TensorFlow's
    depth_to_space reads (i * s + j) * C + c (DCR): a permutation of the last conv's outputs."""
    s, c = 2, 3
    x = torch.arange(c * s * s, dtype=torch.float32).reshape(1, c * s * s, 1, 1)
    ours = F.pixel_shuffle(x, s)[0]
    for col in range(c):
        for i in range(s):
            for j in range(s):
                assert ours[col, i, j] == col * s * s + i * s + j
    # TF's layout of the same image, computed by its definition (NHWC, DCR)
    tf_channels = [None] * (c * s * s)
    for col in range(c):
        for i in range(s):
            for j in range(s):
                tf_channels[(i * s + j) * c + col] = ours[col, i, j]
    perm = [int(v) for v in tf_channels]  # TF channel k holds our channel perm[k]
    assert sorted(perm) == list(range(12)) and perm[:4] == [0, 4, 8, 1]


def _coded_mosaic(h: int, w: int, black: int) -> np.ndarray:
    """A mosaic whose value names its site: black + 1 + row * w + col (14-bit for small h, w)."""
    return (black + 1 + np.arange(h * w).reshape(h, w)).astype(np.uint16)


def _sites(packed: np.ndarray, w: int, black: int, white: int) -> np.ndarray:
    return np.rint(packed * (white - black)).astype(int) - 1  # back to row * w + col


def test_bayer_packing_takes_r_g_b_g_and_unpacks_back():
    b, wh = raw.SONY["black"], raw.SONY["white"]
    mosaic = _coded_mosaic(4, 6, b)
    packed = raw.pack_bayer(mosaic)
    assert packed.shape == (4, 2, 3) and packed.dtype == np.float32
    sites = _sites(packed, 6, b, wh)
    # channel k at (0, 0) is the first cell's site (0,0), (0,1), (1,1), (1,0): train_Sony.py
    assert [int(sites[k, 0, 0]) for k in range(4)] == [0, 1, 7, 6]
    normalised = np.maximum(mosaic.astype(np.float32) - b, 0) / (wh - b)
    assert np.array_equal(raw.unpack_bayer(packed), normalised)
    assert raw.pack_bayer(np.full((2, 2), 100)).max() == 0  # below the black level: 0
    with pytest.raises(InputError, match="even sides"):
        raw.pack_bayer(np.zeros((3, 4)))


def test_xtrans_packing_uses_every_site_of_the_6x6_cell_once():
    """The 9 channels of train_Fuji.py's pack_raw read 36 samples per 6x6 cell: each of the
    cell's 36 sites exactly once, so the packing loses nothing. Spot checks from the official
    lines: channel 0 at (1, 1) is site (3, 3); channel 3 at (0, 1) is (2, 5); channel 8 is
    (2, 1) of each 3x3 block."""
    b, wh = raw.FUJI["black"], raw.FUJI["white"]
    mosaic = _coded_mosaic(12, 13, b)  # 13 columns: cut to 12
    packed = raw.pack_xtrans(mosaic)
    assert packed.shape == (9, 4, 4)
    sites = _sites(packed, 13, b, wh)
    rc = lambda v: (v // 13, v % 13)  # noqa: E731
    first = [rc(int(sites[k, oy, ox])) for k in range(5) for oy in (0, 1) for ox in (0, 1)]
    first += [rc(int(sites[k, oy, ox])) for k in range(5, 9) for oy in (0, 1) for ox in (0, 1)]
    assert sorted(first) == [(r, c) for r in range(6) for c in range(6)]
    assert rc(int(sites[0, 1, 1])) == (3, 3) and rc(int(sites[3, 0, 1])) == (2, 5)
    assert rc(int(sites[8, 1, 1])) == (5, 4)


def test_amplification_caps_the_ratio_at_300_and_clips_at_1():
    packed = np.full((4, 2, 2), 0.001, dtype=np.float32)
    assert raw.amplify(packed, 100)[0, 0, 0] == pytest.approx(0.1)
    assert raw.amplify(packed, 1000)[0, 0, 0] == pytest.approx(0.3)  # min(1000, 300)
    assert raw.amplify(np.full((4, 2, 2), 0.01, np.float32), 300).max() == 1.0
    with pytest.raises(InputError, match="positive"):
        raw.amplify(packed, 0)


def test_the_simulated_short_exposure_has_the_expected_signal_and_noise():
    """On a flat grey scene: the mean above black is the linear signal divided by the white
    balance gain and the ratio, and the variance is shot noise (gain x signal) plus read noise
    squared, within sampling error (40,000 pixels per site: the mean's standard error is
    below 1% of it, the variance's about 1%)."""
    rng = np.random.default_rng(0)
    grey = np.full((400, 400, 3), 128, dtype=np.uint8)
    out = raw.simulate_short_exposure(grey, 100, rng, gain=4.0, read_noise=6.0)
    assert out.dtype == np.uint16 and out.shape == (400, 400)
    lin = raw.srgb_to_linear(np.array(128 / 255))
    for (r, c), gain_wb in zip(((0, 0), (0, 1), (1, 1)), (2.0, 1.0, 1.6), strict=True):
        site = out[r::2, c::2].astype(np.float64) - raw.SONY["black"]
        signal = lin / gain_wb * (raw.SONY["white"] - raw.SONY["black"]) / 100
        assert site.mean() == pytest.approx(signal, rel=0.02)
        # + 1/12: the rounding to integers
        assert site.var() == pytest.approx(4.0 * signal + 36 + 1 / 12, rel=0.05)
    assert raw.linear_to_srgb(raw.srgb_to_linear(np.linspace(0, 1, 11))) == pytest.approx(
        np.linspace(0, 1, 11), abs=1e-12)  # fmt: skip


# ---------------------------------------------------------------- the official checkpoints

DATA = Path(__file__).resolve().parents[1] / "data" / "sid"


def test_tensorflow_oracle_official_layout_checkpoint_computes_the_same():
    """tests/data/sid/tf_tiny: a TensorFlow checkpoint in train_Sony.py's variable names (the
    unnamed deconv filters included, with Adam slots), at a sixteenth of the widths, and the
    output TensorFlow's own ops gave on a packed input (make_tf.py). Loaded through
    convert.py with no TensorFlow: the widths come from the shapes, and the output agrees
    within 1e-4 (float32 convolutions summed in other orders by oneDNN and PyTorch, through 18
    layers, on outputs of order 1)."""
    import sotazoo

    io = np.load(DATA / "tf_tiny_io.npz")
    net = sotazoo.create_model("sid_sony", weights=str(DATA / "tf_tiny" / "model.ckpt.index"))
    assert net.cfg.widths == (2, 4, 8, 16, 32) and net.cfg.scale == 2
    with torch.no_grad():
        got = net.eval()(torch.from_numpy(io["input"]))
    want = torch.from_numpy(io["output"])
    assert got.shape == want.shape == (1, 3, 64, 96)
    assert (got - want).abs().max() <= 1e-4 * max(1.0, float(want.abs().max()))


def test_the_converter_refuses_what_it_does_not_know():
    from sotazoo.papers.sid.convert import convert_state_dict
    from sotazoo.tfcheckpoint import read_tf_checkpoint

    sd = dict(read_tf_checkpoint(DATA / "tf_tiny" / "model.ckpt.index"))
    with pytest.raises(Exception, match="unexpected variable 'g_conv11_x'"):
        convert_state_dict({**sd, "g_conv11_x": np.zeros(1)})
    with pytest.raises(Exception, match="unrecognised SID checkpoint"):
        convert_state_dict({"conv1.weight": np.zeros(1)})


# ---------------------------------------------------------------- the reproduction


def test_the_traditional_render_inverts_the_simulator_without_noise():
    """The pipeline arm's render of a noise-free, unamplified simulation gives the photograph
    back: bilinear demosaicing is exact on flat colour, so a flat crop survives to within the
    8-bit and 14-bit rounding (2 levels)."""
    from sotazoo.papers.sid.repro import render_srgb, space_to_depth

    flat = np.zeros((16, 16, 3), dtype=np.uint8) + np.array([200, 120, 60], dtype=np.uint8)
    rng = np.random.default_rng(0)
    mosaic = raw.simulate_short_exposure(flat, 1, rng, gain=1e-9, read_noise=0.0)
    out = render_srgb(raw.amplify(raw.pack_bayer(mosaic), 1))
    assert out.shape == (16, 16, 3) and np.abs(out.astype(int) - flat).max() <= 2
    s2d = space_to_depth(out)
    assert s2d.shape == (12, 8, 8) and s2d.max() <= 1


def test_repro_quick(tmp_path):
    from sotazoo.repro import run_repro, validate_result

    data = run_repro("sid", quick=True, out_dir=tmp_path, progress=False)
    assert data["quick"] and validate_result(data) == []
    assert [c["id"] for c in data["claims"]] == ["sony_psnr", "sony_ssim"]
    assert all(c["verdict"] == "inconclusive" for c in data["claims"])
    assert set(data["details"]["pipeline"]["h"]) == {"100", "250", "300"}


def test_the_demo_graph_packs_and_amplifies_as_the_official_code():
    """`RawToSRGB` on a mosaic of digital numbers above black equals the network on
    `amplify(pack_bayer(mosaic + black), ratio)` clipped to [0, 1], the ratio capped at 300 in
    the graph too."""
    from sotazoo.papers.sid.demo import RawToSRGB

    torch.manual_seed(0)
    net = sid_mini(widths=(4, 8, 16)).eval()
    mosaic = np.random.default_rng(0).integers(0, 256, (2, 32, 32)).astype(np.float32)
    with torch.no_grad():
        for ratio in (100.0, 250.0, 1000.0):
            got = RawToSRGB(net)(torch.from_numpy(mosaic)[:, None], torch.tensor([ratio] * 2))
            packed = np.stack([raw.amplify(raw.pack_bayer(m + raw.SONY["black"]), ratio)
                               for m in mosaic])  # fmt: skip
            want = net(torch.from_numpy(packed)).clamp(0, 1)
            # the same float32 operations in another order (divide then multiply): 1 ulp
            assert (got - want).abs().max() <= 1e-6, ratio


def test_darken_follows_the_simulator_statistics_and_is_seeded():
    """The page's darkening of a flat grey photograph: at each RGGB site the mean is the
    simulator's signal (within 4 standard errors of the mean) and the variance its shot plus
    read noise (within 10 %: 4096 samples per site give a relative standard error of ~2 %);
    integers in [0, 255]; the same seed gives the same mosaic."""
    from sotazoo.papers.sid.demo import GAIN, READ_NOISE, darken

    img = np.full((3, 128, 128), 0.6)
    ratio = 100
    d = darken(img, ratio)
    assert d.dtype == np.float32 and np.array_equal(d, np.round(d)) and 0 <= d.min() <= d.max() <= 255
    assert np.array_equal(d, darken(img, ratio)) and not np.array_equal(d, darken(img, ratio, 1))
    linear = raw.srgb_to_linear(np.array(0.6))
    for (y, x), c in (((0, 0), 0), ((0, 1), 1), ((1, 1), 2)):
        signal = linear / raw.WHITE_BALANCE[c] * (raw.SONY["white"] - raw.SONY["black"]) / ratio
        var = signal * GAIN + READ_NOISE**2
        site = d[y::2, x::2].astype(np.float64)
        assert abs(site.mean() - signal) <= 4 * np.sqrt(var / site.size), (y, x)
        assert site.var() == pytest.approx(var + 1 / 12, rel=0.1), (y, x)  # + rounding's 1/12
    with pytest.raises(InputError, match="even sides"):
        darken(np.zeros((3, 7, 8)), 100)
    with pytest.raises(InputError, match="positive"):
        darken(img, 0)


def test_demo_samples_are_greyscale_mosaics_above_black(tmp_path):
    """The bundled samples: 128x128 8-bit greyscale PNGs holding the simulated mosaics minus the
    black level, with their ratios; each sample's brightest clean value at its ratio amplifies
    past 1, so the 8 bits clip nothing the network sees."""
    from PIL import Image

    from sotazoo.papers.sid import demo

    got = demo.samples(tmp_path)
    assert [s["ratio"] for s in got] == [100, 250, 300]
    for s, (_, _, mosaic) in zip(got, demo._mosaics(), strict=True):
        im = Image.open(s["path"])
        assert im.mode == "L" and im.size == (demo.SIZE, demo.SIZE)
        assert np.array_equal(np.asarray(im), mosaic) and 0 < mosaic.mean() < 60
        assert 255 * s["ratio"] / (raw.SONY["white"] - raw.SONY["black"]) > 1


def test_pad_to_reflects_to_multiples_of_16():
    packed = np.arange(4 * 20 * 33, dtype=np.float32).reshape(4, 20, 33)
    out, (h, w) = raw.pad_to(packed)
    assert out.shape == (4, 32, 48) and (h, w) == (20, 33)
    assert np.array_equal(out[:, :20, :33], packed) and np.array_equal(out[:, 20, :33], packed[:, 18])
    with pytest.raises(InputError, match="too small"):
        raw.pad_to(np.zeros((4, 4, 4)))


class _FakeRaw:
    """rawpy's RawPy as read_raw uses it, on a synthetic mosaic."""

    def __init__(self, mosaic, pattern, desc=b"RGBG"):
        self.raw_image_visible, self.raw_pattern, self.color_desc = mosaic, pattern, desc
        self.black_level_per_channel, self.white_level = [512, 512, 512, 512], 16383

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_read_raw_turns_any_bayer_order_into_rggb(monkeypatch):
    """A GRBG sensor (green first) is cropped by one column to start at red; RGGB is kept as it
    is (trimmed to even sides); an X-Trans pattern and an unreadable file are refused by name;
    without rawpy the error says how to install it."""
    import sys
    import types

    base = np.arange(7 * 9, dtype=np.uint16).reshape(7, 9)
    fake = types.ModuleType("rawpy")
    fake.LibRawError = type("LibRawError", (Exception,), {})
    files = {
        "rggb.arw": _FakeRaw(base, np.array([[0, 1], [3, 2]])),
        "grbg.nef": _FakeRaw(base, np.array([[1, 0], [2, 3]])),
        "xtrans.raf": _FakeRaw(base, np.zeros((6, 6), dtype=int)),
    }

    def imread(path):
        if path not in files:
            raise fake.LibRawError("unsupported file format")
        return files[path]

    fake.imread = imread
    monkeypatch.setitem(sys.modules, "rawpy", fake)
    m, black, white = raw.read_raw("rggb.arw")
    assert np.array_equal(m, base[:6, :8]) and (black, white) == (512, 16383)
    m, _, _ = raw.read_raw("grbg.nef")
    assert np.array_equal(m, base[:6, 1:9])  # column 1 of row 0 is the red site
    with pytest.raises(InputError, match="not a 2x2 Bayer"):
        raw.read_raw("xtrans.raf")
    with pytest.raises(InputError, match="not a raw file rawpy can read"):
        raw.read_raw("holiday.jpg")
    monkeypatch.setitem(sys.modules, "rawpy", None)
    with pytest.raises(InputError, match="pip install rawpy"):
        raw.read_raw("rggb.arw")


def test_monai_reference_is_a_plain_unet_of_sids_size():
    """`monai:basicunet`: 7,778,188 parameters (MONAI's layers, counted), within 0.3 % of SID's
    7,760,268, mapping a packed patch to the same full-resolution RGB shape."""
    pytest.importorskip("monai")
    from sotazoo.bench import create_reference

    ref = create_reference("monai:basicunet").eval()
    n = sum(p.numel() for p in ref.parameters())
    assert n == 7_778_188 and abs(n / 7_760_268 - 1) < 0.003
    with torch.no_grad():
        assert ref(torch.zeros(1, 4, 32, 32)).shape == (1, 3, 64, 64)
    with pytest.raises(Exception, match="unknown option"):
        create_reference("monai:basicunet:depth=3")
    with pytest.raises(Exception, match="no paper provides a MONAI network named 'unetr'"):
        create_reference("monai:unetr")


def test_the_demo_recipe_runs_and_logs_the_held_out_scores(monkeypatch):
    """A smoke run of `sotazoo train sid_mini`'s recipe (4 steps, the pipeline replaced by a
    stand-in): the log holds every loss and the held-out scores, the rate divided by 10 at half."""
    from sotazoo.papers.sid import repro, train

    monkeypatch.setattr(train, "STEPS_PER_UNIT", 2)
    monkeypatch.setattr(repro, "pipeline", lambda cfg: {"psnr": 20.0, "ssim": 0.5})
    t = train.train_sid_mini(seed=0, budget=2, progress=False)
    assert len(t.log["loss"]) == 4 and [h["step"] for h in t.log["heldout"]] == [4]
    assert set(t.metrics) == {"heldout_psnr", "heldout_ssim", "pipeline_nlm_psnr",
                              "pipeline_nlm_ssim"}  # fmt: skip
    assert 0 < t.metrics["heldout_psnr"] < 40


def test_packaged_weights_reproduce_their_log():
    """Our demo weights, scored again on the reproduction's 180 held-out exposures, give the
    PSNR/SSIM their training log recorded, above the pipeline + non-local means there."""
    import json

    import sotazoo
    from sotazoo.papers.sid.train import evaluate

    w = sotazoo.get_weights("sid_mini", "sotazoo")
    log_path = (Path(sotazoo.__file__).parent / w.packaged).with_name("sid_mini.sotazoo.log.json")
    log = json.loads(log_path.read_text())
    assert log["sha256"] == w.sha256 and log["metrics"] == dict(w.metrics)
    got = evaluate(sotazoo.create_model("sid_mini", weights="sotazoo"))
    # The log rounds to 4 decimals; another CPU's float32 kernels move the outputs by ~1e-7 of
    # themselves, the metrics by far less than that rounding.
    for k, v in got.items():
        assert v == pytest.approx(log["metrics"][k], abs=2e-4), k
    assert got["heldout_psnr"] > log["metrics"]["pipeline_nlm_psnr"]
