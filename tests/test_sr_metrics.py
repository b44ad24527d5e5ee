"""SR metrics (sotazoo.metrics.sr) and bicubic resizing (sotazoo.resize), checked by hand.

Tolerances: these run in float64 (eps 2.2e-16) on values of at most 255, so bounds of 1e-12 to
1e-9 are 10^3 to 10^6 ulps of them (room for numpy's SIMD sums in another order on another CPU),
yet far below what a wrong tap, weight or border rule gives (1e-3 and more). The float32 and
printed-value comparisons give their own reasons.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from sotazoo.metrics.bicubic import compare_bicubic
from sotazoo.metrics.sr import psnr_rgb, psnr_y, rgb_to_y, sr_metrics, ssim_y
from sotazoo.resize import (
    bicubic_degrade,
    imresize_matlab,
    imresize_torch,
    modcrop,
    to_uint8,
)


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _const(rgb: tuple[float, float, float], h: int = 24, w: int = 24) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, dtype=np.float64), (h, w, 3)).copy()


# ---- rgb_to_y -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rgb", "y"),
    [
        ((0, 0, 0), 16.0),
        ((255, 255, 255), 235.0),  # 16 + 65.481 + 128.553 + 24.966
        ((255, 0, 0), 16.0 + 65.481),
        ((0, 255, 0), 16.0 + 128.553),
        ((0, 0, 255), 16.0 + 24.966),
        ((128, 128, 128), 16.0 + 128 * 219.0 / 255),
        ((10, 20, 30), 16.0 + (65.481 * 10 + 128.553 * 20 + 24.966 * 30) / 255),
    ],
)
def test_rgb_to_y_hand_values(rgb, y):
    pixel = np.array([[rgb]], dtype=np.uint8)
    assert rgb_to_y(pixel)[0, 0] == pytest.approx(y, abs=1e-9)
    # float32 input: Y up to 235, whose ulp is 1.5e-5; 1e-4 is a few ulps of that
    assert rgb_to_y(pixel.astype(np.float32))[0, 0] == pytest.approx(y, abs=1e-4)


def test_rgb_to_y_rejects_non_rgb():
    with pytest.raises(ValueError, match="HxWx3"):
        rgb_to_y(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="HxWx3"):
        rgb_to_y(np.zeros((4, 4, 4)))


# ---- PSNR -----------------------------------------------------------------------------------


def test_psnr_y_matches_hand_computation():
    hr = _const((100, 100, 100))
    sr = _const((110, 100, 100))  # +10 on R only
    dy = 10 * 65.481 / 255  # the Y difference, the same at every pixel
    expected = 10 * math.log10(255**2 / dy**2)
    assert psnr_y(sr, hr, scale=2) == pytest.approx(expected, abs=1e-9)
    # On RGB the squared error 100 is spread over 3 channels: MSE = 100 / 3.
    assert psnr_rgb(sr, hr, scale=2) == pytest.approx(10 * math.log10(255**2 / (100 / 3)))


def test_psnr_uint8_and_float_inputs_agree():
    hr = _rng().integers(0, 256, (20, 20, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + _rng().integers(-3, 4, hr.shape), 0, 255).astype(np.uint8)
    assert psnr_y(sr, hr, scale=2) == pytest.approx(
        psnr_y(sr.astype(np.float64), hr.astype(np.float64), scale=2)
    )


def test_equal_images_give_inf_in_any_memory_layout():
    hr = _rng().integers(0, 256, (40, 44, 3), dtype=np.uint8)
    channels_first = np.ascontiguousarray(hr.transpose(2, 0, 1)).transpose(1, 2, 0)
    assert psnr_y(channels_first, hr, scale=2) == math.inf
    assert psnr_y(np.asfortranarray(hr), hr.astype(np.float32), scale=2) == math.inf


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_border_crop_removes_the_border(scale):
    hr = _rng().integers(0, 256, (32, 30, 3), dtype=np.uint8)
    sr = hr.copy()
    sr[:scale] = 0  # errors in the top, bottom, left and right `scale`-pixel bands only
    sr[-scale:] = 255
    sr[:, :scale] = 7
    sr[:, -scale:] = 200
    assert psnr_y(sr, hr, scale=scale) == math.inf
    assert psnr_rgb(sr, hr, scale=scale) == math.inf
    assert ssim_y(sr, hr, scale=scale) == pytest.approx(1.0)
    # One pixel less of crop and the errors count.
    assert psnr_y(sr, hr, scale=scale, border=scale - 1) < 40
    assert psnr_y(sr, hr, scale=scale, border=0) < 40


# ---- SSIM -----------------------------------------------------------------------------------


def test_ssim_identical_is_one():
    img = _rng().integers(0, 256, (40, 36, 3), dtype=np.uint8)
    assert ssim_y(img, img, scale=4) == pytest.approx(1.0, abs=1e-12)
    noisy = np.clip(img + _rng().normal(0, 20, img.shape), 0, 255)
    assert 0 < ssim_y(noisy, img, scale=4) < 0.99


@pytest.mark.parametrize(("g1", "g2"), [(50, 60), (100, 200), (0, 255)])
def test_ssim_of_constant_images(g1, g2):
    # No variance and no covariance: SSIM reduces to its luminance term
    # (2 mu1 mu2 + C1) / (mu1^2 + mu2^2 + C1), C1 = (K1 L)^2 = (0.01 * 255)^2 (Wang et al., Eq. 13).
    mu1, mu2 = 16 + g1 * 219 / 255, 16 + g2 * 219 / 255  # Y of grey levels g1, g2
    c1 = (0.01 * 255) ** 2
    expected = (2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1)
    got = ssim_y(_const((g1,) * 3), _const((g2,) * 3), scale=2)
    assert got == pytest.approx(expected, rel=1e-9)


def test_ssim_matches_the_definition_with_wangs_window():
    # Wang et al. (2004), Eq. 13 with the local statistics of their ssim_index.m: an 11x11
    # Gaussian window (sigma 1.5, normalised), population (co)variances, positions where the
    # window fits ('valid'), mean over them. Written out here with numpy alone.
    sr = _rng().integers(0, 256, (30, 34, 3)).astype(np.float64)
    hr = np.clip(sr + _rng().normal(0, 25, sr.shape), 0, 255)
    border = 2
    x, y = (rgb_to_y(a)[border:-border, border:-border] for a in (sr, hr))
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()

    def local_mean(img):
        windows = np.lib.stride_tricks.sliding_window_view(img, (11, 11))
        return np.einsum("ijkl,kl->ij", windows, w)

    mx, my = local_mean(x), local_mean(y)
    vx, vy = local_mean(x * x) - mx**2, local_mean(y * y) - my**2
    cxy = local_mean(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssim_map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert ssim_y(sr, hr, scale=border) == pytest.approx(ssim_map.mean(), abs=1e-9)


# ---- sr_metrics (torch) ---------------------------------------------------------------------


def test_sr_metrics_quantises_then_measures_y():
    hr = torch.randint(0, 256, (2, 3, 24, 28)).double() / 255
    # Off by 0.4 grey levels: rounding to uint8 brings it back, so the images are identical.
    out = sr_metrics(hr + 0.4 / 255, hr, scale=2)
    assert out == {"psnr": math.inf, "ssim": pytest.approx(1.0)}

    sr = (hr + 0.05 * torch.randn_like(hr)).clamp(-0.1, 1.1)
    out = sr_metrics(sr.float(), hr.float(), scale=3)
    per_image = [
        psnr_y(
            to_uint8(s.permute(1, 2, 0).numpy() * 255),
            to_uint8(h.permute(1, 2, 0).numpy() * 255),
            scale=3,
        )
        for s, h in zip(sr.float().double(), hr.float().double(), strict=True)
    ]
    assert out["psnr"] == pytest.approx(np.mean(per_image))
    assert sr_metrics(sr[0], hr[0], scale=3)["psnr"] == pytest.approx(per_image[0])
    assert 0 < out["ssim"] < 1


# ---- errors ---------------------------------------------------------------------------------


def test_metric_errors():
    a = np.zeros((16, 16, 3))
    with pytest.raises(ValueError, match="differ"):
        psnr_y(a, np.zeros((16, 18, 3)), scale=2)
    with pytest.raises(ValueError, match="HxWx3"):
        psnr_y(np.zeros((16, 16, 4)), np.zeros((16, 16, 4)), scale=2)
    with pytest.raises(ValueError, match="HxWx3"):
        psnr_rgb(np.zeros((16, 16)), np.zeros((16, 16)), scale=2)
    with pytest.raises(ValueError, match="too small for a border of 8"):
        psnr_y(a, a, scale=8)
    # SSIM needs its 11x11 window inside the cropped image: 16 - 2*3 = 10 is too small.
    with pytest.raises(ValueError, match="too small for a border of 3"):
        ssim_y(a, a, scale=3)
    with pytest.raises(ValueError, match="differ"):
        sr_metrics(torch.zeros(3, 16, 16), torch.zeros(3, 16, 18), scale=2)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        sr_metrics(torch.zeros(1, 16, 16), torch.zeros(1, 16, 16), scale=2)


# ---- imresize_matlab ------------------------------------------------------------------------


def _keys_cubic(x: float) -> float:
    """Keys (1981) cubic convolution kernel, a = -0.5, written out again for the tests."""
    x = abs(x)
    if x <= 1:
        return 1.5 * x**3 - 2.5 * x**2 + 1
    if x < 2:
        return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
    return 0.0


@pytest.mark.parametrize("scale", [1 / 4, 1 / 3, 1 / 2, 2, 3, 2.5])
def test_constant_image_stays_constant(scale):
    img = np.full((13, 17, 3), 87.25)
    out = imresize_matlab(img, scale)
    np.testing.assert_allclose(out, 87.25, atol=1e-10)


@pytest.mark.parametrize(
    ("shape", "scale", "expected"),
    [
        ((7, 5), 0.5, (4, 3)),
        ((7, 5, 3), 1 / 3, (3, 2, 3)),
        ((7, 5), 2.5, (18, 13)),
        ((12, 16), 0.25, (3, 4)),
        ((300, 451, 3), 1 / 3, (100, 151, 3)),  # (1/3) * 300 must not round up to 101
    ],
)
def test_output_shape_is_ceil(shape, scale, expected):
    assert imresize_matlab(np.zeros(shape), scale).shape == expected


def test_downscaled_ramp_is_the_ramp_at_the_mapped_centres():
    # Output i (0-based) of a x1/2 resize sits at input coordinate 2i + 0.5; the antialiasing
    # kernel reproduces linear functions, so wherever no tap is mirrored (taps 2i-3 .. 2i+4
    # inside 0..15) the output is exactly 2i + 0.5.
    ramp = np.arange(16, dtype=np.float64)[:, None]
    out = imresize_matlab(ramp, 0.5)[:, 0]
    assert out.shape == (8,)
    np.testing.assert_allclose(out[2:6], 2 * np.arange(2, 6) + 0.5, atol=1e-12)
    # The same along the width, and of every channel.
    out_w = imresize_matlab(np.tile(ramp.T[:, :, None], (3, 1, 2)), 0.5)
    np.testing.assert_allclose(out_w[1, 2:6, 1], 2 * np.arange(2, 6) + 0.5, atol=1e-12)


def test_upscaled_ramp_stays_linear_inside():
    # x2: output i sits at input coordinate i/2 - 0.25; the taps are those within 2 of it.
    ramp = np.arange(8, dtype=np.float64)[:, None]
    out = imresize_matlab(ramp, 2)[:, 0]
    assert out.shape == (16,)
    inner = np.arange(3, 13)
    np.testing.assert_allclose(out[inner], inner / 2 - 0.25, atol=1e-12)


def test_first_downscaled_sample_uses_mirrored_taps():
    # x1/2 on v[0..7]: output 0 sits at input coordinate 0.5 (0-based). The stretched kernel
    # h(d) = 0.5 * W(d / 2) is nonzero for |d| < 4: the eight taps -3..4. Those left of the
    # image are mirrored by hand: -1 -> 0, -2 -> 1, -3 -> 2 (the edge pixel repeats, then the
    # indices walk back in).
    v = np.array([3.0, -1.0, 4.0, 1.0, -5.0, 9.0, 2.0, 6.0])
    taps = np.arange(-3, 5)
    weights = np.array([0.5 * _keys_cubic((0.5 - j) / 2) for j in taps])
    weights /= weights.sum()
    mirrored = {-3: 2, -2: 1, -1: 0}
    expected = sum(w * v[mirrored.get(j, j)] for w, j in zip(weights, taps, strict=True))
    # Written out: 0.546875 v0 + 0.3984375 v1 + 0.1015625 v2 - 0.03515625 v3 - 0.01171875 v4.
    by_hand = 0.546875 * 3 + 0.3984375 * -1 + 0.1015625 * 4 - 0.03515625 * 1 - 0.01171875 * -5
    assert expected == pytest.approx(by_hand, abs=1e-12)
    out = imresize_matlab(v[:, None], 0.5)[:, 0]
    assert out[0] == pytest.approx(by_hand, abs=1e-12)
    # The last output (coordinate 6.5, taps 3..10) mirrors at the other end: 8 -> 7, 9 -> 6,
    # 10 -> 5.
    mirrored_end = {8: 7, 9: 6, 10: 5}
    taps_end = np.arange(3, 11)
    w_end = np.array([0.5 * _keys_cubic((6.5 - j) / 2) for j in taps_end])
    w_end /= w_end.sum()
    last = sum(w * v[mirrored_end.get(j, j)] for w, j in zip(w_end, taps_end, strict=True))
    assert out[-1] == pytest.approx(last, abs=1e-12)


def test_upscale_matches_printed_matlab_output():
    # imresize([0 0 1 1 0], [1 10]) as printed by MATLAB in Stack Overflow question 17380407
    # (2013), four decimals. Its 10th value, -0.0703, is what *replicating* the end pixel
    # gives; the symmetric rule of later releases (which fatheral/matlab_imresize matches bit
    # for bit against R2015b) gives -0.09375 there. The first nine do not depend on the rule.
    printed = [0, -0.0234, -0.0703, 0.2031, 0.7969, 1.0938, 1.0938, 0.7969, 0.2031]
    out = imresize_matlab(np.array([[0.0, 0, 1, 1, 0]]), output_shape=(1, 10))[0]
    np.testing.assert_allclose(out[:9], printed, atol=5e-5)  # half the printed 4th decimal
    assert out[9] == pytest.approx(-0.09375, abs=1e-12)


def test_channels_are_resized_independently():
    img = _rng().random((10, 14, 3))
    out = imresize_matlab(img, 0.5)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], imresize_matlab(img[..., c], 0.5), atol=1e-12)


def test_to_uint8_rounds_half_away_from_zero_and_saturates():
    x = np.array([0.49999, 0.5, 1.5, 2.5, 254.5, 255.4, 300.0, -0.5, -3.0, np.nan])
    np.testing.assert_array_equal(to_uint8(x), [0, 1, 2, 3, 255, 255, 255, 0, 0, 0])
    assert to_uint8(x).dtype == np.uint8


def test_bicubic_degrade_is_modcrop_then_matlab_resize():
    hr = _rng().integers(0, 256, (31, 26, 3), dtype=np.uint8)
    lr = bicubic_degrade(hr, 3)
    assert lr.dtype == np.uint8 and lr.shape == (10, 8, 3)
    assert modcrop(hr, 3).shape == (30, 24, 3)
    expected = to_uint8(imresize_matlab(modcrop(hr, 3), 1 / 3, quantize_between_passes=True))
    np.testing.assert_array_equal(lr, expected)
    # Rounding between passes (uint8 in MATLAB) moves some pixels by a grey level, no more here.
    plain = to_uint8(imresize_matlab(modcrop(hr, 3), 1 / 3))
    assert np.abs(lr.astype(int) - plain).max() <= 1


def test_resize_errors():
    img = np.zeros((8, 8))
    with pytest.raises(ValueError, match="exactly one"):
        imresize_matlab(img)
    with pytest.raises(ValueError, match="exactly one"):
        imresize_matlab(img, 0.5, output_shape=(4, 4))
    with pytest.raises(ValueError, match="positive"):
        imresize_matlab(img, -2)
    with pytest.raises(ValueError, match="HxW"):
        imresize_matlab(np.zeros(8), 0.5)
    with pytest.raises(ValueError, match="uint8"):
        bicubic_degrade(img, 2)
    with pytest.raises(ValueError, match="integer"):
        bicubic_degrade(img.astype(np.uint8), 0)


# ---- imresize_torch -------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 2, 4])
def test_torch_and_matlab_agree_on_constants_and_inside_but_not_at_the_border(scale):
    const = np.full((24, 30, 3), 42.0)
    np.testing.assert_allclose(imresize_torch(const, scale), 42.0, atol=1e-10)
    np.testing.assert_allclose(imresize_matlab(const, scale), 42.0, atol=1e-10)

    img = _rng().random((24, 30, 3)) * 255
    m, t = imresize_matlab(img, scale), imresize_torch(img, scale)
    assert m.shape == t.shape
    # Same kernel, same grid: equal wherever no tap leaves the image ...
    margin = math.ceil(3 / scale) if scale < 1 else 2 * int(scale)
    inside = (slice(margin, -margin), slice(margin, -margin))
    np.testing.assert_allclose(m[inside], t[inside], atol=1e-9)
    # ... and different at the border: torch drops the outside taps, MATLAB mirrors them.
    assert np.abs(m - t).max() > 1.0


def test_imresize_torch_is_pil_bicubic():
    img = (_rng().random((24, 36)) * 255).astype(np.float32)
    for size in [(12, 8), (72, 48)]:  # PIL takes (width, height)
        pil = np.asarray(Image.fromarray(img, mode="F").resize(size, Image.Resampling.BICUBIC))
        ours = imresize_torch(img, size[0] / 36)
        # PIL keeps float32 ("F"): values up to 255 (ulp 1.5e-5) through 4-16 taps, ~65 ulps
        np.testing.assert_allclose(ours, pil, atol=1e-3)


def test_compare_bicubic_reports_each_image_and_scale():
    img = (_rng().random((48, 40, 3)) * 255).astype(np.uint8)
    rows = compare_bicubic({"noise": img}, (2, 4))
    assert [(r["image"], r["scale"]) for r in rows] == [("noise", 2), ("noise", 4)]
    for r in rows:
        assert r["delta"] == pytest.approx(r["bicubic_torch"] - r["bicubic_matlab"])
        assert math.isfinite(r["lr_psnr_y"]) and r["lr_psnr_y_crop"] >= r["lr_psnr_y"]
