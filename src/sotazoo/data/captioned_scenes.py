"""Captioned scenes: seeded synthetic images with captions, VQA questions and object boxes.

A stand-in, generated with numpy, for the data of the caption-to-image GANs (AttnGAN, HDGAN:
CUB / COCO captions) and of the captioning + VQA model Bottom-Up/Top-Down (COCO captions, VQA v2,
object boxes). Everything here is ours: the scenes, the palette, the grammar and the templates.
The JSON writers and readers use the real datasets' layouts, so the code that trains on this
data reads a folder of the real data just as well.

Scenes. Each `size` x `size` image (64 by default) holds 1 to `max_objects` objects (uniform),
each a shape of `DETECTION_CLASSES` (square, circle, triangle, cross, drawn unrotated with
`detection_shapes.draw_scene`: a triangle points up), a colour of `PALETTE` (7 named colours
well apart in RGB), a size word of `SIZE_WORDS` with its own range of the shape's side (small:
14-20% of the image side, large: 30-40%; 9-13 and 19-26 px at 64), and a position. The
background is grey with a soft linear gradient, without clutter or noise, so that a small GAN
can learn it. An object's centre keeps its whole bounding square inside the image, and a
position whose square overlaps an earlier object's by more than `MAX_OVERLAP` of the smaller
square is redrawn (up to 50 times; then the object is left out, which at the defaults never
happens), so every object is visible and nameable.

Conventions. Pixel coordinates, x to the right, y down, the pixel of row i and column j covering
x in [j, j + 1) and y in [i, i + 1). A box is xyxy in pixels, the tight box of the object's
visible pixels (`draw_scene`'s, COCO's convention); an object's centre is the centre of its
shape (of its bounding square; a triangle's is halfway between apex and base). Relations are
computed from centres with a margin m = size / 8 (8 px at 64): with (dx, dy) = centre(b) -
centre(a), `relation(a, b)` is "left" (a is to the left of b) when dx > 0 is the dominant offset,
"right", "above" (dy > 0, since y points down) or "below" likewise, and it is None (ambiguous)
when max(|dx|, |dy|) < m or ||dx| - |dy|| < m: a diagonal pair is neither left nor above.
`place(obj)`, where an object is in the image, is the same with (dx, dy) = centre - image
centre: "middle" within m / 2, a side ("left", "right", "top", "bottom") when the dominant offset
is at least 2 m and beats the other by m, None in between.

Captions, drawn with the rng from a small grammar; each is true of its image, and a form that
does not apply to an image (no unambiguous pair, no placed object) is not drawn for it:

    mention  := ARTICLE [SIZE] COLOUR SHAPE              "a small red circle"
    object   := mention                                  any object
    place    := mention PLACE                            "a red circle on the left"
    and      := mention "and" mention                    two different objects
    relation := [COUNT "shapes:"] mention REL mention    a pair whose relation is not None;
                                                         COUNT only when the image has two
    list     := COUNT "shape(s):" mention ("," mention)* "and" mention    every object, once
    REL      := "to the left of" | "to the right of" | "above" | "below"
    PLACE    := "on the left" | "on the right" | "at the top" | "at the bottom" | "in the middle"

A form is drawn uniformly among those that apply; the size word is kept or dropped for a whole
caption (kept with probability 0.7). A caption's meaning (`Caption`): its mentions match distinct
objects (all of them, one each, in a list), COUNT is the number of objects, the first mention's
object is REL the second's or at PLACE. `caption_is_true` checks that; `binding_swap` swaps the
colours (or sizes) of two mentions of a true caption and keeps the result if it is false of the
image: a test of whether a model binds attributes to the right objects. An image's captions are
different strings where the grammar allows (a one-object image has few: repeats are kept).

Questions (VQA v2 style), a template drawn uniformly among those that apply, each answered by one
word of `ANSWERS` (`answer_type` as VQA v2's; `question_type` the opening words):

    colour    "what colour is the [SIZE] SHAPE?"               the reference unique; other
    shape     "what shape is the [SIZE] COLOUR object?"        the reference unique; other
    count     "how many SHAPEs | COLOUR shapes | COLOUR SHAPEs are there?"      number, 0-9
    exist     "is there a COLOUR SHAPE?"                       yes/no
    relation  "what shape is REL the [[SIZE] COLOUR] SHAPE?"   other

"exist" answers "yes" half the time; half the "no" questions are binding foils where the image
has one (the colour of one object with the shape of another). A "relation" question is asked
only when the reference is unique and exactly one other object is not clearly on the far side
of it (offset along REL's axis above -m), that object being REL the reference (`relation`).

Seeding: one numpy Generator (PCG64) from `seed` draws everything image by image (objects,
background, captions, questions), so the same seed gives the same scenes and the first k scenes
of a batch of n are the scenes of a batch of k. 1,000 scenes of 64 x 64 take about 0.5 s on one
core.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sotazoo.data.detection_shapes import DETECTION_CLASSES, ShapeSpec, draw_scene, to_coco
from sotazoo.errors import InputError

__all__ = [
    "ANSWERS",
    "PALETTE",
    "SIZE_WORDS",
    "Caption",
    "Mention",
    "Question",
    "SceneObject",
    "binding_swap",
    "build_vocab",
    "caption_is_true",
    "encode",
    "load_caption_folder",
    "load_vqa_folder",
    "make_captioned_scenes",
    "place",
    "relation",
    "to_coco_captions",
    "to_coco_instances",
    "to_vqa",
    "tokenize",
    "write_folder",
]

# Named colours, RGB 0-255: pairwise at least ~100 apart (blue-purple, the closest) and far from
# the grey background (0.30-0.45 +- 0.04).
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (215, 45, 45),
    "green": (45, 170, 65),
    "blue": (50, 90, 225),
    "yellow": (240, 215, 50),
    "purple": (145, 70, 200),
    "cyan": (50, 200, 210),
    "white": (240, 240, 240),
}
COLOURS = tuple(PALETTE)
SIZE_WORDS = ("small", "large")
# Side of a shape's bounding square as a fraction of the image side, per size word.
SIZE_RANGES = {"small": (0.14, 0.20), "large": (0.30, 0.40)}
MAX_OVERLAP = 0.1  # most overlap of two objects' squares, as a fraction of the smaller one
RELATIONS = ("left", "right", "above", "below")
RELATION_PHRASES = {
    "left": "to the left of",
    "right": "to the right of",
    "above": "above",
    "below": "below",
}
PLACES = ("left", "right", "top", "bottom", "middle")
PLACE_PHRASES = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "middle": "in the middle",
}
RELATION_MARGIN = 1 / 8  # of the image side: 8 px at 64
MAX_COUNT = 9
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ANSWERS = ("yes", "no", *(str(k) for k in range(MAX_COUNT + 1)), *COLOURS, *DETECTION_CLASSES)
CAPTION_FORMS = ("object", "place", "and", "relation", "list")
QUESTION_TEMPLATES = ("colour", "shape", "count", "exist", "relation")
SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")
_PLURALS = {"square": "squares", "circle": "circles", "triangle": "triangles", "cross": "crosses"}
_TRIES = 10  # draws per caption or question to find a string the image does not have yet


# ---------------------------------------------------------------- structures


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene.

    Attributes:
        shape: a name of `DETECTION_CLASSES`.
        colour: a name of `PALETTE`.
        size: a word of `SIZE_WORDS`.
        box: xyxy in pixels, the tight box of the visible pixels.
        centre: (x, y) of the shape's centre in pixels.
    """

    shape: str
    colour: str
    size: str
    box: tuple[float, float, float, float]
    centre: tuple[float, float]


