"""DPIG (disentangled person generation): what is checked against what.

- Parameter counts: the official numbers (stage-I generator 118,549,859 = Encoder 47,352,736 +
  ID_AE 71,197,123; discriminator, pose autoencoder, mappers and critics), obtained by building
  the official TF1 functions (charliememory/Disentangled-Person-Image-Generation e470386) with
  tensorflow-cpu 2.15 and counting tf.trainable_variables(), recorded in the card and the
  fixture; against a layer-by-layer count written here from models.py / wgan_gp.py, and both
  against our modules. The shapes of our stage-I parameters, in registration order, are the
  official variables' shapes in creation order (the fixture lists them), transposed.
- Oracle: fixtures/dpig_official.json holds tiny official networks (stage I at 32x16, the stage-II
  MLPs, the DCGAN discriminator) with float16 weights, their inputs and outputs (its `source`
  says how it was made); ours load them by creation order and must agree within 1e-5. The
  official pose input (coord2channel_simple_rcv + tf_poseInflate), pose mask (_getPoseMask) and
  part boxes (get_part_bbox37) are compared exactly with `keypoints.py`.
- Factor API: decode(encode(...)) is forward; what each code cannot see, by construction (the
  background code ignores pixels deep inside the mask, the foreground code pixels far outside
  it, a hidden region's code is zero).
- Synthetic persons: seeded; heatmap discs at the keypoints; masks cover the keypoints and the
  drawn body; boxes hold their keypoints; a background swap leaves the person's pixels alone.
- The folder loader on a tiny Market-1501 / DeepFashion / RCV layout written here; a pickle that
  names another global is refused before anything runs.
- Bad inputs: wrong sizes, shapes, dtypes, NaN boxes, configs: `InputError`.
"""

import base64
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from sotazoo.cards import load_card
from sotazoo.errors import InputError
from sotazoo.papers.disentangled_person.data import load_person_folder, valid_peaks
from sotazoo.papers.disentangled_person.keypoints import (
    BODY_PARTS,
    denormalise_keypoints,
    keypoint_heatmaps,
    normalise_keypoints,
    part_boxes,
    part_boxes_deepfashion,
    pose_mask,
)
from sotazoo.papers.disentangled_person.model import (
    MARKET,
    MINI,
    Dpig,
    DpigConfig,
    dpig_market,
    dpig_mini,
)
from sotazoo.papers.disentangled_person.persons import (
    FACTOR_GROUPS,
    make_persons,
    render,
    sample_factors,
    swap_factors,
)
from sotazoo.papers.disentangled_person.stage2 import (
    DCGANDiscriminator,
    EmbeddingCritic,
    MappingNet,
    PoseAutoencoder,
    Stage2,
)

from .oracle import within

FIXTURE = Path(__file__).parent / "fixtures" / "dpig_official.json"
OFFICIAL_ENCODER = 47_352_736  # scope Encoder (GeneratorCNN_ID_Encoder_BodyROIVis_FgBgFeaTwoBranch)
OFFICIAL_DECODER = 71_197_123  # scope ID_AE (GeneratorCNN_ID_UAEAfterResidual)
OFFICIAL_STAGE1 = OFFICIAL_ENCODER + OFFICIAL_DECODER


@pytest.fixture(scope="module")
def fx() -> dict:
    return json.loads(FIXTURE.read_text())


def _arr(d: dict) -> torch.Tensor:
    if d["dtype"] == "bits":
        n = int(np.prod(d["shape"]))
        a = np.unpackbits(np.frombuffer(base64.b64decode(d["data"]), np.uint8))[:n]
        return torch.from_numpy(a.reshape(d["shape"]).astype(np.float32))
    a = np.frombuffer(base64.b64decode(d["data"]), {"float16": "<f2", "float32": "<f4"}[d["dtype"]])
    return torch.from_numpy(a.reshape(d["shape"]).astype(np.float32))


def _nchw(t: torch.Tensor) -> torch.Tensor:
    return t.permute(0, 3, 1, 2).contiguous()


def _tf_to_torch(v: torch.Tensor) -> torch.Tensor:
    """TF kernel layouts to ours: conv (kh, kw, in, out) -> (out, in, kh, kw); dense (in, out)
    -> (out, in)."""
    return v.permute(3, 2, 0, 1) if v.ndim == 4 else v.T if v.ndim == 2 else v


