"""An oracle's figure: how far our model is from the reference implementation, and the bound it is
held to. The oracle tests check their numbers through `within`, which asserts and, when `sotazoo
verify` runs them (SOTAZOO_ORACLE_LOG names a file), appends the figure to that file, so the
paper's verify record carries each oracle's largest difference beside its bound."""

import base64
import json
import os


def within(diff: float, bound: float, what: str = "") -> None:
    """Assert `diff <= bound` (both as floats) and record the pair for `sotazoo verify`."""
    diff, bound = float(diff), float(bound)
    path = os.environ.get("SOTAZOO_ORACLE_LOG")
    if path:
        test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
        row = {"test": test, "what": what, "max_diff": diff, "bound": bound}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
    assert diff <= bound, f"{what or 'oracle'}: differs by {diff:.3g}, above its bound {bound:.3g}"


def randomise_bn(model, seed: int = 1, *, conv_bias: bool = False):
    """Give BN non-trivial statistics and affine terms (a reference built with random init has
    mean 0, var 1, weight 1, bias 0), and with `conv_bias` the convolutions' biases too, so that
    a wrong key mapping cannot hide; eval mode."""
    import torch

    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.normal_(0, 0.1, generator=g)
        elif conv_bias and isinstance(m, torch.nn.Conv2d) and m.bias is not None:
            m.bias.data.normal_(0, 0.1, generator=g)
    return model.eval()


def fixture_tensor(d: dict):
    """A tensor stored in an oracle fixture, {"dtype": "float16" | "float32", "shape": [...],
    "data": base64 of the little-endian values}, as a float32 torch tensor."""
    import numpy as np
    import torch

    dtype = {"float16": "<f2", "float32": "<f4"}[d.get("dtype", "float32")]
    a = np.frombuffer(base64.b64decode(d["data"]), dtype=dtype).reshape(d["shape"])
    return torch.from_numpy(a.astype(np.float32))


def fixture_weights(d: dict) -> dict:
    """A state dict stored in an oracle fixture: name -> `fixture_tensor`."""
    return {k: fixture_tensor(v) for k, v in d.items()}
