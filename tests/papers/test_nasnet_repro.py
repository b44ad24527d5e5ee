"""NASNet's laptop reproduction (papers/nasnet/repro.py): the random cells are valid, distinct
wirings of the stated search space at NASNet-A's parameter count, the networks are the model's
own scaffold, drop path off is really off, the data split, and the run in --quick mode."""

import json
import random

import pytest
import torch

from sotazoo.papers.nasnet import model as nasnet_model
from sotazoo.papers.nasnet import repro
from sotazoo.papers.nasnet.layers import ScheduledDropPath

CFG = repro.ReproConfig()


@pytest.fixture(autouse=True)
def _one_thread():
    """These networks are too small to keep two threads busy; on a shared 2-core machine two
    threads can make a forward pass 100 times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _check_cell(cell: dict) -> None:
    """One cell of the search space: 5 blocks, each reading two earlier states through two of
    `OPS`; the output is every block output that no block reads."""
    assert len(cell["blocks"]) == repro.BLOCKS
    read = set()
    for b, (op_l, i, op_r, j) in enumerate(cell["blocks"]):
        assert op_l in repro.OPS and op_r in repro.OPS
        assert 0 <= i < 2 + b and 0 <= j < 2 + b  # h0, h1 or an earlier block
        read |= {i, j}
    assert cell["concat"] == tuple(k for k in range(2, 7) if k not in read)
    assert 6 in cell["concat"]  # the last block is never read


def test_random_cells_draw_every_choice_of_the_space():
    """Over many draws each op and each input of each block turns up (uniform choices)."""
    rng = random.Random(0)
    cells = [repro.random_cell(rng) for _ in range(400)]
    for cell in cells:
        _check_cell(cell)
    ops = {op for c in cells for op_l, _, op_r, _ in c["blocks"] for op in (op_l, op_r)}
    assert ops == set(repro.OPS)
    for b in range(repro.BLOCKS):
        assert {c["blocks"][b][1] for c in cells} == set(range(2 + b))


def test_random_cells_differ_by_seed_and_match_nasnet_a_parameters():
    target = _params(repro.build(None, filters=CFG.filters))
    assert target == _params(nasnet_model.nasnet_mini(in_chans=1))  # the NASNet-A arm
    drawn = [repro.random_cells(s, CFG) for s in repro.DEFAULT_SEEDS]
    pairs = [cells for cells, _, _ in drawn]
    assert len({repr(p) for p in pairs}) == len(pairs)  # a different wiring per seed
    for (normal, reduction), filters, _ in drawn:
        _check_cell(normal)
        _check_cell(reduction)
        assert (normal["blocks"], reduction["blocks"]) != (
            nasnet_model.NORMAL["blocks"],
            nasnet_model.REDUCTION["blocks"],
        )
        count = _params(repro.build((normal, reduction), filters=filters))
        assert abs(count / target - 1) <= CFG.param_tolerance
        # the filters chosen are the closest match: one more or one fewer is not closer
        for other in (filters - 1, filters + 1):
            n = repro.count_params((normal, reduction), other)
            assert abs(n - target) >= abs(count - target)


def test_build_wires_the_given_cells_into_the_models_scaffold():
    (normal, reduction), filters, _ = repro.random_cells(0, CFG)
    net = repro.build((normal, reduction), filters=filters)
    assert net.cfg.cells == (normal, reduction)
    assert net.cell_names == ["cell_0", "reduction_cell_0", "cell_1", "reduction_cell_1",
                              "cell_2"]  # fmt: skip
    for name in net.cell_names:
        spec = reduction if name.startswith("reduction") else normal
        cell = getattr(net, name)
        assert [blk.inputs for blk in cell.comb_iter] == [(i, j) for _, i, _, j in spec["blocks"]]
        assert tuple(cell.concat) == spec["concat"]
    out = net.eval()(torch.randn(2, 1, CFG.image_size, CFG.image_size))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    # NASNet-A through the same builder is nasnet_mini with one input channel
    a = repro.build(None, filters=CFG.filters)
    assert [tuple(c.concat) for c in (a.cell_0, a.reduction_cell_0)] == [
        nasnet_model.NORMAL["concat"],
        nasnet_model.REDUCTION["concat"],
    ]


def _drop_modules(net: torch.nn.Module) -> list[ScheduledDropPath]:
    return [m for m in net.modules() if isinstance(m, ScheduledDropPath)]


@pytest.mark.parametrize("part, arm", [("drop_path", "off"), ("cells", "nasnet_a"),
                                       ("cells", "random")])  # fmt: skip
def test_drop_path_is_off_where_the_design_says(part, arm):
    """Without drop path no path is ever dropped, even at the end of training: two training-mode
    passes over the same batch agree (BN normalises by the batch, the same both times)."""
    net, _ = repro.network(repro.Job(part, arm, 0, CFG))
    net.train().set_drop_path_progress(1.0)
    assert all(m.drop_prob == 0.0 for m in _drop_modules(net))
    x = torch.randn(8, 1, CFG.image_size, CFG.image_size)
    assert torch.equal(net(x), net(x))


def test_drop_path_on_drops_paths_with_the_configured_schedule():
    net, _ = repro.network(repro.Job("drop_path", "on", 0, CFG))
    off, _ = repro.network(repro.Job("drop_path", "off", 0, CFG))
    # both arms of a seed start from the same weights
    for a, b in zip(net.state_dict().values(), off.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    drops = _drop_modules(net)
    net.train().set_drop_path_progress(1.0)
    assert drops[-1].drop_prob == pytest.approx(1 - CFG.keep_prob)  # last cell, end of training
    net.set_drop_path_progress(0.5)
    assert drops[-1].drop_prob == pytest.approx(0.5 * (1 - CFG.keep_prob))
    torch.manual_seed(0)
    x = torch.randn(8, 1, CFG.image_size, CFG.image_size)
    assert not torch.equal(net(x), net(x))


def test_digits_split_is_stratified_disjoint_and_seeded():
    x, y, xt, yt = repro.digits(200, 3, CFG)
    assert x.shape == (200, 1, CFG.image_size, CFG.image_size) and len(xt) == 1797 - 200
    assert torch.bincount(y, minlength=10).tolist() == [20] * 10
    assert x.mean().abs() < 1e-5 and (x.std() - 1).abs() < 1e-4  # standardised on training
    x2, *_ = repro.digits(200, 3, CFG)
    x3, *_ = repro.digits(200, 4, CFG)
    assert torch.equal(x, x2) and not torch.equal(x, x3)
    # no training image is among the held-out ones
    flat, flat_t = x.flatten(1), xt.flatten(1)
    assert not (torch.cdist(flat, flat_t).min(dim=1).values < 1e-6).any()


def test_repro_quick(tmp_path):
    """`sotazoo repro nasnet --quick`: both claims, one seed, no verdict."""
    from sotazoo.repro import run_repro, validate_result

    data = run_repro("nasnet", quick=True, out_dir=tmp_path, progress=False)
    assert data["quick"] and validate_result(data) == []
    assert (tmp_path / "nasnet.quick.json").is_file()
    assert (tmp_path / "nasnet.quick.svg").is_file()
    assert [c["id"] for c in data["claims"]] == ["rl_vs_random_search", "scheduled_drop_path"]
    assert all(c["verdict"] == "inconclusive" for c in data["claims"])  # one seed decides nothing
    errors = data["details"]["test_error_percent"]
    assert set(errors) == {"cells", "drop_path"} and all(len(a) == 2 for a in errors.values())
    runs = {(r["part"], r["arm"]): r for r in data["details"]["runs"]}
    assert len(runs) == 4
    assert runs["cells", "random"]["filters"] == data["details"]["random_cells"]["0"]["filters"]


# ---------------------------------------------------------------- the search (the long run)


def test_the_search_space_decodes_to_cells_of_the_random_cells_space():
    from sotazoo.controller import Controller
    from sotazoo.papers.nasnet import search

    assert len(search.SPACE) == 40  # 2 cells x 5 blocks x (2 inputs + 2 ops)
    # NASNet-A's Normal cell is in the space: its blocks come back from their decisions
    normal = []
    for op1, i, op2, j in nasnet_model.NORMAL["blocks"]:
        normal += [i, j, repro.OPS.index(op1), repro.OPS.index(op2)]
    cells = search.decode(normal * 2)
    assert cells[0]["blocks"] == nasnet_model.NORMAL["blocks"] == cells[1]["blocks"]
    assert cells[0]["concat"] == repro.concat_of(nasnet_model.NORMAL["blocks"]) == (2, 3, 4, 5, 6)
    with pytest.raises(ValueError, match="40 decisions"):
        search.decode(normal)
    torch.manual_seed(0)
    controller = Controller(search.SPACE, hidden=16)
    for seed in range(5):
        actions, _, _ = controller(generator=torch.Generator().manual_seed(seed))
        for cell in search.decode(actions):
            _check_cell(cell)
            assert cell["concat"] == repro.concat_of(cell["blocks"])
        json.dumps(search.to_json(search.decode(actions)))  # what the results file keeps


def test_the_searchs_child_trains_and_scores_a_pair_of_cells():
    from sotazoo.papers.nasnet import search

    reward = search.digits_reward(filters=4, per_class=2, n_val=20, epochs=1, image_size=16)
    cells = search.decode(search.SPACE.uniform(torch.Generator().manual_seed(0)))
    r = reward(cells)
    assert 0 <= r <= 100 and r == reward(cells)  # seeded: the same cells score the same
