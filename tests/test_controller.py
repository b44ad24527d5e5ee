"""The shared search engine (`sotazoo.controller`): the space, the controller's sampling and
scoring, REINFORCE against a moving-average baseline, random search with the same budget, and
what a search keeps."""

import math

import numpy as np
import pytest
import torch

from sotazoo.controller import Controller, SearchConfig, Space, search

# A toy space: 12 decisions alternating between a 5-way and a 3-way kind.
SPACE = Space((5, 3), (0, 1) * 6)


def _zeros_share(actions) -> float:
    """A made-up reward: the share of decisions that pick option 0 (chance: about 0.27)."""
    return sum(a == 0 for a in actions) / len(actions)


def test_a_space_checks_itself_and_draws_uniformly():
    assert len(SPACE) == 12 and [SPACE.size(i) for i in range(3)] == [5, 3, 5]
    with pytest.raises(ValueError, match="name no entry"):
        Space((5,), (0, 1))
    with pytest.raises(ValueError, match="needs decisions"):
        Space((5, 0), (0, 1))
    with pytest.raises(ValueError, match="needs decisions"):
        Space((5,), ())
    g = torch.Generator().manual_seed(0)
    draws = np.array([SPACE.uniform(g) for _ in range(3000)])
    assert draws[:, 0].max() == 4 and draws[:, 1].max() == 2 and draws.min() == 0
    # each option of the 5-way kind about 1/5 of the time (3,000 draws: sd about 0.007)
    assert np.allclose(np.bincount(draws[:, 0], minlength=5) / 3000, 0.2, atol=0.04)


def test_the_controller_samples_from_its_generator_and_rescores_its_own_decisions():
    torch.manual_seed(0)
    controller = Controller(SPACE, hidden=16)
    actions, log_prob, entropy = controller(generator=torch.Generator().manual_seed(3))
    assert len(actions) == 12 and all(0 <= a < SPACE.size(i) for i, a in enumerate(actions))
    again, _, _ = controller(generator=torch.Generator().manual_seed(3))
    assert again == actions  # the generator is all the randomness
    rescored, lp, ent = controller(actions)  # teacher-forced: the same decisions, same scores
    assert rescored == actions and torch.allclose(lp, log_prob) and torch.allclose(ent, entropy)
    # near-uniform at initialisation (weights within ±0.1): entropy close to the maximum
    uniform = 6 * (math.log(5) + math.log(3))
    assert uniform - 0.2 < entropy.item() <= uniform + 1e-4
    assert all(p.abs().max() <= 0.1 for p in controller.parameters())


def test_reinforce_learns_a_made_up_reward_that_random_search_does_not():
    cfg = SearchConfig(samples=150, hidden=32)
    ctrl = search(_zeros_share, SPACE, list, cfg=cfg, seed=0)
    rand = search(_zeros_share, SPACE, list, method="random", cfg=cfg, seed=0)
    assert len(ctrl.rewards) == len(rand.rewards) == 150 and not rand.baselines
    assert np.mean(ctrl.rewards[:30]) < 0.4  # it starts near chance (about 0.27)
    assert np.mean(ctrl.rewards[-30:]) > 0.6 > 0.4 > np.mean(rand.rewards[-30:])
    # the baseline: the first reward, then a 0.95 moving average of the rewards
    b = [ctrl.rewards[0]]
    for r in ctrl.rewards[:-1]:
        b.append(0.95 * b[-1] + 0.05 * r)
    assert ctrl.baselines == pytest.approx(b)
    sample, best = ctrl.best
    assert best == max(ctrl.rewards) and _zeros_share(sample) == best
    top = ctrl.top(5)
    assert top[0] == sample and len(top) == 5
    assert [_zeros_share(s) for s in top] == sorted(ctrl.rewards, reverse=True)[:5]
    assert search(_zeros_share, SPACE, list, cfg=cfg, seed=0).rewards == ctrl.rewards  # seeded
    with pytest.raises(ValueError, match="method"):
        search(_zeros_share, SPACE, list, method="grid")


def test_what_the_search_is_given_to_score_is_the_decoded_sample():
    seen = []

    def reward(sample):
        seen.append(sample)
        return 1.0

    res = search(reward, SPACE, tuple, cfg=SearchConfig(samples=3, hidden=8), seed=1,
                 on_sample=lambda i, s, r: seen.append((i, r)))  # fmt: skip
    assert res.samples == [seen[0], seen[2], seen[4]] and seen[1] == (0, 1.0)
    assert all(isinstance(s, tuple) and len(s) == 12 for s in res.samples)
