"""MUNIT's method, data, training recipe and laptop reproduction (the networks: test_munit.py).

- Losses on cases computed by hand: the LSGAN terms of D and G for known patch maps over
  several scales, the L1 reconstruction, the weighted total of `gen_losses`.
- One D update and one G update change only their own networks and give finite terms; the
  deterministic ablation decodes zero style codes, has no style term, and leaves the style
  encoders untouched.
- The synthetic domains: seeded, shapes and ranges, A grey edge maps, B digits painted in one
  colour over another, unpaired batches.
- The evaluation's pairwise distance and ink map by hand; the recipe at a tiny budget writes
  weights and a log; `sotazoo repro munit --quick` gives a valid smoke result and its figure.
"""

import json
import math

import numpy as np
import pytest
import torch

from sotazoo.papers.munit import data, method
from sotazoo.papers.munit.method import MunitLoss

TINY = {"dim": 4, "mlp_dim": 8, "n_res": 1, "dis_dim": 4}


@pytest.fixture(autouse=True)
def _one_thread():
    """These small convolutions gain nothing from a second thread, and on a busy 2-core machine
    a second thread makes each step several times slower (measured: 2.9 s against 0.5 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _pair(seed: int = 0):
    from sotazoo.papers.munit.train import build

    return build(seed, **TINY)


# ---------------------------------------------------------------------- losses by hand


def test_lsgan_terms_by_hand():
    """D: sum over scales of mean(fake^2) + mean((real - 1)^2); G: sum of mean((fake - 1)^2)."""
    fake = [torch.tensor([[[[0.5, -0.5], [1.0, 0.0]]]]), torch.tensor([[[[2.0]]]])]
    real = [torch.tensor([[[[1.0, 0.0], [0.5, 1.5]]]]), torch.tensor([[[[-1.0]]]])]
    # scale 0: fake (0.25 + 0.25 + 1 + 0) / 4 = 0.375, real (0 + 1 + 0.25 + 0.25) / 4 = 0.375
    # scale 1: fake 4, real (-2)^2 = 4
    assert float(method.lsgan_dis_loss(fake, real)) == pytest.approx(0.375 + 0.375 + 4 + 4)
    # G: scale 0 (0.25 + 2.25 + 0 + 1) / 4 = 0.875, scale 1 (2 - 1)^2 = 1
    assert float(method.lsgan_gen_loss(fake)) == pytest.approx(0.875 + 1.0)
    x, t = torch.tensor([1.0, -2.0, 0.5, 0.0]), torch.tensor([0.0, 0.0, 0.0, 0.5])
    assert float(method.recon_l1(x, t)) == pytest.approx((1 + 2 + 0.5 + 0.5) / 4)


def test_gen_total_is_the_yaml_weighted_sum_and_the_ablation_drops_the_style_path():
    model, dis = _pair()
    g = torch.Generator().manual_seed(0)
    x_a, x_b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    t = method.gen_losses(model, dis, x_a, x_b, MunitLoss(), generator=g)
    assert set(t) == {"recon_x_a", "recon_x_b", "recon_c_a", "recon_c_b", "recon_s_a",
                      "recon_s_b", "adv_a", "adv_b", "total"}  # fmt: skip
    want = (t["adv_a"] + t["adv_b"] + 10 * (t["recon_x_a"] + t["recon_x_b"])
            + t["recon_s_a"] + t["recon_s_b"] + t["recon_c_a"] + t["recon_c_b"])  # fmt: skip
    assert float(t["total"].detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    cyc = method.gen_losses(model, dis, x_a, x_b, MunitLoss(recon_x_cyc_w=10), generator=g)
    assert {"cyc_x_a", "cyc_x_b"} <= set(cyc)
    det = method.gen_losses(model, dis, x_a, x_b, MunitLoss(style=False), generator=g)
    assert not any(k.startswith("recon_s") for k in det)
    assert torch.equal(method.style_codes(3, 8, style=False), torch.zeros(3, 8, 1, 1))
    # the ablation's within-domain reconstruction decodes the zero code, not E^s(x)
    with torch.no_grad():
        c_a = model.gen_a.enc_content(x_a)
        want_x = method.recon_l1(model.gen_a.decode(c_a, torch.zeros(2, 8, 1, 1)), x_a)
    assert float(det["recon_x_a"].detach()) == pytest.approx(float(want_x), rel=1e-6)


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _changed(before: dict, module: torch.nn.Module) -> set[str]:
    return {k for k, v in module.named_parameters() if not torch.equal(before[k], v)}


@pytest.mark.parametrize("style", [True, False])
def test_updates_change_the_right_networks(style):
    model, dis = _pair()
    opts = method.optimizers(model, dis, lr=1e-3)
    batches = data.Unpaired(0, 2)
    g = torch.Generator().manual_seed(1)
    loss = MunitLoss(style=style)
    g0, a0, b0 = _snapshot(model), _snapshot(dis.a), _snapshot(dis.b)
    d_terms = method.dis_update(model, dis, opts, *batches.batch(), loss, generator=g)
    assert set(d_terms) == {"dis_a", "dis_b", "total"}
    assert all(math.isfinite(v) for v in d_terms.values())
    assert not _changed(g0, model) and _changed(a0, dis.a) == set(a0) and _changed(b0, dis.b)
    a1, b1 = _snapshot(dis.a), _snapshot(dis.b)
    g_terms = method.gen_update(model, dis, opts, *batches.batch(), loss, generator=g)
    assert all(math.isfinite(v) for v in g_terms.values())
    assert not _changed(a1, dis.a) and not _changed(b1, dis.b)
    assert all(p.requires_grad for p in dis.a.parameters())  # unfrozen after the G step
    moved = _changed(g0, model)
    style_enc = {k for k in g0 if ".enc_style." in k}
    convs = {k for k in g0 if k.endswith("conv.weight") and k not in style_enc}
    assert convs <= moved  # content encoders and decoders of both domains
    # the ablation never decodes a style encoder's code: nothing reaches those (and its style
    # MLPs see only zeros, so only their last layer learns: one fixed set of AdaIN parameters)
    assert style_enc <= moved if style else moved.isdisjoint(style_enc)


# ---------------------------------------------------------------------- data


def test_domains_are_seeded_shaped_and_in_range():
    a1, b1 = data.Unpaired(3, 4).batch()
    a2, b2 = data.Unpaired(3, 4).batch()
    a3, b3 = data.Unpaired(4, 4).batch()
    assert torch.equal(a1, a2) and torch.equal(b1, b2)
    assert not torch.equal(a1, a3) and not torch.equal(b1, b3)
    for x in (a1, b1):
        assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
        assert float(x.min()) >= -1 and float(x.max()) <= 1
    assert torch.equal(a1[:, 0], a1[:, 1]) and torch.equal(a1[:, 0], a1[:, 2])  # grey
    assert float(a1.max()) == 1.0  # white paper, dark edges
    held = data.heldout(2)
    assert held["a"].shape == (359, 3, 32, 32) and held["b"].shape == (718, 3, 32, 32)
    assert torch.equal(held["b"], data.heldout(2)["b"])  # the same for every call
    ink, _ = data.digits("heldout")
    # B is the silhouette painted: full ink pixels have the ink colour, empty ones the background
    rng = np.random.default_rng(0)
    ink_rgb, bg_rgb = data.random_colours(len(ink), rng)
    b = data.paint(ink, ink_rgb, bg_rgb)
    i = 5
    full, empty = ink[i, 0] == 1, ink[i, 0] == 0
    assert full.any() and empty.any()
    assert torch.allclose(b[i][:, full], (2 * ink_rgb[i] - 1)[:, None].expand(3, int(full.sum())))
    assert torch.allclose(b[i][:, empty], (2 * bg_rgb[i] - 1)[:, None].expand(3, int(empty.sum())))
    assert float(ink_rgb.max(1).values.min()) >= 0.7 and float(bg_rgb.max(1).values.max()) <= 0.35


def test_edge_map_by_hand():
    """A vertical step from 0 to 1: Sobel's x-gradient is 4 on the two columns beside it and 0
    elsewhere, so those columns are the darkest (-1), the rest white."""
    ink = torch.zeros(1, 1, 6, 6)
    ink[..., 3:] = 1
    e = data.edge_map(ink)
    assert e.shape == (1, 3, 6, 6)
    assert (e[0, 0, :, 2:4] == -1).all() and (e[0, 0, :, [0, 1, 4, 5]] == 1).all()


# ---------------------------------------------------------------------- evaluation


def test_pairwise_distance_and_ink_map_by_hand():
    from sotazoo.papers.munit.evaluate import ColourProxyFeatures, ink_map, mean_pairwise_distance

    f = torch.tensor([[[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]],  # pairs: 5, 0, 5 -> 10/3
                      [[1.0, 1.0], [1.0, 1.0], [1.0, 3.0]]])  # pairs: 0, 2, 2 -> 4/3  # fmt: skip
    assert mean_pairwise_distance(f) == pytest.approx((10 / 3 + 4 / 3) / 2)
    x = -torch.ones(1, 3, 8, 8)
    x[:, 0, 3:5, 3:5] = 1  # a red square on black: distance 2 from the border colour
    m = ink_map(x)
    assert (m[0, 0, 3:5, 3:5] == 1).all() and float(m.sum()) == pytest.approx(4 - 60)

    class Net(torch.nn.Module):
        def features(self, x):  # (N, 1, 16, 16) -> (N, 64)
            return x.mean((2, 3)).expand(-1, 64)

    out = ColourProxyFeatures(Net())(
        torch.stack([torch.full((32, 32), v) for v in (0.1, 0.2, 0.3)])[None]
    )
    assert out.shape == (1, 192)
    assert torch.allclose(out[0, ::64], torch.tensor([0.1, 0.2, 0.3]))


# ---------------------------------------------------------------------- recipe and repro


def test_the_recipe_runs_at_a_tiny_budget(monkeypatch, tmp_path):
    from sotazoo.papers.munit import train
    from sotazoo.papers.munit.evaluate import EvalConfig
    from sotazoo.train.recipes import run_recipe

    monkeypatch.setattr(train, "STEPS_PER_UNIT", 2)
    monkeypatch.setattr(train, "RECIPE_EVAL", EvalConfig(inputs=8, k=2, fid_styles=1))
    out = run_recipe("munit_mini", out_dir=tmp_path, budget=1, progress=False)
    log = json.loads(out["log"].read_text())
    assert out["weights"].is_file() and log["budget"] == {"value": 1, "unit": "hundred steps"}
    assert log["train"]["steps"] == 2 and [e["step"] for e in log["evals"]] == [2]
    assert set(out["metrics"]) == {"heldout_proxy_fid", "heldout_diversity",
                                   "heldout_content_top1"}  # fmt: skip
    assert all(math.isfinite(v) for v in out["metrics"].values())


def test_repro_quick_run(tmp_path):
    """`sotazoo repro munit --quick`: both arms train, the claim gets a (smoke) verdict, the
    deterministic arm has exactly one output per input, the JSON validates, the figure is made."""
    from sotazoo.papers.munit.repro import ARMS, CLAIM_DIVERSITY
    from sotazoo.repro import run_repro, validate_result

    data_ = run_repro("munit", quick=True, out_dir=tmp_path, progress=False)
    assert [c["id"] for c in data_["claims"]] == [CLAIM_DIVERSITY]
    saved = json.loads((tmp_path / "munit.quick.json").read_text())
    assert validate_result(saved) == [] and saved["quick"] is True
    per_arm = saved["details"]["per_arm"]
    assert set(per_arm) == set(ARMS) and per_arm["deterministic"]["diversity"] == [0.0]
    assert per_arm["munit"]["diversity"][0] > 0
    assert saved["claims"][0]["verdict"] == "inconclusive"  # one seed is never a verdict
    assert (tmp_path / "munit.quick.svg").read_text().lstrip().startswith("<?xml")