@dataclass(frozen=True)
class Mention:
    """A description of objects by some of their attributes (None: any)."""

    shape: str | None = None
    colour: str | None = None
    size: str | None = None

    def matches(self, obj: SceneObject) -> bool:
        return (
            (self.shape is None or self.shape == obj.shape)
            and (self.colour is None or self.colour == obj.colour)
            and (self.size is None or self.size == obj.size)
        )

    def words(self, noun: str = "shape") -> str:
        """The words of the mention ("small red circle"), `noun` standing in for no shape."""
        return " ".join(w for w in (self.size, self.colour, self.shape or noun) if w)


@dataclass(frozen=True)
class Caption:
    """A caption and its meaning (see the module docstring).

    Attributes:
        text: the sentence, lower case, no final full stop.
        form: one of `CAPTION_FORMS`.
        mentions: the objects mentioned, in the order of the sentence.
        relation: for the "relation" form, one of `RELATIONS`: mentions[0] is REL mentions[1].
        count: the number of objects the caption states, or None.
        place: for the "place" form, one of `PLACES`: where mentions[0] is in the image.
    """

    text: str
    form: str
    mentions: tuple[Mention, ...]
    relation: str | None = None
    count: int | None = None
    place: str | None = None


@dataclass(frozen=True)
class Question:
    """A question, its answer and its meaning.

    Attributes:
        text: the question, lower case, with a question mark.
        template: one of `QUESTION_TEMPLATES`.
        answer: a word of `ANSWERS`.
        answer_type: "yes/no", "number" or "other" (VQA v2's).
        question_type: the question's opening words, as VQA v2's `question_type`.
        subject: what the question refers to (the object asked about, the things counted, the
            reference object of a relation).
        relation: for the "relation" template, one of `RELATIONS`.
    """

    text: str
    template: str
    answer: str
    answer_type: str
    question_type: str
    subject: Mention
    relation: str | None = None


