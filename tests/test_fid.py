"""FID (sotazoo.metrics.fid): the distance on cases with a closed form, the shipped proxy (its
sha256, its logged accuracy and reference FIDs recomputed, the orderings that make it a
measure), the Inception loader on a synthetic file of the published layout against pytorch-fid's
own network, and bad input. Nothing is downloaded, nothing but a 1-epoch smoke is trained."""

import json
import math

import numpy as np
import pytest
import torch
import torchvision

from sotazoo.data.digits import load_digits
from sotazoo.errors import InputError, WeightsError
from sotazoo.metrics import fid_proxy
from sotazoo.metrics.fid import (
    INCEPTION_WEIGHTS,
    ProxyFeatures,
    build_fid_inception,
    feature_stats,
    fid,
    frechet_distance,
    load_fid_inception,
    reference_fids,
)
from sotazoo.weights import fetch, sha256_file

LOG = json.loads(
    (fid_proxy.PROXY_DIR / "digits_fid_proxy.sotazoo.log.json").read_text(encoding="utf-8")
)


# --------------------------------------------------------------------------- the distance


def _closed_form_diagonal(mu1, var1, mu2, var2):
    """For diagonal covariances the square root is elementwise: FID = |mu1 - mu2|^2 +
    sum (sqrt(v1) - sqrt(v2))^2 (Dowson & Landau 1982, the distance FID uses)."""
    return float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum())


def test_diagonal_gaussians_match_the_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    v1, v2 = rng.uniform(0.1, 3.0, 16), rng.uniform(0.1, 3.0, 16)
    got = frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
    assert got == pytest.approx(_closed_form_diagonal(mu1, v1, mu2, v2), rel=1e-9)


def test_rotated_gaussians_keep_the_closed_form():
    """Rotating both Gaussians by one orthogonal Q leaves the distance unchanged, and makes the
    covariances full, so the general matrix square root path is exercised."""
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=12), rng.normal(size=12)
    v1, v2 = rng.uniform(0.2, 2.0, 12), rng.uniform(0.2, 2.0, 12)
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    got = frechet_distance(q @ mu1, q @ np.diag(v1) @ q.T, q @ mu2, q @ np.diag(v2) @ q.T)
    assert got == pytest.approx(_closed_form_diagonal(mu1, v1, mu2, v2), rel=1e-6)


def test_two_dimensional_case_by_hand():
    """mu (0, 0) vs (3, 4): |diff|^2 = 25; covariances I and 4I: sum (1 - 2)^2 = 2."""
    got = frechet_distance(np.zeros(2), np.eye(2), np.array([3.0, 4.0]), 4 * np.eye(2))
    assert got == pytest.approx(27.0)


def test_symmetric_and_zero_on_itself():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(10, 10)), rng.normal(size=(10, 10))
    s1, s2 = a @ a.T + 0.1 * np.eye(10), b @ b.T + 0.1 * np.eye(10)
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    d12, d21 = frechet_distance(mu1, s1, mu2, s2), frechet_distance(mu2, s2, mu1, s1)
    assert d12 > 1 and d12 == pytest.approx(d21, rel=1e-7)
    # float64 throughout: only sqrtm's rounding is left, ~1e-13 of the trace (~100) here
    assert abs(frechet_distance(mu1, s1, mu1, s1)) < 1e-8


def test_bad_statistics_are_refused():
    mu, s = np.zeros(4), np.eye(4)
    with pytest.raises(InputError, match="dimensions differ"):
        frechet_distance(mu, s, np.zeros(5), np.eye(5))
    with pytest.raises(InputError, match="covariance of shape"):
        frechet_distance(mu, np.eye(3), mu, s)
    with pytest.raises(InputError, match="NaN"):
        frechet_distance(mu, s, np.full(4, np.nan), s)
    with pytest.raises(InputError, match="at least 2"):
        frechet_distance(np.zeros(1), np.eye(1), np.ones(1), np.eye(1))


# --------------------------------------------------------------------------- the proxy


@pytest.fixture(scope="module")
def proxy():
    return ProxyFeatures(fid_proxy.load_proxy())


@pytest.fixture(scope="module")
def digits():
    xt, yt = load_digits(size=16, split="train", seed=0)
    xh, yh = load_digits(size=16, split="heldout", seed=0)
    return xt, yt, xh, yh


def test_proxy_file_matches_its_sha256_size_and_log():
    path = fetch(fid_proxy.PROXY_WEIGHTS)  # raises on a sha256 mismatch
    assert sha256_file(path) == fid_proxy.PROXY_WEIGHTS.sha256 == LOG["sha256"]
    assert path.stat().st_size == LOG["size_bytes"] < 300_000  # "a few hundred KB at most"
    n = sum(p.numel() for p in fid_proxy.DigitsFeatureNet().parameters())
    assert n == fid_proxy.PROXY_WEIGHTS.num_params == LOG["num_params"]