def _load_in_order(module: torch.nn.Module, weights: list[dict]) -> None:
    params = list(module.parameters())
    assert len(params) == len(weights)
    with torch.no_grad():
        for p, w in zip(params, weights, strict=True):
            p.copy_(_tf_to_torch(_arr(w)))


def _scope(fx: dict, *prefixes: str) -> list[dict]:
    return [w for w in fx["weights"] if w["name"].startswith(prefixes)]


# ---------------------------------------------------------------------- parameter counts


def _conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out  # slim.conv2d and tflib Conv2D have biases


def _linear(c_in: int, c_out: int) -> int:
    return c_in * c_out + c_out


def _down_stack(n: int, r: int) -> int:
    """repeat_num stages of two 3x3 convs at n (i + 1), with a stride-2 conv between stages."""
    convs = sum(2 * _conv(n * (i + 1), n * (i + 1), 3) for i in range(r))
    return convs + sum(_conv(n * (i + 1), n * (i + 2), 3) for i in range(r - 1))


def _stage1(cfg: DpigConfig) -> tuple[int, int]:
    n, r = cfg.hidden_num, cfg.repeat_num
    s = 2 ** (r - 1)  # both stacks halve the size r - 1 times ('SAME': ceil)
    roi_out = -(-cfg.roi_size // s)
    bottom = (cfg.img_h // s) * (cfg.img_w // s)
    encoder = (_conv(cfg.in_chans, n, 3) + 2 * _conv(n, n, 3)  # stem, shared residual block
               + _down_stack(n, r) + _linear(n * r * roi_out * roi_out, cfg.part_dim)
               + _down_stack(n, r) + _linear(n * r * bottom, cfg.bg_dim))  # fmt: skip
    decoder = _conv(cfg.code_dim + cfg.num_keypoints, n, 3) + _down_stack(n, r)
    decoder += _linear(n * r * bottom, cfg.z_dim) + _linear(cfg.z_dim, bottom * n)
    width = n
    for idx in range(r):  # [x | skip] ResBlock, then nearest x2 and a 1x1 conv
        c = width + n * (r - idx)
        decoder += 2 * _conv(c, c, 3)
        if idx < r - 1:
            width = n * (r - idx - 1)
            decoder += _conv(c, width, 1)
    return encoder, decoder + _conv(width + n, cfg.in_chans, 3)


def _mlp(d_in: int, width: int, blocks: int, d_out: int) -> int:
    return _linear(d_in, width) + blocks * 2 * _linear(width, width) + _linear(width, d_out)


def test_official_counts_by_hand(fx):
    counts = fx["market_trainable_variables"]
    assert _stage1(MARKET) == (OFFICIAL_ENCODER, OFFICIAL_DECODER)
    assert (counts["Encoder"], counts["ID_AE"]) == (OFFICIAL_ENCODER, OFFICIAL_DECODER)
    # stage II and the discriminators (trainer.py's Market-1501 widths)
    assert counts["Gaussian_FC_Fg"] == _mlp(224, 512, 4, 224)
    assert counts["Gaussian_FC_Bg"] == _mlp(128, 256, 4, 128)
    assert counts["PoseGaussian"] == _mlp(32, 512, 4, 32)
    assert counts["PoseAE/G_Pose_Encoder"] == _mlp(54, 512, 4, 32)
    assert counts["PoseAE/G_Pose_Decoder"] == _mlp(32, 512, 4, 36) + _linear(512, 18)
    for scope, dim in (("Fg_FCDis_", 224), ("Bg_FCDis_", 128), ("Pose_emb_", 32)):
        assert counts[scope] == _linear(dim, 512) + 3 * _linear(512, 512) + _linear(512, 1)
    dcgan = _conv(3, 64, 5) + _conv(64, 128, 5) + _conv(128, 256, 5) + _conv(256, 512, 5)
    dcgan += 2 * (128 + 256 + 512) + _linear(512 * 8 * 4, 1)  # BN scale + offset; 8x4 left
    assert counts["Discriminator."] == dcgan


def test_our_counts_and_the_card(fx):
    entry = next(m for m in load_card("disentangled_person").models if m.name == "dpig_market")
    assert entry.params == OFFICIAL_STAGE1
    with torch.device("meta"):
        model = dpig_market()
        s2 = Stage2(MARKET)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert (count(model.encoder), count(model.decoder)) == (OFFICIAL_ENCODER, OFFICIAL_DECODER)
    counts = fx["market_trainable_variables"]
    ours = {"Gaussian_FC_Fg": s2.fg_map, "Gaussian_FC_Bg": s2.bg_map, "PoseGaussian": s2.pose_map,
            "Fg_FCDis_": s2.fg_critic, "Bg_FCDis_": s2.bg_critic, "Pose_emb_": s2.pose_critic,
            "Discriminator.": s2.discriminator}  # fmt: skip
    for scope, module in ours.items():
        assert count(module) == counts[scope], scope
    pose = counts["PoseAE/G_Pose_Encoder"] + counts["PoseAE/G_Pose_Decoder"]
    assert count(s2.pose_ae) == pose
    assert _stage1(MINI) == (count(dpig_mini().encoder), count(dpig_mini().decoder))


def test_parameter_layout_is_the_official_one(fx):
    """Our stage-I parameters in registration order have the official variables' shapes in
    creation order (Encoder/G_encoder/Conv ... fully_connected_1, ID_AE/G/Conv ... Conv_29)."""
    with torch.device("meta"):
        ours = [tuple(p.shape) for p in dpig_market().parameters()]
    official = [tuple(_tf_to_torch(torch.empty(s, device="meta")).shape)
                for _, s in fx["market_stage1_variables"]]  # fmt: skip
    assert ours == official


# ---------------------------------------------------------------------- oracle


def test_oracle_stage1_matches_the_official_code(fx):
    s1 = fx["stage1"]
    cfg = DpigConfig(**s1["config"])
    model = Dpig(cfg).eval()
    _load_in_order(model, _scope(fx, "Encoder", "ID_AE"))
    image = _nchw(_arr(s1["image_nhwc"]))
    heatmaps = keypoint_heatmaps(_arr(s1["keypoints"]), cfg.img_h, cfg.img_w)
    assert torch.equal(heatmaps, _nchw(_arr(s1["heatmaps_nhwc"])) * 2 - 1)  # the official input
    mask = _nchw(_arr(s1["fg_mask_nhwc"]))
    boxes, vis = _arr(s1["boxes"]), _arr(s1["box_vis"])  # one box leaves the image, one is a point
    with torch.no_grad():
        fg, bg = model.encode(image, mask, boxes, vis)
        out = model(image, heatmaps, mask, boxes, vis)
    within((torch.cat([fg, bg], 1) - _arr(s1["codes"])).abs().max(), 1e-5, "stage-I codes")
    within((out - _nchw(_arr(s1["output_nhwc"]))).abs().max(), 1e-5, "stage-I output")


def test_oracle_stage2_networks_match_the_official_code(fx):
    s2 = fx["stage2"]
    z = _arr(s2["z"])
    mapper, critic = MappingNet(6, 8, 2).eval(), EmbeddingCritic(6, 8, 3).eval()
    _load_in_order(mapper, _scope(fx, "Gaussian_FC_Fg"))
    _load_in_order(critic, _scope(fx, "Fg_FCDis_"))
    pose = PoseAutoencoder(img_h=128, img_w=64, code_dim=5, width=8, blocks=2).eval()
    _load_in_order(pose, _scope(fx, "PoseAE"))
    disc = DCGANDiscriminator(img_h=128, img_w=64, dim=2)
    d = {w["name"].split("/")[-1][: -len(":0")]: _tf_to_torch(_arr(w))
         for w in _scope(fx, "Discriminator.")}  # fmt: skip
    with torch.no_grad():
        for i, conv in enumerate(disc.convs, start=1):
            conv.weight.copy_(d[f"Discriminator.{i}.Filters"])
            conv.bias.copy_(d[f"Discriminator.{i}.Biases"])
        for i, bn in enumerate(disc.norms, start=2):
            bn.weight.copy_(d[f"Discriminator.BN{i}.scale"])
            bn.bias.copy_(d[f"Discriminator.BN{i}.offset"])
        disc.fc.weight.copy_(d["Discriminator.Output.W"])
        disc.fc.bias.copy_(d["Discriminator.Output.b"])
        code = pose.encoder_out(pose.encoder(_arr(s2["pose_in"])))  # the normalised 54-d input
        coords, visible = pose.decode_normalised(code)
        image = _nchw(_arr(fx["stage1"]["image_nhwc"])).repeat_interleave(4, 2)
        logits = disc(image.repeat_interleave(4, 3))  # batch statistics in eval mode too
        diffs = {
            "mapper": (mapper(z) - _arr(s2["mapping"])).abs().max(),
            "critic": (critic(z) - _arr(s2["critic"])).abs().max(),
            "pose code": (code - _arr(s2["pose_code"])).abs().max(),
            "pose coords": (coords - _arr(s2["pose_coords"])).abs().max(),
            "DCGAN discriminator": (logits - _arr(s2["disc_logit"])).abs().max(),
        }
    assert torch.equal(visible, _arr(s2["pose_visible"]))
    for what, diff in diffs.items():
        within(diff, 1e-5, what)


def test_keypoint_conventions_match_the_official_data_preparation(fx):
    k = fx["keypoints_128x64"]
    kp = _arr(k["keypoints"]).numpy()
    masks, boxes, vis = _arr(k["pose_mask_r7"]), _arr(k["boxes"]), _arr(k["box_vis"])
    for i in range(len(kp)):
        assert np.array_equal(pose_mask(kp[i], 128, 64), masks[i].numpy())
        b, v = part_boxes(kp[i], 128, 64)
        assert np.array_equal(b, boxes[i].numpy()) and np.array_equal(v, vis[i].numpy())
    assert vis[2].tolist() == [0, 1, 0, 0, 1, 0, 0]  # one keypoint (r_elbow): its regions only


def test_deepfashion_boxes_by_hand():
    rcv = np.zeros((18, 3), np.float32)
    rcv[[0, 9, 12], :] = [[40, 128, 1], [200, 100, 1], [200, 150, 1]]  # nose, both knees seen
    boxes, vis = part_boxes_deepfashion(rcv, 256, 256)  # whole body: margins 10 / 20, nose -10
    assert boxes[0].tolist() == [10, 108, 50, 148] and vis.tolist() == [1, 0, 1, 0, 0, 1, 1]
    rcv[12, 2] = 0
    rcv[12, :2] = 0
    boxes, _ = part_boxes_deepfashion(rcv, 256, 256)  # half body: margins 20 / 40, nose -25
    assert boxes[0].tolist() == [0, 88, 55, 168]


# ---------------------------------------------------------------------- factor API


@pytest.fixture(scope="module")
def mini_and_persons():
    torch.manual_seed(0)
    return dpig_mini(hidden_num=4).eval(), make_persons(4, seed=1)


def test_shapes_and_decode_of_encode_is_forward(mini_and_persons):
    model, p = mini_and_persons
    with torch.no_grad():
        out = model(*p.inputs())
        fg, bg = model.encode(p.images, p.fg_mask, p.boxes, p.box_vis)
        swapped = model.decode(fg, bg.roll(1, 0), p.heatmaps.roll(2, 0))  # any mix of factors
    assert out.shape == p.images.shape and swapped.shape == p.images.shape
    assert fg.shape == (4, 224) and bg.shape == (4, 128)
    assert torch.allclose(model.decode(fg, bg, p.heatmaps), out, atol=1e-6)


def _grow(mask: torch.Tensor, px: int) -> torch.Tensor:
    return torch.nn.functional.max_pool2d(mask, 2 * px + 1, 1, px)


def test_what_each_code_cannot_see(mini_and_persons):
    """The features pass three 3x3 convolutions before the mask splits them, so a pixel reaches
    only features within 3 pixels: the background code cannot see pixels more than 3 pixels
    inside the mask, the foreground code pixels more than 3 outside it."""
    model, p = mini_and_persons
    img, mask, boxes, vis = p.images, p.fg_mask, p.boxes, p.box_vis
    deep_inside = 1 - _grow(1 - mask, 3)
    far_outside = 1 - _grow(mask, 3)
    assert deep_inside.sum() > 100 and far_outside.sum() > 100
    noise = torch.randn(img.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fg, bg = model.encode(img, mask, boxes, vis)
        _, bg2 = model.encode(img + noise * deep_inside, mask, boxes, vis)
        fg2, _ = model.encode(img + noise * far_outside, mask, boxes, vis)
        hidden = vis.clone()
        hidden[:, 3] = 0
        fg3, _ = model.encode(img, mask, boxes, hidden)
    assert torch.equal(bg, bg2) and torch.equal(fg, fg2)
    assert torch.equal(fg3[:, 96:128], torch.zeros(4, 32)) and torch.equal(fg3[:, :96], fg[:, :96])
    # and each code does see its own side
    assert not torch.equal(fg, model.encode(img + noise * deep_inside, mask, boxes, vis)[0])
    assert not torch.equal(bg, model.encode(img + noise * far_outside, mask, boxes, vis)[1])


def test_stage2_sampling_feeds_the_decoder():
    torch.manual_seed(0)
    model, s2 = dpig_mini(hidden_num=4), Stage2(MINI)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        new = s2.sample(3, generator=g)
        out = model.decode(**new)
        h = new["heatmaps"]
        keypoints = s2.pose_ae.decode(s2.pose_map.sample(2, generator=g))
    assert out.shape == (3, 3, 64, 32) and set(h.unique().tolist()) <= {-1.0, 1.0}
    assert keypoints.shape == (2, 18, 3) and set(keypoints[..., 2].unique().tolist()) <= {0.0, 1.0}
    assert s2.discriminator(out).shape == (3,) and s2.fg_critic(new["fg"]).shape == (3,)
    # the pose autoencoder's input: row / H * 2 - 1, column / W * 2 - 1, visibility, per keypoint
    rcv = make_persons(2, seed=0).keypoints
    flat = normalise_keypoints(rcv, 64, 32)
    first = rcv[0, 0] / torch.tensor([32.0, 16.0, 1.0]) - torch.tensor([1.0, 1.0, 0.0])
    assert flat.shape == (2, 54) and torch.allclose(flat[0, :3], first)
    coords = flat.reshape(2, 18, 3)[..., :2].reshape(2, 36)
    assert torch.allclose(denormalise_keypoints(coords, rcv[..., 2], 64, 32), rcv)
    assert s2.pose_ae.encode(rcv).shape == (2, 32)


# ---------------------------------------------------------------------- synthetic persons


@pytest.fixture(scope="module")
def persons():
    return make_persons(24, seed=3)


def test_persons_are_seeded(persons):
    again = make_persons(24, seed=3)
    other = make_persons(24, seed=4)
    assert torch.equal(persons.images, again.images) and torch.equal(persons.boxes, again.boxes)
    assert not torch.equal(persons.images, other.images)
    assert persons.images.shape == (24, 3, 64, 32) and persons.images.abs().max() <= 1
    for name, high in (("pose", 8), ("upper", 8), ("lower", 6), ("hair", 4), ("skin", 3),
                       ("background", 8)):  # fmt: skip
        assert persons.labels[name].min() >= 0 and persons.labels[name].max() < high


def test_heatmaps_have_their_discs_at_the_keypoints(persons):
    kp, hm = persons.keypoints, persons.heatmaps
    assert set(hm.unique().tolist()) == {-1.0, 1.0}
    for i in range(len(persons)):
        for k in range(18):
            r, c, v = (int(t) for t in kp[i, k])
            on = hm[i, k] > 0
            if not v:
                assert not on.any()
                continue
            assert on[r, c] and on.sum() <= 13  # radius 2 at 64 rows: at most 13 pixels
            rows, cols = on.nonzero(as_tuple=True)
            assert ((rows - r) ** 2 + (cols - c) ** 2).max() <= 4


def test_masks_cover_the_body_and_boxes_hold_their_keypoints(persons):
    kp = persons.keypoints
    sil, mask = persons.silhouette, persons.fg_mask
    assert (sil * mask).sum() / sil.sum() > 0.99  # the pose mask covers the drawn body
    for i in range(len(persons)):
        for r, c, v in kp[i].tolist():
            assert not v or mask[i, 0, int(r), int(c)] == 1
        for part, (box, seen) in enumerate(zip(persons.boxes[i], persons.box_vis[i], strict=True)):
            present = [k for k in BODY_PARTS[part] if kp[i, k, 2] > 0]
            assert bool(seen) == bool(present)
            for k in present:
                y1, x1, y2, x2 = box.tolist()
                assert y1 <= kp[i, k, 0] <= y2 and x1 <= kp[i, k, 1] <= x2


def test_swapping_a_factor_group_redraws_only_that_group(persons):
    f = persons.factors
    order = np.roll(np.arange(len(persons)), 1)
    bg_swapped = render(swap_factors(f, "background", order))
    sil = persons.silhouette
    inside = (sil == 1).float()  # pixels of the person alone
    outside = ((sil + sil[order]) == 0).float()  # pixels neither person touches
    assert inside.sum() > 2000 and outside.sum() > 10000
    diff = (bg_swapped.images - persons.images).abs()
    assert (diff * inside).max() == 0 and torch.equal(bg_swapped.keypoints, persons.keypoints)
    assert torch.equal((bg_swapped.images * outside), (persons.images[order] * outside))
    assert (diff * (1 - inside)).max() > 0.5
    pose_swapped = render(swap_factors(f, "pose", order))
    assert torch.equal(pose_swapped.keypoints, persons.keypoints[order])
    assert torch.equal(pose_swapped.labels["upper"], persons.labels["upper"])
    assert set(FACTOR_GROUPS) == {"pose", "foreground", "background"}
    big = render(sample_factors(2, seed=3), (128, 64))
    assert big.images.shape == (2, 3, 128, 64) and big.heatmaps.shape == (2, 18, 128, 64)
    assert torch.equal(big.labels["pose"], persons.labels["pose"][:2])


# ---------------------------------------------------------------------- folder loader


def _write_market(root: Path, persons) -> dict:
    """A Market-1501 layout: 3 images with poses (two people detected in one), a distractor, a
    junk image and one without a pose; py2-style pickles of numpy arrays."""
    from PIL import Image

    images = root / "bounding_box_train"
    images.mkdir(parents=True)
    names = ["0002_c1s1_000451_03.png", "0002_c3s1_000551_01.png", "0007_c2s3_070952_01.png",
             "0000_c1s1_000000_01.png", "-1_c1s1_000401_03.png", "0009_c1s1_001051_01.png"]  # fmt: skip
    peaks, subsets = {}, {}
    for i, name in enumerate(names):
        u8 = ((persons.images[i].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
        Image.fromarray(u8).save(images / name)
        if i == 5:
            continue  # no pose for this one
        kp = persons.keypoints[i].numpy()
        all_peaks, ids, cand = [], [], 0
        for r, c, v in kp:
            cands = []
            if i == 0:  # a second, weaker person: its candidate comes first
                cands.append((3, 5, 0.5, cand))
                cand += 1
            if v:
                cands.append((np.int64(c), np.int64(r), 0.9, cand))
                ids.append(cand)
                cand += 1
            else:
                ids.append(-1)
            all_peaks.append(cands)
        rows = [ids + [20.0, 18]]
        if i == 0:
            rows.insert(0, list(range(0, 2 * 18, 2)) + [5.0, 18])
        peaks[name], subsets[name] = all_peaks, np.array(rows, np.float64)
    pose_dir = root / "Market-1501_PoseFiltered"
    pose_dir.mkdir()
    for stem, obj in (("all_peaks_dic", peaks), ("subsets_dic", subsets)):
        with open(pose_dir / f"{stem}_Market-1501_train.p", "wb") as f:
            pickle.dump(obj, f, protocol=2)
    return {"names": names}


def test_market_folder(tmp_path, persons):
    p = make_persons(6, seed=5, size=(128, 64))
    _write_market(tmp_path, p)
    data = load_person_folder(tmp_path, layout="market", split="train")
    assert data.names == ("0002_c1s1_000451_03.png", "0002_c3s1_000551_01.png",
                          "0007_c2s3_070952_01.png")  # fmt: skip
    assert data.person_ids.tolist() == [2, 2, 7]
    assert torch.equal(data.keypoints, p.keypoints[:3])  # the best person's candidates
    assert (data.images - p.images[:3]).abs().max() <= 1 / 127.5
    assert torch.equal(data.heatmaps, keypoint_heatmaps(p.keypoints[:3], 128, 64))
    for i in range(3):
        kp = p.keypoints[i].numpy()
        assert np.array_equal(data.fg_mask[i, 0].numpy(), pose_mask(kp, 128, 64, radius=7))
        assert np.array_equal(data.boxes[i].numpy(), part_boxes(kp, 128, 64)[0])
    assert len(load_person_folder(tmp_path, split="train", limit=2)) == 2
    model = dpig_market(**{"hidden_num": 2, "part_dim": 2, "bg_dim": 4, "z_dim": 4, "roi_size": 4})
    with torch.no_grad():
        assert model(*data.inputs()).shape == (3, 3, 128, 64)


def test_valid_peaks_picks_the_best_person():
    all_peaks = [[(1, 2, 0.9, 0), (3, 4, 0.8, 1)], [], [(5, 6, 0.7, 2)]] + [[]] * 15
    subsets = np.array([[1, -1, 2] + [-1] * 15 + [9.0, 2], [0] + [-1] * 17 + [1.0, 1]])
    assert valid_peaks(all_peaks, subsets)[:3] == [[(3, 4, 0.8, 1)], [], [(5, 6, 0.7, 2)]]
    assert valid_peaks(all_peaks, np.zeros((0, 20)))[0] == all_peaks[0]  # nobody assembled


def test_deepfashion_and_rcv_layouts(tmp_path):
    from PIL import Image

    p = make_persons(2, seed=6, size=(128, 64))
    for layout, folder in (("deepfashion", "filted_up_test"), ("rcv", "test")):
        root = tmp_path / layout
        (root / folder).mkdir(parents=True)
        names = ["fashionWOMENDressesid0000042_1front.jpg", "fashionMENTeesid0000731_2side.jpg"]
        for i, n in enumerate(names):
            u8 = ((p.images[i].permute(1, 2, 0).numpy() + 1) * 127.5).astype(np.uint8)
            Image.fromarray(u8).save(root / folder / n, quality=95)
        kp = p.keypoints.numpy()
        if layout == "deepfashion":
            (root / "PoseFiltered").mkdir()
            peaks = {n: [[(c, r, 1.0, k)] if v else [] for k, (r, c, v) in enumerate(kp[i])]
                     for i, n in enumerate(names)}  # fmt: skip
            for stem, obj in (("all_peaks_dic", peaks), ("subsets_dic", {})):
                with open(root / "PoseFiltered" / f"{stem}_DeepFashion.p", "wb") as f:
                    pickle.dump(obj, f, protocol=2)
        else:
            (root / "PoseRCV").mkdir()
            with open(root / "PoseRCV" / "test.pickle", "wb") as f:
                pickle.dump({n: kp[i] for i, n in enumerate(names)}, f, protocol=2)
        data = load_person_folder(root, layout=layout, split="test")
        order = [names.index(n) for n in data.names]
        assert torch.equal(data.keypoints, p.keypoints[order])
        want = [42, 731] if layout == "deepfashion" else [-1, -1]
        assert data.person_ids.tolist() == [want[i] for i in order]
        assert (data.images - p.images[order]).abs().mean() < 0.05  # JPEG


def test_loader_refuses_bad_folders(tmp_path):
    p = make_persons(6, seed=5, size=(128, 64))
    _write_market(tmp_path, p)
    marker = tmp_path / "ran"
    evil = tmp_path / "Market-1501_PoseFiltered" / "subsets_dic_Market-1501_train.p"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil.write_bytes(pickle.dumps({"x": Evil()}, protocol=2))
    with pytest.raises(InputError, match=r"names the global \S+; only numpy arrays"):
        load_person_folder(tmp_path)
    assert not marker.exists()
    evil.write_bytes(b"\x80\x02not a pickle")
    with pytest.raises(InputError, match="cannot read .*subsets_dic"):
        load_person_folder(tmp_path)
    _write_market(tmp_path / "fresh", p)
    (tmp_path / "fresh" / "bounding_box_train" / "0002_c1s1_000451_03.png").write_bytes(b"junk")
    with pytest.raises(InputError, match="cannot read the image .*0002_c1s1_000451_03.png"):
        load_person_folder(tmp_path / "fresh")
    with pytest.raises(InputError, match="no image folder"):
        load_person_folder(tmp_path / "fresh", split="test")
    with pytest.raises(InputError, match="unknown layout"):
        load_person_folder(tmp_path, layout="coco")


# ---------------------------------------------------------------------- bad inputs


def test_bad_inputs(mini_and_persons):
    model, p = mini_and_persons
    x, hm, mask, boxes, vis = p.inputs()
    cases = [
        ((x[:, :, :32], hm, mask, boxes, vis), r"expected 64x32 images .* got 32x32"),
        ((x, hm[:, :17], mask, boxes, vis), r"heatmaps: expected shape \(B, 18, H, W\)"),
        ((x, hm, mask[:, :, :, :16], boxes, vis), r"fg_mask: expected shape"),
        ((x, hm, mask, boxes[:, :6], vis), r"boxes: expected shape \(4, 7, 4\)"),
        ((x, hm, mask, boxes.long(), vis), r"boxes: expected a floating-point.*boxes\.float\(\)"),
        ((x, hm, mask, boxes.clone().fill_(float("nan")), vis), r"boxes holds 112 NaN"),
        ((x, hm, mask, boxes, vis[:, :3]), r"box_vis: expected shape \(4, 7\)"),
        ((x, hm.double(), mask, boxes, vis), r"heatmaps: expected torch.float32"),
    ]
    for args, words in cases:
        with pytest.raises(InputError, match=words):
            model(*args)
    fg, bg = model.encode(x, mask, boxes)  # box_vis defaults to every region seen
    with pytest.raises(InputError, match=r"bg: expected a \(B, 128\) code"):
        model.decode(fg, bg[:, :100], hm)
    with pytest.raises(InputError, match="codes of 4 and 3 images"):
        model.decode(fg, bg[:3], hm)
    with pytest.raises(InputError, match=r"z: expected a \(B, 224\) batch"):
        MappingNet(224, 8)(torch.zeros(2, 32))
    with pytest.raises(InputError, match="divisible by 2\\^\\(repeat_num - 1\\) = 16"):
        DpigConfig(img_h=100)
    with pytest.raises(InputError, match="roi_size must be an integer >= 2"):
        dpig_mini(roi_size=1)
    with pytest.raises(InputError, match="unknown factor group"):
        swap_factors(p.factors, "hat", [0])


def test_demo_graph_recombines_the_models_codes():
    """The exported demo graph (papers/disentangled_person/demo.py): row (i, i, i) is person i
    reconstructed by the model's forward, and a mixed row is `decode` of the picked codes and
    pose; the samples are the persons the graph holds, in its order."""
    from sotazoo.papers.disentangled_person import demo

    torch.manual_seed(0)
    model = dpig_mini(hidden_num=4).eval()
    graph = demo.export_module(model)
    p = demo.persons()
    pick = torch.tensor(demo.pick_rows(2, 4))
    with torch.no_grad():
        out = graph(pick)
        recon = model(*p.inputs())
        fg, bg = model.encode(p.images, p.fg_mask, p.boxes, p.box_vis)
        mixed = model.decode(fg[pick[:, 0]], bg[pick[:, 1]], p.heatmaps[pick[:, 2]])
    assert out.shape == (5, 3, 64, 32) and pick.tolist()[2:] == [[4, 2, 2], [2, 4, 2], [2, 2, 4]]
    # the same float32 operations on a batch of 6 against 5 rows: summation order only
    assert (out[0] - recon[2].clamp(-1, 1)).abs().max() <= 1e-5
    assert (out[1] - recon[4].clamp(-1, 1)).abs().max() <= 1e-5
    assert (out - mixed.clamp(-1, 1)).abs().max() <= 1e-5
    assert torch.equal(graph.images, p.images)


def test_packaged_weights_reproduce_their_log():
    """dpig_mini.sotazoo matches its log (sha256, figure), and scored again on the 128 held-out
    persons it gives the mean absolute error its log recorded."""
    import sotazoo
    from sotazoo.papers.disentangled_person.train import MiniRecipe

    w = sotazoo.get_weights("dpig_mini", "sotazoo")
    log = json.loads((Path(sotazoo.__file__).parent / w.packaged).with_name("dpig_mini.sotazoo.log.json").read_text())
    assert log["sha256"] == w.sha256 and log["metrics"] == dict(w.metrics)
    test = make_persons(MiniRecipe.test_persons, seed=99_999)
    with torch.no_grad():
        out = sotazoo.create_model("dpig_mini", weights="sotazoo")(*test.inputs())
    # a mean of 786k float32 errors in another order on another CPU, rounded to 4 digits
    assert float((out - test.images).abs().mean()) == pytest.approx(log["metrics"]["heldout_l1"], abs=2e-4)
