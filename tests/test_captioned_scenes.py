"""Captioned scenes (sotazoo.data.captioned_scenes): captions and answers re-derived from the
annotations by code of this file (parsing the text, not reading the structures), the annotations
checked against the pixels, the JSON layouts and the folder readers."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import time

import numpy as np
import pytest

from sotazoo.data.captioned_scenes import (
    ANSWERS,
    PALETTE,
    SIZE_RANGES,
    Caption,
    Mention,
    SceneObject,
    binding_swap,
    build_vocab,
    caption_is_true,
    encode,
    load_caption_folder,
    load_vqa_folder,
    make_captioned_scenes,
    to_coco_captions,
    to_coco_instances,
    to_vqa,
    tokenize,
    write_folder,
)
from sotazoo.data.detection_shapes import DETECTION_CLASSES
from sotazoo.errors import InputError

SIZE = 64
MARGIN = SIZE / 8


@pytest.fixture(scope="module")
def scenes() -> dict:
    return make_captioned_scenes(300, seed=0, size=SIZE, max_objects=4)


# ---- an independent reading of the text ------------------------------------------------------

_COLOUR = "|".join(PALETTE)
_SHAPE = "|".join(DETECTION_CLASSES)
_NP = re.compile(rf"an? (?:(small|large) )?({_COLOUR}) ({_SHAPE})")
_NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_REL = {"to the left of": "left", "to the right of": "right", "above": "above", "below": "below"}
_PLACE = {
    "on the left": "left",
    "on the right": "right",
    "at the top": "top",
    "at the bottom": "bottom",
    "in the middle": "middle",
}


def _rel(a: SceneObject, b: SceneObject) -> str | None:
    """Where a is relative to b, by the module docstring's rule."""
    dx, dy = b.centre[0] - a.centre[0], b.centre[1] - a.centre[1]
    if max(abs(dx), abs(dy)) < MARGIN or abs(abs(dx) - abs(dy)) < MARGIN:
        return None
    if abs(dx) > abs(dy):
        return "left" if dx > 0 else "right"
    return "above" if dy > 0 else "below"


def _where(o: SceneObject) -> str | None:
    dx, dy = o.centre[0] - SIZE / 2, o.centre[1] - SIZE / 2
    big = max(abs(dx), abs(dy))
    if big < MARGIN / 2:
        return "middle"
    if big < 2 * MARGIN or abs(abs(dx) - abs(dy)) < MARGIN:
        return None
    if abs(dx) > abs(dy):
        return "left" if dx < 0 else "right"
    return "top" if dy < 0 else "bottom"


def _np(text: str) -> tuple[str | None, str, str]:
    m = _NP.fullmatch(text)
    assert m, f"not a mention: {text!r}"
    return m.group(1), m.group(2), m.group(3)


def _parse_caption(text: str) -> dict:
    """count, mentions (size, colour, shape), relation and place of a caption's text."""
    out = {"count": None, "relation": None, "place": None}
    m = re.fullmatch(r"(\w+) shapes?: (.*)", text)
    if m:
        out["count"], text = _NUMBERS.index(m.group(1)), m.group(2)
    for phrase, rel in _REL.items():
        parts = text.split(f" {phrase} ")
        if len(parts) == 2:
            out["relation"] = rel
            out["mentions"] = [_np(p) for p in parts]
            return out
    for phrase, where in _PLACE.items():
        if text.endswith(f" {phrase}"):
            out["place"] = where
            out["mentions"] = [_np(text[: -len(phrase) - 1])]
            return out
    out["mentions"] = [_np(p) for p in re.split(r", | and ", text)]
    return out


def _fits(mention, o: SceneObject) -> bool:
    size, colour, shape = mention
    return o.colour == colour and o.shape == shape and size in (None, o.size)


def _true(text: str, objects: list[SceneObject]) -> bool:
    """Whether the caption text holds of the objects, by brute force over assignments."""
    c = _parse_caption(text)
    if c["count"] is not None and c["count"] != len(objects):
        return False
    for ks in itertools.permutations(range(len(objects)), len(c["mentions"])):
        if not all(_fits(m, objects[k]) for m, k in zip(c["mentions"], ks, strict=True)):
            continue
        if c["relation"] and _rel(objects[ks[0]], objects[ks[1]]) != c["relation"]:
            continue
        if c["place"] and _where(objects[ks[0]]) != c["place"]:
            continue
        return True
    return False


