"""The paper contract (sotazoo.papers._contract): every paper folder keeps it, the core reaches
papers only through it, and a paper made from the template joins the registry, the CLI and the
status matrix without an edit outside its folder and its card."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import sotazoo
from sotazoo import cards, registry
from sotazoo.papers import _contract
from sotazoo.papers._contract import HOOKS, check_paper, paper

SRC = Path(sotazoo.__file__).parent


@pytest.mark.parametrize("paper_id", ["_template", *sotazoo.list_papers()])
def test_every_paper_folder_keeps_the_contract(paper_id):
    assert check_paper(paper_id) == []


def test_the_contract_sees_a_broken_folder(tmp_path, monkeypatch):
    """check_paper is not vacuous: a folder whose hooks have the wrong shape is named."""
    folder = _copy_template(tmp_path, "zz_broken")
    (folder / "train.py").write_text(
        "from sotazoo.train.recipes import Recipe\n"
        "RECIPES = {'zz_broken_mini': Recipe(lambda seed: None, unit='epochs', default=1)}\n"
    )
    (folder / "repro.py").write_text("DEFAULT_SEEDS = ['0']\n")  # and no run()
    (folder / "demo.py").write_text("def samples():\n    return []\n")
    (folder / "weights.py").write_text("WEIGHTS = ['not a Weights']\n")
    (folder / "search.py").write_text(  # a space that is a tuple, a reward without `quick`
        "SPACE = (3, 4)\ndef decode(actions):\n    return actions\n"
        "def make_reward(*, seed):\n    return len\n"
    )
    (folder / "model.py").write_text(
        (folder / "model.py")
        .read_text()
        .replace("def zz_broken_mini(**", "def zz_broken_mini(x, **")
    )
    with _registered(monkeypatch, tmp_path, "zz_broken"):
        problems = "\n".join(check_paper("zz_broken"))
    for words in ("repro.py has no run", "DEFAULT_SEEDS must be non-negative ints",
                  "RECIPES['zz_broken_mini'] cannot be called", "demo.samples cannot be called",
                  "holds a str, not a Weights", "keyword-only", "search.py has no to_json",
                  "search.SPACE is a tuple, not a Space", "search.make_reward cannot be called"):  # fmt: skip
        assert words in problems


def test_weights_modules_are_data_and_listing_imports_no_paper_code():
    """`sotazoo list` and `status` read every paper's weights: those modules import no torch,
    and listing models imports no paper code at all."""
    mods = [f"sotazoo.papers.{p}.weights" for p in sotazoo.list_papers() if paper(p).has("weights")]
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout[:300]


def test_the_core_reaches_papers_only_through_the_contract():
    """No module outside `papers/` imports a paper's module or looks its hooks up by itself:
    `sotazoo.papers.<id>` appears in the core only in `papers/_contract.py`."""
    offenders = []
    for f in SRC.rglob("*.py"):
        rel = f.relative_to(SRC)
        if rel.parts[0] == "papers":
            continue
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value] if node.value.startswith("sotazoo.papers.") else []
            for n in names:
                if n.startswith("sotazoo.papers.") and n != "sotazoo.papers._contract":
                    offenders.append(f"{rel}: {n}")
    assert offenders == []


def test_every_hook_is_documented_in_the_contract():
    doc = _contract.__doc__
    for h in HOOKS:
        assert f"`{h.module}.py`" in doc and f"`{h.name}`" in doc, h


# ---------------------------------------------------------------- a paper made from the template


def _copy_template(root: Path, paper_id: str) -> Path:
    """`papers/_template` copied to `root/<paper_id>`, its id and model renamed: the steps a
    new paper starts with."""
    folder = root / paper_id
    shutil.copytree(SRC / "papers" / "_template", folder)
    card = (folder / "card.toml").read_text(encoding="utf-8")
    card = card.replace('id = "_template"', f'id = "{paper_id}"').replace(
        "template_mini", f"{paper_id}_mini"
    )
    (folder / "card.toml").write_text(card, encoding="utf-8")
    model = (folder / "model.py").read_text(encoding="utf-8")
    (folder / "model.py").write_text(model.replace("def template_mini(", f"def {paper_id}_mini("))
    return folder


class _registered:
    """Within the block, `root` is on the `sotazoo.papers` package path and the catalogue lists
    `paper_id` (a copy of catalog.toml with one more entry): nothing of the package is edited."""

    def __init__(self, monkeypatch, root: Path, paper_id: str) -> None:
        self.mp, self.root, self.id = monkeypatch, root, paper_id

    def _clear(self) -> None:
        for cached in (cards.load_catalog, cards.load_card, registry._index, paper):
            cached.cache_clear()
        for name in [m for m in sys.modules if m.startswith(f"sotazoo.papers.{self.id}")]:
            del sys.modules[name]

    def __enter__(self):
        import sotazoo.papers

        catalog = self.root / "catalog.toml"
        catalog.write_text(
            cards.catalog_path().read_text(encoding="utf-8")
            + f'\n[[paper]]\nid = "{self.id}"\nsection = "Image Classification"\n'
            'section_zh = "图像分类"\ntitle = "A paper from the template"\narxiv = "1801.00001"\n'
            'remark = ""\nremark_zh = ""\n',
            encoding="utf-8",
        )
        self.mp.setattr(cards, "catalog_path", lambda: catalog)
        self.mp.setattr(sotazoo.papers, "__path__", [*sotazoo.papers.__path__, str(self.root)])
        self._clear()
        return self

    def __exit__(self, *exc) -> None:
        self.mp.undo()
        self._clear()


def test_a_paper_made_from_the_template_joins_with_no_core_edit(tmp_path, monkeypatch, capsys):
    from sotazoo.cli import main
    from sotazoo.export import export_onnx
    from sotazoo.status import paper_status

    _copy_template(tmp_path, "zz_new")
    with _registered(monkeypatch, tmp_path, "zz_new"):
        assert check_paper("zz_new") == []
        assert "zz_new" in sotazoo.list_papers()
        assert sotazoo.list_models(paper="zz_new") == ["zz_new_mini"]
        model = sotazoo.create_model("zz_new_mini", num_classes=4).eval()
        x = torch.rand(2, 3, 32, 32)
        assert model(x).shape == (2, 4)
        r = export_onnx(model, (3, 32, 32), tmp_path / "m.onnx")
        assert r.max_abs_diff <= 1e-5  # 8 channels, one conv: float32 rounding only
        assert paper_status("zz_new")["card"].done
        assert main(["info", "zz_new"]) == 0 and "template" in capsys.readouterr().out.lower()
        assert main(["list", "--paper", "zz_new"]) == 0
        assert "zz_new_mini" in capsys.readouterr().out
    assert "zz_new" not in sotazoo.list_papers()  # gone with the block


def test_the_task_table_checks_what_a_task_returns():
    from sotazoo.tasks import TASKS

    sr, cls = TASKS["super_resolution"], TASKS["classification"]
    assert sr.output_problems((2, 3, 64, 64), (2, 3, 32, 32)) == []
    assert sr.output_problems((2, 3, 64, 60), (2, 3, 32, 32))  # not the input enlarged
    assert sr.output_problems((2, 3, 32, 32), (2, 3, 32, 32))  # enlarged by 1
    assert cls.output_problems((2, 10), (2, 3, 32, 32)) == []
    assert cls.output_problems((2, 10, 1), (2, 3, 32, 32)) and cls.output_problems((3, 10), (2, 3))
    assert set(TASKS) >= {
        m.task for p in sotazoo.list_papers() for m in sotazoo.get_paper(p).models
    }
