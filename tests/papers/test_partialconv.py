"""Partial convolutions: the layer against NVIDIA's released `PartialConv2d` (a fixture its code
wrote, tests/data/partialconv/README.md), the properties the paper's argument rests on (an
all-ones mask is a plain convolution, hole pixels cannot change the output, holes shrink with
depth), and the U-Net's layer list, parameter count and input checks."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from sotazoo.errors import InputError
from sotazoo.papers.partialconv.layers import PartialConv2d
from sotazoo.papers.partialconv.model import composite, pconv_mini, pconv_unet, pconv_unet_256

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "partialconv" / "nvidia_pconv.npz"
CASES = ("single_k3_s1", "single_k7_s2_nobias", "multi_k5_s2", "multi_k3_s1_dil2",
         "multi_k3_s2_nobias")  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_the_layer_matches_nvidias_release_oracle(case):
    """Outputs within 1e-5 and new masks exactly: NVIDIA's layer adds the bias inside the
    convolution and subtracts it before rescaling, ours adds it after, so the two round the
    biased sum differently (float32, a few ulps of values of order 1, times ratios up to 49);
    the masks are counts of 0/1 values, exact in float32."""
    data = np.load(FIXTURE)
    cin, cout, k, s, p, d, bias, multi = (int(v) for v in data[f"{case}/config"])
    layer = PartialConv2d(cin, cout, k, s, p, d, bias=bool(bias), multi_channel=bool(multi))
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(data[f"{case}/weight"]))
        if bias:
            layer.bias.copy_(torch.from_numpy(data[f"{case}/bias"]))
        y, m = layer(torch.from_numpy(data[f"{case}/x"]), torch.from_numpy(data[f"{case}/mask"]))
    ref_y, ref_m = torch.from_numpy(data[f"{case}/y"]), torch.from_numpy(data[f"{case}/new_mask"])
    assert m.shape == ref_m.shape and torch.equal(m, ref_m)
    assert y.shape == ref_y.shape and (y - ref_y).abs().max() <= 1e-5
    assert (ref_m == 0).any() and (ref_y[ref_m.expand_as(ref_y) == 0] == 0).all()  # covered


def test_an_all_ones_mask_is_a_plain_convolution():
    torch.manual_seed(0)
    layer = PartialConv2d(3, 5, 3, 2, 1, multi_channel=True)
    x = torch.randn(2, 3, 12, 12)
    y, m = layer(x, torch.ones(2, 3, 12, 12))
    ref = F.conv2d(x, layer.weight, layer.bias, 2, 1)
    # inside, the ratio is 27 / (27 + 1e-8) = 1 in float32; on the zero-padded border the
    # count is below the window, so the ratio rescales there: only the interior equals
    assert torch.allclose(y[..., 1:, 1:], ref[..., 1:, 1:], atol=1e-6) and (m == 1).all()
    assert not torch.allclose(y[..., 0, :], ref[..., 0, :], atol=1e-3)  # border: renormalised


def test_hole_pixels_cannot_change_the_output_of_the_network():
    """The paper's argument: what is written into the hole does not matter. A plain convolution
    fed the same masked image and the mask as a channel fails this."""
    torch.manual_seed(0)
    net = pconv_mini().eval()
    image = torch.rand(2, 3, 64, 64)
    mask = torch.ones(2, 1, 64, 64)
    mask[:, :, 16:40, 20:50] = 0
    other = torch.where(mask.bool(), image, torch.rand(2, 3, 64, 64) * 100)  # new hole pixels
    missing = torch.where(mask.bool(), image, torch.tensor(float("nan")))  # or none at all
    with torch.no_grad():
        a, b, c = net(image, mask), net(other, mask), net(missing, mask.bool())
    assert torch.equal(a, b) and torch.equal(a, c)
    conv = torch.nn.Conv2d(4, 3, 3, padding=1)
    with torch.no_grad():
        assert not torch.equal(conv(torch.cat([image, mask], 1)),
                               conv(torch.cat([other, mask], 1)))  # fmt: skip


def test_holes_shrink_layer_after_layer_until_the_mask_is_all_ones():
    torch.manual_seed(0)
    net = pconv_mini().eval()
    mask = torch.ones(1, 3, 64, 64)
    mask[:, :, 16:48, 16:48] = 0  # a 32 px hole: 13, 5, 1, then 0 px wide at the four levels
    x, m = torch.rand(1, 3, 64, 64), mask
    holes = []
    with torch.no_grad():
        for block in net.encoder:
            x, m = block(x, m)
            holes.append(float((m == 0).float().mean()))
    assert holes == [(13 / 32) ** 2, (5 / 16) ** 2, (1 / 8) ** 2, 0.0]


def _hand_count(widths, kernels, in_chans=3) -> int:
    """Sec. 3.2 layer by layer: encoder conv i (cin x cout x k^2) with a bias on the first and
    BatchNorm (2 cout) on the others; decoder level i: a 3x3 conv from (w_i + skip_i) to skip_i
    channels, BatchNorm on all but the last, which has a bias."""
    n, cin = 0, in_chans
    for i, (w, k) in enumerate(zip(widths, kernels, strict=True)):
        n += cin * w * k * k + (w if i == 0 else 2 * w)
        cin = w
    skips = (in_chans, *widths[:-1])
    for i, (w, s) in enumerate(zip(widths, skips, strict=True)):
        n += (w + s) * s * 9 + (s if i == 0 else 2 * s)
    return n


@pytest.mark.parametrize("builder, widths, kernels", [
    (pconv_unet, (64, 128, 256) + (512,) * 5, (7, 5, 5) + (3,) * 5),
    (pconv_unet_256, (64, 128, 256) + (512,) * 4, (7, 5, 5) + (3,) * 4),
    (pconv_mini, (16, 32, 64, 64), (7, 5, 5, 3)),
])  # fmt: skip
def test_parameter_counts_are_the_layer_lists(builder, widths, kernels):
    with torch.device("meta"):
        net = builder()
    assert sum(p.numel() for p in net.parameters()) == _hand_count(widths, kernels)
    assert len(net.encoder) == len(net.decoder) == len(widths)


def test_the_network_runs_at_its_size_and_composites():
    torch.manual_seed(0)
    net = pconv_mini().eval()
    image, mask = torch.rand(2, 3, 64, 64), (torch.rand(2, 1, 64, 64) > 0.3).float()
    with torch.no_grad():
        out = net(image, mask)
    assert out.shape == image.shape and torch.isfinite(out).all()
    comp = composite(image, out, mask)
    assert torch.equal(comp[mask.expand_as(comp) == 1], image[mask.expand_as(image) == 1])
    assert torch.equal(comp[mask.expand_as(comp) == 0], out[mask.expand_as(out) == 0])


def test_bad_inputs_are_refused_with_the_reason():
    net = pconv_mini()
    with pytest.raises(InputError, match="multiples of 16"):
        net(torch.rand(1, 3, 40, 64), torch.ones(1, 1, 40, 64))
    with pytest.raises(InputError, match="does not match"):
        net(torch.rand(1, 3, 64, 64), torch.ones(1, 1, 32, 64))
    with pytest.raises(InputError, match="1 or 3 channels"):
        net(torch.rand(1, 3, 64, 64), torch.ones(1, 2, 64, 64))
    with pytest.raises(InputError, match="expected 3 input channels"):
        net(torch.rand(1, 4, 64, 64), torch.ones(1, 1, 64, 64))
    with pytest.raises(InputError, match="only 0 \\(hole\\) and 1"):
        net(torch.rand(1, 3, 64, 64), torch.full((1, 1, 64, 64), 0.5))
    with pytest.raises(InputError, match="known pixels"):
        net(torch.full((1, 3, 64, 64), float("nan")), torch.ones(1, 1, 64, 64))
    with pytest.raises(InputError, match="widths"):
        pconv_mini(widths=(8, 8))


# ---------------------------------------------------------------- masks and the loss


def test_irregular_masks_are_seeded_binary_and_reach_their_hole_ratio():
    from sotazoo.papers.partialconv.masks import hole_bin, hole_ratio, irregular_mask, mask_batch

    m = mask_batch(20, 64, seed=0, ratio=(0.2, 0.4))
    assert m.shape == (20, 1, 64, 64) and m.dtype == np.float32 and set(np.unique(m)) == {0, 1}
    assert np.array_equal(m, mask_batch(20, 64, seed=0, ratio=(0.2, 0.4)))
    ratios = [hole_ratio(x) for x in m]
    # at least the drawn target (>= 0.2); overshoot bounded by one stroke (<= 12 thick segments)
    assert min(ratios) >= 0.2 and max(ratios) < 0.75 and len(set(ratios)) > 10
    assert [hole_bin(r) for r in (0.01, 0.05, 0.1, 0.1001, 0.6, 0.61)] == [None, 0, 0, 1, 5, None]
    with pytest.raises(ValueError, match="ratio"):
        irregular_mask(64, np.random.default_rng(0), ratio=(0.5, 0.2))


def test_the_loss_terms_count_what_the_paper_says():
    from sotazoo.papers.partialconv.loss import WEIGHTS, dilated_hole, gram, pconv_loss

    target = torch.rand(2, 3, 16, 16)
    mask = torch.ones(2, 1, 16, 16)
    mask[:, :, 4:8, 4:8] = 0  # a 4x4 hole: 16 of 256 pixels
    total, terms = pconv_loss(target.clone(), target, mask)
    assert set(terms) == {"valid", "hole", "tv"} and terms["valid"] == terms["hole"] == 0
    assert terms["tv"] > 0 and total.item() == pytest.approx(0.1 * terms["tv"])  # a texture
    # an error of 1 on every pixel: valid and hole split it by area, over the image's elements
    _, terms = pconv_loss(target + 1, target, mask)
    assert terms["valid"] == pytest.approx(240 / 256) and terms["hole"] == pytest.approx(16 / 256)
    # TV sees I_comp only in the hole grown by one pixel (a 6x6 square)
    assert dilated_hole(mask)[0, 0].sum() == 36
    flat = torch.full_like(target, 0.5)
    out = flat.clone()
    out[:, :, 0, 0] += 5  # a known pixel: only L_valid sees it, TV never (outside P)
    _, terms = pconv_loss(out, flat, mask)
    assert terms["tv"] == terms["hole"] == 0 and terms["valid"] == pytest.approx(2 * 3 * 5 / 1536)
    # Gram matrices are normalised by K_p = 1 / (C H W): 20 products of 2 x 2, over 3 x 20
    assert torch.allclose(gram(torch.full((1, 3, 4, 5), 2.0)), torch.full((1, 3, 3), 4 / 3))
    # with features: perceptual and style terms appear, weighted as Sec. 3.3 gives
    feats = lambda x: [F.avg_pool2d(x, 2), F.avg_pool2d(x, 4)]  # noqa: E731 - a stand-in network
    total, terms = pconv_loss(torch.rand(2, 3, 16, 16), target, mask, features=feats)
    assert set(terms) == set(WEIGHTS) and (WEIGHTS["hole"], WEIGHTS["style_out"]) == (6.0, 120.0)
    assert total.item() == pytest.approx(sum(WEIGHTS[k] * v for k, v in terms.items()), rel=1e-5)


def test_the_conv_baseline_fills_the_holes_and_has_the_same_layers():
    """Table 1's "Conv": the same network with ordinary convolutions, holes set to 127.5 (0.5
    here). Its output is that of the filled image with no hole, and it has exactly as many
    parameters (a partial convolution has none of its own)."""
    torch.manual_seed(0)
    base, ours = pconv_mini(partial=False).eval(), pconv_mini()
    n = sum(p.numel() for p in base.parameters())
    assert n == sum(p.numel() for p in ours.parameters())
    assert not any(isinstance(m, PartialConv2d) for m in base.modules())
    image = torch.rand(1, 3, 64, 64)
    mask = torch.ones(1, 1, 64, 64)
    mask[..., 20:40, 20:40] = 0
    filled = torch.where(mask.bool(), image, torch.full_like(image, 0.5))
    with torch.no_grad():
        a = base(image, mask)
        b = base(filled, torch.ones_like(mask))  # the same input once the holes are filled
    assert torch.equal(a, b)


def test_repro_quick(tmp_path):
    """`sotazoo repro partialconv --quick`: the four claims, one seed, no verdict; every
    per-bin figure comes from patches of that bin."""
    from sotazoo.repro import run_repro, validate_result

    data = run_repro("partialconv", quick=True, out_dir=tmp_path, progress=False)
    assert data["quick"] and validate_result(data) == []
    assert [c["id"] for c in data["claims"]] == ["pconv_psnr_places2_10_20",
                                                 "pconv_psnr_places2_20_30",
                                                 "pconv_psnr_places2_30_40",
                                                 "pconv_l1_places2_30_40"]  # fmt: skip
    assert all(c["verdict"] == "inconclusive" for c in data["claims"])
    assert set(data["details"]["per_bin"]) == {"Conv (ordinary convolutions, holes filled)",
                                               "PConv"}  # fmt: skip


def test_hole_metrics_look_only_inside_the_hole():
    from sotazoo.papers.partialconv.repro import by_bin, hole_metrics

    target = torch.rand(2, 3, 32, 32)
    mask = torch.ones(2, 1, 32, 32)
    mask[0, :, :8, :] = 0  # 25% hole
    mask[1, :, :4, :] = 0  # 12.5% hole
    comp = target.clone()
    comp[:, :, 16:, :] = 0  # wrong, but only outside both holes
    m = hole_metrics(comp, target, mask)
    assert m["l1"] == [0.0, 0.0] and m["ratio"] == [0.25, 0.125] and min(m["psnr"]) >= 99
    comp = target.clone()
    comp[0, :, :8, :] += 0.1  # an error of 0.1 on image 0's hole
    m = hole_metrics(comp, target, mask)
    assert m["l1"][0] == pytest.approx(10, rel=1e-4) and m["psnr"][0] == pytest.approx(20, rel=1e-3)
    bins = by_bin(m)
    assert sorted(bins) == [1, 2] and bins[2]["n"] == 1 and bins[2]["l1"] == pytest.approx(10, rel=1e-4)


# ---------------------------------------------------------------- checkpoints


def _as_mmagic(net) -> dict:
    """Our state dict in mmagic's PConvInpaintor layout (the names its modules give, each
    partial convolution with its all-ones `weight_mask_updater` buffer)."""
    out = {}
    for key, value in net.state_dict().items():
        half, idx, part, rest = key.split(".", 3)
        name = f"generator.{half}.{half[:3]}{int(idx) + 1}.{part}.{rest}"
        out[name] = value.clone()
        if part == "conv" and rest == "weight":
            cout, cin, kh, kw = value.shape
            out[name.replace(".weight", ".weight_mask_updater")] = torch.ones(cout, cin, kh, kw)
    return out


def test_an_mmagic_checkpoint_loads_by_path_and_computes_the_same(tmp_path):
    """A file in mmagic's layout (a 3-level network, so small) loads through convert.py: the
    levels, widths and kernels come from the shapes, and the outputs are the original's."""
    import sotazoo
    from sotazoo.papers.partialconv.convert import convert_state_dict

    torch.manual_seed(0)
    ref = pconv_unet_256(widths=(8, 16, 16), kernels=(7, 5, 3), image_size=256).eval()
    for m in ref.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    sd = _as_mmagic(ref)
    assert "generator.decoder.dec1.conv.bias" in sd and "generator.encoder.enc2.bn.weight" in sd
    path = tmp_path / "pconv_mmagic.pth"
    torch.save({"meta": {"mmedit_version": "0.x"}, "state_dict": sd}, path)
    net = sotazoo.create_model("pconv_unet_256", weights=str(path)).eval()
    assert net.cfg.widths == (8, 16, 16) and net.cfg.kernels == (7, 5, 3)
    image, mask = torch.rand(1, 3, 64, 64), (torch.rand(1, 1, 64, 64) > 0.3).float()
    with torch.no_grad():
        assert torch.equal(net(image, mask), ref(image, mask))
    bad = dict(sd)
    bad["generator.encoder.enc1.conv.weight_mask_updater"] = torch.zeros(8, 3, 7, 7)
    with pytest.raises(Exception, match="not all ones"):
        convert_state_dict(bad)
    with pytest.raises(Exception, match="unrecognised partial-convolution checkpoint"):
        convert_state_dict({"backbone.conv1.weight": torch.zeros(1)})


