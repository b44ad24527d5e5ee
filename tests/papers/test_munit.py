"""MUNIT: what is checked against what.

- Parameter counts: the official numbers (15,026,187 per generator, 8,271,171 per discriminator
  in the edges2shoes config), obtained by instantiating NVlabs/MUNIT's networks.AdaINGen and
  MsImageDis at a82e222bc359892bd0f522d7a0f1573f3ec4a485 and recorded in the card and the
  fixture, against a layer-by-layer count written here from the config alone (style encoder,
  content encoder, decoder, MLP, discriminator), and both against our modules.
- Oracle: fixtures/munit_official.json holds a small official AdaINGen and MsImageDis (weights
  in float16, exactly the values the official modules ran with), an image batch, a style code,
  and the official outputs (content and style codes, the decoded and reconstructed images, the
  MLP's AdaIN parameters, the discriminator's three patch maps); its `source` says how it was
  made. Our modules load those weights under the official keys and must agree within 1e-5.
- Key layout: the official edges2shoes state-dict layout (keys and shapes, from the fixture)
  equals ours, and a checkpoint shaped as the released ones ({'a': ..., 'b': ...}) loads strictly.
- AdaIN: after every AdaIN layer of a decode, each channel's mean and std are the MLP's outputs,
  sliced by hand ([mean | std] per layer, in module order), not through our slicing code.
- LayerNorm against torch's own mean / unbiased std; initialisation as utils.weights_init.
- Bad inputs: wrong channels, sizes, style shapes, dtypes, NaN, domains: `InputError`.
"""

import json
import math
from pathlib import Path

import pytest
import torch

from sotazoo.bench import count_params
from sotazoo.cards import load_card
from sotazoo.errors import InputError, WeightsError
from sotazoo.papers.munit.discriminator import MsImageDis
from sotazoo.papers.munit.model import (
    EDGES2SHOES,
    AdaptiveInstanceNorm2d,
    LayerNorm,
    Munit,
    MunitConfig,
    munit_edges2shoes,
    munit_mini,
    official_state_dict,
)

from .oracle import fixture_tensor, within

FIXTURE = Path(__file__).parent / "fixtures" / "munit_official.json"
OFFICIAL_GEN = 15_026_187  # networks.AdaINGen(3, edges2shoes gen block), counted in PyTorch
OFFICIAL_DIS = 8_271_171  # networks.MsImageDis(3, edges2shoes dis block)


def _fixture() -> dict:
    return json.loads(FIXTURE.read_text())


# ---------------------------------------------------------------------- parameter counts


def _conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out  # every official conv has a bias


def _linear(c_in: int, c_out: int) -> int:
    return c_in * c_out + c_out


def _style_encoder(c_in: int, dim: int, style_dim: int) -> int:
    """7x7 conv, four 4x4 stride-2 convs (x2, x2, x1, x1 width), no norm, 1x1 conv to s."""
    widths = [dim, 2 * dim, 4 * dim, 4 * dim, 4 * dim]
    n = _conv(c_in, dim, 7) + sum(_conv(a, b, 4) for a, b in zip(widths, widths[1:], strict=False))
    return n + _conv(4 * dim, style_dim, 1)


def _content_encoder(c_in: int, dim: int, n_down: int, n_res: int) -> int:
    """7x7 conv, n_down 4x4 stride-2 convs doubling, n_res blocks of two 3x3 convs; IN has no
    parameters."""
    n, d = _conv(c_in, dim, 7), dim
    for _ in range(n_down):
        n, d = n + _conv(d, 2 * d, 4), 2 * d
    return n + n_res * 2 * _conv(d, d, 3)


