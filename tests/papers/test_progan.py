"""ProGAN: parameter counts against Table 2 and a count by hand, the layers of §3-§4 against hand
computations (equalised lr, pixelnorm, minibatch stddev), the fade-in and growing, the WGAN-GP
loss with its drift term on critics whose gradients are known, the schedule against the official
lod formula, the EMA, bad input and export."""

import copy
import functools
import json
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import sotazoo
from sotazoo.bench import count_params
from sotazoo.cards import load_card
from sotazoo.errors import InputError, WeightsError
from sotazoo.papers.progan.convert import convert_state_dict
from sotazoo.papers.progan.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
)
from sotazoo.papers.progan.method import (
    GrowthSchedule,
    adam,
    critic_loss,
    ema_update,
    fade_reals,
    generator_loss,
    gradient_penalty,
    lr_rampup,
)
from sotazoo.papers.progan.model import (
    progan_1024,
    progan_1024_discriminator,
    progan_mini,
    progan_mini_discriminator,
)
from sotazoo.weights import load_into

from .oracle import within

PAPER_PARAMS = 23.1e6  # Table 2 (App. A.1): "Total trainable parameters 23.1M", G and D alike


def _nf(stage: int) -> int:
    return min(8192 // 2**stage, 512)  # official networks.py `nf`, fmap_base 8192, fmap_max 512


def _conv(i: int, o: int, k: int) -> int:
    return i * o * k * k + o


def _g_by_hand(z: int = 512, levels: int = 8) -> int:
    """Table 2's generator: dense ("Conv 4x4") with one bias per channel, conv 3x3, then two 3x3
    convs per doubling, and the 1x1 toRGB of the final resolution."""
    n = z * 16 * _nf(1) + _nf(1) + _conv(_nf(1), _nf(1), 3)
    for k in range(1, levels + 1):
        n += _conv(_nf(k), _nf(k + 1), 3) + _conv(_nf(k + 1), _nf(k + 1), 3)
    return n + _conv(_nf(levels + 1), 3, 1)


def _d_by_hand(levels: int = 8) -> int:
    """Table 2's discriminator: fromRGB, two 3x3 convs per halving, then mbstd (+1 channel),
    conv 3x3, dense ("Conv 4x4") to nf(0) and dense to 1."""
    n = _conv(3, _nf(levels + 1), 1)
    for k in range(levels, 0, -1):
        n += _conv(_nf(k + 1), _nf(k + 1), 3) + _conv(_nf(k + 1), _nf(k), 3)
    n += _conv(_nf(1) + 1, _nf(1), 3)
    return n + _conv(16 * _nf(1), _nf(0), 1) + _conv(_nf(0), 1, 1)


def test_param_count_1024_against_table_2_and_by_hand():
    """Both networks at 1024x1024 are within 0.5% of Table 2's 23.1M and exactly the count of
    the official layer shapes worked out by hand; the card declares that count."""
    with torch.device("meta"):
        g, d = progan_1024(), progan_1024_discriminator()
    n_g, n_d = count_params(g), count_params(d)
    assert n_g == _g_by_hand() and n_d == _d_by_hand()
    assert abs(n_g - PAPER_PARAMS) / PAPER_PARAMS < 0.005, n_g
    assert abs(n_d - PAPER_PARAMS) / PAPER_PARAMS < 0.005, n_d
    entry = next(m for m in load_card("progan").models if m.name == "progan_1024")
    assert entry.params == n_g and entry.input_size == (512,)


def test_param_count_widths_per_resolution():
    """Table 2's widths: 512 from 4x4 to 32x32, then 256, 128, 64, 32, 16 at 1024x1024."""
    with torch.device("meta"):
        g = progan_1024()
    widths = [g.blocks[0].conv.weight.shape[0]] + [b.conv1.weight.shape[0] for b in g.blocks[1:]]
    assert widths == [512, 512, 512, 512, 256, 128, 64, 32, 16]


def test_equalized_lr_scale_and_init():
    """§4.1: weights drawn from N(0, 1), scaled at run time by the He constant sqrt(2 / fan_in),
    so a unit-variance input gives pre-activations of variance 2 at any width."""
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 32, 3)
    assert conv.scale == pytest.approx(math.sqrt(2 / (64 * 9)))
    w = conv.weight.detach()
    assert abs(w.mean().item()) < 0.03 and abs(w.std().item() - 1) < 0.03
    y = conv(torch.randn(16, 64, 12, 12))[..., 1:-1, 1:-1]  # away from the zero padding
    assert y.var().item() == pytest.approx(2.0, rel=0.1)
    lin = EqualizedLinear(512, 256)
    assert lin.scale == pytest.approx(math.sqrt(2 / 512))
    # the official gains: toRGB 1, G's first dense sqrt(2)/4 (networks.py G_paper)
    g = progan_mini()
    assert g.rgb["16x16"].scale == pytest.approx(1 / math.sqrt(32))
    assert g.blocks[0].dense.scale == pytest.approx(math.sqrt(2) / 4 / math.sqrt(32))
    plain = EqualizedConv2d(64, 32, 3, use_wscale=False)  # the ablation: He init, no scaling
    assert plain.scale == 1.0 and plain.weight.std().item() == pytest.approx(
        math.sqrt(2 / 576), rel=0.05
    )


def test_pixelnorm_gives_unit_rms_over_channels():
    """§4.2, Eq. 2: after pixelnorm the feature vector at every pixel has RMS 1."""
    x = torch.randn(3, 16, 5, 5) * torch.rand(3, 1, 5, 5) * 10
    rms = PixelNorm()(x).square().mean(dim=1).sqrt()
    assert torch.allclose(rms, torch.ones_like(rms), atol=1e-5)  # 16 squares, rsqrt: a few ulps


