"""Relation Networks: parameter counts from the paper's layer sizes, the relation module against a
direct computation, the oracle fixture from the most used port, the converter, the generator,
export, bad input and the quick reproduction."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import sotazoo
from sotazoo.cards import load_card
from sotazoo.data.sort_of_clevr import (
    ANSWERS,
    IMAGE_SIZE,
    answer,
    describe_question,
    encode_question,
    make_sort_of_clevr,
)
from sotazoo.errors import InputError, WeightsError
from sotazoo.papers.relation_networks.convert import convert_state_dict
from sotazoo.papers.relation_networks.model import RNConfig, cnn_mlp_sort_of_clevr, rn_mini

from .oracle import within

FIXTURE = Path(__file__).parent / "fixtures" / "relation_networks_kimhc6028.json"


def _linear(i: int, o: int) -> int:
    return i * o + o


def _conv_bn(i: int, o: int) -> int:
    return i * o * 9 + o + 2 * o  # 3x3 conv with bias, BN scale and shift


def _count_by_hand(cfg: RNConfig) -> int:
    """The paper's layer sizes turned into a count, written apart from the module."""
    n = 0
    chans = [3, *cfg.conv_channels]
    for i, o in zip(chans[:-1], chans[1:], strict=True):
        n += _conv_bn(i, o)
    q = cfg.question_dim
    if cfg.question == "lstm":
        n += cfg.vocab_size * cfg.embed_dim
        n += 4 * cfg.lstm_dim * (cfg.embed_dim + cfg.lstm_dim) + 2 * 4 * cfg.lstm_dim
        q = cfg.lstm_dim
    obj = chans[-1] + 2
    grid = cfg.grid**2
    g_in = 2 * obj + q if cfg.head == "rn" else grid * obj + q
    sizes = [g_in, *cfg.g_layers, *cfg.f_layers, cfg.num_answers]
    n += sum(_linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    return n


@pytest.mark.parametrize("name", ["rn_sort_of_clevr", "cnn_mlp_sort_of_clevr", "rn_clevr"])
def test_param_count_matches_the_papers_layer_sizes(name):
    """The paper prints no parameter count; the card's reference is the count of the layer
    sizes of its Appendix (B for CLEVR, D for Sort-of-CLEVR), recomputed here by hand."""
    model = sotazoo.create_model(name)
    ours = sum(p.numel() for p in model.parameters())
    entry = next(m for m in load_card("relation_networks").models if m.name == name)
    assert ours == _count_by_hand(model.cfg) == entry.params


def test_cnn_mlp_has_more_parameters_than_the_rn():
    """§5.3 and App. D: the baseline's MLP on the whole feature map is the bigger model."""
    rn = sum(p.numel() for p in sotazoo.create_model("rn_sort_of_clevr").parameters())
    mlp = sum(p.numel() for p in cnn_mlp_sort_of_clevr().parameters())
    assert mlp > 1.5 * rn


def test_relation_module_equals_the_sum_over_pairs():
    """Our per-object first layer of g must equal Eq. 1 computed literally, pair by pair."""
    torch.manual_seed(0)
    model = rn_mini(g_layers=(16, 16), f_layers=(8,)).eval()
    image, q = torch.rand(2, 3, 75, 75), torch.rand(2, 11)
    with torch.no_grad():
        o = model.objects(image)  # (B, N, D)
        n = o.shape[1]
        pairs = torch.cat(
            [
                o[:, :, None, :].expand(-1, n, n, -1),
                o[:, None, :, :].expand(-1, n, n, -1),
                q[:, None, None, :].expand(-1, n, n, -1),
            ],
            dim=3,
        )  # (B, N, N, 2D + Q), pair (i, j) = (o_i, o_j, q)
        literal = model.classifier(model.f(model.g(pairs).sum(dim=(1, 2))))
        # The rewrite sums g's first layer in another order, then 625 pairs are summed: ulps of
        # that sum (outputs up to ~18, ulp 1.9e-6; measured 4.8e-7). atol + rtol * 18 = 2.8e-4
        # (here and below) is still far below a wrong pairing (~1e-1).
        assert torch.allclose(model(image, q), literal, atol=1e-4, rtol=1e-5)
        per_pair = rn_mini(g_layers=(16, 16), f_layers=(8,), first_layer="per_pair").eval()
        per_pair.load_state_dict(model.state_dict())  # the benchmark's reference: same weights
        assert torch.allclose(per_pair(image, q), literal, atol=1e-4, rtol=1e-5)
        # the sum makes the answer independent of the order of the objects
        perm = torch.randperm(n)
        shuffled = model.classifier(model.f(model.g(pairs[:, perm][:, :, perm]).sum((1, 2))))
        assert torch.allclose(shuffled, literal, atol=1e-4, rtol=1e-5)


def kimhc_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """Random weights in kimhc6028/relational-networks' July 2017 layout (11-bit questions)."""
    g = torch.Generator().manual_seed(seed)
    shapes = {}
    for k in range(1, 5):
        shapes[f"conv{k}.weight"] = (24, 3 if k == 1 else 24, 3, 3)
        shapes[f"conv{k}.bias"] = (24,)
        for leaf in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"batchNorm{k}.{leaf}"] = (24,)
    for k in range(1, 5):
        shapes[f"g_fc{k}.weight"] = (256, 63 if k == 1 else 256)
        shapes[f"g_fc{k}.bias"] = (256,)
    for k, (o, i) in enumerate([(256, 256), (256, 256), (10, 256)], start=1):
        shapes[f"f_fc{k}.weight"], shapes[f"f_fc{k}.bias"] = (o, i), (o,)
    sd = {}
    for key, shape in shapes.items():
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        t = torch.randn(shape, generator=g) / fan_in**0.5
        if key == "f_fc1.weight":  # f reads a sum over 625 pairs: keep the logits of order 1
            t = t / 100
        if key.endswith("running_var"):
            t = 0.5 + torch.rand(shape, generator=g)
        if key.endswith(".weight") and key.startswith("batchNorm"):
            t = 1 + 0.1 * t
        sd[key] = t
    return sd


