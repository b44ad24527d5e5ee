"""Sort-of-CLEVR, as the Relation Networks paper specifies it (arXiv 1706.01427, Appendix D).

Each 75 x 75 image holds six objects, one per colour (red, green, blue, orange, gray, yellow),
each a square or a circle, on a white background. Every image comes with 20 questions, 10
non-relational and 10 relational, encoded as 11-bit vectors: a one-hot colour (6 bits) naming the
reference object, a one-hot question class (non-relational, relational) and a one-hot subtype:

    non-relational: 0 shape of the object (square or circle)?
                    1 is it on the left of the image?
                    2 is it in the top half of the image?
    relational:     0 shape of the object closest to it?
                    1 shape of the object furthest from it?
                    2 how many objects have its shape (itself included)?

Answers are one of 10 classes (`ANSWERS`). What the paper leaves open follows the most used
public generator (kimhc6028/relational-networks, July 2017): its colours, squares spanning
centre +-5 px and circles of radius 5, centres at least 10 px apart, "left"/"top" meaning a
centre below 37.5. Everything is drawn with numpy from one seed.
"""

from __future__ import annotations

import numpy as np

IMAGE_SIZE = 75
HALF = 5  # half the side of a square, the radius of a circle
COLOURS = ("red", "green", "blue", "orange", "gray", "yellow")
RGB = np.array(
    [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 156, 0), (128, 128, 128), (255, 255, 0)],
    dtype=np.float32,
) / np.float32(255)
SHAPES = ("square", "circle")
ANSWERS = ("yes", "no", "square", "circle", "1", "2", "3", "4", "5", "6")
NON_RELATIONAL = ("shape", "left", "top")
RELATIONAL = ("closest", "furthest", "count")
QUESTION_DIM = 11
QUESTIONS_PER_IMAGE = 20  # 10 non-relational, then 10 relational


def _centres(rng: np.random.Generator) -> np.ndarray:
    """Six object centres, each at least 2 * HALF from the others (rejection sampling)."""
    out: list[np.ndarray] = []
    while len(out) < len(COLOURS):
        c = rng.integers(HALF, IMAGE_SIZE - HALF, size=2)
        if all(((c - o) ** 2).sum() >= (2 * HALF) ** 2 for o in out):
            out.append(c)
    return np.stack(out)  # (6, 2) as (x, y)