def test_minibatch_stddev_adds_one_channel_equal_to_a_hand_computation():
    """§3 with the official grouping: batch 8, groups of 4, sample n in group n mod 2."""
    x = torch.randn(8, 3, 2, 2, dtype=torch.float64)
    y = MinibatchStdDev(4)(x)
    assert y.shape == (8, 4, 2, 2) and torch.equal(y[:, :3], x)
    for n in range(8):
        members = [x[i] for i in range(8) if i % 2 == n % 2]
        mean = sum(members) / 4
        std = (sum((m - mean) ** 2 for m in members) / 4 + 1e-8).sqrt()
        assert torch.allclose(y[n, 3], torch.full((2, 2), std.mean().item(), dtype=x.dtype))
    # a batch smaller than the group is one group
    small = MinibatchStdDev(4)(x[:2])
    want = ((x[0] - x[1]).abs() / 2).square().add(1e-8).sqrt().mean()
    assert torch.allclose(small[:, 3], want.expand(2, 2, 2))


def test_mbstd_ablation_removes_the_extra_channel():
    d = progan_mini_discriminator(mbstd_group_size=0)
    assert d.blocks[0].conv.weight.shape[1] == 64  # nf(1) of the mini config, no +1


def _grown_pair():
    torch.manual_seed(0)
    g, d = progan_mini(stage=0), progan_mini_discriminator(stage=0)
    for p in [*g.parameters(), *d.parameters()]:  # non-zero biases, so every path shows
        torch.nn.init.normal_(p)
    return g, d


def test_fade_in_alpha_0_is_the_upsampled_old_output_and_alpha_1_the_new_block():
    """Fig. 2: at alpha = 0 the grown G outputs the nearest-upsampled image of the old network;
    at alpha = 1 it is the new block alone (a network built at that stage with the same
    weights); in between the linear blend. D mirrors it with average pooling."""
    g, d = _grown_pair()
    z = torch.randn(4, 32)
    x = torch.randn(4, 1, 8, 8)  # progan_mini is grey (the digits)
    with torch.no_grad():
        old_img, old_score = g(z), d(F.avg_pool2d(x, 2))
        g.grow()
        d.grow()
        assert g.alpha == 0.0 and d.alpha == 0.0 and g(z).shape == (4, 1, 8, 8)
        assert torch.allclose(g(z), old_img.repeat_interleave(2, 2).repeat_interleave(2, 3))
        assert torch.allclose(d(x), old_score, atol=1e-5)  # the same ops: equal (measured)
        g.end_fade()
        d.end_fade()
        fixed_g, fixed_d = progan_mini(stage=1), progan_mini_discriminator(stage=1)
        fixed_g.load_state_dict(g.state_dict())  # strict: the same keys as a stage-1 network
        fixed_d.load_state_dict(d.state_dict())
        new_img = fixed_g(z)
        assert torch.equal(g(z), new_img) and torch.equal(d(x), fixed_d(x))
        assert not torch.allclose(new_img, old_img.repeat_interleave(2, 2).repeat_interleave(2, 3))


def test_fade_in_midway_is_the_linear_blend():
    g, _ = _grown_pair()
    z = torch.randn(2, 32)
    with torch.no_grad():
        g.grow()
        a0, a1 = g(z, alpha=0.0), g(z, alpha=1.0)
        # lerp vs the blend written out: an ulp or two of images of a few units
        assert torch.allclose(g(z, alpha=0.3), 0.7 * a0 + 0.3 * a1, atol=1e-5)


def test_growing_keeps_the_old_layers_weights():
    g, d = _grown_pair()
    for net in (g, d):
        before = {k: v.clone() for k, v in net.state_dict().items()}
        net.grow()
        after = net.state_dict()
        assert set(before) < set(after)
        assert all(torch.equal(before[k], after[k]) for k in before)
        net.grow()
        assert net.resolution == 16 and list(net.rgb) == ["8x8", "16x16"]
        with pytest.raises(ValueError, match="cannot grow past stage 2"):
            net.grow()


def test_gradient_penalty_on_a_linear_critic():
    """D(x) = <w, x> + b has gradient w everywhere, so the penalty is (||w|| - 1)^2 for every
    sample; its gradient with respect to w is 2 (||w|| - 1) w / ||w|| (create_graph works)."""
    w = torch.tensor([[[[3.0, 0.0], [0.0, 4.0]]]], requires_grad=True)  # ||w|| = 5

    def critic(x):
        return (x * w).sum(dim=(1, 2, 3)) + 0.5

    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    gp = gradient_penalty(critic, real, fake)
    assert torch.allclose(gp, torch.full((3,), 16.0))
    gp.mean().backward()
    assert torch.allclose(w.grad, 2 * 4 * w.detach() / 5)
    target = gradient_penalty(critic, real, fake, target=750.0)  # §6.5's CIFAR-10 gamma
    assert torch.allclose(target, torch.full((3,), (5 - 750) ** 2 / 750**2))


def test_gradient_penalty_is_taken_at_the_interpolates():
    """D(x) = ||x||^2 / 2 has gradient x: the norm is that of lerp(real, fake, u)."""
    real, fake = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    u = torch.tensor([0.25, 0.9])
    gp = gradient_penalty(lambda x: x.square().sum(dim=(1, 2, 3)) / 2, real, fake, mix=u)
    norms = torch.stack([(real[i] + u[i] * (fake[i] - real[i])).norm() for i in range(2)])
    assert torch.allclose(gp, (norms - 1) ** 2)


