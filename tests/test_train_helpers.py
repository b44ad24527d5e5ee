"""The training helpers the papers share (`sotazoo.train.gan`): the loss log's windows."""

import math

from sotazoo.train.gan import LossLog


def test_loss_log_means_windows_and_stops_at_a_non_finite_term():
    log = LossLog(every=2, last=5, digits=3)
    for step, v in enumerate((1.0, 2.0, 4.0, 8.0, 1 / 3), start=1):
        assert log.add(step, {"d": v, "g": -v})
    # windows close at steps 2 and 4 (every 2nd) and at 5 (the last)
    assert log.rows == [{"step": 2, "d": 1.5, "g": -1.5}, {"step": 4, "d": 6.0, "g": -6.0},
                        {"step": 5, "d": 0.333, "g": -0.333}]  # fmt: skip
    assert not log.add(6, {"d": math.nan, "g": 0.0}) and not log.add(6, {"d": math.inf})
    assert len(log.rows) == 3  # nothing kept from a non-finite step


def test_frozen_takes_no_gradient_and_restores_even_after_an_error():
    import pytest
    import torch

    from sotazoo.train.gan import frozen, optimizer_step

    g, d = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    d.bias.requires_grad_(False)  # already frozen: stays frozen after the block
    with frozen(d):
        optimizer_step(torch.optim.SGD(g.parameters(), lr=0.1), d(g(torch.ones(1, 2))).sum())
    assert d.weight.grad is None and g.weight.grad is not None
    assert d.weight.requires_grad and not d.bias.requires_grad
    with pytest.raises(RuntimeError), frozen(g, d):
        assert not any(p.requires_grad for p in (*g.parameters(), d.weight))
        raise RuntimeError("inside")
    assert all(p.requires_grad for p in g.parameters()) and d.weight.requires_grad