def _answer(text: str, objects: list[SceneObject]) -> tuple[str, str]:
    """(answer, answer_type) of a question's text, computed from the objects."""

    def one(pred) -> SceneObject:
        found = [o for o in objects if pred(o)]
        assert len(found) == 1, f"{text!r}: the reference is not unique"
        return found[0]

    if m := re.fullmatch(rf"what colour is the (?:(small|large) )?({_SHAPE})\?", text):
        o = one(lambda o: o.shape == m.group(2) and m.group(1) in (None, o.size))
        return o.colour, "other"
    if m := re.fullmatch(rf"what shape is the (?:(small|large) )?({_COLOUR}) object\?", text):
        o = one(lambda o: o.colour == m.group(2) and m.group(1) in (None, o.size))
        return o.shape, "other"
    if m := re.fullmatch(rf"how many (?:({_COLOUR}) )?(\w+) are there\?", text):
        plurals = {"squares": "square", "circles": "circle", "triangles": "triangle"}
        shape = (plurals | {"crosses": "cross", "shapes": None})[m.group(2)]
        k = sum(
            o.shape == (shape or o.shape) and o.colour == (m.group(1) or o.colour) for o in objects
        )
        return str(k), "number"
    if m := re.fullmatch(rf"is there an? ({_COLOUR}) ({_SHAPE})\?", text):
        yes = any(o.colour == m.group(1) and o.shape == m.group(2) for o in objects)
        return ("yes" if yes else "no"), "yes/no"
    rel_words = "|".join(_REL)
    pattern = rf"what shape is ({rel_words}) the (?:(?:(small|large) )?({_COLOUR}) )?({_SHAPE})\?"
    if m := re.fullmatch(pattern, text):
        rel = _REL[m.group(1)]
        ref = one(
            lambda o: (
                o.shape == m.group(4)
                and m.group(3) in (None, o.colour)
                and m.group(2) in (None, o.size)
            )
        )
        others = [o for o in objects if o is not ref]
        hits = [o for o in others if _rel(o, ref) == rel]
        assert len(hits) == 1, f"{text!r}: {len(hits)} objects are {rel} the reference"
        # Every other object is clearly on the far side of the reference.
        axis, sign = {"left": (0, 1), "right": (0, -1), "above": (1, 1), "below": (1, -1)}[rel]
        for o in others:
            if o is not hits[0]:
                assert sign * (ref.centre[axis] - o.centre[axis]) <= -MARGIN, text
        return hits[0].shape, "other"
    raise AssertionError(f"question of no template: {text!r}")


# ---- scenes ----------------------------------------------------------------------------------


def test_images_and_objects(scenes):
    images = scenes["images"]
    assert images.shape == (300, SIZE, SIZE, 3) and images.dtype == np.uint8
    counts = [len(objs) for objs in scenes["objects"]]
    assert min(counts) == 1 and max(counts) == 4
    rgb = {name: np.asarray(v) for name, v in PALETTE.items()}
    for img, objs in zip(images, scenes["objects"], strict=True):
        for k, o in enumerate(objs):
            x1, y1, x2, y2 = o.box
            cx, cy = o.centre
            assert 0 <= x1 < cx < x2 <= SIZE and 0 <= y1 < cy < y2 <= SIZE
            # The pixel at the centre shows the named colour.
            assert np.abs(img[int(cy), int(cx)].astype(int) - rgb[o.colour]).max() <= 1
            # The box's side is in the size word's range.
            lo, hi = (f * SIZE for f in SIZE_RANGES[o.size])
            assert lo - 1.5 <= max(x2 - x1, y2 - y1) <= hi + 1.5, (o, lo, hi)
            for p in objs[:k]:  # little overlap
                w = min(x2, p.box[2]) - max(x1, p.box[0])
                h = min(y2, p.box[3]) - max(y1, p.box[1])
                smaller = min((x2 - x1) * (y2 - y1), (p.box[2] - p.box[0]) * (p.box[3] - p.box[1]))
                assert w <= 0 or h <= 0 or w * h <= 0.15 * smaller
        # Away from objects the background is grey, a soft gradient at most.
        mask = np.ones((SIZE, SIZE), dtype=bool)
        for o in objs:
            x1, y1, x2, y2 = (int(v) for v in o.box)
            mask[max(y1 - 2, 0) : y2 + 2, max(x1 - 2, 0) : x2 + 2] = False  # anti-aliasing
        bg = img[mask].astype(int)
        assert np.abs(bg - bg[:, :1]).max() <= 1  # grey
        assert bg.max() - bg.min() <= 24
    # Both size words, every colour and every shape occur.
    objs = [o for objs in scenes["objects"] for o in objs]
    assert {o.size for o in objs} == {"small", "large"}
    assert {o.colour for o in objs} == set(PALETTE)
    assert {o.shape for o in objs} == set(DETECTION_CLASSES)