def test_critic_loss_with_drift_term_by_hand():
    """App. A.1: L_D = E[D(fake)] - E[D(real)] + 10 GP + 0.001 E[D(real)^2], on a linear critic."""
    w = torch.tensor([0.6, 0.8]).reshape(1, 2, 1, 1)  # ||w|| = 1: the penalty is 0

    def critic(x):
        return (x * w).sum(dim=(1, 2, 3)) + 2.0

    real = torch.tensor([[1.0, 2.0], [3.0, -1.0]]).reshape(2, 2, 1, 1)
    fake = torch.tensor([[0.0, 1.0], [-1.0, 0.0]]).reshape(2, 2, 1, 1)
    d_real = [0.6 + 1.6 + 2, 1.8 - 0.8 + 2]  # 4.2, 3.0
    d_fake = [0.8 + 2, -0.6 + 2]  # 2.8, 1.4
    terms = critic_loss(critic, real, fake)
    assert terms["wasserstein"].item() == pytest.approx((sum(d_fake) - sum(d_real)) / 2)
    # (||w|| - 1)^2 with ||w|| = 1 up to an ulp of float32: ~1e-14
    assert terms["gradient_penalty"].item() == pytest.approx(0.0, abs=1e-10)
    assert terms["drift"].item() == pytest.approx((4.2**2 + 3.0**2) / 2)
    want = (2.8 + 1.4 - 4.2 - 3.0) / 2 + 0.001 * (4.2**2 + 3.0**2) / 2  # the numbers, written out
    assert terms["loss"].item() == pytest.approx(want)
    assert generator_loss(critic, fake)["loss"].item() == pytest.approx(-sum(d_fake) / 2)


def _official_lod(kimg: float, res_log2: int, train: float, trans: float) -> float:
    """train.py TrainingSchedule of the official TF code, lod_initial_resolution = 4."""
    phase_dur = train + trans
    phase_idx = int(math.floor(kimg / phase_dur))
    phase_kimg = kimg - phase_idx * phase_dur
    lod = res_log2 - 2 - phase_idx - max(phase_kimg - train, 0.0) / trans
    return max(lod, 0.0)


def test_schedule_matches_the_official_lod():
    """stage = final - floor(lod), alpha = 1 - frac(lod): lod 7.9 is the 8x8 block 10% faded in."""
    sched = GrowthSchedule(final_stage=8)
    assert sched.at(0) == (0, 1.0) and sched.at(800_000) == (1, 0.0)
    assert sched.at(1_200_000) == (1, 0.5) and sched.total_images() == 12_800_000
    for images in range(0, 14_000_000, 123_457):
        lod = _official_lod(images / 1000, 10, 800, 800)
        alpha = 1.0 - (lod - math.floor(lod))
        assert sched.at(images) == (8 - math.floor(lod), pytest.approx(alpha)), images
    assert GrowthSchedule(final_stage=2, fade_images=0, stabilise_images=0).at(5) == (2, 1.0)


def test_fade_reals_blends_the_two_resolutions():
    x = torch.randn(2, 3, 8, 8)
    low = F.avg_pool2d(x, 2).repeat_interleave(2, 2).repeat_interleave(2, 3)
    assert torch.allclose(fade_reals(x, 0.0), low) and torch.equal(fade_reals(x, 1.0), x)
    assert torch.allclose(fade_reals(x, 0.25), 0.75 * low + 0.25 * x)


def test_optimiser_rampup_and_ema():
    g = progan_mini(fmap_base=16, fmap_max=8)
    opt = adam(g.parameters())
    assert opt.defaults["betas"] == (0.0, 0.99) and opt.defaults["eps"] == 1e-8
    assert opt.defaults["lr"] == 1e-3
    assert lr_rampup(0) == pytest.approx(math.exp(-5)) and lr_rampup(40_000) == 1.0
    ema = copy.deepcopy(g)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)
    before = [p.clone() for p in ema.parameters()]
    ema_update(ema, g)
    for e, b, p in zip(ema.parameters(), before, g.parameters(), strict=True):
        assert torch.allclose(e, 0.999 * b + 0.001 * p)
    small = progan_mini(stage=0, fmap_base=16, fmap_max=8)
    with pytest.raises(ValueError, match="EMA and model differ"):
        ema_update(small, g)


def test_bad_input_latents():
    g = progan_mini(fmap_base=16, fmap_max=8)
    with pytest.raises(InputError, match=r"latents of shape \(B, 32\), got \(2, 31\)"):
        g(torch.randn(2, 31))
    with pytest.raises(InputError, match=r"latents of shape \(B, 32\), got \(32,\)"):
        g(torch.randn(32))
    with pytest.raises(InputError, match="NaN"):
        g(torch.full((2, 32), float("nan")))
    with pytest.raises(InputError, match="torch.int64 but the generator is torch.float32"):
        g(torch.ones(2, 32, dtype=torch.int64))
    with pytest.raises(InputError, match="torch.float64"):
        g(torch.randn(2, 32, dtype=torch.float64))


def test_bad_input_alpha_and_stage():
    g = progan_mini(fmap_base=16, fmap_max=8)
    z = torch.randn(2, 32)
    for a in (1.5, -0.1, float("nan")):
        with pytest.raises(InputError, match=r"alpha .* must be in \[0, 1\]"):
            g(z, alpha=a)
    with pytest.raises(InputError, match="needs the 8x8 RGB layer"):
        g(z, alpha=0.5)  # built at full size: nothing to fade from
    with pytest.raises(ValueError, match="stage 3 is outside 0..2"):
        progan_mini(stage=3)
    with pytest.raises(ValueError, match="resolution must be 4"):
        progan_mini(resolution=24)
    with pytest.raises(TypeError, match="ProGANConfig takes"):
        progan_mini(colour="red")


def test_bad_input_discriminator():
    d = progan_mini_discriminator(fmap_base=16, fmap_max=8)
    with pytest.raises(InputError, match="takes 16x16 images, got 8x8"):
        d(torch.randn(4, 1, 8, 8))
    with pytest.raises(InputError, match="expected 1 input channels"):
        d(torch.randn(4, 3, 16, 16))  # the mini networks are grey, for the digits
    with pytest.raises(InputError, match="batch divisible by 4, got 6"):
        d(torch.randn(6, 1, 16, 16))
    with pytest.raises(InputError, match="NaN"):
        d(torch.full((4, 1, 16, 16), float("nan")))


def test_export_progan_mini(tmp_path):
    """The laptop generator at alpha = 1 exports; onnxruntime agrees with PyTorch."""
    from sotazoo.export import export_onnx

    torch.manual_seed(0)
    g = sotazoo.create_model("progan_mini")
    r = export_onnx(g, (32,), tmp_path / "progan_mini.onnx")
    # of max(1, max |output|), sotazoo.export's rule: ProGAN is the closest to it (1.8e-5), its
    # pixel norms magnifying float32 rounding, so the weights are seeded (one scale every run)
    assert r.max_rel_diff <= 1e-4 and r.input_shape == (2, 32)


