"""NASNet-A: parameter counts and multiply-adds against the paper and the official release, the
timm oracle, the converter, TF "SAME" padding, ScheduledDropPath, and bad input."""

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import sotazoo
from sotazoo.bench import count_gmacs, count_params
from sotazoo.cards import load_card
from sotazoo.errors import InputError, WeightsError
from sotazoo.papers.nasnet.convert import (
    convert_state_dict,
    detect_layout,
    read_keras_h5,
    read_tf_slim,
)
from sotazoo.papers.nasnet.layers import SameConv2d, SamePool, ScheduledDropPath, same_pads
from sotazoo.weights import save_safetensors

from .oracle import randomise_bn, within
from .shapes_demo import check_shapes_classifier

CARD = load_card("nasnet")
VARIANTS = [m for m in CARD.models if not m.laptop]


def _meta(name: str, **overrides) -> torch.nn.Module:
    """The model on the meta device: shapes without memory or initialisation time."""
    with torch.device("meta"):
        return sotazoo.create_model(name, **overrides)


# ---------------------------------------------------------------------- parameter counts


def _tf_param_count(*, num_cells, filters, stem, stem_mult, skip, classes) -> int:
    """The trainable variables of TF-Slim's build_nasnet_{cifar,mobile,large} (no aux head),
    transcribed from nasnet.py / nasnet_utils.py independently of our model: the op lists and
    hidden-state indices as the release writes them, one conv weight per 1x1, a depthwise and a
    pointwise weight per separable conv, gamma and beta per BN, no conv biases."""
    normal = (["separable_5x5_2", "separable_3x3_2", "separable_5x5_2", "separable_3x3_2",
               "avg_pool_3x3", "none", "avg_pool_3x3", "avg_pool_3x3", "separable_3x3_2", "none"],
              [0, 1, 1, 1, 0, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0, 0])  # fmt: skip
    reduction = (["separable_5x5_2", "separable_7x7_2", "max_pool_3x3", "separable_7x7_2",
                  "avg_pool_3x3", "separable_5x5_2", "none", "avg_pool_3x3", "separable_3x3_2",
                  "max_pool_3x3"], [0, 1, 0, 1, 0, 1, 3, 2, 2, 0], [1, 1, 1, 0, 0, 0, 0])  # fmt: skip

    def conv_bn(cin, cout):  # 1x1 conv + BN
        return cin * cout + 2 * cout

    def op(name, cin, f, stride):
        if name.startswith("separable"):
            k = int(name.split("_")[1][0])
            return cin * k * k + cin * f + 2 * f + f * k * k + f * f + 2 * f
        if name == "none":
            return conv_bn(cin, f) if stride > 1 or cin != f else 0
        return conv_bn(cin, f) if cin != f else 0  # a pool, projected if channels differ

    def cell(kind, net, prev, f, stride):  # net, prev: (channels, resolution level)
        ops, idx, used = kind
        n = conv_bn(net[0], f)  # 1x1 + beginning_bn
        if prev is None:
            h1 = net[0]
        elif prev[1] != net[1]:  # factorized reduction: path1_conv, path2_conv, final_path_bn
            n, h1 = n + 2 * prev[0] * (f // 2) + 2 * f, f
        else:
            n, h1 = n + (conv_bn(prev[0], f) if prev[0] != f else 0), f
        chans = [f, h1] + [f] * 5
        n += sum(op(o, chans[i], f, stride if i < 2 else 1) for o, i in zip(ops, idx, strict=True))
        n += sum(conv_bn(c, f) for c, u in zip(chans, used, strict=True) if not u and c != f)
        return n, (f * used.count(0), net[1] + (stride > 1))

    stem_ch = 32 * stem_mult if stem == "imagenet" else filters * stem_mult
    total = 3 * 3 * 3 * stem_ch + 2 * stem_ch
    outs = [None, (stem_ch, 0)]
    if stem == "imagenet":
        for scale in (0.25, 0.5):
            n, out = cell(reduction, outs[-1], outs[-2], int(filters * scale), 2)
            total, outs = total + n, [*outs, out]
    reductions = [int(i / 3 * num_cells) for i in (1, 2)]
    f = filters
    for i in range(num_cells):
        prev = outs[-2]
        if i in reductions:
            f *= 2
            n, out = cell(reduction, outs[-1], outs[-2], f, 2)
            total, outs = total + n, [*outs, out]
        if not skip:
            prev = outs[-2]
        n, out = cell(normal, outs[-1], prev, f, 1)
        total, outs = total + n, [*outs, out]
    return total + outs[-1][0] * classes + classes


LARGE = dict(num_cells=18, filters=168, stem="imagenet", stem_mult=3, skip=True)
MOBILE = dict(num_cells=12, filters=44, stem="imagenet", stem_mult=1, skip=False)
CIFAR = dict(num_cells=18, filters=32, stem="cifar", stem_mult=3, skip=False)


@pytest.mark.parametrize("entry", VARIANTS, ids=lambda e: e.name)
def test_param_count_matches_the_card(entry):
    """Each variant against `params` of the card within 0.5% (its params_source names the count:
    Cadene's pretrainedmodels port of the release for large and mobile, the TF code counted by
    hand for CIFAR)."""
    n = count_params(_meta(entry.name))
    assert abs(n - entry.params) / entry.params <= 0.005, (n, entry.params, entry.params_source)


def test_param_counts_are_the_official_ones_exactly():
    """Exact counts, without the aux head: pretrainedmodels NASNetALarge(num_classes=1001),
    88,757,183, and nasnetamobile (1000 classes), 5,289,978 (both measured in the facts file,
    ../shared/papers/facts-classification-detection-segmentation.md section 2); timm's
    nasnetalarge (1000 classes), counted here; the TF code counted by hand, which agrees with
    both ports and gives CIFAR its count."""
    timm = pytest.importorskip("timm")
    large = count_params(_meta("nasnet_a_large"))
    assert large == 88_757_183 == _tf_param_count(**LARGE, classes=1001)
    with torch.device("meta"):
        theirs = count_params(timm.create_model("nasnetalarge"))
    assert count_params(_meta("nasnet_a_large", num_classes=1000)) == theirs == 88_753_150
    mobile = count_params(_meta("nasnet_a_mobile", num_classes=1000))
    assert mobile == 5_289_978 == _tf_param_count(**MOBILE, classes=1000)
    assert count_params(_meta("nasnet_a_mobile")) == mobile + 1057  # the background class
    cifar = count_params(_meta("nasnet_cifar"))
    assert cifar == _tf_param_count(**CIFAR, classes=10) == 3_346_538


def test_param_counts_round_to_the_papers_tables():
    """Tables 1-3 (arXiv v4) give 3.3M (CIFAR 6 @ 768), 5.3M (4 @ 1056), 88.9M (6 @ 4032) to
    one decimal: the CIFAR count must round to it; large and mobile are within 0.5%. The aux
    head, 1.6M / 2.4M / 4.6M more, is not in the papers' counts (nor in the ports')."""
    cifar = count_params(_meta("nasnet_cifar"))
    assert round(cifar / 1e6, 1) == 3.3
    for name, paper in (("nasnet_a_mobile", 5.3e6), ("nasnet_a_large", 88.9e6)):
        assert abs(count_params(_meta(name)) - paper) / paper <= 0.005
    aux = count_params(_meta("nasnet_cifar", aux_head=True)) - cifar
    assert 1.6e6 < aux < 1.7e6  # the paper's 3.3M leaves it out


def test_the_7_at_2304_cifar_model_is_counted_and_disagrees_with_table_1():
    """NASNet-A (7 @ 2304), Table 1's large CIFAR model: N = 7 cells per stage, 2304 = 24 F
    filters in the penultimate layer, so F = 96; the release has no config for it. Ours and the
    TF code counted by hand agree (32,590,954 without the aux head), 18% above the table's
    27.6M; the card's deviation says so. N = 6 at F = 96 (28.2M) is the nearest count of that
    shape, but it is not 7 @ 2304."""
    n = count_params(_meta("nasnet_cifar", num_cells=21, num_conv_filters=96))
    assert n == _tf_param_count(**(CIFAR | {"num_cells": 21, "filters": 96}), classes=10)
    assert abs(n / 27.6e6 - 1) > 0.15  # the disagreement the card states


def _gmacs_meta(name: str, size: int) -> float:
    """Multiply-adds of one forward pass at batch 1, counted by flop_counter on the meta device
    (the network's ops without the input checks, which read values)."""
    model = _meta(name).eval()
    with FlopCounterMode(display=False) as counter:
        model.forward_head(model.forward_features(torch.empty(1, 3, size, size, device="meta")))
    return counter.get_total_flops() / 2e9


@pytest.mark.parametrize("entry", [e for e in VARIANTS if e.gflops], ids=lambda e: e.name)
def test_gmacs_match_tables_2_and_3(entry):
    """Multiply-adds vs Tables 2-3 (23.8B at 331 px, 564M at 224 px), within 0.5%: the tables
    round to three digits (0.2%), and flop_counter counts only convolutions and the classifier
    (pooling, BN, ReLU and the block sums are ~0.1% more). Measured: 23.783 and 0.5636."""
    got = _gmacs_meta(entry.name, entry.input_size[-1])
    assert abs(got - entry.gflops) / entry.gflops <= 0.005, (got, entry.gflops)


def test_meta_count_equals_a_real_forward():
    """The meta-device count is the one `sotazoo bench` makes with a real forward pass."""
    real = count_gmacs(sotazoo.create_model("nasnet_mini").eval(), (3, 32, 32))
    assert real == pytest.approx(_gmacs_meta("nasnet_mini", 32), rel=1e-12)


# ---------------------------------------------------------------------- the timm oracle


@pytest.mark.slow
def test_oracle_timm_nasnetalarge():
    """timm's nasnetalarge (random weights, eval) loads into ours through the converter, and the
    logits on a random 331x331 image agree. Ours is built with count_pool_padding=True, the one
    place where timm's port departs from TF (its stride-2 average pools count the padding)."""
    timm = pytest.importorskip("timm")
    theirs = randomise_bn(timm.create_model("nasnetalarge", pretrained=False))
    sd, overrides, layout = convert_state_dict(theirs.state_dict())
    # the config read from the shapes: the large model's (Table 2: 6 @ 4032, stem 96)
    assert layout == "timm" and overrides == {"num_classes": 1000, "num_cells": 18,
                                              "num_conv_filters": 168, "stem": "imagenet",
                                              "stem_multiplier": 3}  # fmt: skip
    model = sotazoo.create_model("nasnet_a_large", count_pool_padding=True, **overrides)
    model.load_state_dict(sd, strict=True)
    model.eval()
    x = torch.randn(1, 3, 331, 331, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        ours, ref = model(x), theirs(x)
    # The same torch ops on the same tensors in the same order (convolutions on the same padded
    # inputs, the same sums and concatenations), so the same kernels: measured equal (0.0). The
    # bound leaves room for another machine choosing other kernels: a reordered float32 sum of n
    # terms moves by ~sqrt(n) ulps, and the largest (the 4032-term classifier, 5x5x1008 convs)
    # give ~70 ulps of logits of order 0.4 (ulp 3e-8): 2e-6; 1e-5 covers that with margin.
    within((ours - ref).abs().max(), 1e-5, "logits vs timm nasnetalarge")
    assert ref.abs().max() > 0.1  # not a vanishing output that any mapping would match


def test_convert_maps_every_timm_key_onto_ours():
    """All of timm's keys map onto ours, one to one, with the same shapes (meta tensors)."""
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        theirs = timm.create_model("nasnetalarge").state_dict()
    sd, overrides, _ = convert_state_dict(theirs)
    ours = _meta("nasnet_a_large", **overrides).state_dict()
    assert len(sd) == len(theirs) and set(sd) == set(ours)
    assert all(sd[k].shape == ours[k].shape for k in ours)
    again, overrides, layout = convert_state_dict(ours)  # our own layout passes unchanged
    assert layout == "sotazoo" and again is ours and overrides["num_classes"] == 1000


def test_convert_rejects_unknown_layouts_and_keys(tmp_path):
    with pytest.raises(WeightsError, match=r"unrecognised NASNet checkpoint layout.*'head\.w'"):
        detect_layout({"head.w", "body.conv.weight"})
    timm_like = {
        "conv0.conv.weight": torch.zeros(96, 3, 3, 3),
        "cell_stem_0.comb_iter_0_left.bn_sep_1.weight": torch.zeros(42),
        "cell_3.comb_iter_0_middle.weight": torch.zeros(1),
        "aux.fc.weight": torch.zeros(1),
    }
    with pytest.raises(WeightsError, match=r"2 keys .*\['aux\.fc\.weight', 'cell_3\.comb_iter_0"):
        convert_state_dict(timm_like)
    sd = sotazoo.create_model("nasnet_mini").state_dict()
    del sd["cell_1.prev.path_2.weight"]
    torch.save(sd, tmp_path / "mini.pth")
    with pytest.raises(WeightsError, match=r"1 missing keys, e\.g\. \['cell_1\.prev\.path_2"):
        sotazoo.create_model("nasnet_mini", weights=tmp_path / "mini.pth")


# ---------------------------------------------------------------------- the Keras port, TF-Slim

DATA = Path(__file__).resolve().parents[1] / "data" / "nasnet"


def _keras_file(tmp_path: Path) -> Path:
    """The Keras fixture as a user has it (tests/data/nasnet/make_keras.py: Keras 3.15.1's NASNet
    at Mobile's shape, 4 filters, one Normal cell per stage, random weights and BN statistics)."""
    path = tmp_path / "keras_tiny.h5"
    path.write_bytes(gzip.decompress((DATA / "keras_tiny.h5.gz").read_bytes()))
    return path


def test_oracle_keras_port_loads_and_gives_its_logits(tmp_path):
    """The Keras port's HDF5 file (the layout of the released NASNet-mobile.h5) loads through the
    converter, which reads the network's size from the shapes; with the Keras port's two
    stride-2 pool deviations switched on, our logits are the ones Keras computed. Tolerance:
    logits of magnitude ~4 after ~30 float32 layers whose sums TF and PyTorch order differently
    (measured 4.8e-7 here); 2e-5 leaves 40x for another CPU's kernels."""
    io = np.load(DATA / "keras_tiny_io.npz")
    x, logits = torch.from_numpy(io["x"]), io["logits"]
    path = _keras_file(tmp_path)
    keras = sotazoo.create_model("nasnet_a_mobile", weights=path, count_pool_padding=True,
                                 zero_pad_max_pool=True)  # fmt: skip
    assert (keras.cfg.num_cells, keras.cfg.num_conv_filters, keras.cfg.num_classes) == (3, 4, 10)
    with torch.inference_mode():
        assert np.abs(keras(x).numpy() - logits).max() <= 2e-5
        # TF-Slim's pools (our default) are not the port's: the borders change the logits
        tf_pools = sotazoo.create_model("nasnet_a_mobile", weights=path)
        assert np.abs(tf_pools(x).numpy() - logits).max() > 1e-2


def test_tf_slim_checkpoint_converts_to_the_same_network(tmp_path):
    """The same weights under the TF-Slim release's variable names (tests/data/nasnet/
    make_tf_slim.py, written by TensorFlow, with a training checkpoint's global_step, auxiliary
    head and momentum slot) convert to exactly the state dict of the Keras file."""
    raw = read_tf_slim(DATA / "tf_slim_tiny" / "model.ckpt.index")
    assert "global_step" not in raw  # not a float: left out by the reader
    assert "cell_0/comb_iter_0/left/separable_5x5_1/depthwise_weights" in raw
    sd, cfg, layout = convert_state_dict(raw)
    keras_sd, keras_cfg, keras_layout = convert_state_dict(read_keras_h5(_keras_file(tmp_path)))
    assert (layout, keras_layout) == ("tf_slim", "keras") and cfg == keras_cfg
    assert sd.keys() == keras_sd.keys()
    assert all(torch.equal(sd[k], keras_sd[k]) for k in sd)
    model = sotazoo.create_model("nasnet_a_mobile",
                                 weights=DATA / "tf_slim_tiny" / "model.ckpt.index")  # fmt: skip
    assert model.cfg.num_classes == 10
    # saved as ours and loaded again: the config still comes from the shapes
    save_safetensors(model.state_dict(), tmp_path / "ours.safetensors", model="nasnet_a_mobile")
    again = sotazoo.create_model("nasnet_a_mobile", weights=tmp_path / "ours.safetensors")
    assert again.cfg == model.cfg


def test_tf_slim_unknown_variables_are_named():
    raw = read_tf_slim(DATA / "tf_slim_tiny" / "model.ckpt.index")
    raw["cell_0/comb_iter_0/middle/separable_3x3_1/depthwise_weights"] = torch.zeros(3, 3, 4, 1)
    with pytest.raises(WeightsError, match=r"1 keys of the tf_slim .*comb_iter_0/middle"):
        convert_state_dict(raw)


# ---------------------------------------------------------------------- TF "SAME" padding


def _stride2_inputs(name: str, size: int) -> dict[str, int]:
    """The input side of every stride-2 cell of `name` at `size` px (meta-device forward)."""
    model, sides = _meta(name).eval(), {}

    def record(module, args):
        sides[module.name] = args[0].shape[-1]

    for cell in model.cell_names:
        if not cell.startswith("cell_") or cell.startswith("cell_stem"):
            getattr(model, cell).name = cell
            getattr(model, cell).register_forward_pre_hook(record)
    model.forward_features(torch.empty(1, 3, size, size, device="meta"))
    return sides


def test_same_padding_is_asymmetric_only_on_even_sides():
    """TF pads stride-2 ops by (k - 2) on an even side, the odd pixel after, and symmetrically
    on an odd side. At 331 px the four stride-2 cells see 165, 83, 42 and 21 px: only
    reduction_cell_0 pads asymmetrically (the place where Cadene's port hard-coded its pads and
    timm pads dynamically); mobile at 224 px does so in three cells (56, 28, 14)."""
    assert _stride2_inputs("nasnet_a_large", 331) == {
        "cell_stem_0": 165, "cell_stem_1": 83, "reduction_cell_0": 42, "reduction_cell_1": 21,
    }  # fmt: skip
    assert list(_stride2_inputs("nasnet_a_mobile", 224).values()) == [111, 56, 28, 14]
    assert [same_pads(42, k, 2) for k in (3, 5, 7)] == [(0, 1), (1, 2), (2, 3)]
    assert [same_pads(21, k, 2) for k in (3, 5, 7)] == [(1, 1), (2, 2), (3, 3)]
    assert same_pads(42, 5, 1) == (2, 2) and same_pads(1, 3, 2) == (1, 1)
    conv = SameConv2d(2, 2, 5, stride=2)
    x = torch.randn(1, 2, 8, 8)
    expect = F.conv2d(F.pad(x, (1, 2, 1, 2)), conv.weight, stride=2)
    assert torch.equal(conv(x), expect)


def test_pools_follow_tf_same_and_timm_counts_the_padding():
    """A 3x3 stride-2 average on a 4x4 map pads one row and column after: TF averages the 4
    pixels of the last window that exist; timm's AvgPool2dSame divides their sum by 9. Max pools
    pad with -inf (a negative map's border is not 0). The asymmetric TF average is a mean times 9
    over a count over 9, so it may differ from the plain mean by an ulp or two."""
    x = torch.arange(16.0).view(1, 1, 4, 4)
    tf = SamePool("avg", 2, count_padding=False)(x)
    timm_like = SamePool("avg", 2, count_padding=True)(x)
    corner = torch.tensor([10.0, 11, 14, 15])
    assert tf[0, 0, 1, 1].item() == pytest.approx(corner.mean().item(), rel=3e-7)
    assert timm_like[0, 0, 1, 1].item() == pytest.approx(corner.sum().item() / 9, rel=3e-7)
    assert tf[0, 0, 0, 0].item() == pytest.approx(x[0, 0, :3, :3].mean().item(), rel=3e-7)
    odd = torch.arange(25.0).view(1, 1, 5, 5)  # symmetric padding: PyTorch's own pool
    expect = F.avg_pool2d(odd, 3, 2, padding=1, count_include_pad=False)
    assert torch.equal(SamePool("avg", 2, count_padding=False)(odd), expect)
    assert SamePool("max", 2, count_padding=False)(-x - 1)[0, 0, 1, 1] == -11.0


# ---------------------------------------------------------------------- ScheduledDropPath


def test_drop_path_schedule_is_linear_in_progress_and_depth():
    """drop = (1 - keep) x (cell + 1) / cells x min(1, step / total): the large model counts 22
    cells (2 stem + 18 normal + 2 reduction, as nasnet.py), keep 0.7; mobile drops nothing."""
    model = _meta("nasnet_a_large")
    cells = [getattr(model, n) for n in model.cell_names]
    assert len(cells) == 22
    for progress in (0.0, 0.25, 1.0, 3.0):
        model.set_drop_path_progress(progress)
        for i, cell in enumerate(cells):
            expect = 0.3 * (i + 1) / 22 * min(1.0, progress)
            assert cell.drop_path.drop_prob == pytest.approx(expect, abs=1e-15)
    assert model.cell_17.drop_path.drop_prob == pytest.approx(0.3)
    mobile = _meta("nasnet_a_mobile")
    mobile.set_drop_path_progress(1.0)
    assert all(getattr(mobile, n).drop_path.drop_prob == 0.0 for n in mobile.cell_names)


def test_drop_path_drops_whole_examples_and_rescales():
    drop = ScheduledDropPath(keep_prob=0.5, cell_index=0, num_cells=1)
    drop.progress = 1.0
    x = torch.ones(4000, 2, 3, 3)
    y = drop.train()(x)
    kept = y[:, 0, 0, 0] != 0
    assert torch.equal(y[kept], torch.full_like(y[kept], 2.0))  # divided by keep = 0.5
    assert torch.equal(y[~kept], torch.zeros_like(y[~kept]))  # the whole example
    assert abs(kept.float().mean().item() - 0.5) < 0.04  # 5 sigma of a binomial of 4000
    assert drop.eval()(x) is x


def test_drop_path_is_inactive_in_eval_mode():
    model = sotazoo.create_model("nasnet_mini").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        model.set_drop_path_progress(1.0)
        assert torch.equal(model(x), before)


def test_drop_path_never_drops_identity_paths():
    """With every droppable path dropped, a Normal cell keeps exactly its identity paths:
    blocks 3 (avg3(h0) + id(h1)) and 5 (sep3(h0) + id(h0)) become h1 and h0, the others 0."""

    class DropAll(torch.nn.Module):
        def forward(self, x):
            return torch.zeros_like(x)

    model = sotazoo.create_model("nasnet_mini").eval()
    cell = model.cell_2
    cell.drop_path = DropAll()
    x, prev = torch.randn(2, 256, 8, 8), torch.randn(2, 192, 16, 16)  # reduction_cell_1, cell_1
    with torch.no_grad():
        h0, h1 = cell.conv_1x1(x), cell.prev(prev)
        out = cell(x, prev).split(64, dim=1)  # h1, blocks 1-5
    assert torch.equal(out[0], h1) and torch.equal(out[3], h1) and torch.equal(out[5], h0)
    assert all(not out[i].any() for i in (1, 2, 4))


# ---------------------------------------------------------------------- wiring, aux, bad input


def test_cell_wiring_follows_the_release():
    """skip_reduction_layer_input (large only): the Normal cell after a reduction reads as h1
    the cell before the reduction's input; and the channels of each stage are 6F, 12F, 24F
    for F = num_conv_filters (the CIFAR model's first cell projects its 96-channel h1)."""
    large, mobile = _meta("nasnet_a_large"), _meta("nasnet_a_mobile")
    skips = [n for n, o in zip(large.cell_names, large.prev_offsets, strict=True) if o == 3]
    assert skips == ["cell_6", "cell_12"] and set(mobile.prev_offsets) == {2}
    assert large.num_features == 4032 and mobile.num_features == 1056
    cifar = _meta("nasnet_cifar")
    assert list(cifar.cell_0.cell_output) == ["1"] and cifar.num_features == 768


def test_aux_head_trains_beside_the_classifier():
    model = sotazoo.create_model("nasnet_mini", aux_head=True).train()
    logits, aux = model.forward_aux(torch.randn(2, 3, 32, 32))
    assert logits.shape == aux.shape == (2, 10)
    assert model.aux_head.kernel == 4  # 16x16 map after the 5x5/3 pool
    assert _meta("nasnet_a_large", aux_head=True).aux_head.kernel == 6
    with pytest.raises(InputError, match="built for a 4x4 map"):
        model.forward_aux(torch.randn(1, 3, 16, 16))
    with pytest.raises(InputError, match="no auxiliary head"):
        sotazoo.create_model("nasnet_mini").forward_aux(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.randn(1, 1, 32, 32), "expected 3 input channels, got 1"),
        (torch.randn(3, 32, 32), r"4-D batch \(B, C, H, W\)"),
        (torch.full((1, 3, 32, 32), math.nan), "3072 NaN and 0 infinite"),
    ],
    ids=["channels", "rank", "nan"],
)
def test_bad_input_is_a_clear_error(x, match):
    with pytest.raises(InputError, match=match):
        sotazoo.create_model("nasnet_mini").eval()(x)