def relation(a: SceneObject, b: SceneObject, *, margin: float) -> str | None:
    """Where `a` is relative to `b` ("left", "right", "above", "below"), or None when that is
    ambiguous: offsets below `margin`, or a diagonal (|dx| and |dy| within `margin`)."""
    dx, dy = b.centre[0] - a.centre[0], b.centre[1] - a.centre[1]
    ax, ay = abs(dx), abs(dy)
    if max(ax, ay) < margin or abs(ax - ay) < margin:
        return None
    if ax > ay:
        return "left" if dx > 0 else "right"
    return "above" if dy > 0 else "below"


def place(obj: SceneObject, *, size: int) -> str | None:
    """Where `obj` is in a `size` x `size` image ("left", "right", "top", "bottom", "middle"),
    or None when that is ambiguous. With (dx, dy) = centre - image centre and m = size / 8:
    "middle" when max(|dx|, |dy|) < m / 2; a side when the dominant offset is at least 2 m and
    ||dx| - |dy|| >= m; None otherwise."""
    m = size * RELATION_MARGIN
    dx, dy = obj.centre[0] - size / 2.0, obj.centre[1] - size / 2.0
    ax, ay = abs(dx), abs(dy)
    if max(ax, ay) < 0.5 * m:
        return "middle"
    if max(ax, ay) < 2.0 * m or abs(ax - ay) < m:
        return None
    if ax > ay:
        return "left" if dx < 0 else "right"
    return "top" if dy < 0 else "bottom"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _phrase(m: Mention) -> str:
    words = m.words()
    return f"{_article(words)} {words}"


def _caption(
    form: str,
    mentions: Sequence[Mention],
    rel: str | None = None,
    count: int | None = None,
    where: str | None = None,
) -> Caption:
    """The `Caption` of a meaning, its text rendered by the grammar."""
    nps = [_phrase(m) for m in mentions]
    if form == "relation":
        body = f"{nps[0]} {RELATION_PHRASES[rel]} {nps[1]}"
    elif form == "place":
        body = f"{nps[0]} {PLACE_PHRASES[where]}"
    elif len(nps) == 1:
        body = nps[0]
    else:
        body = ", ".join(nps[:-1]) + " and " + nps[-1]
    if count is not None:
        body = f"{NUMBER_WORDS[count]} shape{'' if count == 1 else 's'}: {body}"
    return Caption(body, form, tuple(mentions), rel, count, where)


def _assign(mentions: Sequence[Mention], objects: Sequence[SceneObject], used: list[int], test):
    """Whether the mentions match distinct objects (backtracking) with `test(used)` true."""
    if len(used) == len(mentions):
        return test(used)
    m = mentions[len(used)]
    for k, obj in enumerate(objects):
        if k not in used and m.matches(obj):
            used.append(k)
            if _assign(mentions, objects, used, test):
                return True
            used.pop()
    return False


def caption_is_true(caption: Caption, objects: Sequence[SceneObject], *, size: int) -> bool:
    """Whether `caption`'s meaning holds of the objects of a `size` x `size` image."""
    if caption.count is not None and caption.count != len(objects):
        return False
    if caption.form == "list" and len(caption.mentions) != len(objects):
        return False
    margin = size * RELATION_MARGIN

    def test(used: list[int]) -> bool:
        if caption.place is not None and place(objects[used[0]], size=size) != caption.place:
            return False
        if caption.relation is None:
            return True
        a, b = objects[used[0]], objects[used[1]]
        return relation(a, b, margin=margin) == caption.relation

    return _assign(caption.mentions, objects, [], test)


def binding_swap(
    caption: Caption,
    objects: Sequence[SceneObject],
    *,
    size: int,
    attribute: str = "colour",
) -> Caption | None:
    """A caption that differs from the true `caption` only by swapping `attribute` ("colour" or
    "size") between two of its mentions and is false of the image (`size` x `size`); None if no
    swap is.

    Mention pairs are tried in order (0, 1), (0, 2), ..., (1, 2), ...; a pair qualifies when both
    mentions state the attribute with different values.
    """
    if attribute not in ("colour", "size"):
        raise ValueError(f"attribute must be 'colour' or 'size', got {attribute!r}")
    if not caption_is_true(caption, objects, size=size):
        raise ValueError(f"caption {caption.text!r} is not true of the image")
    ms = caption.mentions
    for i in range(len(ms)):
        for j in range(i + 1, len(ms)):
            vi, vj = getattr(ms[i], attribute), getattr(ms[j], attribute)
            if vi is None or vj is None or vi == vj:
                continue
            swapped = list(ms)
            swapped[i] = replace(ms[i], **{attribute: vj})
            swapped[j] = replace(ms[j], **{attribute: vi})
            new = _caption(caption.form, swapped, caption.relation, caption.count, caption.place)
            if not caption_is_true(new, objects, size=size):
                return new
    return None