def test_proxy_heldout_accuracy_is_what_the_log_says(digits):
    """Recompute the accuracy on the 359 held-out digits (never trained on) with the shipped
    weights; it must equal the logged and declared figure (99.16 % when trained)."""
    from sotazoo.train import evaluate

    _, _, xh, yh = digits
    acc = round(100 * evaluate(fid_proxy.load_proxy(), xh, yh), 2)
    assert acc == LOG["metrics"]["digits_heldout_top1"]
    assert acc == fid_proxy.PROXY_WEIGHTS.metrics["digits_heldout_top1"]
    assert acc > 95  # a proxy whose features do not separate the classes measures nothing


def test_proxy_reference_fids_recompute_and_order(proxy):
    """The properties that make the proxy a measure (not hard-coded values): held-out real digits
    are close to the training ones, and blurred digits, a single class (mode collapse) and noise
    are each at least 50x farther. The recomputed values also equal the logged ones."""
    got = reference_fids(proxy.net)
    for k, v in LOG["reference_fid"].items():
        # the log keeps 3 decimals (abs: +-5e-4 on the heldout 0.126); another CPU's float32
        # features move a FID by ~1e-6 of itself (rel covers the 60 of the noise set with room)
        assert got[k] == pytest.approx(v, rel=1e-3, abs=1e-3), k
    assert got["heldout"] >= 0
    for k in ("blurred", "one_class", "noise"):
        assert got[k] > 50 * got["heldout"], got


def test_fid_of_a_set_with_itself_is_zero_and_fid_is_symmetric(proxy, digits):
    xt, _, xh, _ = digits
    # the same batch gives the same features (same kernels, same order): only sqrtm's float64
    # rounding remains (measured 5e-13); 1e-4 is still 1000x below the heldout FID (0.126)
    assert abs(fid(xh, xh, features=proxy)) < 1e-4
    assert fid(xt, xh, features=proxy) == pytest.approx(fid(xh, xt, features=proxy), rel=1e-5)


def test_precomputed_real_statistics_give_the_same_fid(proxy, digits):
    xt, _, xh, _ = digits
    stats = feature_stats(xt, features=proxy)
    assert stats[0].shape == (64,) and stats[1].shape == (64, 64)
    assert fid(stats, xh, features=proxy) == pytest.approx(fid(xt, xh, features=proxy), rel=1e-9)


def test_string_features_load_the_shipped_proxy(proxy, digits):
    _, _, xh, _ = digits
    assert fid(xh[:200], xh[200:]) == pytest.approx(
        fid(xh[:200], xh[200:], features=proxy), rel=1e-9
    )


def test_rgb_and_other_sizes_are_converted(proxy, digits):
    """Grey replicated to RGB has luma equal to the grey (BT.601 weights sum to 1); an 8x8 digit
    (a ProGAN stage) is enlarged to 16x16 exactly as the dataset's 16x16 version was made, so
    its FID to that version is 0; a 32x32 one is brought back close to it, far closer than the
    blurred digits are."""
    from sotazoo.data.digits import resample

    _, _, xh, _ = digits
    f1 = proxy(xh[:50])
    # luma = grey * (0.299 + 0.587 + 0.114), 1 up to an ulp: features (of order 4) a few ulps off
    torch.testing.assert_close(proxy(xh[:50].expand(-1, 3, -1, -1)), f1, atol=1e-5, rtol=1e-5)
    x8, _ = load_digits(size=8, split="heldout", seed=0)
    x32, _ = load_digits(size=32, split="heldout", seed=0)
    assert abs(fid(x8, xh, features=proxy)) < 1e-6  # the same tensors: sqrtm's rounding alone
    blurred = fid(resample(resample(xh, 4), 16), xh, features=proxy)
    assert fid(x32, xh, features=proxy) < blurred / 50


def test_recipe_smoke_runs():
    """One epoch of the recipe: it runs, uses the train split only, and logs the accuracy."""
    model, log = fid_proxy.train_proxy(seed=0, epochs=1)
    assert log["n_train"] == 1438 and log["n_heldout"] == 359
    assert len(log["epoch_loss"]) == 1 and math.isfinite(log["epoch_loss"][0])
    assert 0 <= log["metrics"]["digits_heldout_top1"] <= 100
    assert not model.training


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.full((4, 1, 16, 16), float("nan")), "NaN"),
        (torch.zeros(4, 2, 16, 16), "1 or 3"),
        (torch.zeros(16, 16), "1 or 3"),
        (torch.randint(0, 255, (4, 1, 16, 16)), "floating-point"),
        (torch.rand(4, 1, 16, 16) * 255, r"\[-1, 1\]"),
        (torch.zeros(1, 1, 16, 16), "at least 2"),
    ],
    ids=["nan", "two-channels", "2d", "uint8-values", "0-255-range", "one-image"],
)
def test_bad_images_are_refused(proxy, images, match):
    with pytest.raises(InputError, match=match):
        feature_stats(images, features=proxy)


