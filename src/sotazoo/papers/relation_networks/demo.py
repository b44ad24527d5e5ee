"""The browser demo of Relation Networks: generated Sort-of-CLEVR scenes, questions picked from
the 6 colours x 6 question types, and the true answer of each, computed by the generator."""

from __future__ import annotations

from pathlib import Path

from sotazoo.data.sort_of_clevr import (
    ANSWERS,
    COLOURS,
    NON_RELATIONAL,
    RELATIONAL,
    answer,
    make_sort_of_clevr,
)
from sotazoo.transforms import save_png

SAMPLE_SEED = 4242  # not a training or test seed of the recipe or the repro
N_SCENES = 12
# The widget's question menu: index k < 3 is non-relational subtype k, k >= 3 relational k - 3.
QUESTION_TYPES = (
    "What shape is the {colour} object?",
    "Is the {colour} object on the left?",
    "Is the {colour} object at the top?",
    "What shape is the object closest to the {colour} one?",
    "What shape is the object furthest from the {colour} one?",
    "How many objects have the shape of the {colour} one?",
)
assert len(QUESTION_TYPES) == len(NON_RELATIONAL) + len(RELATIONAL)


def samples(out_dir: Path) -> list[dict]:
    """One PNG per scene, with the true answer of every (colour, question type)."""
    d = make_sort_of_clevr(N_SCENES, seed=SAMPLE_SEED, questions_per_image=0)
    out = []
    for i in range(N_SCENES):
        truth = {
            f"{c},{k}": ANSWERS[answer(d["centres"][i], d["shapes"][i], c, k >= 3, k % 3)]
            for c in range(len(COLOURS))
            for k in range(len(QUESTION_TYPES))
        }
        out.append({"path": save_png(d["images"][i], out_dir / f"scene{i:02d}.png"),
                    "answers": truth})  # fmt: skip
    return out


def spec_extra() -> dict:
    return {
        "question_format": "sort_of_clevr",
        "colours": list(COLOURS),
        "question_types": list(QUESTION_TYPES),
        "answers": list(ANSWERS),
    }