def test_seeding_and_prefix():
    a = make_captioned_scenes(12, seed=3)
    b = make_captioned_scenes(12, seed=3)
    k = make_captioned_scenes(5, seed=3)
    c = make_captioned_scenes(12, seed=4)
    for key in ("objects", "captions", "questions"):
        assert a[key] == b[key]
        assert a[key][:5] == k[key]
        assert a[key] != c[key]
    np.testing.assert_array_equal(a["images"], b["images"])
    np.testing.assert_array_equal(a["images"][:5], k["images"])
    assert not np.array_equal(a["images"], c["images"])


def test_speed():
    t = time.perf_counter()
    make_captioned_scenes(1000, seed=0)
    assert time.perf_counter() - t < 5.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_objects"):
        make_captioned_scenes(1, seed=0, max_objects=10)
    with pytest.raises(ValueError, match="size"):
        make_captioned_scenes(1, seed=0, size=8)


# ---- captions --------------------------------------------------------------------------------


def test_every_caption_is_true_and_matches_its_structure(scenes):
    forms = set()
    for objs, caps in zip(scenes["objects"], scenes["captions"], strict=True):
        assert len(caps) == 5
        for c in caps:
            assert _true(c.text, objs), (c.text, objs)
            assert caption_is_true(c, objs, size=SIZE)
            parsed = _parse_caption(c.text)
            assert parsed["mentions"] == [(m.size, m.colour, m.shape) for m in c.mentions]
            assert (parsed["count"], parsed["relation"], parsed["place"]) == (
                c.count,
                c.relation,
                c.place,
            )
            forms.add(c.form)
        if len(objs) >= 3:
            assert len({c.text for c in caps}) == len(caps)  # room for five different ones
    assert forms == {"object", "place", "and", "relation", "list"}


def test_the_truth_check_rejects_false_captions(scenes):
    objs = scenes["objects"][0]
    o = objs[0]
    other = next(c for c in PALETTE if all(p.colour != c for p in objs))
    assert _true(f"a {o.colour} {o.shape}", objs)
    assert not _true(f"a {other} {o.shape}", objs)
    wrong_count = _NUMBERS[len(objs) + 1]
    assert not _true(f"{wrong_count} shapes: a {o.colour} {o.shape}", objs)
    assert not caption_is_true(Caption("x", "object", (Mention(o.shape, other),)), objs, size=64)
    # caption_is_true on each part of a meaning: count, list, relation, place.
    every = tuple(Mention(p.shape, p.colour) for p in objs)
    assert caption_is_true(Caption("x", "list", every, count=len(objs)), objs, size=64)
    assert not caption_is_true(Caption("x", "list", every, count=len(objs) + 1), objs, size=64)
    assert not caption_is_true(Caption("x", "list", every[:1] * 2, count=2), objs[:1], size=64)
    a = SceneObject("circle", "red", "small", (10, 28, 20, 38), (15.0, 33.0))
    b = SceneObject("square", "blue", "large", (36, 22, 58, 44), (47.0, 33.0))
    pair = (Mention("circle", "red"), Mention("square", "blue"))
    assert caption_is_true(Caption("x", "relation", pair, "left"), [a, b], size=64)
    assert not caption_is_true(Caption("x", "relation", pair, "right"), [a, b], size=64)
    assert caption_is_true(Caption("x", "place", pair[:1], place="left"), [a, b], size=64)
    assert not caption_is_true(Caption("x", "place", pair[1:], place="left"), [a, b], size=64)


def _tokens_differ_by_swap(a: str, b: str) -> bool:
    ta, tb = a.split(), b.split()
    diff = [k for k in range(len(ta)) if ta[k] != tb[k]]
    return len(ta) == len(tb) and len(diff) == 2 and ta[diff[0]] == tb[diff[1]] != ta[diff[1]]


@pytest.mark.parametrize("attribute", ["colour", "size"])
def test_binding_swaps_are_false_and_differ_only_by_the_swap(scenes, attribute):
    n = 0
    for objs, caps in zip(scenes["objects"], scenes["captions"], strict=True):
        for c in caps:
            swap = binding_swap(c, objs, size=SIZE, attribute=attribute)
            values = [getattr(m, attribute) for m in c.mentions]
            if len({v for v in values if v is not None}) < 2:
                assert swap is None
                continue
            if swap is None:
                continue
            n += 1
            assert not _true(swap.text, objs), (c.text, swap.text)
            assert _tokens_differ_by_swap(c.text, swap.text), (c.text, swap.text)
            assert (swap.form, swap.relation, swap.count, swap.place) == (
                c.form,
                c.relation,
                c.count,
                c.place,
            )
            assert sorted(map(str, values)) == sorted(
                str(getattr(m, attribute)) for m in swap.mentions
            )
    assert n >= 100


