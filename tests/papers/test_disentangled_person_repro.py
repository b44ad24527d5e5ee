"""DPIG's method, ablation, recipe, converter and reproduction (the networks: test_disentangled_person).

- Losses on cases computed by hand: the stage-I DCGAN and L1 terms, the logged pose-mask L1, the
  pose autoencoder's MSE, the WGAN terms; the learning-rate halving; TF's RMSProp by hand.
- The clipping step: after `wgan_step` every critic weight lies in [-0.01, 0.01]; the mapper
  moves only when it is updated.
- The ablation switch: `encoder="entangled"` reads the whole image (not the mask, not the boxes)
  into a code of the same 352 numbers and keeps the decoder.
- The recipe at a tiny budget; the converter on the official names: the fixture's tiny official
  networks (tests/papers/fixtures/dpig_official.json, weights under their TF names) load by name
  and reproduce the official outputs; the Market-1501 names are the official creation order.
- `run(quick=True, seeds=[0])` and its result file.
"""

import base64
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sotazoo.errors import InputError
from sotazoo.papers.disentangled_person import method as M
from sotazoo.papers.disentangled_person.keypoints import keypoint_heatmaps
from sotazoo.papers.disentangled_person.model import MARKET, Dpig, DpigConfig, dpig_mini
from sotazoo.papers.disentangled_person.persons import make_persons
from sotazoo.papers.disentangled_person.stage2 import (
    DCGANDiscriminator,
    EmbeddingCritic,
    MappingNet,
    PoseAutoencoder,
)
from sotazoo.weights import WeightsError

FIXTURE = Path(__file__).parent / "fixtures" / "dpig_official.json"


@pytest.fixture(scope="module")
def fx() -> dict:
    return json.loads(FIXTURE.read_text())


def _arr(d: dict) -> np.ndarray:
    if d["dtype"] == "bits":
        n = int(np.prod(d["shape"]))
        a = np.unpackbits(np.frombuffer(base64.b64decode(d["data"]), np.uint8))[:n]
        return a.reshape(d["shape"]).astype(np.float32)
    a = np.frombuffer(base64.b64decode(d["data"]), {"float16": "<f2", "float32": "<f4"}[d["dtype"]])
    return a.reshape(d["shape"]).astype(np.float32)


def _nchw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()


# ---------------------------------------------------------------------- losses by hand


def test_stage1_losses_by_hand():
    fake = torch.tensor([0.0, math.log(3)])  # sigmoid: 1/2 and 3/4
    image = torch.zeros(2, 3, 2, 2)
    out = torch.full((2, 3, 2, 2), 0.5)
    g = M.stage1_generator_loss(fake, out, image)
    assert math.isclose(g["adv"], (math.log(2) + math.log(4 / 3)) / 2, rel_tol=1e-6)
    assert math.isclose(g["l1"], 20 * 0.5, rel_tol=1e-6)  # weighted by 20
    d = M.stage1_discriminator_loss(torch.tensor([0.0]), torch.tensor([math.log(3)]))
    assert math.isclose(d["d_real"], math.log(2) / 2, rel_tol=1e-6)  # BCE(1/2, 1) / 2
    assert math.isclose(d["d_fake"], math.log(4) / 2, rel_tol=1e-6)  # BCE(3/4, 0) / 2
    mask = torch.zeros(2, 1, 2, 2)
    mask[..., 0, :] = 1  # half the pixels
    assert math.isclose(M.pose_mask_l1(out, image, mask), 0.25, rel_tol=1e-6)
    with pytest.raises(InputError, match="output and image differ in shape"):
        M.stage1_generator_loss(fake, out[:, :2], image)


def test_pose_and_wgan_losses_by_hand():
    target = torch.zeros(1, 54)
    p = M.pose_reconstruction_loss(target, torch.ones(1, 36), torch.zeros(1, 18))
    assert math.isclose(p["mse"], 20 * 36 / 54, rel_tol=1e-6)  # 36 of the 54 numbers off by 1
    rebuilt = torch.zeros(1, 36)
    rebuilt[0, 0] = 1  # keypoint 0's row: the first of the interleaved (r, c, v)
    t2 = torch.zeros(1, 54)
    t2[0, 0] = 1
    assert M.pose_reconstruction_loss(t2, rebuilt, torch.zeros(1, 18))["mse"] == 0
    c = M.wgan_critic_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.5, 1.5]))
    assert (float(c["d_fake"]), float(c["d_real"])) == (1.0, -2.0)
    assert float(M.wgan_mapper_loss(torch.tensor([0.5, 1.5]))["g_adv"]) == -1.0
    assert M.lr_at(49_999) == 2e-5 and M.lr_at(50_000) == 1e-5 and M.lr_at(100_000) == 5e-6