def _decoder(c_out: int, dim: int, n_up: int, n_res: int) -> int:
    """n_res AdaIN blocks (parameters come from the MLP), n_up [5x5 conv halving + LayerNorm's
    per-channel gamma and beta], 7x7 conv to the image."""
    d = dim * 2**n_up
    n = n_res * 2 * _conv(d, d, 3)
    for _ in range(n_up):
        n, d = n + _conv(d, d // 2, 5) + 2 * (d // 2), d // 2
    return n + _conv(d, c_out, 7)


def _mlp(style_dim: int, mlp_dim: int, content_dim: int, n_res: int) -> int:
    """style -> mlp_dim -> mlp_dim -> a mean and a std for each of the 2 n_res AdaIN layers."""
    n_adain = 2 * n_res * 2 * content_dim
    return _linear(style_dim, mlp_dim) + _linear(mlp_dim, mlp_dim) + _linear(mlp_dim, n_adain)


def _generator(cfg: MunitConfig, c: int) -> int:
    content_dim = cfg.dim * 2**cfg.n_downsample
    return (
        _style_encoder(c, cfg.dim, cfg.style_dim)
        + _content_encoder(c, cfg.dim, cfg.n_downsample, cfg.n_res)
        + _decoder(c, cfg.dim, cfg.n_downsample, cfg.n_res)
        + _mlp(cfg.style_dim, cfg.mlp_dim, content_dim, cfg.n_res)
    )


def _discriminator(c: int, dim: int, n_layer: int, scales: int) -> int:
    n, d = _conv(c, dim, 4), dim
    for _ in range(n_layer - 1):
        n, d = n + _conv(d, 2 * d, 4), 2 * d
    return scales * (n + _conv(d, 1, 1))


def test_parameter_counts_by_hand_and_official():
    cfg = EDGES2SHOES
    # the MLP and the style encoder, spelled out: 8 -> 256 -> 256 -> 4096 (8 AdaIN layers x 512)
    assert _mlp(8, 256, 256, 4) == (8 * 256 + 256) + (256 * 256 + 256) + (256 * 4096 + 4096)
    assert _style_encoder(3, 64, 8) == 2_764_936 == (
        (3 * 64 * 49 + 64) + (64 * 128 * 16 + 128) + (128 * 256 * 16 + 256)
        + 2 * (256 * 256 * 16 + 256) + (256 * 8 + 8)
    )  # fmt: skip
    assert _generator(cfg, 3) == OFFICIAL_GEN
    assert _discriminator(3, cfg.dis_dim, cfg.dis_n_layer, cfg.dis_num_scales) == OFFICIAL_DIS
    recorded = _fixture()["edges2shoes"]
    assert (recorded["gen_params"], recorded["dis_params"]) == (OFFICIAL_GEN, OFFICIAL_DIS)
    (entry,) = [m for m in load_card("munit").models if m.name == "munit_edges2shoes"]
    assert entry.params == 2 * OFFICIAL_GEN


def test_our_modules_have_the_counted_parameters():
    with torch.device("meta"):
        model = munit_edges2shoes()
        dis = MsImageDis(EDGES2SHOES, 3)
    g = model.gen_a
    assert count_params(g.mlp) == _mlp(8, 256, 256, 4) == 1_120_768
    assert count_params(g.enc_style) == _style_encoder(3, 64, 8)
    assert count_params(g.enc_content) == _content_encoder(3, 64, 2, 4)
    assert count_params(g.dec) == _decoder(3, 64, 2, 4)
    assert count_params(model) == 2 * OFFICIAL_GEN
    assert count_params(dis) == OFFICIAL_DIS
    mini = munit_mini()
    assert count_params(mini) == 2 * _generator(mini.cfg, 3)


# ---------------------------------------------------------------------- the official layout


def test_official_layout_and_checkpoint_load_strictly():
    fx = _fixture()["edges2shoes"]
    with torch.device("meta"):
        model = munit_edges2shoes()
        dis = MsImageDis(EDGES2SHOES, 3)
    for gen in (model.gen_a, model.gen_b):
        assert {k: list(v.shape) for k, v in gen.state_dict().items()} == fx["gen_layout"]
    assert {k: list(v.shape) for k, v in dis.state_dict().items()} == fx["dis_layout"]
    # a released checkpoint: {'a': gen_a.state_dict(), 'b': gen_b.state_dict()}
    ckpt = {d: {k: torch.empty(s, device="meta") for k, s in fx["gen_layout"].items()}
            for d in ("a", "b")}  # fmt: skip
    model.load_state_dict(official_state_dict(ckpt), strict=True, assign=True)
    with pytest.raises(WeightsError, match="'a' and 'b'"):
        official_state_dict({"gen": ckpt["a"]})


# ---------------------------------------------------------------------- the oracle


def _oracle_models() -> tuple[Munit, MsImageDis, dict]:
    fx = _fixture()
    g, d = fx["gen_config"], fx["dis_config"]
    cfg = MunitConfig(
        input_dim_a=fx["input_dim"], input_dim_b=fx["input_dim"], dim=g["dim"],
        style_dim=g["style_dim"], n_downsample=g["n_downsample"], n_res=g["n_res"],
        mlp_dim=g["mlp_dim"], activ=g["activ"], pad_type=g["pad_type"], dis_dim=d["dim"],
        dis_n_layer=d["n_layer"], dis_norm=d["norm"], dis_activ=d["activ"],
        dis_num_scales=d["num_scales"], dis_pad_type=d["pad_type"], gan_type=d["gan_type"],
    )  # fmt: skip
    gen = {k: fixture_tensor(v) for k, v in fx["generator"].items()}
    model = Munit(cfg)
    model.load_state_dict(official_state_dict({"a": gen, "b": gen}), strict=True)
    dis = MsImageDis(cfg, fx["input_dim"])
    dis.load_state_dict({k: fixture_tensor(v) for k, v in fx["discriminator"].items()}, strict=True)
    return model.eval(), dis.eval(), fx


def test_oracle_official_fixture():
    """Our modules with the official weights against the official outputs (bound 1e-5: float32
    rounding of a few hundred-term sums, measured ~1e-6)."""
    model, dis, fx = _oracle_models()
    x, s = fixture_tensor(fx["image"]), fixture_tensor(fx["style_code"])
    want = {k: v for k, v in fx["outputs"].items() if k != "dis"}
    want = {k: fixture_tensor(v) for k, v in want.items()}
    with torch.no_grad():
        content, style = model.encode(x, "a")
        got = {
            "content": content,
            "style": style,
            "decoded": model.decode(want["content"], s, "b"),
            "recon": model.gen_a(x),
            "adain_params": model.gen_b.mlp(s),
            "translation": model(x, s),  # gen_b.decode(gen_a's content, s): same weights here
        }
        d_out = dis(x)
    for name, value in got.items():
        ref = want["decoded" if name == "translation" else name]
        assert value.shape == ref.shape, name
        within((value - ref).abs().max(), 1e-5, f"official AdaINGen {name}")
    for i, (o, ref) in enumerate(zip(d_out, fx["outputs"]["dis"], strict=True)):
        ref = fixture_tensor(ref)
        assert o.shape == ref.shape
        within((o - ref).abs().max(), 1e-5, f"official MsImageDis scale {i}")


# ---------------------------------------------------------------------- AdaIN, LayerNorm, init


def test_adain_statistics_are_the_mlp_outputs():
    """Capture every AdaIN layer's input and output during a decode; slice the MLP's output by
    hand, [mean_k | std_k] of C each for layer k in module order, and check each channel of the
    output: mean = mean_k; biased std = |std_k| * sqrt(var_in / (var_in + eps))."""
    torch.manual_seed(0)
    model = munit_mini(dim=4, mlp_dim=16, n_res=2).double().eval()
    gen = model.gen_b
    content = torch.randn(2, model.cfg.content_dim, 8, 8, dtype=torch.float64) * 3 + 1
    style = torch.randn(2, 8, 1, 1, dtype=torch.float64)
    seen = []
    layers = [m for m in gen.dec.modules() if isinstance(m, AdaptiveInstanceNorm2d)]
    assert len(layers) == 2 * model.cfg.n_res
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append((i[0], o))) for m in layers]
    with torch.no_grad():
        params = gen.mlp(style)
        model.decode(content, style, "b")
    for h in hooks:
        h.remove()
    c = model.cfg.content_dim
    assert params.shape == (2, 2 * c * len(layers))
    for k, (x_in, out) in enumerate(seen):
        mean, std = params[:, 2 * c * k : 2 * c * k + c], params[:, 2 * c * k + c : 2 * c * (k + 1)]
        var_in = x_in.var((2, 3), unbiased=False)
        torch.testing.assert_close(out.mean((2, 3)), mean, atol=1e-10, rtol=0)
        want_std = std.abs() * (var_in / (var_in + 1e-5)).sqrt()
        torch.testing.assert_close(out.std((2, 3), unbiased=False), want_std, atol=1e-10, rtol=0)