def test_the_demo_recipe_runs_and_freezes_the_encoder_batchnorm_at_the_end(monkeypatch):
    """A smoke run of `sotazoo train pconv_mini`'s recipe (8 steps, the last one with frozen
    encoder BatchNorm): the log holds every loss
    and the held-out figures beside biharmonic's; after it, the encoder's BatchNorm is frozen
    (the paper's second stage) and the decoder's is not."""
    from sotazoo.papers.partialconv import train

    monkeypatch.setattr(train, "STEPS_PER_UNIT", 2)
    t = train.train_pconv_mini(seed=0, budget=4, progress=False)
    assert len(t.log["loss"]) == 8 and [h["step"] for h in t.log["heldout"]] == [8]
    assert {"heldout_hole_psnr", "biharmonic_hole_psnr", "heldout_hole_l1"} <= set(t.metrics)
    enc = [m for b in t.model.encoder for m in b.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    dec = [m for b in t.model.decoder for m in b.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert enc and not any(m.weight.requires_grad for m in enc)
    assert dec and all(m.weight.requires_grad for m in dec)


def test_packaged_weights_reproduce_their_log():
    """Our demo weights, evaluated again on the reproduction's 180 held-out crops, give the hole
    L1/PSNR/SSIM their training log recorded."""
    import json

    import sotazoo
    from sotazoo.papers.partialconv.train import _evaluate

    w = sotazoo.get_weights("pconv_mini", "sotazoo")
    log_path = (Path(sotazoo.__file__).parent / w.packaged).with_name("pconv_mini.sotazoo.log.json")
    log = json.loads(log_path.read_text())
    assert log["sha256"] == w.sha256 and log["metrics"] == dict(w.metrics)
    got = _evaluate(sotazoo.create_model("pconv_mini", weights="sotazoo"))
    # The log rounds to 4 decimals; another CPU's float32 kernels move the outputs by ~1e-7 of
    # themselves, the metrics by far less than that rounding.
    for k, v in got.items():
        assert v == pytest.approx(log["metrics"][k], abs=2e-4), k