def test_export_mid_fade(tmp_path):
    """A grown generator halfway through its fade exports too (alpha is a constant)."""
    from sotazoo.export import export_onnx

    torch.manual_seed(0)  # as above: one scale every run
    g = progan_mini(stage=0, fmap_base=16, fmap_max=8)
    g.grow()
    g.alpha = 0.5
    r = export_onnx(g, (32,), tmp_path / "fade.onnx")
    assert r.max_rel_diff <= 1e-4  # of max(1, max |output|), sotazoo.export's rule


# ---------------------------------------------------------------- training, reproduction, demo


def _tiny_run(progressive: bool, seed: int = 0):
    from sotazoo.papers.progan.train import FIDProbe, ProGANTrainConfig, train_progan

    cfg = ProGANTrainConfig(progressive=progressive, phase_images=32, total_images=224,
                            eval_every_images=16, eval_samples=40)  # fmt: skip
    return cfg, *train_progan(cfg, seed=seed, probe=FIDProbe(40))


def test_recipe_growth_schedule_reaches_the_final_stage():
    """The progressive run follows `GrowthSchedule` (4x4, fade in 8x8, 8x8, fade in 16x16, 16x16)
    step by step and ends as a 16x16 network at alpha = 1 with exactly the keys of the
    full-size `progan_mini()`; the baseline arm is 16x16 from its first step."""
    cfg, g, log = _tiny_run(True)
    sched = cfg.schedule(2)
    assert sched.total_images() == 128 and log["images"] == 224 and not log["diverged"]
    seen = [(e["stage"], e["alpha"]) for e in log["evals"][1:]]
    want = [sched.at(e["images"] - cfg.batch_size) for e in log["evals"][1:]]  # the last step's
    assert seen == [(s, pytest.approx(a, abs=1e-4)) for s, a in want]  # the log keeps 4 decimals
    assert {s for s, _ in seen} == {0, 1, 2} and any(0 < a < 1 for _, a in seen)
    assert g.stage == 2 and g.alpha == 1.0 and list(g.rgb) == ["16x16"]
    progan_mini().load_state_dict(g.state_dict())  # strict: the full-size network's keys
    assert all(math.isfinite(e["fid"]) for e in log["evals"])
    seconds = [e["seconds"] for e in log["evals"]]
    assert seconds == sorted(seconds) and seconds[-1] == pytest.approx(log["train_seconds"], 0.01)
    _, g_full, log_full = _tiny_run(False)
    assert {(e["stage"], e["alpha"]) for e in log_full["evals"]} == {(2, 1.0)}


def test_training_is_seeded():
    """The same seed gives the same EMA generator (initialisation, grown blocks, data, latents);
    another seed does not."""
    from sotazoo.papers.progan.train import ProGANTrainConfig, train_progan

    cfg = ProGANTrainConfig(phase_images=32, total_images=96, eval_every_images=16)  # one grow
    a, b, c = (train_progan(cfg, seed=seed)[0].state_dict() for seed in (0, 0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_reals_are_pooled_and_faded_like_the_fakes():
    """D's reals at stage s: 2x2 average pooling down to 4 * 2^s pixels (official
    `process_reals`), blended with their coarser version by alpha during a fade-in."""
    from sotazoo.papers.progan.train import reals_at

    x = torch.randn(2, 1, 16, 16)
    assert torch.allclose(reals_at(x, 0, 1.0), F.avg_pool2d(x, 4))
    assert torch.allclose(reals_at(x, 0, 0.3), F.avg_pool2d(x, 4))  # nothing to fade at 4x4
    x8 = F.avg_pool2d(x, 2)
    low = F.interpolate(F.avg_pool2d(x8, 2), scale_factor=2.0, mode="nearest")
    assert torch.allclose(reals_at(x, 1, 0.25), 0.75 * low + 0.25 * x8, atol=1e-6)  # lerp: ulps
    assert torch.equal(reals_at(x, 2, 1.0), x)


def test_time_to_target_is_the_first_crossing():
    from sotazoo.papers.progan.repro import time_to

    evals = [{"seconds": 0.0, "fid": 30.0}, {"seconds": 5.0, "fid": 9.0},
             {"seconds": 9.0, "fid": 12.0}, {"seconds": 14.0, "fid": 7.0}]  # fmt: skip
    assert time_to(evals, 10.0) == 5.0 and time_to(evals, 8.0) == 14.0
    assert time_to(evals, 5.0) is None


def test_repro_quick(tmp_path):
    """`sotazoo repro progan --quick`: both arms, both claims, the JSON and the figure; the FID
    reference of 4x4-detail digits lands near the proxy's own 'blurred' reference (36 against
    the train split, `python -m sotazoo.metrics.fid --reference`)."""
    from sotazoo.repro import run_repro, validate_result

    data = run_repro("progan", quick=True, out_dir=tmp_path, progress=False)
    assert data["quick"] and validate_result(data) == []
    assert (tmp_path / "progan.quick.json").is_file() and (tmp_path / "progan.quick.svg").is_file()
    assert [c["id"] for c in data["claims"]] == ["progressive_128_time_factor",
                                                 "speedup_1024_hours"]  # fmt: skip
    d = data["details"]
    assert 25 < d["blurred_4x4_fid"] < 50
    want = data["config"]["target_factor"] * d["blurred_4x4_fid"]
    assert d["target_fid"] == pytest.approx(want, abs=1e-3)  # both rounded to 4 decimals
    for label, arm in d["arms"].items():
        (r,) = arm["runs"]
        assert r["images"] == data["config"]["total_images"], label
        assert [e["images"] for e in r["evals"]] == sorted(e["images"] for e in r["evals"])
    prog = d["arms"]["progressive 4→8→16"]["runs"][0]["evals"]
    assert [e["stage"] for e in prog][0] == 0 and prog[-1]["stage"] == 2


def test_packaged_weights_reproduce_their_log():
    """The demo weights (`sotazoo train progan_mini --seed 0`): sha256 checked on load, the
    full-size network's keys, and the proxy FID their log recorded at the end of training is
    what their samples score now (same fixed latents, same held-out digits). And the generator
    draws better than digits reduced to 4x4 detail do: it is worth showing."""
    import json
    from pathlib import Path

    from sotazoo.papers.progan.repro import blurred_reference
    from sotazoo.papers.progan.train import FIDProbe

    w = sotazoo.get_weights("progan_mini", "sotazoo")
    log_path = (Path(sotazoo.__file__).parent / w.packaged).with_name(
        "progan_mini.sotazoo.log.json"
    )
    log = json.loads(log_path.read_text())
    assert log["sha256"] == w.sha256 and log["metrics"] == dict(w.metrics)
    assert log["evals"][-1]["stage"] == 2 and log["evals"][-1]["alpha"] == 1.0
    g = sotazoo.create_model("progan_mini", weights="sotazoo", progress=False)
    assert count_params(g) == w.num_params
    probe = FIDProbe(log["eval"]["samples"])
    got = probe(g)
    # equal on the CPU that trained them; another CPU's kernels move the float32 samples by
    # ~1e-5 of their scale (pixel norms), the FID (4.01, kept to 4 decimals) by ~1e-4 at most
    assert got == pytest.approx(log["metrics"]["heldout_fid_proxy"], abs=1e-3)
    assert got < blurred_reference(probe, log["eval"]["samples"])


# ---------------------------------------------------------------- oracle: pytorch_GAN_zoo

ZOO_FIXTURE = Path(__file__).parent / "fixtures" / "progan_gan_zoo.json"


@functools.cache
def _zoo() -> dict:
    return json.loads(ZOO_FIXTURE.read_text())


def seeded_state_dict(shapes: dict[str, list[int]], seed: int) -> dict[str, torch.Tensor]:
    """Deterministic weights for a key -> shape map, independent of any module's init order: the
    i-th key in sorted order is drawn from `torch.Generator().manual_seed(seed + i)`. Weights are
    N(0, 1) (equalised lr stores them so), biases 0.1 N(0, 1) (non-zero, so that the port's
    bias scaling shows)."""
    sd = {}
    for i, key in enumerate(sorted(shapes)):
        t = torch.randn(tuple(shapes[key]), generator=torch.Generator().manual_seed(seed + i))
        sd[key] = 0.1 * t if key.endswith(".bias") else t
    return sd


def fixture_input(seed: int, shape: list[int]) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed))


