"""Random example inputs of a model: the image batch, then its extra inputs (cards.ExtraInput).

Export, bench and the registry-wide tests all build their inputs here, so that a model with a
question, a mask or a class label is exercised the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sotazoo.cards import ExtraInput


def random_inputs(
    input_size: Sequence[int],
    extra_inputs: Sequence[ExtraInput] = (),
    batch: int = 2,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    out = [torch.randn(batch, *input_size, generator=g)]
    for x in extra_inputs:
        if x.dtype == "int64":
            out.append(torch.randint(0, x.high, (batch, *x.shape), generator=g))
        elif x.values == "binary":
            out.append((torch.rand(batch, *x.shape, generator=g) < 0.5).float())
        else:
            out.append(torch.randn(batch, *x.shape, generator=g))
    return tuple(t.to(device) for t in out)
