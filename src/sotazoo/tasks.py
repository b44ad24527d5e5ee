"""Tasks as data: what a model of each task takes and returns, its demo widget and its metric.

A card's models name their task (`[[models]] task = ...`); the core reads this table instead of
branching on task names: the card schema checks `input_size` against `input_rank` and a demo's
kind against its model's `widget`; export checks the raw network's output against `output_rank`
(and `scales_input` for super-resolution) before it writes a file, as do the registry-wide tests;
the site names each task's comparison page by its `title`. A paper that
brings a genuinely new task adds one entry here; nothing else in the core changes.

Torch-free: `import sotazoo` reads it through the cards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Task:
    """One task of the catalogue.

    Attributes:
        takes: the model's inputs, in words (the first input's shape is the card's `input_size`).
        returns: what `forward` returns, in words.
        input_rank: length of the card's `input_size`: 3 for (C, H, W), 1 for a noise (Z,), 2 for
            region features (K, D); a tuple where the task's models take either (`accepts_rank`).
        output_rank: rank of `forward`'s output, batch axis included.
        scales_input: the output is the input image enlarged by an integer factor > 1.
        widget: the site's demo widget for the task (`cards.DEMO_KINDS`), None while there is none.
        metric: the metric the task's claims and reproductions are usually given in.
        title, title_zh: the task's name on the site, in English and Chinese.
    """

    title: str
    title_zh: str
    takes: str
    returns: str
    input_rank: int | tuple[int, ...] = 3
    output_rank: int
    scales_input: bool = False
    widget: str | None = None
    metric: str

    @property
    def ranks(self) -> tuple[int, ...]:
        """The lengths a card's `input_size` may have for the task (`input_rank` as a tuple)."""
        return self.input_rank if isinstance(self.input_rank, tuple) else (self.input_rank,)

    def accepts_rank(self, rank: int) -> bool:
        """Whether a model of the task may take a first input of `rank` sizes (batch excluded)."""
        return rank in self.ranks

    def output_problems(self, out_shape: Sequence[int], in_shape: Sequence[int]) -> list[str]:
        """What is wrong with an output of shape `out_shape` for an input batch of `in_shape`
        (batch first, both); empty when it is what the task returns."""
        out, x = tuple(out_shape), tuple(in_shape)
        problems = []
        if len(out) != self.output_rank:
            problems.append(f"output rank {len(out)}, expected {self.output_rank} ({self.returns})")
        elif out[0] != x[0]:
            problems.append(f"output batch {out[0]} for an input batch of {x[0]}")
        if self.scales_input and len(out) == 4 and len(x) == 4:
            s = out[-1] // x[-1]
            if s < 2 or out[1:] != (x[1], s * x[2], s * x[3]):
                problems.append(f"output {out} is not the input {x} enlarged by an integer > 1")
        return problems