def test_tf_rmsprop_by_hand():
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = M.TFRMSprop([w], lr=0.1)
    w.grad = torch.tensor([2.0])
    opt.step()  # ms = 0.9 * 1 + 0.1 * 4 = 1.3 (TF starts the mean square at 1)
    assert math.isclose(float(w.detach()), 1 - 0.1 * 2 / math.sqrt(1.3 + 1e-10), rel_tol=1e-6)
    w.grad = torch.tensor([1.0])
    opt.step()  # ms = 0.9 * 1.3 + 0.1 = 1.27
    assert math.isclose(
        float(w.detach()), 1 - 0.2 / math.sqrt(1.3) - 0.1 / math.sqrt(1.27), rel_tol=1e-6
    )
    with pytest.raises(InputError, match="TFRMSprop"):
        M.TFRMSprop([w], lr=0.0)


def test_the_clipping_step():
    torch.manual_seed(0)
    mapper, critic = MappingNet(6, 8, 2), EmbeddingCritic(6, 8, 3)
    with torch.no_grad():
        for p in critic.parameters():
            p.uniform_(-1, 1)
    s = M.make_sampler(mapper, critic, lr=1e-2)
    before = [p.clone() for p in mapper.parameters()]
    g = torch.Generator().manual_seed(0)
    real = torch.randn(32, 6, generator=g)
    terms = M.wgan_step(s, real, batch=8, update_mapper=False, generator=g)
    assert all(p.abs().max() <= M.CLIP for p in critic.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, mapper.parameters(), strict=True))
    assert set(terms) == {"d_fake", "d_real", "wasserstein"}
    assert math.isclose(terms["wasserstein"], -(terms["d_fake"] + terms["d_real"]))
    # now the mapper moves too (through this tiny critic clipped at 0.01 its gradient is below
    # float resolution: give the mapper update an unclipped critic)
    with torch.no_grad():
        for p in critic.parameters():
            p.uniform_(-1, 1)
    terms = M.wgan_step(s, real, batch=8, generator=g)
    assert "g_adv" in terms and not all(
        torch.equal(a, b) for a, b in zip(before, mapper.parameters(), strict=True))  # fmt: skip
    assert all(p.abs().max() <= M.CLIP for p in critic.parameters())
    M.clip_weights_(critic, 1e-3)
    assert all(p.abs().max() <= 1e-3 for p in critic.parameters())
    with pytest.raises(InputError, match="critic_steps must be at least 1"):
        M.wgan_step(s, real, batch=8, critic_steps=0)
    with pytest.raises(InputError, match="real_codes: expected a non-empty"):
        M.wgan_step(s, real[0], batch=8)


def test_stage1_step_updates_what_it_should():
    torch.manual_seed(0)
    model = dpig_mini(hidden_num=2, part_dim=2, bg_dim=4, z_dim=4, roi_size=4)
    disc = DCGANDiscriminator(img_h=64, img_w=32, dim=2)
    opts = M.stage1_optimizers(model, disc, lr=1e-3)
    p = make_persons(2, seed=0)
    g0, d0 = model.decoder.out.weight.clone(), disc.fc.weight.clone()
    terms = M.stage1_step(model, disc, opts, p.inputs(), update_g=False)  # the official step 0
    assert torch.equal(model.decoder.out.weight, g0) and not torch.equal(disc.fc.weight, d0)
    assert set(terms) == {"adv", "l1", "d_real", "d_fake", "pose_mask_l1"}
    M.stage1_step(model, disc, opts, p.inputs())
    assert not torch.equal(model.decoder.out.weight, g0)
    no_d = M.stage1_optimizers(model, None, lr=1e-3)
    assert no_d.d is None and set(M.stage1_step(model, None, no_d, p.inputs())) == {
        "l1", "pose_mask_l1"}  # fmt: skip


# ---------------------------------------------------------------------- the ablation