def test_layer_norm_is_the_official_formula():
    torch.manual_seed(0)
    ln = LayerNorm(5)
    with torch.no_grad():
        ln.beta.normal_()
    for b in (1, 3):
        x = torch.randn(b, 5, 4, 6) * 2 + 0.5
        flat = x.reshape(b, -1)
        mean, std = flat.mean(1), flat.std(1)  # torch's unbiased std, as the official layer
        want = (x - mean.view(-1, 1, 1, 1)) / (std.view(-1, 1, 1, 1) + 1e-5)
        want = want * ln.gamma.view(1, -1, 1, 1) + ln.beta.view(1, -1, 1, 1)
        torch.testing.assert_close(ln(x), want)


def test_initialisation_follows_weights_init():
    torch.manual_seed(0)
    model, dis = munit_mini(), MsImageDis(munit_mini().cfg, 3)
    conv = model.gen_a.enc_content.model[3].model[0].model[0].conv  # a 3x3 conv, 64 -> 64
    assert conv.bias.abs().max() == 0
    assert abs(conv.weight.std().item() - math.sqrt(2 / (64 * 9))) < 0.1 * math.sqrt(2 / 576)
    w = torch.cat([p.flatten() for n, p in dis.named_parameters() if n.endswith("weight")])
    assert abs(w.std().item() - 0.02) < 0.002
    gammas = [p for n, p in model.named_parameters() if n.endswith("gamma")]
    assert gammas and all(g.min() >= 0 and g.max() <= 1 for g in gammas)