def test_bad_config_is_a_clear_error():
    with pytest.raises(TypeError, match="NASNetConfig takes: num_cells"):
        sotazoo.create_model("nasnet_mini", colour="red")
    with pytest.raises(InputError, match="a factorized reduction an even number"):
        sotazoo.create_model("nasnet_a_mobile", num_conv_filters=10)  # cell_stem_1: 5
    with pytest.raises(InputError, match="drop_path_keep_prob must be in"):
        sotazoo.create_model("nasnet_mini", drop_path_keep_prob=0.0)


# ---------------------------------------------------------------------- the demo's weights


def test_convert_entries_declare_the_counted_params():
    """Each weights entry's num_params is what the model it loads into really has."""
    names = ("nasnet_a_mobile", "nasnet_a_large", "nasnet_mini")
    weights = [w for name in names for w in sotazoo.list_weights(name)]
    assert len(weights) == 3
    for w in weights:  # the Keras files drop TF-Slim's background class: the converter sets 1000
        overrides = {"num_classes": 1000} if w.format == "keras_h5" else {}
        assert count_params(_meta(w.model, **overrides)) == w.num_params, w.name


def test_convert_our_demo_weights_match_their_log_and_accuracy():
    """The committed nasnet_mini weights: hash, log and held-out accuracy recomputed."""
    from sotazoo.papers.nasnet import train

    check_shapes_classifier("nasnet_mini", train)