def test_the_entangled_switch():
    torch.manual_seed(0)
    tiny = {"hidden_num": 4, "part_dim": 4, "bg_dim": 8, "z_dim": 8, "roi_size": 8}
    ent = dpig_mini(encoder="entangled", **tiny).eval()
    ours = dpig_mini(**tiny)
    assert not hasattr(ent.encoder, "fg") and not hasattr(ent.encoder, "bg")
    assert ent.encoder.whole_fc.out_features == ours.cfg.code_dim == 4 * 7 + 8
    # the same decoder, parameter for parameter
    assert [(k, v.shape) for k, v in ent.decoder.state_dict().items()] == [
        (k, v.shape) for k, v in ours.decoder.state_dict().items()]  # fmt: skip
    p = make_persons(3, seed=2)
    x, hm, mask, boxes, vis = p.inputs()
    with torch.no_grad():
        fg, bg = ent.encode(x, mask, boxes, vis)
        fg2, bg2 = ent.encode(x, 1 - mask, boxes.flip(0), torch.zeros_like(vis))  # not read
        out = ent(x, hm, mask, boxes, vis)
        noisy = x.clone()
        noisy[..., :4] += 0.5  # pixels at the border, far from any body region
        fg3, _ = ent.encode(noisy, mask, boxes, vis)
    assert fg.shape == (3, 28) and bg.shape == (3, 8) and out.shape == x.shape
    assert torch.equal(fg, fg2) and torch.equal(bg, bg2)
    assert not torch.equal(fg, fg3)  # its "fg" part sees the background: nothing separates them
    assert torch.allclose(ent.decode(fg, bg, hm), out, atol=1e-6)
    with pytest.raises(InputError, match="encoder must be one of"):
        DpigConfig(encoder="two_branch")


def test_the_stem_written_out_equals_the_tiled_convolution():
    torch.manual_seed(0)
    model = dpig_mini(hidden_num=4).eval()
    codes, hm = torch.randn(2, model.cfg.code_dim), make_persons(2, seed=4).heatmaps
    tiled = codes[:, :, None, None].expand(2, codes.shape[1], 64, 32)
    want = model.decoder.stem(torch.cat([tiled, hm], 1))
    assert (model.decoder.stem_conv(codes, hm) - want).abs().max() < 1e-5
    assert "decoder.taps" not in model.state_dict()  # not saved: derived from the size


# ---------------------------------------------------------------------- the recipe


def test_the_recipe_at_a_tiny_budget():
    from sotazoo.papers.disentangled_person.train import RECIPES, MiniRecipe, train_mini

    assert RECIPES["dpig_mini"].unit == "hundred steps" and RECIPES["dpig_mini"].default == 40
    tiny = MiniRecipe(steps_per_unit=2, train_persons=6, test_persons=2, batch_size=2,
                      model={"hidden_num": 2, "part_dim": 2, "bg_dim": 4, "z_dim": 4})  # fmt: skip
    trained = train_mini(seed=0, budget=1, progress=False, recipe=tiny)
    assert isinstance(trained.model, Dpig) and not trained.model.training
    assert 0 < trained.metrics["heldout_l1"] < 2
    assert trained.log["stage1"]["steps"] == 2 and trained.log["losses"][-1]["step"] == 2


# ---------------------------------------------------------------------- the converter


def _official_checkpoint(fx: dict) -> dict[str, np.ndarray]:
    """The fixture's tiny official networks under their TF names, plus the training state a
    saved checkpoint also holds."""
    ck = {w["name"].removesuffix(":0"): _arr(w) for w in fx["weights"]}
    ck |= {"step": np.array(30000), "g_lr": np.array(2e-5, np.float32),
           "Encoder/G_encoder/Conv/weights/Adam": np.zeros(1, np.float32),
           "ID_AE/G/Conv_3/biases/Adam_1": np.zeros(1, np.float32),
           "Fg_FCDis_Discriminator.0.Linear/Fg_FCDis_Discriminator.0.Linear.W/RMSProp":
           np.zeros(1, np.float32),
           "Discriminator.BN2.moving_mean": np.zeros(1, np.float32)}  # fmt: skip
    return ck