def _fixture_input(seed: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, 75, 75, generator=g), torch.rand(batch, 11, generator=g)


def test_oracle_fixture_of_the_kimhc6028_port():
    """Random weights in the port's layout, run by the port's own model code (Python 2
    coordinates, dropout off) while developing; its log-probabilities are the fixture."""
    fx = json.loads(FIXTURE.read_text())
    sd, overrides, layout = convert_state_dict(kimhc_state_dict(fx["weights_seed"]))
    assert layout == "kimhc6028"
    model = sotazoo.create_model("rn_sort_of_clevr", **overrides)
    from sotazoo.weights import load_into

    load_into(model, sd, "synthetic kimhc6028 checkpoint")
    image, q = _fixture_input(fx["input_seed"], fx["batch"])
    with torch.no_grad():
        ours = torch.log_softmax(model.eval()(image, q), dim=1)
    expected = torch.tensor(fx["expected_log_probs"])
    # The port's own code (other ops) vs ours, on log-probs of up to 11.4 (ulp 9.5e-7): 1.9e-6
    # apart with torch.randn's AVX2 path, which drew the weights when recorded; 6.7e-6 with its
    # scalar path (ATEN_CPU_CAPABILITY=default, ARM), whose draws differ in the last bit. So the
    # bound is relative: 1e-5 of the scale, ~10 ulps, while a wrong layer is off by ~1.
    within((ours - expected).abs().max(), 1e-5 * max(1.0, expected.abs().max()), "answers")


def test_convert_a_synthetic_kimhc6028_file(tmp_path):
    path = tmp_path / "epoch_20_saved.pth"
    torch.save(kimhc_state_dict(3), path)
    model = sotazoo.create_model("rn_sort_of_clevr", weights=str(path))
    cfg = model.cfg
    assert cfg.bn_after_relu and cfg.conv_channels == (24,) * 4 and cfg.g_layers == (256,) * 4
    assert cfg.f_layers == (256, 256) and cfg.num_answers == 10
    out = model.eval()(torch.rand(2, 3, 75, 75), torch.eye(11)[:2])
    assert out.shape == (2, 10)


