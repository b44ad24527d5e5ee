"""Read a Market-1501 or DeepFashion folder that the user supplies, laid out as the official
data preparation reads it (charliememory/Disentangled-Person-Image-Generation at e470386,
`datasets/convert_market.py`, `convert_DF.py`, `convert_RCV.py`; the "Raw data" archives of its
README), into the tensors DPIG takes. Nothing is downloaded.

Layouts (`layout=`):
- "market" (Market1501_img_pose_attr_seg/): images in `bounding_box_train/`,
  `bounding_box_test/` or `bounding_box_test_samples/`; OpenPose results in
  `Market-1501_PoseFiltered/all_peaks_dic_Market-1501_<train|test_clean|test_samples>.p` and
  `subsets_dic_Market-1501_<...>.p`. Distractor and junk images (ids 0000 and -1, the 6617 files
  `convert_market.py` skips in the test folder) are left out.
- "deepfashion" (DF_img_pose/): images in `filted_up_<train|test|test_samples>/`; poses in
  `PoseFiltered/all_peaks_dic_DeepFashion.p` and `subsets_dic_DeepFashion.p`.
- "rcv": images in `<split>/`, poses as (row, column, visibility) in `PoseRCV/<split>.pickle`
  (a dict image name -> (18, 3)), for keypoints from another detector (`convert_RCV.py`).

The peaks files are Python 2 pickles: `all_peaks[name]` holds, per keypoint, the detected
candidates (x, y, score, id); `subsets[name]` one row per detected person (18 candidate ids,
score, count). As `_get_valid_peaks` does, the person with the highest score is kept and each
keypoint takes its candidate of that person; an image without a pose entry is skipped. The
pickles are read with an unpickler that admits numpy arrays and nothing else (a pickle can run
code, and these files come from elsewhere).

What each image becomes (`keypoints.py`): heatmaps with the official disc radius 4; the pose
mask of radius 7 (Market's `pose_mask_r6` record, which the fg/bg model reads) or 4
(DeepFashion's `pose_mask_r4`); the boxes of `get_part_bbox37` (Market, "rcv") or of
`convert_DF.get_part_bbox` (DeepFashion).
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sotazoo.errors import InputError
from sotazoo.papers.disentangled_person.keypoints import (
    NUM_KEYPOINTS,
    keypoint_heatmaps,
    part_boxes,
    part_boxes_deepfashion,
    pose_mask,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
LAYOUTS = {
    # layout: (split -> (image folder, pose files' key)), pose folder
    "market": ({"train": ("bounding_box_train", "Market-1501_train"),
                "test": ("bounding_box_test", "Market-1501_test_clean"),
                "test_samples": ("bounding_box_test_samples", "Market-1501_test_samples")},
               "Market-1501_PoseFiltered"),
    "deepfashion": ({"train": ("filted_up_train", "DeepFashion"),
                     "test": ("filted_up_test", "DeepFashion"),
                     "test_samples": ("filted_up_test_samples", "DeepFashion")},
                    "PoseFiltered"),
    "rcv": ({"train": ("train", "train"), "test": ("test", "test")}, "PoseRCV"),
}  # fmt: skip
MASK_RADIUS = {"market": 7, "deepfashion": 4, "rcv": 7}
HEATMAP_RADIUS = 4


@dataclass(frozen=True)
class PersonImages:
    """Images of a folder and their pose tensors (shapes as `persons.Persons`): images in
    [-1, 1], keypoints (N, 18, 3), heatmaps, fg_mask, boxes, box_vis; names (file names) and
    person_ids (N,) int64 (-1 where the name carries none)."""

    images: torch.Tensor
    keypoints: torch.Tensor
    heatmaps: torch.Tensor
    fg_mask: torch.Tensor
    boxes: torch.Tensor
    box_vis: torch.Tensor
    names: tuple[str, ...]
    person_ids: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def inputs(self) -> tuple[torch.Tensor, ...]:
        """(image, heatmaps, fg_mask, boxes, box_vis): `Dpig.forward`'s arguments."""
        return self.images, self.heatmaps, self.fg_mask, self.boxes, self.box_vis