TASKS: dict[str, Task] = {
    "classification": Task(
        title="Image classification",
        title_zh="图像分类",
        takes="image batch (B, C, H, W)",
        returns="class logits (B, K)",
        output_rank=2,
        widget="classify",
        metric="top-1 accuracy",
    ),
    "detection": Task(
        title="Object detection",
        title_zh="目标检测",
        takes="image batch",
        returns="raw per-anchor predictions (B, N, ...), decoded by the paper's post-processing",
        output_rank=3,
        widget="detect",
        metric="COCO box AP",
    ),
    "instance_segmentation": Task(
        title="Instance segmentation",
        title_zh="实例分割",
        takes="image batch",
        returns="detections padded to a fixed count (B, D, ...): boxes, scores, labels and "
        "per-detection masks, read by the paper's `method.unpack`",
        output_rank=3,
        widget="instances",
        metric="COCO mask AP",
    ),
    "segmentation": Task(
        title="Segmentation",
        title_zh="图像分割",
        takes="image batch",
        returns="per-pixel class logits (B, K, H', W')",
        output_rank=4,
        widget="segment",
        metric="mIoU",
    ),
    "super_resolution": Task(
        title="Super-resolution",
        title_zh="超分辨率",
        takes="low-resolution image batch",
        returns="the image enlarged (B, C, sH, sW)",
        output_rank=4,
        scales_input=True,
        widget="image2image",
        metric="PSNR (Y)",
    ),
    "restoration": Task(
        title="Restoration (denoise, deblur)",
        title_zh="图像复原（去噪、去模糊）",
        takes="degraded image batch",
        returns="restored images (B, C, H, W)",
        output_rank=4,
        widget="image2image",
        metric="PSNR",
    ),
    "raw_to_rgb": Task(
        title="Low-light raw to sRGB",
        title_zh="暗光 raw 到 sRGB",
        takes="a sensor's packed raw (B, C, h, w), black level off, amplified by the exposure ratio",
        returns="sRGB images at the mosaic's resolution (B, 3, sh, sw)",
        output_rank=4,
        widget="raw2image",
        metric="PSNR",
    ),
    "inpainting": Task(
        title="Inpainting",
        title_zh="图像修复",
        takes="image batch and mask",
        returns="completed images (B, C, H, W)",
        output_rank=4,
        widget="inpaint",
        metric="L1 / PSNR",
    ),
    "generation": Task(
        title="Image generation",
        title_zh="图像生成",
        takes="noise (B, Z), and a class where conditional",
        returns="images (B, C, H, W)",
        input_rank=1,
        output_rank=4,
        widget="generate",
        metric="FID",
    ),
    "translation": Task(
        title="Image-to-image translation",
        title_zh="图像到图像翻译",
        takes="image batch of one domain",
        returns="images of the other domain",
        output_rank=4,
        widget="image2image",
        metric="FID",
    ),
    "multimodal_translation": Task(
        title="Multimodal image-to-image translation",
        title_zh="多模态图像翻译",
        takes="image batch of one domain and style codes (B, S, 1, 1)",
        returns="images of the other domain (B, C, H, W), one per style code",
        output_rank=4,
        widget="stylize",  # the style from an example image of the other domain, or drawn at random
        metric="diversity (LPIPS) and quality (FID, human preference)",
    ),
    "person_generation": Task(
        title="Pose-guided person generation",
        title_zh="姿态引导的人物图像生成",
        takes="person images with their pose (keypoint heatmaps, body mask, body-region boxes)",
        returns="the person re-rendered (B, 3, H, W), whose factors may come from other images",
        output_rank=4,
        widget="recombine",
        metric="SSIM / Inception score",
    ),
    "style_transfer": Task(
        title="Style transfer",
        title_zh="风格迁移",
        takes="content image batch (and a style image)",
        returns="stylised images (B, C, H, W)",
        output_rank=4,
        widget="stylize",
        metric="style / content loss",
    ),
    "augmentation": Task(
        title="Data augmentation",
        title_zh="数据增强",
        takes="image batch",
        returns="augmented images (B, C, H, W); a method (`[[methods]]`) takes and returns one",
        output_rank=4,
        widget="augment",
        metric="top-1 accuracy of a model trained with it",
    ),
    "captioning": Task(
        title="Captioning",
        title_zh="图像描述",
        takes="image batch, or region features (B, K, D) with their mask, then the words so far",
        returns="word logits per step (B, T, V)",
        input_rank=(3, 2),  # an image, or the features of K detected regions (Up-Down)
        output_rank=3,
        metric="CIDEr",
    ),
    "vqa": Task(
        title="Visual question answering",
        title_zh="视觉问答",
        takes="image batch, or region features (B, K, D) with their mask, and tokenised questions",
        returns="answer logits (B, A)",
        input_rank=(3, 2),  # an image (Relation Networks), or K regions' features (Up-Down)
        output_rank=2,
        widget="vqa",
        metric="answer accuracy",
    ),
    "depth": Task(
        title="Depth estimation",
        title_zh="深度估计",
        takes="image batch",
        returns="depth maps (B, 1, H', W')",
        output_rank=4,
        widget="image2image",
        metric="RMSE / delta < 1.25",
    ),
    "face3d": Task(
        title="3D faces",
        title_zh="三维人脸",
        takes="face image batch",
        returns="3D face parameters or maps",
        output_rank=4,
        metric="NME / vertex RMSE",
    ),
    "body3d": Task(
        title="3D bodies",
        title_zh="三维人体",
        takes="frames of a person",
        returns="3D body parameters or meshes",
        output_rank=3,
        metric="vertex RMSE",
    ),
    "text_to_image": Task(
        title="Text to image",
        title_zh="文本生成图像",
        takes="noise (B, Z), then the tokenised captions (B, T) int64 (and any other input)",
        returns="images (B, C, H, W)",
        input_rank=1,  # the noise, as a generation model's
        output_rank=4,
        widget="text2image",
        metric="Inception score / FID",
    ),
}