def test_convert_rejects_other_layouts():
    with pytest.raises(WeightsError, match="unrecognised Relation Network checkpoint"):
        convert_state_dict({"fc.weight": torch.zeros(2, 2)})
    sd = kimhc_state_dict(0)
    sd["g_fc1.weight"] = torch.zeros(256, 70)  # the port's later 18-bit questions
    converted, overrides, _ = convert_state_dict(sd)
    model = sotazoo.create_model("rn_sort_of_clevr", **overrides)
    from sotazoo.weights import load_into

    with pytest.raises(WeightsError, match=r"g\.0\.weight"):
        load_into(model, converted, "18-bit checkpoint")


def test_sort_of_clevr_answers_follow_the_scene():
    centres = np.array([[10, 10], [60, 10], [10, 60], [60, 60], [35, 35], [30, 70]])
    shapes = np.array([0, 1, 1, 0, 1, 1])  # square, circle, circle, square, circle, circle
    assert ANSWERS[answer(centres, shapes, 0, False, 0)] == "square"
    assert ANSWERS[answer(centres, shapes, 0, False, 1)] == "yes"  # x = 10 < 37.5: left
    assert ANSWERS[answer(centres, shapes, 3, False, 2)] == "no"  # y = 60: bottom
    assert ANSWERS[answer(centres, shapes, 0, True, 0)] == "circle"  # closest to red: grey (35, 35)
    assert ANSWERS[answer(centres, shapes, 0, True, 1)] == "square"  # furthest: orange (60, 60)
    assert ANSWERS[answer(centres, shapes, 1, True, 2)] == "4"  # four circles
    q = encode_question(2, True, 1)
    assert q.tolist() == [0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0]
    assert describe_question(q) == "What shape is the object furthest from the blue one?"


def test_sort_of_clevr_generator_is_seeded_and_balanced():
    a, b = make_sort_of_clevr(50, seed=7), make_sort_of_clevr(50, seed=7)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["images"].shape == (50, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert a["relational"][:, 10:].all() and not a["relational"][:, :10].any()
    d = ((a["centres"][:, :, None] - a["centres"][:, None]) ** 2).sum(-1)
    d[:, range(6), range(6)] = 10**6
    assert d.min() >= 100  # centres at least 10 px apart
    # every object is drawn in its colour: the pixel at its centre is not background
    assert (a["images"][0][:, a["centres"][0, :, 1], a["centres"][0, :, 0]] < 1).any(0).all()


def test_export_onnx_with_the_question_input(tmp_path):
    from sotazoo.export import export_onnx
    from sotazoo.registry import model_entry

    _, entry = model_entry("rn_mini")
    r = export_onnx(rn_mini().eval(), entry.input_size, tmp_path / "rn.onnx",
                    extra_inputs=entry.extra_inputs)  # fmt: skip
    assert r.max_rel_diff <= 1e-4  # of max(1, max |output|), sotazoo.export's rule


def test_bad_input_is_named():
    model = rn_mini().eval()
    image, q = torch.rand(2, 3, 75, 75), torch.rand(2, 11)
    with pytest.raises(InputError, match=r"question must be \(B, 11\) float"):
        model(image, q[:, :5])
    with pytest.raises(InputError, match="2 images but 1 questions"):
        model(image, q[:1])
    with pytest.raises(InputError, match="feature map"):
        model(torch.rand(2, 3, 64, 64), q)
    with pytest.raises(InputError, match="NaN"):
        model(image, q.masked_fill(q > 0.5, float("nan")))
    with pytest.raises(InputError, match="channels"):
        model(torch.rand(2, 1, 75, 75), q)


def test_packaged_weights_reproduce_their_log():
    """Our demo weights, evaluated again on the recipe's held-out scenes, give the accuracy
    that the training log recorded (the log is data written by `sotazoo train`)."""
    from sotazoo.papers.relation_networks.repro import TEST_SEED, as_tensors, evaluate
    from sotazoo.registry import get_weights

    w = get_weights("rn_mini", "sotazoo")
    log = json.loads(
        (Path(sotazoo.__file__).parent / w.packaged)
        .with_name("rn_mini.sotazoo.log.json")
        .read_text()
    )
    assert log["sha256"] == w.sha256
    model = sotazoo.create_model("rn_mini", weights="sotazoo")
    test = as_tensors(make_sort_of_clevr(200, seed=TEST_SEED))
    rel, non = evaluate(model, test)
    assert abs(rel - log["metrics"]["sort_of_clevr_relational"]) < 0.01
    assert abs(non - log["metrics"]["sort_of_clevr_non_relational"]) < 0.01