# ---------------------------------------------------------------- captions and questions


def _draw_caption(rng: np.random.Generator, objects: list[SceneObject], size: int) -> Caption:
    """One caption of the grammar, true of `objects`: a form drawn uniformly among those that
    apply, then its objects."""
    n = len(objects)
    margin = size * RELATION_MARGIN
    pairs = [
        (a, b, r)
        for a in range(n)
        for b in range(n)
        if a != b and (r := relation(objects[a], objects[b], margin=margin)) is not None
    ]
    placed = [(k, w) for k in range(n) if (w := place(objects[k], size=size)) is not None]
    forms = ["object", "list"] + (["place"] if placed else []) + (["and"] if n >= 2 else [])
    forms += ["relation"] if pairs else []
    form = forms[rng.integers(len(forms))]
    with_size = bool(rng.random() < 0.7)

    def mention(k: int) -> Mention:
        o = objects[k]
        return Mention(o.shape, o.colour, o.size if with_size else None)

    if form == "object":
        return _caption(form, [mention(int(rng.integers(n)))])
    if form == "place":
        k, where = placed[rng.integers(len(placed))]
        return _caption(form, [mention(k)], where=where)
    if form == "and":
        a, b = rng.permutation(n)[:2].tolist()
        return _caption(form, [mention(a), mention(b)])
    if form == "relation":
        a, b, rel = pairs[rng.integers(len(pairs))]
        count = 2 if n == 2 and rng.random() < 0.5 else None
        return _caption(form, [mention(a), mention(b)], rel, count)
    return _caption(form, [mention(k) for k in rng.permutation(n).tolist()], count=n)


def _unique_ref(obj: SceneObject, objects: Sequence[SceneObject], keys) -> Mention | None:
    """The first description of `obj` by the attributes in `keys` (a sequence of attribute
    tuples) that matches no other object."""
    for attrs in keys:
        m = Mention(**{a: getattr(obj, a) for a in attrs})
        if sum(m.matches(o) for o in objects) == 1:
            return m
    return None


def _question(template: str, text: str, answer: str, subject: Mention, rel=None) -> Question:
    answer_type = {"count": "number", "exist": "yes/no"}.get(template, "other")
    n_words = {"colour": 4, "shape": 4, "count": 2, "exist": 3, "relation": 3}[template]
    question_type = " ".join(text.split()[:n_words])
    return Question(text, template, answer, answer_type, question_type, subject, rel)


# Axis (0: x, 1: y) and sign of each relation: a is REL b when sign * (b - a) > 0 on the axis.
_AXES = {"left": (0, 1), "right": (0, -1), "above": (1, 1), "below": (1, -1)}


def _question_pool(objects: list[SceneObject], margin: float) -> dict[str, list[Question]]:
    """Every "colour", "shape" and "relation" question that applies to `objects` (possibly
    none), in a fixed order."""
    pool: dict[str, list[Question]] = {"colour": [], "shape": [], "relation": []}
    for o in objects:
        if m := _unique_ref(o, objects, [("shape",), ("size", "shape")]):
            pool["colour"].append(
                _question("colour", f"what colour is the {m.words()}?", o.colour, m)
            )
        if m := _unique_ref(o, objects, [("colour",), ("size", "colour")]):
            text = f"what shape is the {m.words('object')}?"
            pool["shape"].append(_question("shape", text, o.shape, m))
    keys = [("shape",), ("colour", "shape"), ("size", "colour", "shape")]
    for ref in objects:
        m = _unique_ref(ref, objects, keys)
        if m is None:
            continue
        for rel in RELATIONS:
            # The objects not clearly on the far side of the reference along rel's axis: there
            # must be one, and it must be REL the reference.
            axis, sign = _AXES[rel]
            near = [
                o
                for o in objects
                if o is not ref and sign * (ref.centre[axis] - o.centre[axis]) > -margin
            ]
            if len(near) == 1 and relation(near[0], ref, margin=margin) == rel:
                text = f"what shape is {RELATION_PHRASES[rel]} the {m.words()}?"
                pool["relation"].append(_question("relation", text, near[0].shape, m, rel))
    return pool


