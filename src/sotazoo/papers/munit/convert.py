"""MUNIT checkpoints by path: `create_model("munit_edges2shoes", weights="edges2shoes.pt")`.

The official release (NVlabs/MUNIT USAGE.md, "Testing": `models/edges2shoes.pt`, on Google
Drive, with no published digest, so it has no `weights.py` entry) and the training snapshots
(`gen_%08d.pt`) hold `{'a': gen_a.state_dict(), 'b': gen_b.state_dict()}`, both generators' keys
as ours (`model.official_state_dict` prefixes them `gen_a.` / `gen_b.`); `test.py` loads them the
same way. Read with `torch.load(weights_only=True)`. Any other file (ours, safetensors) goes
through `default_load`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load(path: Path, model: str, overrides: dict[str, Any]) -> tuple[dict, dict]:
    from sotazoo.papers._contract import default_load
    from sotazoo.papers.munit.model import official_state_dict
    from sotazoo.weights import read_checkpoint

    path = Path(path)
    if path.suffix in (".pt", ".pth"):
        ckpt = read_checkpoint(path)
        if isinstance(ckpt, dict) and set(ckpt) == {"a", "b"}:
            return official_state_dict(ckpt), {}
    return default_load(path)