def test_binding_swap_by_hand():
    red = SceneObject("circle", "red", "small", (10, 28, 20, 38), (15.0, 33.0))
    blue = SceneObject("square", "blue", "large", (36, 22, 58, 44), (47.0, 33.0))
    objs = [red, blue]
    true = Caption(
        "a small red circle to the left of a large blue square",
        "relation",
        (Mention("circle", "red", "small"), Mention("square", "blue", "large")),
        "left",
    )
    assert caption_is_true(true, objs, size=64)
    swap = binding_swap(true, objs, size=64)
    assert swap.text == "a small blue circle to the left of a large red square"
    swap = binding_swap(true, objs, size=64, attribute="size")
    assert swap.text == "a large red circle to the left of a small blue square"
    # A third object that makes the swapped caption true: no swap of that pair is false.
    decoy = [red, blue, SceneObject("circle", "blue", "small", (2, 2, 12, 12), (7.0, 7.0))]
    decoy.append(SceneObject("square", "red", "large", (40, 0, 62, 21), (51.0, 10.5)))
    assert binding_swap(true, decoy, size=64) is None
    with pytest.raises(ValueError, match="not true"):
        binding_swap(swap, objs, size=64)


# ---- questions -------------------------------------------------------------------------------


def test_answers_rederived_from_the_objects(scenes):
    templates = set()
    for objs, qs in zip(scenes["objects"], scenes["questions"], strict=True):
        assert len(qs) == 4
        for q in qs:
            answer, answer_type = _answer(q.text, objs)
            assert (q.answer, q.answer_type) == (answer, answer_type), q.text
            assert q.answer in ANSWERS
            assert q.text.startswith(q.question_type + " ")
            templates.add(q.template)
    assert templates == {"colour", "shape", "count", "exist", "relation"}
    answers = [q.answer for qs in scenes["questions"] for q in qs if q.template == "exist"]
    assert 0.3 < answers.count("yes") / len(answers) < 0.7


# ---- JSON layouts ----------------------------------------------------------------------------


def test_coco_captions_layout(scenes):
    coco = to_coco_captions(scenes)
    assert len(coco["images"]) == 300
    assert set(coco["images"][0]) == {"id", "file_name", "width", "height"}
    assert coco["images"][7] == {"id": 7, "file_name": "000007.png", "width": 64, "height": 64}
    assert len(coco["annotations"]) == 300 * 5
    assert set(coco["annotations"][0]) == {"id", "image_id", "caption"}
    assert len({a["id"] for a in coco["annotations"]}) == 300 * 5
    assert [a["caption"] for a in coco["annotations"] if a["image_id"] == 3] == [
        c.text for c in scenes["captions"][3]
    ]
    json.dumps(coco)


def test_vqa_layout(scenes):
    questions, annotations = to_vqa(scenes)
    qs, anns = questions["questions"], annotations["annotations"]
    assert len(qs) == len(anns) == 300 * 4
    assert set(qs[0]) == {"question_id", "image_id", "question"}
    keys = {"question_id", "image_id", "question_type", "answer_type"}
    assert set(anns[0]) == keys | {"multiple_choice_answer", "answers"}
    for q, a in zip(qs, anns, strict=True):
        assert q["question_id"] == a["question_id"] and q["image_id"] == a["image_id"]
        assert a["answer_type"] in ("yes/no", "number", "other")
        assert len(a["answers"]) == 10
        assert [x["answer_id"] for x in a["answers"]] == list(range(1, 11))
        assert all(x["answer"] == a["multiple_choice_answer"] for x in a["answers"])
        assert set(a["answers"][0]) == {"answer", "answer_confidence", "answer_id"}
    assert qs[5]["question"] == scenes["questions"][1][1].text
    json.dumps([questions, annotations])


def test_coco_instances(scenes):
    coco = to_coco_instances(scenes)
    objs = [o for objs in scenes["objects"] for o in objs]
    assert len(coco["annotations"]) == len(objs)
    assert [c["name"] for c in coco["categories"]] == list(DETECTION_CLASSES)
    for ann, o in zip(coco["annotations"], objs, strict=True):
        x1, y1, x2, y2 = o.box
        assert ann["bbox"] == [x1, y1, x2 - x1, y2 - y1]
        assert coco["categories"][ann["category_id"] - 1]["name"] == o.shape
        assert ann["attributes"] == {"colour": o.colour, "size": o.size}