def _draw_question(
    rng: np.random.Generator, objects: list[SceneObject], pool: dict[str, list[Question]]
) -> Question:
    """One question about `objects`: a template drawn uniformly among those that apply, then a
    question of it."""
    templates = [t for t in QUESTION_TEMPLATES if t not in pool or pool[t]]
    template = templates[rng.integers(len(templates))]
    if template in pool:
        return pool[template][rng.integers(len(pool[template]))]
    if template == "count":
        # A shape (of an object, or any), a colour (of an object), or both.
        kind = int(rng.integers(3))
        shape = None
        if kind != 1:
            shape = (
                objects[rng.integers(len(objects))].shape
                if rng.random() < 0.5
                else DETECTION_CLASSES[rng.integers(len(DETECTION_CLASSES))]
            )
        colour = objects[rng.integers(len(objects))].colour if kind != 0 else None
        m = Mention(shape, colour)
        k = sum(m.matches(o) for o in objects)
        noun = _PLURALS[shape] if shape else "shapes"
        text = f"how many {colour + ' ' if colour else ''}{noun} are there?"
        return _question(template, text, str(k), m)
    # exist: half "yes", half "no", and half the "no" a binding foil where there is one.
    present = sorted({(o.colour, o.shape) for o in objects})
    if rng.random() < 0.5:
        colour, shape = present[rng.integers(len(present))]
    else:
        foils = sorted({(a.colour, b.shape) for a in objects for b in objects} - set(present))
        if not foils or rng.random() < 0.5:
            foils = [(c, s) for c in COLOURS for s in DETECTION_CLASSES if (c, s) not in present]
        colour, shape = foils[rng.integers(len(foils))]
    m = Mention(shape, colour)
    answer = "yes" if any(m.matches(o) for o in objects) else "no"
    return _question(template, f"is there {_phrase(m)}?", answer, m)


def _draw_distinct(draw, k: int) -> list:
    """`k` draws of `draw()`, each retried up to `_TRIES` times for a text not drawn yet; a
    repeat is kept when no new one comes."""
    out, seen = [], set()
    for _ in range(k):
        for _ in range(_TRIES):
            item = draw()
            if item.text not in seen:
                break
        out.append(item)
        seen.add(item.text)
    return out