# ---------------------------------------------------------------------- behaviour and bad input


def test_style_changes_the_output_and_shapes():
    torch.manual_seed(0)
    model = munit_mini().eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        y1, y2 = model(x, torch.randn(2, 8, 1, 1)), model(x, torch.randn(2, 8, 1, 1))
        content, style = model.encode(x, "a")
    assert y1.shape == x.shape and y1.abs().max() <= 1
    assert (y1 - y2).abs().mean() > 1e-3
    assert content.shape == (2, 64, 8, 8) and style.shape == (2, 8, 1, 1)


@pytest.fixture(scope="module")
def mini() -> Munit:
    return munit_mini(dim=4, mlp_dim=8, n_res=1).eval()


def test_bad_inputs(mini):
    x, s = torch.randn(2, 3, 32, 32), torch.randn(2, 8, 1, 1)
    bad = [
        ((torch.randn(2, 1, 32, 32), s), r"3 input channels, got 1"),
        ((x, torch.randn(2, 8)), r"style code .*\(B, style_dim, 1, 1\).*s\[:, :, None, None\]"),
        ((x, torch.randn(2, 4, 1, 1)), r"style code .*\(2, 8, 1, 1\), got \(2, 4, 1, 1\)"),
        ((x, torch.randn(3, 8, 1, 1)), r"style code .*\(2, 8, 1, 1\), got \(3, 8, 1, 1\)"),
        ((x, s.double()), r"style: expected torch.float32"),
        ((x, torch.full_like(s, math.nan)), r"style holds 16 NaN"),
        ((x.index_fill(2, torch.tensor([0]), math.nan), s), r"image holds 192 NaN"),
        ((torch.randn(2, 3, 30, 30), s), r"multiples of 2\^n_downsample = 4, got 30x30"),
        ((torch.randn(2, 3, 4, 4), s), r"smaller than the 8x8 minimum"),
        ((x, [0.0] * 8), r"style code must be a torch.Tensor"),
    ]
    for args, match in bad:
        with pytest.raises(InputError, match=match), torch.no_grad():
            mini(*args)
    with pytest.raises(InputError, match="domain must be 'a' or 'b'"):
        mini.encode(x, "c")
    with pytest.raises(InputError, match="smaller than the 16x16 minimum"):
        mini.encode(torch.randn(1, 3, 8, 8), "a")
    with pytest.raises(InputError, match=r"content code must be \(B, 16, h, w\)"):
        mini.decode(torch.randn(2, 8, 8, 8), s, "b")
    with pytest.raises(InputError, match="smaller than the 29x29 minimum"):
        MsImageDis(mini.cfg, 3)(torch.randn(1, 3, 28, 28))
    with pytest.raises(InputError, match="pad_type must be one of"):
        MunitConfig(pad_type="circular")