# ---- folders ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> dict:
    return make_captioned_scenes(6, seed=1)


def test_folder_round_trip(small, tmp_path):
    root = write_folder(small, tmp_path / "data")
    names = {p.name for p in root.iterdir()}
    assert names == {
        "captions.json",
        "questions.json",
        "annotations.json",
        "instances.json",
        "images",
    }
    assert not [p for p in (root / "images").iterdir() if p.name.startswith(".")]  # no temps
    caps = load_caption_folder(root)
    assert caps["image_ids"] == list(range(6))
    np.testing.assert_array_equal(np.stack(caps["images"]), small["images"])
    assert caps["captions"] == [[c.text for c in cs] for cs in small["captions"]]
    vqa = load_vqa_folder(root)
    flat = [(i, q) for i, qs in enumerate(small["questions"]) for q in qs]
    assert [r["question"] for r in vqa["questions"]] == [q.text for _, q in flat]
    assert [r["answer"] for r in vqa["questions"]] == [q.answer for _, q in flat]
    assert [r["answer_type"] for r in vqa["questions"]] == [q.answer_type for _, q in flat]
    for r, (i, _) in zip(vqa["questions"], flat, strict=True):
        np.testing.assert_array_equal(vqa["images"][r["image_index"]], small["images"][i])
    # Images beside the JSON files (COCO's own folders) are found too; limit reads a prefix.
    for p in (root / "images").iterdir():
        shutil.move(p, root / p.name)
    caps = load_caption_folder(root, limit=2)
    assert len(caps["images"]) == 2
    np.testing.assert_array_equal(caps["images"][1], small["images"][1])


def _break(root, name: str, edit) -> None:
    path = root / name
    path.write_text(edit(path.read_text()))


def test_bad_folders_name_the_file_and_the_problem(small, tmp_path):
    root = write_folder(small, tmp_path / "d")
    (root / "questions.json").unlink()
    with pytest.raises(InputError, match=r"questions\.json: file not found"):
        load_vqa_folder(root)
    _break(root, "captions.json", lambda s: s[:-20])
    with pytest.raises(InputError, match=r"captions\.json: not valid JSON"):
        load_caption_folder(root)

    root = write_folder(small, tmp_path / "e")
    data = json.loads((root / "captions.json").read_text())
    data["annotations"][3]["image_id"] = 99
    (root / "captions.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"captions\.json: caption 4 names image_id 99"):
        load_caption_folder(root)

    root = write_folder(small, tmp_path / "f")
    (root / "images" / "000002.png").unlink()
    with pytest.raises(InputError, match=r"captions\.json: image file '000002\.png' not found"):
        load_caption_folder(root)
    (root / "images" / "000002.png").write_text("not a png")
    with pytest.raises(InputError, match=r"000002\.png: cannot read"):
        load_caption_folder(root)

    root = write_folder(small, tmp_path / "g")
    data = json.loads((root / "annotations.json").read_text())
    del data["annotations"][0]
    (root / "annotations.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"annotations\.json: no annotation for question 1"):
        load_vqa_folder(root)
    assert "answer" not in load_vqa_folder(root, annotations=None)["questions"][0]
    (root / "captions.json").write_text(json.dumps({"images": {}}))
    with pytest.raises(InputError, match=r"captions\.json: expected .* 'images' list"):
        load_vqa_folder(root)


# ---- text ------------------------------------------------------------------------------------


def test_tokenize():
    assert tokenize("Two shapes: a Red cross, above 2 circles.") == [
        "two", "shapes", ":", "a", "red", "cross", ",", "above", "2", "circles", ".",
    ]  # fmt: skip


def test_vocab_order_and_min_count():
    vocab = build_vocab(["b a a", "c b a", "y x", "x y d"])
    assert list(vocab) == ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b", "x", "y", "c", "d"]
    assert list(vocab.values()) == list(range(10))
    assert list(build_vocab(["b a a", "c b a"], min_count=2)) == [
        "<pad>", "<unk>", "<bos>", "<eos>", "a", "b",
    ]  # fmt: skip


def test_encode_pads_and_truncates():
    vocab = build_vocab(["a red circle"])
    ids = encode("A red square", vocab, 8)
    assert ids.dtype == np.int64 and ids.shape == (8,)
    assert ids.tolist() == [2, vocab["a"], vocab["red"], 1, 3, 0, 0, 0]
    assert encode("a red circle a red circle", vocab, 5).tolist()[-1] == 3  # <eos> kept
    assert encode("a red", vocab, 4, bos_eos=False).tolist() == [vocab["a"], vocab["red"], 0, 0]
