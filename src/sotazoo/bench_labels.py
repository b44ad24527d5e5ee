"""What a benchmark was compared with, in words: the kind of reference and its label.

`sotazoo bench MODEL --vs SPEC` times our model beside a reference. Any library but ours (timm,
torchvision, torchsr, OpenCV, MONAI) is an independent implementation, and the ratio says how fast our
code is against someone else's. A `sotazoo:` spec is one of our own models (an ablation, the
official speed trick, the model the paper compares with), used where no library that installs
implements the paper; the card's `reference_note` says why. A note on another library's
reference says that it is another model (darknet53 timed beside torchvision's ResNet-152, as the
paper's Table 2 compares them), and the ratio is not called "ref" either. Whatever prints a ratio says which
(`reference_label`, or `reference_cell` in a table): a comparison with our own code is never
called a reference without saying so.

These functions read result dicts (`BenchResult.to_dict()` or a saved results/bench JSON) and
the cards, and import no torch: `sotazoo status` calls them. `sotazoo.bench` re-exports them.
"""

from __future__ import annotations

from typing import Literal

from sotazoo.errors import SotazooError

# The libraries a reference may come from, as labels name them; all but sotazoo are independent.
LIBRARIES = {"timm": "timm", "torchvision": "torchvision", "torchsr": "torchsr",
             "opencv": "OpenCV", "monai": "MONAI", "sotazoo": "sotazoo"}  # fmt: skip
# Libraries whose networks a reference reaches only through a paper's adapter (reference.py).
ADAPTER_ONLY = ("opencv", "monai")


def reference_kind(spec: str) -> Literal["independent", "ours"]:
    """The kind of reference `spec` is: "ours" for a `sotazoo:` spec (one of our own models: an
    ablation, another configuration, the model the paper compares with), "independent" for any
    other library's implementation (timm, torchvision, torchsr, OpenCV)."""
    return "ours" if spec.partition(":")[0] == "sotazoo" else "independent"


def _card_note(model: str, spec: str) -> str:
    """The card's `reference_note` of `model` when `spec` is the card's own reference: why no
    independent implementation is its reference, or what other model it is (empty for a model
    the registry does not know, or a reference the user chose)."""
    from sotazoo.registry import model_entry

    try:
        entry = model_entry(model)[1]
    except SotazooError:
        return ""
    return entry.reference_note if entry.reference == spec else ""


def reference_label(result: dict) -> str:
    """What a bench result was compared with, in words: "vs OpenCV's yolov3_416 (independent
    implementation)", "vs our sagan_128 with attention=False (no installable SAGAN: ...)". The
    label the result recorded when it has one; otherwise made from its spec and the card's
    `reference_note` (results saved before bench recorded labels). Empty without a reference."""
    if result.get("reference_label"):
        return result["reference_label"]
    ref = result.get("reference")
    if not ref:
        return ""
    spec = ref["name"]
    lib, _, rest = spec.partition(":")
    name, _, opts = rest.partition(":")
    note = _card_note(result.get("model", ""), spec)
    if reference_kind(spec) == "independent":
        what = f"another model: {note}" if note else "independent implementation"
        return f"vs {LIBRARIES.get(lib, lib)}'s {name} ({what})"
    label = f"vs our {name}" + (f" with {opts.replace(',', ', ')}" if opts else "")
    return f"{label} ({note})" if note else f"{label} (our own code, not an independent one)"


def reference_cell(result: dict) -> str:
    """The latency ratio of a bench result in a few characters, for tables: "x0.82 ref" against
    an independent implementation, "x0.59 vs ours" against one of our own models; empty without
    a ratio."""
    ratio = result.get("latency_ratio")
    if ratio is None or not result.get("reference"):
        return ""
    kind = result.get("reference_kind") or reference_kind(result["reference"]["name"])
    if kind == "ours":
        return f"x{ratio:.2f} vs ours"
    # an independent library's model that is not an implementation of ours (the card's note says
    # what it is: darknet53 against torchvision's ResNet-152, as the paper's Table 2 sets them)
    other = _card_note(result.get("model", ""), result["reference"]["name"])
    return f"x{ratio:.2f} vs other" if other else f"x{ratio:.2f} ref"