def test_unknown_feature_network_is_refused(digits):
    with pytest.raises(ValueError, match="features must be"):
        fid(digits[2], digits[2], features="vgg")


# --------------------------------------------------------------------------- Inception


def _synthetic_inception_state_dict() -> dict[str, torch.Tensor]:
    """The published file's layout (pytorch-fid's FID Inception: keys and shapes) with random,
    well-scaled values: He-normal convs, non-trivial BN statistics."""
    g = torch.Generator().manual_seed(0)
    sd = build_fid_inception().state_dict()
    for k, v in sd.items():
        if k.endswith("conv.weight"):
            sd[k] = torch.randn(v.shape, generator=g) * math.sqrt(2.0 / v[0].numel())
        elif k.endswith("running_var"):
            sd[k] = torch.rand(v.shape, generator=g) + 0.5
        elif k.endswith("running_mean") or k.endswith("bn.bias"):
            sd[k] = torch.randn(v.shape, generator=g) * 0.1
        elif k.endswith("bn.weight"):
            sd[k] = torch.rand(v.shape, generator=g) + 0.5
        elif k.startswith("fc."):
            sd[k] = torch.randn(v.shape, generator=g) * 0.01
    return sd


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    sd = _synthetic_inception_state_dict()
    path = tmp_path_factory.mktemp("inception") / INCEPTION_WEIGHTS.filename
    torch.save(sd, path)
    return path, sd


def test_inception_param_count_from_torchvision():
    """torchvision's Inception-v3 meta (27,161,264 parameters, with the aux head and 1000
    classes) less the aux head, plus 8 classes (1008 x 2049 vs 1000 x 2049 in fc), is the FID
    network's count; the pytorch-fid file's keys are exactly our state dict's (checked below)."""
    with torch.device("meta"):
        ours = build_fid_inception()
        tv = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    ref = torchvision.models.Inception_V3_Weights.IMAGENET1K_V1.meta["num_params"]
    aux = sum(p.numel() for p in tv.AuxLogits.parameters())
    expected = ref - aux + 8 * 2049
    assert sum(p.numel() for p in ours.parameters()) == expected == INCEPTION_WEIGHTS.num_params


def test_inception_loader_matches_pytorch_fid(inception_file, monkeypatch):
    """Oracle: pytorch-fid's own InceptionV3 (its download replaced by the same synthetic state
    dict) and our loader give the same pool3 features, max abs diff <= 1e-5."""
    import pytorch_fid.inception as pfi

    path, sd = inception_file
    ours = load_fid_inception(path, sha256=sha256_file(path))
    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: sd)
    ref = pfi.InceptionV3([3]).eval()
    x01 = torch.rand(2, 3, 37, 45, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want = ref(x01)[0].flatten(1)
        got = ours(2 * x01 - 1)
    assert got.shape == (2, 2048) and want.abs().max() > 1e-2  # features that mean something
    # Same weights and the same torch ops on the same kernels, so any CPU or thread count moves
    # both alike (measured: equal); rtol scales the bound to the features (up to ~30).
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    with torch.inference_mode():
        grey = ours(2 * x01[:, :1] - 1)
        torch.testing.assert_close(grey, ours(2 * x01[:, :1].expand(-1, 3, -1, -1) - 1))
    mu, sigma = feature_stats(2 * x01 - 1, features=ours)
    assert mu.shape == (2048,) and sigma.shape == (2048, 2048)


def test_inception_file_that_is_not_the_published_one_is_refused(inception_file):
    path, _ = inception_file
    with pytest.raises(WeightsError, match="sha256"):
        load_fid_inception(path)  # the default: the published digest


def test_tampered_inception_file_is_refused(inception_file, tmp_path):
    path, _ = inception_file
    expected = sha256_file(path)
    bad = tmp_path / path.name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="does not match its sha256"):
        load_fid_inception(bad, sha256=expected)


def test_missing_inception_file_is_refused_without_download(tmp_path):
    with pytest.raises(WeightsError, match="no FID Inception weight file"):
        load_fid_inception(tmp_path / "nope.pth")
    # No path and nothing in the (isolated) cache: the error says where to get it and put it.
    with pytest.raises(WeightsError, match="does not download"):
        fid(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 8), features="inception")


def test_inception_file_with_another_layout_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(fid_proxy.DigitsFeatureNet().state_dict(), path)
    with pytest.raises(WeightsError, match="missing keys"):
        load_fid_inception(path, sha256=None)