def render(centres: np.ndarray, shapes: np.ndarray) -> np.ndarray:
    """Images (n, 3, 75, 75) in [0, 1] from centres (n, 6, 2) and shapes (n, 6) (1 = circle)."""
    n = len(centres)
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    images = np.ones((n, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for k in range(len(COLOURS)):
        cx = centres[:, k, 0, None, None]
        cy = centres[:, k, 1, None, None]
        square = (np.abs(xx - cx) <= HALF) & (np.abs(yy - cy) <= HALF)  # (n, 75, 75), 11 px
        circle = (xx - cx) ** 2 + (yy - cy) ** 2 <= HALF**2
        mask = np.where(shapes[:, k, None, None] == 1, circle, square)
        images = np.where(mask[:, None], RGB[k][None, :, None, None], images)
    return images.astype(np.float32)


def answer(centres: np.ndarray, shapes: np.ndarray, colour: int, relational: bool, sub: int) -> int:
    """The answer class of one question about one scene (centres (6, 2), shapes (6,))."""
    x, y = centres[colour]
    if not relational:
        if sub == 0:
            return 2 + int(shapes[colour])
        inside = (x if sub == 1 else y) < IMAGE_SIZE / 2
        return 0 if inside else 1
    if sub == 2:
        return 3 + int((shapes == shapes[colour]).sum())  # "1" is class 4
    d = ((centres - centres[colour]) ** 2).sum(1).astype(np.float64)
    d[colour] = np.inf if sub == 0 else -np.inf
    other = int(d.argmin() if sub == 0 else d.argmax())
    return 2 + int(shapes[other])


def encode_question(colour: int, relational: bool, sub: int) -> np.ndarray:
    q = np.zeros(QUESTION_DIM, dtype=np.float32)
    q[colour] = 1
    q[6 + int(relational)] = 1
    q[8 + sub] = 1
    return q


def describe_question(q: np.ndarray) -> str:
    """An English rendering of an 11-bit question, for logs and the demo."""
    colour = COLOURS[int(np.argmax(q[:6]))]
    relational, sub = bool(q[7] > 0.5), int(np.argmax(q[8:]))
    return {
        (False, 0): f"What shape is the {colour} object?",
        (False, 1): f"Is the {colour} object on the left?",
        (False, 2): f"Is the {colour} object at the top?",
        (True, 0): f"What shape is the object closest to the {colour} one?",
        (True, 1): f"What shape is the object furthest from the {colour} one?",
        (True, 2): f"How many objects have the shape of the {colour} one?",
    }[(relational, sub)]


_TEMPLATES = {  # describe_question's sentences, the colour cut out: (relational, subtype)
    (False, 0): ("what shape is the ", " object"),
    (False, 1): ("is the ", " object on the left"),
    (False, 2): ("is the ", " object at the top"),
    (True, 0): ("what shape is the object closest to the ", " one"),
    (True, 1): ("what shape is the object furthest from the ", " one"),
    (True, 2): ("how many objects have the shape of the ", " one"),
}


def parse_question(text: str) -> np.ndarray:
    """One of the six questions in words (`describe_question`'s, any case, the question mark
    optional) -> its 11-bit encoding; `InputError` listing the forms it reads."""
    from sotazoo.errors import InputError

    s = " ".join(text.lower().strip().rstrip("?").split())
    for (relational, sub), (head, tail) in _TEMPLATES.items():
        if s.startswith(head) and s.endswith(tail):
            colour = s[len(head) : len(s) - len(tail)]
            if colour in COLOURS:
                return encode_question(COLOURS.index(colour), relational, sub)
    forms = [
        describe_question(encode_question(0, r, k)).replace("red", "COLOUR") for r, k in _TEMPLATES
    ]
    raise InputError(
        f"question {text!r}: Sort-of-CLEVR asks one of these, COLOUR one of {', '.join(COLOURS)}: "
        + " | ".join(forms)
    )


def make_sort_of_clevr(
    n_images: int, *, seed: int = 0, questions_per_image: int = QUESTIONS_PER_IMAGE
) -> dict[str, np.ndarray]:
    """Generate `n_images` scenes and their questions.

    Returns a dict of arrays: `images` (n, 3, 75, 75) float32 in [0, 1]; `questions`
    (n, q, 11) float32; `answers` (n, q) int64; `relational` (n, q) bool; `centres` (n, 6, 2)
    and `shapes` (n, 6) describe the scenes. The first half of each image's questions are
    non-relational, the second half relational; colours and subtypes are drawn uniformly.
    """
    rng = np.random.default_rng(seed)
    centres = (
        np.stack([_centres(rng) for _ in range(n_images)])
        if n_images
        else np.zeros((0, 6, 2), dtype=np.int64)
    )
    shapes = rng.integers(0, 2, size=(n_images, len(COLOURS)))
    half = questions_per_image // 2
    colours = rng.integers(0, len(COLOURS), size=(n_images, questions_per_image))
    subs = rng.integers(0, 3, size=(n_images, questions_per_image))
    relational = np.zeros((n_images, questions_per_image), dtype=bool)
    relational[:, half:] = True
    questions = np.zeros((n_images, questions_per_image, QUESTION_DIM), dtype=np.float32)
    answers = np.zeros((n_images, questions_per_image), dtype=np.int64)
    for i in range(n_images):
        for j in range(questions_per_image):
            c, r, s = int(colours[i, j]), bool(relational[i, j]), int(subs[i, j])
            questions[i, j] = encode_question(c, r, s)
            answers[i, j] = answer(centres[i], shapes[i], c, r, s)
    return {
        "images": render(centres, shapes),
        "questions": questions,
        "answers": answers,
        "relational": relational,
        "centres": centres,
        "shapes": shapes,
    }