def test_the_converter_maps_the_official_names(fx, tmp_path):
    """The tiny official networks load by name (not by order) and give the official outputs;
    the Market-1501 model's 130 names are the official ones in creation order."""
    from sotazoo.papers.disentangled_person.convert import (
        convert_state_dict,
        load,
        official_names,
    )

    names = [n.removesuffix(":0") for n, _ in fx["market_stage1_variables"]]
    assert [
        f"{s}/{w}" for _, s, _ in official_names(MARKET) for w in ("weights", "biases")
    ] == names
    ck = _official_checkpoint(fx)
    sd, overrides, layout = convert_state_dict(ck)
    s1 = fx["stage1"]
    cfg = DpigConfig(**s1["config"])
    assert layout == "official" and all(getattr(cfg, k) == v for k, v in overrides.items())
    assert set(overrides) >= {"hidden_num", "repeat_num", "part_dim", "bg_dim", "z_dim"}
    model = Dpig(cfg).eval()
    model.load_state_dict(sd, strict=True)
    image = _nchw(_arr(s1["image_nhwc"]))
    heatmaps = keypoint_heatmaps(torch.from_numpy(_arr(s1["keypoints"])), cfg.img_h, cfg.img_w)
    mask = _nchw(_arr(s1["fg_mask_nhwc"]))
    boxes, vis = torch.from_numpy(_arr(s1["boxes"])), torch.from_numpy(_arr(s1["box_vis"]))
    with torch.no_grad():
        out = model(image, heatmaps, mask, boxes, vis)
    assert (out - _nchw(_arr(s1["output_nhwc"]))).abs().max() < 1e-5
    # our own layout passes through; a torch file of the official names loads through `load`
    assert convert_state_dict(model.state_dict())[2] == "sotazoo"
    path = tmp_path / "official.pt"
    torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in ck.items()}, path)
    loaded, over = load(path, "dpig_market", {})
    assert over == overrides and torch.equal(loaded["decoder.out.weight"], sd["decoder.out.weight"])
    broken = dict(ck)
    del broken["ID_AE/G/fully_connected_1/weights"]
    with pytest.raises(WeightsError, match="ID_AE/G/fully_connected_1/weights"):
        convert_state_dict(broken)
    with pytest.raises(WeightsError, match="unexpected stage-I variables"):
        convert_state_dict(ck | {"Encoder/G_encoder/Conv_99/weights": np.zeros(1, np.float32)})
    with pytest.raises(WeightsError, match="unrecognised DPIG stage-I checkpoint"):
        convert_state_dict({"PoseAE/G_Pose_Encoder/fully_connected/weights": np.zeros(1)})


def test_the_stage2_converter(fx):
    from sotazoo.papers.disentangled_person.convert import convert_stage2
    from sotazoo.papers.disentangled_person.stage2 import Stage2Config

    sd = convert_stage2(_official_checkpoint(fx), Stage2Config(blocks=2, critic_layers=3))

    def part(prefix: str) -> dict:
        return {k[len(prefix) + 1 :]: v for k, v in sd.items() if k.startswith(prefix + ".")}

    mapper, critic = MappingNet(6, 8, 2).eval(), EmbeddingCritic(6, 8, 3).eval()
    mapper.load_state_dict(part("fg_map"), strict=True)
    critic.load_state_dict(part("fg_critic"), strict=True)
    pose = PoseAutoencoder(img_h=128, img_w=64, code_dim=5, width=8, blocks=2).eval()
    pose.load_state_dict(part("pose_ae"), strict=True)
    disc = DCGANDiscriminator(img_h=128, img_w=64, dim=2)
    disc.load_state_dict(part("discriminator"), strict=True)
    s2 = fx["stage2"]
    z = torch.from_numpy(_arr(s2["z"]))
    with torch.no_grad():
        code = pose.encoder_out(pose.encoder(torch.from_numpy(_arr(s2["pose_in"]))))
        image = _nchw(_arr(fx["stage1"]["image_nhwc"])).repeat_interleave(4, 2)
        logits = disc(image.repeat_interleave(4, 3))
        for got, want in ((mapper(z), "mapping"), (critic(z), "critic"), (code, "pose_code"),
                          (logits, "disc_logit")):  # fmt: skip
            assert (got - torch.from_numpy(_arr(s2[want]))).abs().max() < 1e-5, want
    with pytest.raises(WeightsError, match="no stage-II variable"):
        convert_stage2({"Encoder/G_encoder/Conv/weights": np.zeros((3, 3, 3, 4))})


# ---------------------------------------------------------------------- the reproduction


def test_repro_quick(tmp_path):
    from sotazoo.cards import load_card
    from sotazoo.papers.disentangled_person import repro
    from sotazoo.repro import run_repro, validate_result

    data = run_repro("disentangled_person", quick=True, seeds=[0], out_dir=tmp_path,
                     progress=False)  # fmt: skip
    assert not validate_result(data)
    card_ids = {c.id for c in load_card("disentangled_person").claims}
    assert {c["id"] for c in data["claims"]} == {"factor_swap_disentangled",
                                                 "gaussian_embedding_sampling"} <= card_ids  # fmt: skip
    assert all(c["verdict"] == "inconclusive" for c in data["claims"])  # one seed: never a verdict
    assert all(k["ok"] for k in data["checks"]) and (tmp_path / data["figure"]).is_file()
    run = data["details"]["runs"][0]
    for arm in repro.ARMS:
        swaps = run[arm]["swaps"]
        assert set(swaps) >= {"foreground", "background", "pose", "score", "reconstruction"}
        assert 0 <= swaps["score"] <= 100
    assert repro.DEFAULT_SEEDS == (0, 1, 2, 3)