class _NumpyUnpickler(pickle.Unpickler):
    """Admits numpy's array and scalar constructors, refuses every other global."""

    _ALLOWED = {(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray")
                for n in ("_reconstruct", "scalar")} | {("numpy", "ndarray"), ("numpy", "dtype")}  # fmt: skip

    def __init__(self, file, source: Path) -> None:
        super().__init__(file, encoding="latin1")  # Python 2 str: numpy's raw bytes
        self.source = source

    def find_class(self, module: str, name: str) -> object:
        if (module, name) == ("_codecs", "encode"):  # bytes, as Python 3 writes protocol 2
            return _latin1_encode
        if (module, name) not in self._ALLOWED:
            raise InputError(
                f"{self.source} names the global {module}.{name}; only numpy arrays are read "
                "from pose pickles (a pickle can run code): not a file of the official layout?"
            )
        if module == "numpy":
            return getattr(np, name)
        try:
            from numpy._core import multiarray  # numpy >= 2
        except ImportError:  # pragma: no cover - numpy 1
            from numpy.core import multiarray
        return getattr(multiarray, name)


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` restricted to the encoding Python 3's protocol-2 pickles use."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise InputError(f"a pose pickle asks to encode with {encoding!r}; only latin1 is read")
    return text.encode("latin1")


def _read_pickle(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"missing pose file {path} (see sotazoo.papers.disentangled_person.data)")
    try:
        with open(path, "rb") as f:
            data = _NumpyUnpickler(f, path).load()
    except InputError:
        raise
    except Exception as e:  # a truncated or foreign file: the same thing to the user
        raise InputError(f"cannot read {path} as a pickle: {type(e).__name__}: {e}") from e
    if not isinstance(data, dict):
        raise InputError(f"{path} holds a {type(data).__name__}, not a dict keyed by image name")
    return data


def valid_peaks(all_peaks, subsets) -> list:
    """Per keypoint, [] or [the candidate of the best-scoring person] (`_get_valid_peaks` of
    convert_market.py; all candidates when no person was assembled)."""
    rows = np.asarray(subsets, np.float64).reshape(-1, NUM_KEYPOINTS + 2) if len(subsets) else []
    if len(rows) == 0:
        return [list(p) for p in all_peaks]
    ids = set(rows[int(np.argmax(rows[:, -2]))][:NUM_KEYPOINTS].tolist())
    out = []
    for candidates in all_peaks:
        chosen = [p for p in candidates if p[-1] in ids]
        out.append([chosen[-1]] if chosen else [])  # the last match wins, as there
    return out


def rcv_from_peaks(peaks) -> np.ndarray:
    """(18, 3) (row, column, visibility) from per-keypoint candidate lists ((x, y, ...), ...)."""
    if len(peaks) != NUM_KEYPOINTS:
        raise InputError(f"a pose has {len(peaks)} keypoint lists, expected {NUM_KEYPOINTS}")
    rcv = np.zeros((NUM_KEYPOINTS, 3), np.float32)
    for k, p in enumerate(peaks):
        if len(p):
            rcv[k] = (p[0][1], p[0][0], 1)
    return rcv


def _person_id(layout: str, name: str) -> int:
    if layout == "market":
        m = re.match(r"(-?\d+)_", name)
    elif layout == "deepfashion":
        m = re.search(r"id0*(\d+)", name)
    else:
        m = None
    return int(m.group(1)) if m else -1


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), np.float32)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise InputError(f"cannot read the image {path}: {e}") from e


def load_person_folder(root: str | Path, *, layout: str = "market", split: str = "train",
                       limit: int | None = None) -> PersonImages:  # fmt: skip
    """The images of `split` under `root` that have a pose, with their DPIG inputs, in file-name
    order (at most `limit` of them)."""
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}; one of {sorted(LAYOUTS)}")
    splits, pose_dir = LAYOUTS[layout]
    if split not in splits:
        raise InputError(f"unknown split {split!r} for layout {layout!r}; one of {sorted(splits)}")
    root = Path(root)
    folder, key = splits[split]
    image_dir = root / folder
    if not image_dir.is_dir():
        raise InputError(f"no image folder {image_dir} ({layout} layout, split {split!r})")
    if layout == "rcv":
        poses = {k: np.asarray(v, np.float32) for k, v in
                 _read_pickle(root / pose_dir / f"{key}.pickle").items()}  # fmt: skip
    else:
        peaks = _read_pickle(root / pose_dir / f"all_peaks_dic_{key}.p")
        subsets = _read_pickle(root / pose_dir / f"subsets_dic_{key}.p")
        poses = {k: rcv_from_peaks(valid_peaks(v, subsets.get(k, []))) for k, v in peaks.items()}
    names = sorted(p.name for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    names = [n for n in names if n in poses]
    if layout == "market":
        names = [n for n in names if _person_id(layout, n) > 0]  # no distractors, no junk
    if limit is not None:
        names = names[:limit]
    if not names:
        raise InputError(f"no image in {image_dir} has a pose in {root / pose_dir}")
    images = [_read_image(image_dir / n) for n in names]
    h, w = images[0].shape[:2]
    for n, im in zip(names, images, strict=True):
        if im.shape[:2] != (h, w):
            raise InputError(f"{image_dir / n} is {im.shape[0]}x{im.shape[1]}, the others {h}x{w}")
    kp = np.stack([poses[n] for n in names])
    if kp.shape[1:] != (NUM_KEYPOINTS, 3) or not np.isfinite(kp).all():
        raise InputError(f"poses in {root / pose_dir} are not finite (18, 3) arrays")
    kp[..., :2] *= kp[..., 2:] > 0  # a hidden keypoint is (0, 0, 0)
    boxes_of = part_boxes_deepfashion if layout == "deepfashion" else part_boxes
    boxes, vis = zip(*(boxes_of(k, h, w) for k in kp), strict=True)
    masks = [pose_mask(k, h, w, radius=MASK_RADIUS[layout]) for k in kp]
    keypoints = torch.from_numpy(kp)
    return PersonImages(
        images=torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous() / 127.5 - 1,
        keypoints=keypoints,
        heatmaps=keypoint_heatmaps(keypoints, h, w, radius=HEATMAP_RADIUS),
        fg_mask=torch.from_numpy(np.stack(masks))[:, None],
        boxes=torch.from_numpy(np.stack(boxes)),
        box_vis=torch.from_numpy(np.stack(vis)),
        names=tuple(names),
        person_ids=torch.tensor([_person_id(layout, n) for n in names], dtype=torch.int64),
    )