def _zoo_model(case: dict, sd: dict | None = None, dtype=torch.float32):
    """Ours for a fixture case: the port's state dict through the converter, into the builder
    with the overrides the converter reads off it; mid-fade cases are built one stage lower and
    grown, so that they hold the previous RGB layer too."""
    sd = sd or seeded_state_dict(case["shapes"], case["weights_seed"])
    fading = case["port_alpha"] > 0
    sd = {k: v.to(dtype) for k, v in sd.items()}  # the gains folded in at this precision
    ours, overrides, layout = convert_state_dict(sd, fading=fading)
    assert layout == f"gan_zoo_{case['kind']}"
    build = progan_1024 if case["kind"] == "generator" else progan_1024_discriminator
    stage = int(math.log2(overrides["resolution"])) - 2
    model = build(**overrides, stage=stage - 1 if fading else stage)
    if fading:
        model.grow()
    load_into(model.to(dtype), ours, case["name"])
    return model.eval(), overrides


@pytest.mark.parametrize("i", range(len(_zoo()["cases"])), ids=[c["name"] for c in _zoo()["cases"]])
def test_oracle_gan_zoo_fixture(i):
    """The fixture holds the outputs of pytorch_GAN_zoo's GNet / DNet (16x16, widths 16, 8, 4,
    minibatch stddev on, grown and mid-fade, a batch of 6 that its stddev takes as one group)
    run on seeded weights while developing. Ours, through the converter, at alpha = 1 - theirs:
    in float64 the same function to 1e-9; in float32 to 1e-5 for D and, for G, to 1e-4 of its
    scale max(1, max |output|): its outputs reach 3.9 and float32 leaves ours 4e-5 and the
    port's 1.2e-5 from the float64 result (weights N(0, 1), scaled at run time: the port scales
    the conv's output, ours the weight first; pixel norms over 4-16 channels magnify it)."""
    case = _zoo()["cases"][i]
    x = fixture_input(case["input_seed"], case["input_shape"])
    alpha = 1.0 - case["port_alpha"]
    tol32 = 1e-4 if case["kind"] == "generator" else 1e-5
    # The weights and input are float32 torch.randn draws, whose AVX2 path (x86 since 2013, as
    # when recorded) and scalar path (ATEN_CPU_CAPABILITY=default, ARM) differ in the last bit:
    # the float64 check at 1e-9 sees that (4e-5 on G), so off AVX2 only float32 is compared.
    same_draws = torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
    for dtype, key, tol in ((torch.float64, "output_float64", 1e-9),
                            (torch.float32, "output", tol32)):  # fmt: skip
        if dtype == torch.float64 and not same_draws:
            continue
        model, overrides = _zoo_model(case, dtype=dtype)
        with torch.no_grad():
            ours = model(x.to(dtype), alpha=alpha)
        expected = torch.tensor(case[key], dtype=dtype).reshape(case["output_shape"])
        assert ours.shape == expected.shape
        if case["kind"] == "generator":
            tol *= max(1.0, expected.abs().max().item())
        within((ours - expected).abs().max().item(), tol, key)
    assert overrides["resolution"] == 16 and overrides["fmap_max"] == 16  # widths 16, 8, 4
    assert overrides["fmap_base"] == 32  # min(32 / 2^(k+1), 16): 16, 8, 4