# ---------------------------------------------------------------- scenes


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Grey (0.30-0.45) with a linear gradient of up to +-0.04 in a random direction."""
    base = rng.uniform(0.30, 0.45)
    amp = rng.uniform(0.0, 0.04)
    theta = rng.uniform(0.0, 2.0 * math.pi)
    t = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0  # [-1, 1]
    ramp = math.cos(theta) * t[None, :] + math.sin(theta) * t[:, None]  # (y, x)
    img = base + amp / math.sqrt(2.0) * ramp
    return np.broadcast_to(img.astype(np.float32), (3, size, size))


def _position(
    rng: np.random.Generator, size: int, side: float, placed: list[tuple[float, float, float]]
) -> tuple[float, float] | None:
    """A centre for a square of `side` inside the image, overlapping each of `placed` (cx, cy,
    side) by at most `MAX_OVERLAP` of the smaller square; None after 50 tries."""
    h = side / 2.0
    for _ in range(50):
        cx, cy = rng.uniform(h + 1.0, size - h - 1.0, 2).tolist()
        ok = True
        for px, py, ps in placed:
            w = min(cx + h, px + ps / 2) - max(cx - h, px - ps / 2)
            v = min(cy + h, py + ps / 2) - max(cy - h, py - ps / 2)
            if w > 0 and v > 0 and w * v > MAX_OVERLAP * min(side, ps) ** 2:
                ok = False
                break
        if ok:
            return cx, cy
    return None


def make_captioned_scenes(
    n: int,
    *,
    seed: int,
    size: int = 64,
    max_objects: int = 3,
    captions_per_image: int = 5,
    questions_per_image: int = 4,
) -> dict:
    """Generate `n` captioned scenes with questions.

    Args:
        n: number of images.
        seed: seed of the numpy Generator that draws everything.
        size: image side in pixels.
        max_objects: objects per image are uniform in 1..max_objects (at most 9).
        captions_per_image: captions drawn per image.
        questions_per_image: questions drawn per image.

    Returns:
        A dict: "images" (n, size, size, 3) uint8; per image, "objects" (a list of
        `SceneObject`), "captions" (a list of `Caption`), "questions" (a list of `Question`), and
        the detection arrays of `detection_shapes` ("boxes" (m, 4) float32 xyxy, "labels" (m,)
        int64 into "classes", "areas" (m,) float32 visible pixel counts), so that
        `detection_shapes.to_coco` reads it; "classes", "size" and "relation_margin" (pixels).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if size < 16:
        raise ValueError(f"size must be at least 16 px, got {size}")
    if not 1 <= max_objects <= MAX_COUNT:
        raise ValueError(f"max_objects must be in 1..{MAX_COUNT}, got {max_objects}")
    if captions_per_image < 0 or questions_per_image < 0:
        raise ValueError("captions_per_image and questions_per_image must be >= 0")
    rng = np.random.default_rng(seed)
    margin = size * RELATION_MARGIN
    rgb = {c: tuple(v / 255.0 for v in PALETTE[c]) for c in COLOURS}
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    out: dict[str, list] = {k: [] for k in ("objects", "captions", "questions")}
    out |= {k: [] for k in ("boxes", "labels", "areas")}
    for i in range(n):
        specs, words, placed = [], [], []
        for _ in range(rng.integers(1, max_objects + 1)):
            shape = DETECTION_CLASSES[rng.integers(len(DETECTION_CLASSES))]
            colour = COLOURS[rng.integers(len(COLOURS))]
            word = SIZE_WORDS[rng.integers(len(SIZE_WORDS))]
            side = float(rng.uniform(*SIZE_RANGES[word])) * size
            centre = _position(rng, size, side, placed)
            if centre is None:
                continue  # no room left: the object is left out
            placed.append((*centre, side))
            specs.append(ShapeSpec(shape, centre[0], centre[1], side, 0.0, rgb[colour]))
            words.append((colour, word))
        scene = draw_scene(specs, size=size, background=_background(rng, size), min_visible=0.0)
        if len(scene["kept"]) != len(specs):  # cannot happen with MAX_OVERLAP = 0.1
            raise RuntimeError(f"scene {i}: an object is hidden")
        img = np.clip(scene["image"], 0.0, 1.0) * 255.0
        images[i] = np.rint(img).astype(np.uint8).transpose(1, 2, 0)
        objects = [
            SceneObject(s.shape, c, w, tuple(box), (s.cx, s.cy))
            for s, (c, w), box in zip(specs, words, scene["boxes"].tolist(), strict=True)
        ]
        out["objects"].append(objects)
        out["boxes"].append(scene["boxes"])
        out["labels"].append(scene["labels"])
        out["areas"].append(scene["areas"])
        out["captions"].append(
            _draw_distinct(lambda o=objects: _draw_caption(rng, o, size), captions_per_image)
        )
        pool = _question_pool(objects, margin)
        out["questions"].append(
            _draw_distinct(lambda o=objects, p=pool: _draw_question(rng, o, p), questions_per_image)
        )
    return {
        "images": images,
        **out,
        "classes": DETECTION_CLASSES,
        "size": size,
        "relation_margin": margin,
    }


# ---------------------------------------------------------------- JSON layouts


def _file_name(i: int) -> str:
    return f"{i:06d}.png"  # as detection_shapes.to_coco names image i


def _images_json(scenes: dict) -> list[dict]:
    size = int(scenes["size"])
    return [
        {"id": i, "file_name": _file_name(i), "width": size, "height": size}
        for i in range(len(scenes["objects"]))
    ]


def to_coco_captions(scenes: dict) -> dict:
    """A COCO captions 2014 dict (captions_*.json): "images" with ids = batch indices and file
    names as `detection_shapes.to_coco`'s, "annotations" {"id" (from 1), "image_id",
    "caption"}."""
    annotations = [
        {"id": k, "image_id": i, "caption": c.text}
        for k, (i, c) in enumerate(
            ((i, c) for i, caps in enumerate(scenes["captions"]) for c in caps), start=1
        )
    ]
    return {
        "info": {"description": "sotazoo synthetic captioned scenes"},
        "licenses": [],
        "images": _images_json(scenes),
        "annotations": annotations,
    }


def to_vqa(scenes: dict) -> tuple[dict, dict]:
    """VQA v2's two files as dicts: the questions (v2_OpenEnded_mscoco_*_questions.json) and the
    annotations (v2_mscoco_*_annotations.json). Question ids count from 1; each question has 10
    answers, all the same (there is one true answer), confidence "yes"."""
    questions, annotations = [], []
    for i, qs in enumerate(scenes["questions"]):
        for q in qs:
            qid = len(questions) + 1
            questions.append({"question_id": qid, "image_id": i, "question": q.text})
            answers = [
                {"answer": q.answer, "answer_confidence": "yes", "answer_id": k}
                for k in range(1, 11)
            ]
            annotations.append(
                {
                    "question_id": qid,
                    "image_id": i,
                    "question_type": q.question_type,
                    "answer_type": q.answer_type,
                    "multiple_choice_answer": q.answer,
                    "answers": answers,
                }
            )
    head = {
        "info": {"description": "sotazoo synthetic captioned scenes"},
        "license": {},
        "data_type": "sotazoo",
        "data_subtype": "synthetic",
    }
    return head | {"task_type": "Open-Ended", "questions": questions}, head | {
        "annotations": annotations
    }


