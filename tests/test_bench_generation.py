"""`sotazoo bench` on the generators: noise (+ label) inputs, spectral-norm parametrizations, and
the declared references of the GAN cards (other configurations of ours)."""

import pytest
import torch

import sotazoo
from sotazoo.bench import bench, build_pair, count_gmacs, create_reference
from sotazoo.papers.sagan.model import bake_spectral_norm
from sotazoo.registry import model_entry


def test_gmacs_of_a_spectral_norm_generator_are_those_of_its_baked_copy():
    """Spectral norm's parametrization hands a parameter to a submodule; the flop counter must
    still run (it failed under inference_mode) and count the network's convolutions alone: the
    baked copy, plain layers holding W / σ, has the same multiply-adds (σ's matrix-vector
    products are O(weights), not O(pixels), and the counter skips them)."""
    _, entry = model_entry("sagan_mini")
    model = sotazoo.create_model("sagan_mini").eval()
    with_sn = count_gmacs(model, entry.input_size, entry.extra_inputs)
    baked = count_gmacs(bake_spectral_norm(model), entry.input_size, entry.extra_inputs)
    assert with_sn > 0
    assert with_sn == pytest.approx(baked, rel=1e-9)


@pytest.mark.parametrize("name", ["sagan_128", "progan_1024"])
def test_declared_references_of_the_gan_cards_build(name):
    """The card's reference spec names a configuration our builder accepts."""
    _, entry = model_entry(name)
    assert entry.reference.startswith("sotazoo:")
    _, _, opts = entry.reference.partition(":")[2].partition(":")
    assert opts  # another configuration, not the model itself
    with torch.device("meta"):
        ref = create_reference(entry.reference)
    assert sum(p.numel() for p in ref.parameters()) > 0


def test_bench_pairs_of_the_gan_references():
    """SAGAN's reference lacks the attention block: nothing to share, and the note says which
    tensors differ. ProGAN's fused reference has our very layout: the weights are shared, and
    the two generators draw the same images (the fused upsampling is the same function)."""
    pair = build_pair("sagan_mini", "sotazoo:sagan_mini:attention=False")
    assert not pair.shared
    assert "ours has attention.*" in pair.notes[0] and "timed as they are" in pair.notes[0]
    pair = build_pair("progan_mini", "sotazoo:progan_mini:fused_scale=True")
    assert pair.shared and pair.overrides == {}
    assert pair.reference.cfg.fused_scale and not pair.ours.cfg.fused_scale
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        # other ops for one function (up x2 + 3x3 conv vs a transposed 4x4 conv: other sums);
        # the pixel norms over 8-16 channels magnify that rounding: measured 1.3e-6 on images
        # of order 1, and another CPU's kernels move both sides alike
        assert (pair.ours(z) - pair.reference(z)).abs().max() <= 1e-4


def test_bench_a_conditional_generator_end_to_end():
    """Noise and label inputs of the card, both timed, a ratio, the parameter difference of the
    attention block (4 convs of 64 channels at 8x8: θ, φ 64->8, g 64->32, o 32->64, plus γ)."""
    r = bench("sagan_mini", vs="sotazoo:sagan_mini:attention=False", batch=2, reps=2,
              progress=False)  # fmt: skip
    assert r.ours.params - r.reference.params == 64 * 8 * 2 + 64 * 32 + 32 * 64 + 1
    assert r.latency_ratio > 0 and r.ours.gmacs > r.reference.gmacs