def test_oracle_gan_zoo_the_differences_matter():
    """Each folded or configured difference changes the output: without the bias per unit, with
    the official minibatch grouping, or with the port's alpha as ours, the fixture is missed."""
    g_case, d_case = (next(c for c in _zoo()["cases"] if c["name"] == n)
                      for n in ("generator_mid_fade", "discriminator_grown"))  # fmt: skip
    g, _ = _zoo_model(g_case)
    z = fixture_input(g_case["input_seed"], g_case["input_shape"])
    want = torch.tensor(g_case["output"]).reshape(g_case["output_shape"])
    with torch.no_grad():
        assert (g(z, alpha=g_case["port_alpha"]) - want).abs().max() > 0.01  # their alpha
        g.blocks[0].dense_bias.copy_(g.blocks[0].dense_bias.mean(dim=(1, 2), keepdim=True))
        assert (g(z, alpha=1 - g_case["port_alpha"]) - want).abs().max() > 0.01
    d, _ = _zoo_model(d_case)
    x = fixture_input(d_case["input_seed"], d_case["input_shape"])
    want = torch.tensor(d_case["output"]).reshape(d_case["output_shape"])
    d.blocks[0].mbstd.variant = "official"
    with torch.no_grad():
        assert (d(x) - want).abs().max() > 1e-3


@pytest.mark.parametrize("res", [256, 512])
def test_oracle_gan_zoo_celebahq_layouts(res):
    """The hub's celebaHQ networks (pgan_config.py built with 7 and 8 scales, the fixture's
    record of every key and shape): the converter asks for the official widths and latent, and
    the converted tensors fit our networks at that resolution exactly. Counts: the port's minus
    the toRGB / fromRGB layers of the lower scales that it keeps and a grown network never uses;
    and ours built with the official per-channel bias has 15 C fewer (C = 512)."""
    layout = _zoo()[f"celebahq_{res}_layout"]
    common = {"resolution": res, "img_channels": 3, "fmap_base": 8192, "fmap_max": 512}
    n = int(math.log2(res)) - 2
    for net, build, extra in (
        ("netG", progan_1024, {"latent_dim": 512, "g_dense_bias": "unit"}),
        ("netD", progan_1024_discriminator, {"mbstd_group_size": 4, "mbstd_variant": "gan_zoo"}),
    ):
        meta = {k: torch.empty(v, device="meta") for k, v in layout[net].items()}
        sd, overrides, _ = convert_state_dict(meta)
        assert overrides == {**common, **extra}
        with torch.device("meta"):
            model = build(**overrides)
        assert {k: v.shape for k, v in sd.items()} == {
            k: v.shape for k, v in model.state_dict().items()
        }
        unused = _lower_rgb_params(layout[net], n)
        assert count_params(model) == layout[f"{net}_params"] - unused
    with torch.device("meta"):
        official = progan_1024(resolution=res)
    got = count_params(official)
    assert got == layout["netG_params"] - _lower_rgb_params(layout["netG"], n) - 15 * 512


def _lower_rgb_params(shapes: dict[str, list[int]], stage: int) -> int:
    """Parameters of the port's toRGB / fromRGB layers below the final scale."""
    lower = [k for k in shapes if re.match(r"(to|from)RGBLayers\.(\d+)\.", k)
             and int(k.split(".")[1]) < stage]  # fmt: skip
    return sum(math.prod(shapes[k]) for k in lower)