def test_demo_graph_draws_domain_a_and_translates_as_the_model():
    """The exported demo graph (papers/munit/demo.py) on a bundled sample: its edges are domain A
    (data.edge_map of the held-out silhouette), its guided output is the model's translation with
    the style encoder's code of the style image, its random one the translation with z."""
    from sotazoo.papers.munit import data, demo

    torch.manual_seed(0)
    model = munit_mini(dim=4, mlp_dim=8, n_res=1).eval()
    graph = demo.export_module(model)
    (content, style, z), *_ = demo.example_inputs()
    ink, _ = data.digits("heldout")
    with torch.no_grad():
        edges, guided, random = graph(content, style, z)
        want_edges = data.edge_map(ink[demo.CONTENTS[0]][None])
        code = model.gen_a.enc_content(want_edges)
        want_guided = model.gen_b.decode(code, model.gen_b.enc_style(style))
        want_random = model(want_edges, z[:, :, None, None])
    # the graph's grey is 0.299 r + 0.587 g + 0.114 b of three equal planes: one float rounding
    assert (edges - want_edges).abs().max() <= 1e-5
    assert (guided - want_guided.clamp(-1, 1)).abs().max() <= 1e-4  # through that rounding
    assert (random - want_random.clamp(-1, 1)).abs().max() <= 1e-4
    assert not torch.allclose(guided, random, atol=1e-3)


def test_packaged_weights_reproduce_their_log():
    """munit_mini.sotazoo matches its log (sha256, figures), and scored again on the held-out
    digits by the recipe's evaluator it gives the figures the log recorded."""
    import sotazoo
    from sotazoo.papers.munit.evaluate import Evaluator
    from sotazoo.papers.munit.train import RECIPE_EVAL

    w = sotazoo.get_weights("munit_mini", "sotazoo")
    log = json.loads((Path(sotazoo.__file__).parent / w.packaged).with_name("munit_mini.sotazoo.log.json").read_text())
    assert log["sha256"] == w.sha256 and log["metrics"] == dict(w.metrics)
    got = Evaluator(RECIPE_EVAL)(sotazoo.create_model("munit_mini", weights="sotazoo").eval(), style=True)
    names = {"heldout_proxy_fid": "fid", "heldout_diversity": "diversity", "heldout_content_top1": "content_top1"}
    for metric, key in names.items():
        # float32 sums over hundreds of images in another order on another CPU; a Frechet
        # distance's matrix square root amplifies them, still far below 1e-3 relative
        assert got[key] == pytest.approx(log["metrics"][metric], rel=1e-3, abs=1e-4), metric


def test_a_released_checkpoint_loads_by_path(tmp_path):
    """A file shaped as the release ({'a': gen_a, 'b': gen_b}, torch.save) loads through
    create_model(weights=path) and gives the weights it was saved from."""
    import sotazoo

    torch.manual_seed(3)
    src = munit_mini(dim=4, mlp_dim=8, n_res=1)
    path = tmp_path / "gen_00001000.pt"
    torch.save({"a": src.gen_a.state_dict(), "b": src.gen_b.state_dict()}, path)
    got = sotazoo.create_model("munit_mini", weights=str(path), dim=4, mlp_dim=8, n_res=1)
    for k, v in src.state_dict().items():
        assert torch.equal(got.state_dict()[k], v), k
    torch.save({"gen": src.gen_a.state_dict()}, tmp_path / "bad.pt")
    with pytest.raises(WeightsError):
        sotazoo.create_model("munit_mini", weights=str(tmp_path / "bad.pt"), dim=4, mlp_dim=8, n_res=1)
