"""EDSR checkpoints: the authors' PyTorch release, and the small demo models we trained.

The release (sanghyun-son/EDSR-PyTorch, `src/model/edsr.py`, the URLs of `url`): single-scale
EDSR baseline and EDSR at x2/x3/x4, state dicts in our key layout. Their file names end in 8 hex
digits in the torch.hub convention (the first digits of the file's sha256), the only hash the
authors give: 32 bits, too few to trust a download. `FULL_SHA256` holds the full digests that
independent users of these files recorded (each starts with the published prefix; sources beside
them); a file without one is not fetched by sotazoo: download it and pass its path. Metrics: the official README's table (PSNR on RGB,
DIV2K images 0801-0900, (scale + 2) border pixels ignored, no self-ensemble). MDSR is released
only inside `model_pytorch.tar` (542 MB, no per-file hash), so it has no entry here; its file
loads by path (`create_model("mdsr", weights="mdsr.pt")`).
"""

from __future__ import annotations

from sotazoo.weights import Weights, trained_here

_BASE = "https://cv.snu.ac.kr/research/EDSR/models/"
_README = "EDSR-PyTorch README: PSNR (RGB) on DIV2K 0801-0900, border scale + 2"
_TRANSFORMS = {"range": "[0, 1] RGB in and out (the model scales to [0, 255] inside)"}


FULL_SHA256 = {
    # dreinon/proyecto-tfg, src/score_super_resolution/pretrained.py (`CheckpointSpec`)
    "edsr_baseline_x2-1bc95232.pt": "1bc9523228fdc3b0a5ddb0d7062001e22b31bbb398ae09cfdefb97e8ee06e171",
    # the same file, and independently a BasicSR-layout `scripts/download_pretrained.py`
    "edsr_baseline_x4-6b446fab.pt": "6b446fab734f4de74448d2fd1f3f990f5bae726e49dc7eff2ae9cefe444a1723",
    # that `scripts/download_pretrained.py` (`WEIGHTS`, checked on download)
    "edsr_x4-4f62e9ef.pt": "4f62e9ef1a4ec6a7d3da4ed837116cec641e4e1566f98187151d813e83a0c1c8",
}


def _official(model: str, filename: str, num_params: int, psnr: float, scale: int) -> Weights:
    return Weights(
        model=model,
        tag="official",
        urls=(_BASE + filename,),
        sha256=FULL_SHA256.get(filename, filename.rsplit("-", 1)[1].split(".")[0]),
        filename=filename,
        format="pth",
        converter="sotazoo.papers.edsr.convert:convert_state_dict",
        num_params=num_params,
        metrics={f"div2k_val_psnr_rgb_x{scale}": psnr},
        metrics_source=_README,
        recipe="https://github.com/sanghyun-son/EDSR-PyTorch (src/demo.sh); DIV2K, L1, Adam",
        license="MIT (EDSR-PyTorch)",
        transforms=_TRANSFORMS,
    )


WEIGHTS = (
    _official("edsr_baseline_x2", "edsr_baseline_x2-1bc95232.pt", 1_369_859, 34.61, 2),
    _official("edsr_baseline_x3", "edsr_baseline_x3-abf2a44e.pt", 1_554_499, 30.92, 3),
    _official("edsr_baseline_x4", "edsr_baseline_x4-6b446fab.pt", 1_517_571, 28.95, 4),
    _official("edsr_x2", "edsr_x2-0edfb8a3.pt", 40_729_603, 35.03, 2),
    _official("edsr_x3", "edsr_x3-ea3ef2c6.pt", 43_680_003, 31.26, 3),
    _official("edsr_x4", "edsr_x4-4f62e9ef.pt", 43_089_923, 29.25, 4),
)

# Ours: `sotazoo train edsr_baseline_x2 --seed 0`, then `edsr_baseline_x4` (which starts from the
# x2 weights), run on CPU; the logs beside the files record the command, commit, machine, recipe,
# losses and held-out PSNR/SSIM (tests recompute them). The site's demo runs the x4 model.
_DEMO_TRANSFORMS = {"size": 64, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}


def _ours(model: str, sha256: str, num_params: int, metrics: dict[str, float]) -> Weights:
    return trained_here(
        "edsr",
        model,
        sha256=sha256,
        num_params=num_params,
        metrics=metrics,
        measured_on="the held-out photographs astronaut, coffee, chelsea (PSNR/SSIM on Y, scale "
        "pixels cropped), never trained on",
        transforms=_DEMO_TRANSFORMS,
    )


WEIGHTS += (
    _ours(
        "edsr_baseline_x2",
        "38367f6796f45dbc88b3e11db737e6e5ca755524f669fdac8b8c36d302603b32",
        1_369_859,
        {
            "heldout_psnr_y": 33.786,
            "heldout_ssim_y": 0.9361,
            "bicubic_psnr_y": 32.517,
            "bicubic_ssim_y": 0.9158,
        },
    ),
    _ours(
        "edsr_baseline_x4",
        "fb7683aa370012a7f8fbaddc64701d06f710f847461e5042651a9d494f6814c4",
        1_517_571,
        {
            "heldout_psnr_y": 29.512,
            "heldout_ssim_y": 0.8311,
            "bicubic_psnr_y": 28.534,
            "bicubic_ssim_y": 0.8046,
        },
    ),
)