def to_coco_instances(scenes: dict) -> dict:
    """A COCO instances dict of the objects (`detection_shapes.to_coco`), each annotation with an
    extra "attributes" {"colour", "size"} (pycocotools ignores unknown keys)."""
    coco = to_coco(scenes)
    objects = [o for objs in scenes["objects"] for o in objs]
    for ann, o in zip(coco["annotations"], objects, strict=True):
        ann["attributes"] = {"colour": o.colour, "size": o.size}
    return coco


def write_folder(scenes: dict, root: str | Path) -> Path:
    """Write `scenes` as a dataset folder: images/NNNNNN.png, captions.json (COCO captions),
    questions.json and annotations.json (VQA v2), instances.json (COCO instances); every file
    written atomically. Returns `root`."""
    from PIL import Image

    from sotazoo.fileio import atomic_path, write_json_atomic

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(scenes["images"]):
        with atomic_path(root / "images" / _file_name(i)) as tmp:
            Image.fromarray(np.ascontiguousarray(img)).save(tmp, format="PNG")
    questions, annotations = to_vqa(scenes)
    write_json_atomic(to_coco_captions(scenes), root / "captions.json")
    write_json_atomic(questions, root / "questions.json")
    write_json_atomic(annotations, root / "annotations.json")
    write_json_atomic(to_coco_instances(scenes), root / "instances.json")
    return root


# ---------------------------------------------------------------- readers


