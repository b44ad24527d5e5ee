import pytest
import torch

import sotazoo
from sotazoo.papers._contract import paper
from sotazoo.registry import example_inputs, model_entry
from sotazoo.tasks import TASKS
from sotazoo.verify import tiny_model  # a small version of each registered model


def test_import_does_not_load_torch_or_papers():
    import subprocess
    import sys

    # The contract (sotazoo.papers._contract) is core; no paper folder may be imported.
    code = (
        "import sys, sotazoo; sotazoo.list_models(); print(sorted(m for m in sys.modules if "
        "m.startswith(('torch', 'sotazoo.papers.')) and m != 'sotazoo.papers._contract'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_list_and_filter():
    names = sotazoo.list_models()
    assert "seresnet50" in names and names == sorted(names)
    assert set(sotazoo.list_models(paper="senet")) >= {"seresnet50", "senet154"}
    assert sotazoo.list_models(task="detection", paper="senet") == []
    assert sotazoo.list_models("seresnext*") == ["seresnext101_32x4d", "seresnext50_32x4d"]


def test_unknown_names_suggest_close_ones():
    with pytest.raises(sotazoo.UnknownNameError, match="did you mean seresnet50"):
        sotazoo.create_model("seresnet5")
    with pytest.raises(sotazoo.UnknownNameError, match="did you mean senet"):
        sotazoo.get_paper("se_net")
    with pytest.raises(sotazoo.UnknownNameError, match="unknown model 'zzz'"):
        sotazoo.create_model("zzz")


def test_unknown_override_names_the_known_fields():
    with pytest.raises(TypeError, match="SENetConfig takes: layers"):
        sotazoo.create_model("seresnet_mini", colour="red")
    # the shared helper (sotazoo.nn.checks.build_configured): the same message, and a TypeError
    # raised inside the model's own constructor is not mistaken for an unknown override
    with pytest.raises(TypeError, match="PConvConfig takes: widths, kernels, in_chans"):
        sotazoo.create_model("pconv_mini", colour="red")
    from sotazoo.nn.checks import build_configured
    from sotazoo.papers.partialconv.model import PConvConfig

    def broken(cfg):
        raise TypeError("inside the constructor")

    with pytest.raises(TypeError, match="^inside the constructor$"):
        build_configured(broken, PConvConfig(), {"fill": 0.25})


def test_every_model_belongs_to_exactly_one_paper():
    seen = {}
    for name in sotazoo.list_models():
        pid, entry = model_entry(name)
        assert name not in seen
        seen[name] = pid
        assert callable(paper(pid).builder(name))


@pytest.mark.parametrize("name", sotazoo.list_models())
def test_forward_backward(name):
    model, size, entry = tiny_model(name)
    model.train()
    inputs = example_inputs(entry, 2, size=size)
    out = model(*inputs)
    assert out.shape[0] == 2 and torch.isfinite(out).all()
    # what the model's task returns (sotazoo.tasks: rank, batch, SR's integer enlargement)
    assert TASKS[entry.task].output_problems(out.shape, inputs[0].shape) == []
    out.square().mean().backward()
    # every parameter gets a finite gradient, except those the paper declares out of `forward`
    # by design (`unused_in_forward`), which must then get none, so that the list stays exact
    unused = paper(model_entry(name)[0]).unused_in_forward(name)
    grads = {k: p.grad for k, p in model.named_parameters() if p.requires_grad}
    left_out = {k for k in grads if any(k.startswith(u) for u in unused)}
    assert all(any(k.startswith(u) for k in grads) for u in unused), f"{unused} names no parameter"
    assert all(grads[k] is None for k in left_out)
    assert all(g is not None and torch.isfinite(g).all() for k, g in grads.items() if k not in left_out)
    model.eval()
    assert model(*(t[:1] for t in inputs)).shape == out[:1].shape  # same output in eval mode


@pytest.mark.parametrize("name", sotazoo.list_models())
def test_export_onnx_matches_torch(name, tmp_path):
    from sotazoo.export import export_onnx

    # Seeded, so that the output's scale is the same on every run and in every test order:
    # unseeded, rn_clevr's logits (a sum over 4096 object pairs) ranged from ~1 to ~10^3.
    torch.manual_seed(0)
    model, size, entry = tiny_model(name)
    r = export_onnx(model.eval(), size, tmp_path / f"{name}.onnx", extra_inputs=entry.extra_inputs)
    # The bound is relative to max(1, max |output|), float32 rounding's scale (sotazoo.export).
    assert r.max_rel_diff <= r.tolerance and r.opset >= 17
    assert (tmp_path / f"{name}.onnx").is_file()
    assert not list(tmp_path.glob("*.part"))