def test_minibatch_stddev_gan_zoo_variant_by_hand():
    """pytorch_GAN_zoo's rule (mini_batch_stddev_module.py): consecutive groups of 4, unbiased
    variance; a batch of 6 is one group of 6; a batch of 1 gets zeros."""
    x = torch.randn(8, 3, 2, 2, dtype=torch.float64)
    y = MinibatchStdDev(4, "gan_zoo")(x)
    assert y.shape == (8, 4, 2, 2) and torch.equal(y[:, :3], x)
    for n in range(8):
        members = x[4 * (n // 4) : 4 * (n // 4) + 4]
        var = ((members - members.mean(dim=0)) ** 2).sum(dim=0) / 3
        assert torch.allclose(y[n, 3], (var + 1e-8).sqrt().mean().expand(2, 2))
    six = MinibatchStdDev(4, "gan_zoo")(x[:6])
    var = ((x[:6] - x[:6].mean(dim=0)) ** 2).sum(dim=0) / 5
    assert torch.allclose(six[:, 3], (var + 1e-8).sqrt().mean().expand(6, 2, 2))
    assert torch.equal(MinibatchStdDev(4, "gan_zoo")(x[:1])[:, 3], torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="mbstd variant"):
        MinibatchStdDev(4, "theano")


# ---------------------------------------------------------------- converter


def _save_zoo(tmp_path, case: dict) -> Path:
    """A flat pytorch_GAN_zoo state dict (e.g. a hub file's `avgG`, saved on its own)."""
    path = tmp_path / f"{case['name']}.pth"
    torch.save(seeded_state_dict(case["shapes"], case["weights_seed"]), path)
    return path


def test_convert_gan_zoo_state_dict_through_create_model(tmp_path):
    """create_model("progan_1024", weights=path) recognises the port's GNet layout, reads the
    configuration off the shapes (16x16, widths 16, 8, 4, latent 12), and reproduces the port's
    output. (The discriminator has no registry name; the oracle test loads it.)"""
    case = next(c for c in _zoo()["cases"] if c["name"] == "generator_grown")
    model = sotazoo.create_model("progan_1024", weights=_save_zoo(tmp_path, case))
    assert not model.training and model.resolution == 16 and model.alpha == 1.0
    assert model.cfg.fmap_base == 32 and model.cfg.fmap_max == 16
    with torch.no_grad():
        ours = model(fixture_input(case["input_seed"], case["input_shape"]))
    expected = torch.tensor(case["output"]).reshape(case["output_shape"])
    # as in the oracle: float32 alone is 4e-5 from float64 here, so 1e-4 of the scale (3.9)
    scale = max(1.0, expected.abs().max().item())
    assert (ours - expected).abs().max().item() <= 1e-4 * scale


def _fake_gan_zoo_file(path: Path, monkeypatch, loss: str = "WGANGP") -> dict:
    """A file with the nesting of `BaseGAN.save`: {"config": BaseConfig, "netG", "netD",
    "avgG"}, the config pickled as `models.utils.config.BaseConfig` as in the hub's files
    (here from a stand-in module that only exists while saving)."""
    import sys
    import types

    g_case, d_case = (next(c for c in _zoo()["cases"] if c["name"] == n)
                      for n in ("generator_grown", "discriminator_grown"))  # fmt: skip
    nets = {"netG": seeded_state_dict(g_case["shapes"], 1),
            "avgG": seeded_state_dict(g_case["shapes"], g_case["weights_seed"]),
            "netD": seeded_state_dict(d_case["shapes"], d_case["weights_seed"])}  # fmt: skip
    module = types.ModuleType("models.utils.config")
    config_cls = type("BaseConfig", (), {"__module__": "models.utils.config"})
    module.BaseConfig = config_cls
    config = config_cls()
    config.lossCriterion, config.depthOtherScales, config.alpha = loss, [8, 4], 0.0
    with monkeypatch.context() as m:
        for name in ("models", "models.utils"):  # the parents pickle imports first
            m.setitem(sys.modules, name, types.ModuleType(name))
        m.setitem(sys.modules, "models.utils.config", module)
        torch.save({"config": config, **nets}, path)
    return nets


def test_convert_whole_gan_zoo_file(tmp_path, monkeypatch):
    """The hub's nesting, read without running pickled code: the averaged generator by default
    (the port's fixture output), netG or netD on request; a tanh-output generator is refused."""
    from sotazoo.papers.progan.convert import read_gan_zoo_file

    path = tmp_path / "celebaHQ_s2.pth"
    nets = _fake_gan_zoo_file(path, monkeypatch)
    data = read_gan_zoo_file(path)
    assert data["config"] == {"lossCriterion": "WGANGP", "depthOtherScales": [8, 4], "alpha": 0.0}
    g_case = next(c for c in _zoo()["cases"] if c["name"] == "generator_grown")
    sd, overrides, layout = convert_state_dict(data)
    assert layout == "gan_zoo_generator" and overrides["resolution"] == 16
    g = progan_1024(**overrides)
    load_into(g, sd, str(path))
    with torch.no_grad():
        got = g.eval()(fixture_input(g_case["input_seed"], g_case["input_shape"]))
    want = torch.tensor(g_case["output"]).reshape(2, 3, 16, 16)
    assert (got - want).abs().max() <= 1e-4 * max(1.0, want.abs().max())  # as in the oracle
    net_g = convert_state_dict(data, net="netG")[0]
    assert not torch.equal(net_g["blocks.0.conv.weight"], sd["blocks.0.conv.weight"])
    assert torch.equal(net_g["blocks.0.conv.weight"], nets["netG"]["groupScale0.0.module.weight"])
    assert convert_state_dict(data, net="netD")[2] == "gan_zoo_discriminator"
    with pytest.raises(WeightsError, match="has no 'ema'"):
        convert_state_dict(data, net="ema")
    _fake_gan_zoo_file(path, monkeypatch, loss="DCGAN")
    with pytest.raises(WeightsError, match="DCGAN loss.*tanh"):
        convert_state_dict(read_gan_zoo_file(path))
    torch.save({"netG": 1}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match="not a pytorch_GAN_zoo file"):
        read_gan_zoo_file(tmp_path / "other.pth")


def test_convert_whole_gan_zoo_file_through_create_model(tmp_path, monkeypatch):
    """create_model reads a hub file as it is (paper convert.py's `read_checkpoint`): the
    averaged generator at the resolution its tensors give, the port's fixture output; a file
    that is neither a state dict nor the port's says both."""
    path = tmp_path / "celebaHQ_s2.pth"
    _fake_gan_zoo_file(path, monkeypatch)
    g = sotazoo.create_model("progan_1024", weights=path)
    assert not g.training and g.cfg.resolution == 16
    g_case = next(c for c in _zoo()["cases"] if c["name"] == "generator_grown")
    with torch.no_grad():
        got = g(fixture_input(g_case["input_seed"], g_case["input_shape"]))
    want = torch.tensor(g_case["output"]).reshape(2, 3, 16, 16)
    assert (got - want).abs().max() <= 1e-4 * max(1.0, want.abs().max())  # as in the oracle
    torch.save({"weights": [1, 2]}, tmp_path / "junk.pth")
    with pytest.raises(WeightsError, match="state dict of tensors.*nor as a pytorch_GAN_zoo"):
        sotazoo.create_model("progan_1024", weights=tmp_path / "junk.pth")


def test_convert_passes_our_own_layout_through(tmp_path):
    """Our checkpoints (the trained demo weights, anything saved from our modules) come back
    unchanged with no overrides, and load by path."""
    torch.manual_seed(0)
    for model, layout in ((progan_mini(), "sotazoo_generator"),
                          (progan_mini_discriminator(), "sotazoo_discriminator")):  # fmt: skip
        sd = model.state_dict()
        out, overrides, got = convert_state_dict(sd)
        assert got == layout and overrides == {} and out.keys() == sd.keys()
        assert all(out[k] is sd[k] for k in sd)
    path = tmp_path / "mine.pth"
    torch.save(progan_mini().state_dict(), path)
    loaded = sotazoo.create_model("progan_mini", weights=path).state_dict()
    saved = torch.load(path, weights_only=True)
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)


def test_convert_rejects_what_it_cannot_read():
    case = next(c for c in _zoo()["cases"] if c["name"] == "generator_grown")
    with pytest.raises(WeightsError, match=r"unrecognised ProGAN checkpoint layout.*formatLayer"):
        convert_state_dict({"head.0.weight": torch.zeros(1)})
    sd = {k: torch.empty(v, device="meta") for k, v in case["shapes"].items()}
    odd = {**sd, "scaleLayers.1.1.module.weight": torch.empty(6, 8, 3, 3, device="meta")}
    with pytest.raises(WeightsError, match=r"widths per scale .* \[16, 8, 6\]"):
        convert_state_dict(odd)
    d_case = next(c for c in _zoo()["cases"] if c["name"] == "discriminator_grown")
    dsd = {k: torch.empty(v, device="meta") for k, v in d_case["shapes"].items()}
    acgan = {**dsd, "decisionLayer.module.weight": torch.empty(5, 16, device="meta")}
    with pytest.raises(WeightsError, match="5 outputs"):
        convert_state_dict(acgan)


# ---------------------------------------------------------------- fused scaling (official)


def _random_pair(build, fused_kw: dict, **kw):
    torch.manual_seed(0)
    a = build(**kw, stage=1)
    a.grow()
    for p in a.parameters():
        torch.nn.init.normal_(p)  # non-zero biases
    b = build(**kw, **fused_kw, stage=1)
    b.grow()
    b.load_state_dict(a.state_dict())
    return a.eval(), b.eval()


def test_fused_scale_generator_is_the_same_function_with_the_same_parameters():
    """Official `upscale2d_conv2d`: nearest x2 then conv 3x3 as one stride-2 transposed conv of
    the padded, shift-summed kernel. Same keys and shapes; the same output at alpha = 1 and
    mid-fade (float32, 1e-4 on outputs of a few units)."""
    g, fused = _random_pair(progan_mini, {"fused_scale": True}, fmap_base=64, fmap_max=16)
    assert {k: v.shape for k, v in g.state_dict().items()} == {
        k: v.shape for k, v in fused.state_dict().items()
    }
    z = torch.randn(4, 32)
    with torch.no_grad():
        for alpha in (1.0, 0.4):
            a, b = g(z, alpha=alpha), fused(z, alpha=alpha)
            assert a.shape == (4, 1, 16, 16) and (a - b).abs().max() <= 1e-4, alpha
    x = torch.randn(2, 5, 6, 6)
    conv = EqualizedConv2d(5, 3, 3)
    torch.nn.init.normal_(conv.bias)
    want = conv(x.repeat_interleave(2, 2).repeat_interleave(2, 3))  # by hand: nearest x2
    # the fused kernel sums 4 shifted taps first: other sums over outputs of up to ~10 (ulp
    # 9.5e-7); measured at most 2.9e-6 over 200 draws, on the AVX-512 and scalar kernels
    assert (conv.forward_up(x) - want).abs().max() <= 1e-5


def test_fused_scale_discriminator_is_the_official_conv2d_downscale2d():
    """Official `conv2d_downscale2d`: conv 3x3 then 2x2 pooling as one stride-2 conv of the
    padded, shift-summed kernel times 1/4 (the same function). The official D applies bias and
    LeakyReLU after it, so its block is lrelu(pool(conv)) where the unfused one is
    pool(lrelu(conv)): ours with `fused_scale` equals that order computed unfused, at alpha = 1
    and mid-fade, and differs from the unfused D."""
    d, fused = _random_pair(progan_mini_discriminator, {"fused_scale": True},
                            fmap_base=64, fmap_max=16)  # fmt: skip
    assert {k: v.shape for k, v in d.state_dict().items()} == {
        k: v.shape for k, v in fused.state_dict().items()
    }
    x = torch.randn(2, 5, 6, 6)
    conv = EqualizedConv2d(5, 3, 3)
    torch.nn.init.normal_(conv.bias)
    assert (conv.forward_down(x) - F.avg_pool2d(conv(x), 2)).abs().max() <= 1e-5  # as above

    class PoolThenAct(torch.nn.Module):  # the official fused order, computed unfused
        def __init__(self, block):
            super().__init__()
            self.block = block

        def forward(self, h):
            h = F.leaky_relu(self.block.conv0(h), 0.2)
            return F.leaky_relu(F.avg_pool2d(self.block.conv1(h), 2), 0.2)

    reference = copy.deepcopy(d)
    for k in range(1, len(reference.blocks)):
        reference.blocks[k] = PoolThenAct(reference.blocks[k])
    x = torch.randn(4, 1, 16, 16)
    with torch.no_grad():
        for alpha in (1.0, 0.4):
            got = fused(x, alpha=alpha)
            # as for G: other sums through the layers, measured 9.5e-7 on scores of a few units
            assert (got - reference(x, alpha=alpha)).abs().max() <= 1e-4, alpha
            assert (got - d(x, alpha=alpha)).abs().max() > 1e-3  # not the unfused function


def test_fused_scale_progan_1024_builds_and_runs():
    """The benchmark's reference, `sotazoo:progan_1024:fused_scale=True`: full size, CPU, batch
    1; the unfused network with its weights gives the same image."""
    g = sotazoo.create_model("progan_1024", fused_scale=True).eval()
    z = torch.randn(1, 512, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = g(z)
        assert y.shape == (1, 3, 1024, 1024) and torch.isfinite(y).all()
        plain = sotazoo.create_model("progan_1024")
        plain.load_state_dict(g.state_dict())
        # Full size: 3x3 convs summing 4608 products (512 channels) through 18 layers and pixel
        # norms leave float32 ~2e-5 from a float64 run, so the two orders differ by ~1e-5 of
        # the image's scale (3.9e-5 on 3.4); bounded as the export rule, by 1e-4 of it.
        assert (plain.eval()(z) - y).abs().max() <= 1e-4 * max(1.0, y.abs().max())


def test_export_fused_scale(tmp_path):
    """The fused generator exports too (the transposed conv's kernel is built from the weight
    inside the graph); onnxruntime agrees with PyTorch."""
    from sotazoo.export import export_onnx

    torch.manual_seed(0)  # one scale every run (see test_export_progan_mini)
    g = progan_mini(fmap_base=16, fmap_max=8, fused_scale=True)
    r = export_onnx(g.eval(), (32,), tmp_path / "fused.onnx")
    assert r.max_rel_diff <= 1e-4  # of max(1, max |output|), sotazoo.export's rule