def _read_json(path: Path, key: str) -> dict:
    """The JSON object in `path`, which must hold a list under `key`; `InputError` otherwise."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise InputError(f"{path}: expected a JSON object with a {key!r} list")
    return data


def _field(path: Path, record, key: str, kind: type, what: str):
    if not isinstance(record, dict) or not isinstance(record.get(key), kind):
        raise InputError(f"{path}: {what} {record!r} has no {kind.__name__} {key!r}")
    return record[key]


def _load_image(root: Path, image_dir: str | Path | None, file_name: str, src: Path) -> np.ndarray:
    from PIL import Image

    dirs = [root / image_dir] if image_dir is not None else [root, root / "images"]
    for d in dirs:
        p = d / file_name
        if p.is_file():
            try:
                with Image.open(p) as im:
                    return np.asarray(im.convert("RGB"), dtype=np.uint8)
            except OSError as e:
                raise InputError(f"{p}: cannot read the image ({e})") from None
    where = " or ".join(str(d) for d in dirs)
    raise InputError(f"{src}: image file {file_name!r} not found in {where}")


def _image_table(path: Path, data: dict) -> dict[int, str]:
    """image id -> file_name from a COCO "images" list."""
    table = {}
    for rec in data["images"]:
        iid = _field(path, rec, "id", int, "image")
        table[iid] = _field(path, rec, "file_name", str, "image")
    return table


def load_caption_folder(
    root: str | Path,
    *,
    captions: str = "captions.json",
    image_dir: str | Path | None = None,
    limit: int | None = None,
) -> dict:
    """Read a folder in the COCO captions layout (ours or COCO's own captions_*.json).

    Args:
        root: the folder.
        captions: the captions file, relative to `root`.
        image_dir: where the images are, relative to `root`; by default `root`, then
            `root/images`.
        limit: read only the first `limit` images of the file.

    Returns:
        A dict: "images" (a list of (H, W, 3) uint8 arrays, not resized), "image_ids",
        "file_names", and per image "captions" (strings) and "caption_ids", in the order of the
        file's "images".
    """
    root = Path(root)
    path = root / captions
    data = _read_json(path, "images")
    if not isinstance(data.get("annotations"), list):
        raise InputError(f"{path}: expected a JSON object with an 'annotations' list")
    table = _image_table(path, data)
    texts: dict[int, list[str]] = {iid: [] for iid in table}
    ids: dict[int, list[int]] = {iid: [] for iid in table}
    for ann in data["annotations"]:
        iid = _field(path, ann, "image_id", int, "annotation")
        text = _field(path, ann, "caption", str, "annotation")
        if iid not in table:
            raise InputError(
                f"{path}: caption {ann.get('id')!r} names image_id {iid}, which is not in its "
                "'images'"
            )
        texts[iid].append(text)
        ids[iid].append(ann.get("id"))
    image_ids = list(table)[:limit]
    return {
        "images": [_load_image(root, image_dir, table[iid], path) for iid in image_ids],
        "image_ids": image_ids,
        "file_names": [table[iid] for iid in image_ids],
        "captions": [texts[iid] for iid in image_ids],
        "caption_ids": [ids[iid] for iid in image_ids],
    }


def load_vqa_folder(
    root: str | Path,
    *,
    questions: str = "questions.json",
    annotations: str | None = "annotations.json",
    images: str = "captions.json",
    image_dir: str | Path | None = None,
    limit: int | None = None,
) -> dict:
    """Read a folder in VQA v2's layout.

    Args:
        root: the folder.
        questions: the questions file, relative to `root`.
        annotations: the answers file, relative to `root`; None for questions without answers
            (VQA v2 test).
        images: a COCO file (captions or instances) whose "images" map image ids to file names.
        image_dir: where the images are, relative to `root`; by default `root`, then
            `root/images`.
        limit: read only the first `limit` questions of the file.

    Returns:
        A dict: "images" (list of (H, W, 3) uint8 arrays, not resized), "image_ids" and
        "file_names" of the images the questions ask about, in order of first mention;
        "questions", one dict per question: "question_id", "image_id", "image_index" (into
        "images"), "question", and with annotations "answer" (the multiple-choice answer),
        "answer_type", "question_type", "answers" (the 10 answer strings).
    """
    root = Path(root)
    qpath = root / questions
    qdata = _read_json(qpath, "questions")
    ipath = root / images
    table = _image_table(ipath, _read_json(ipath, "images"))
    records = []
    for q in qdata["questions"][:limit]:
        qid = _field(qpath, q, "question_id", int, "question")
        iid = _field(qpath, q, "image_id", int, "question")
        text = _field(qpath, q, "question", str, "question")
        if iid not in table:
            raise InputError(
                f"{qpath}: question {qid} names image_id {iid}, which is not in {ipath}'s 'images'"
            )
        records.append({"question_id": qid, "image_id": iid, "question": text})
    if annotations is not None:
        apath = root / annotations
        by_id = {}
        for ann in _read_json(apath, "annotations")["annotations"]:
            by_id[_field(apath, ann, "question_id", int, "annotation")] = ann
        for r in records:
            ann = by_id.get(r["question_id"])
            if ann is None:
                raise InputError(f"{apath}: no annotation for question {r['question_id']}")
            if ann.get("image_id") != r["image_id"]:
                raise InputError(
                    f"{apath}: question {r['question_id']} has image_id {ann.get('image_id')!r},"
                    f" {qpath} says {r['image_id']}"
                )
            answers = _field(apath, ann, "answers", list, "annotation")
            r["answer"] = _field(apath, ann, "multiple_choice_answer", str, "annotation")
            r["answer_type"] = ann.get("answer_type")
            r["question_type"] = ann.get("question_type")
            r["answers"] = [_field(apath, a, "answer", str, "answer") for a in answers]
    index: dict[int, int] = {}
    for r in records:
        r["image_index"] = index.setdefault(r["image_id"], len(index))
    image_ids = list(index)
    return {
        "images": [_load_image(root, image_dir, table[iid], ipath) for iid in image_ids],
        "image_ids": image_ids,
        "file_names": [table[iid] for iid in image_ids],
        "questions": records,
    }


# ---------------------------------------------------------------- text


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers, with each punctuation mark a token of its own."""
    import re

    return re.findall(r"[a-z0-9]+|[^a-z0-9\s]", text.lower())


def build_vocab(captions: Iterable[str], *, min_count: int = 1) -> dict[str, int]:
    """word -> id: "<pad>" 0, "<unk>" 1, "<bos>" 2, "<eos>" 3, then the tokens seen at least
    `min_count` times, by descending count, ties alphabetical."""
    counts = Counter(t for c in captions for t in tokenize(c))
    words = sorted(
        (w for w, k in counts.items() if k >= min_count and w not in SPECIALS),
        key=lambda w: (-counts[w], w),
    )
    return {w: k for k, w in enumerate((*SPECIALS, *words))}


def encode(text: str, vocab: dict[str, int], max_len: int, *, bos_eos: bool = True) -> np.ndarray:
    """(max_len,) int64 ids of `text`'s tokens, unknown ones "<unk>", padded with "<pad>";
    with `bos_eos`, between "<bos>" and "<eos>". Longer texts are cut to fit (the "<eos>"
    kept)."""
    ids = [vocab.get(t, vocab["<unk>"]) for t in tokenize(text)]
    if bos_eos:
        ids = [vocab["<bos>"], *ids[: max(max_len - 2, 0)], vocab["<eos>"]][:max_len]
    out = np.full(max_len, vocab["<pad>"], dtype=np.int64)
    ids = ids[:max_len]
    out[: len(ids)] = ids
    return out
