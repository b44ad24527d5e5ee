"""Laptop-scale DAMSM pretraining on the captioned scenes (ours).

The official pretrain_DAMSM.py trains the text encoder (RNN_ENCODER) and two heads on a frozen,
ImageNet-trained Inception-v3 (CNN_ENCODER) with L_DAMSM (Eq. 14). Offline we have no Inception
weights, and a randomly initialised Inception is neither frozen-useful nor laptop-sized, so
`SceneImageEncoder` stands in for it: a small CNN trained from scratch with the text encoder,
returning the same two outputs (regions (B, D, 8, 8) for the words loss, a global code (B, D) for
the sentence loss). The step is `method.damsm_step` (Adam lr 0.002, betas (0.5, 0.999), the text
encoder's gradient norm clipped to 0.25); `sentence_only=True` is our ablation: the sentence
terms L1^s + L2^s alone. `evaluate_damsm` reports R@1 (method.r_precision) and a binding test:
how often the true caption outscores its `binding_swap` foil (two mentions' colours swapped).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from sotazoo.data.captioned_scenes import binding_swap, encode
from sotazoo.errors import InputError
from sotazoo.papers.attngan import method
from sotazoo.papers.attngan.model import PAD, caption_lengths


class SceneImageEncoder(nn.Module):
    """A small CNN for 64 x 64 scenes standing in for DAMSM's Inception-v3 image encoder
    (CNN_ENCODER): no Inception weights are available offline, and the scenes are simple enough
    for a few conv stages. forward(images (B, 3, 64, 64) in [-1, 1]) -> regions (B, D, 8, 8)
    (a 1x1 conv, as emb_features on Mixed_6e) and the global code (B, D) (average pooling of the
    last stage + Linear, as emb_cnn_code on Mixed_7c's pooled features).

    Layout: conv3x3-BN-ReLU stages of `widths` channels, the first three with stride 2 (64 -> 8
    px), the rest stride 1; the regions come from the trunk's last map, the global code from one
    more conv-BN-ReLU stage at twice its width (as Mixed_7a-c lie past Mixed_6e)."""

    def __init__(self, embedding_dim: int = 64, widths: tuple[int, ...] = (32, 64, 128)) -> None:
        super().__init__()
        if len(widths) < 3:
            raise InputError(f"widths needs three or more stages (64 -> 8 px), got {widths}")
        layers, c = [], 3
        for k, w in enumerate(widths):  # 64 -> 32 -> 16 -> 8 with three strided stages
            stride = 2 if k < 3 else 1
            layers += [nn.Conv2d(c, w, 3, stride, 1, bias=False), nn.BatchNorm2d(w),
                       nn.ReLU(inplace=True)]  # fmt: skip
            c = w
        self.trunk = nn.Sequential(*layers)
        self.top = nn.Sequential(nn.Conv2d(c, 2 * c, 3, 1, 1, bias=False), nn.BatchNorm2d(2 * c),
                                 nn.ReLU(inplace=True))  # fmt: skip
        self.emb_features = nn.Conv2d(c, embedding_dim, 1, bias=False)
        self.emb_cnn_code = nn.Linear(2 * c, embedding_dim)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        x = self.trunk(images)  # (B, C, 8, 8) at 64 px
        regions = self.emb_features(x)  # (B, D, 8, 8)
        code = self.emb_cnn_code(self.top(x).mean(dim=(2, 3)))  # (B, D)
        return regions, code


def _images(scenes: dict, idx: np.ndarray) -> Tensor:
    x = torch.from_numpy(scenes["images"][idx]).permute(0, 3, 1, 2).float()  # (B, 3, H, W)
    return x / 127.5 - 1.0


def _encode(texts: list[str], vocab: dict[str, int], max_len: int) -> Tensor:
    caps = torch.from_numpy(np.stack([encode(t, vocab, max_len, bos_eos=False) for t in texts]))
    if vocab["<pad>"] != PAD or bool((caption_lengths(caps) < 1).any()):
        raise InputError("captions must pad with id 0 and hold at least one token")
    return caps


def scene_batches(scenes: dict, vocab: dict[str, int], *, max_len: int, batch_size: int,
                  generator: torch.Generator):  # fmt: skip
    """An endless iterator of (images (B, 3, H, W) in [-1, 1], captions (B, max_len) int64 padded
    with 0): images in a fresh random order each pass, one caption per image drawn at random."""
    n = len(scenes["captions"])
    if not 1 <= batch_size <= n:
        raise InputError(f"batch_size must lie in [1, {n}], got {batch_size}")
    while True:
        order = torch.randperm(n, generator=generator).numpy()
        for s in range(0, n - batch_size + 1, batch_size):  # drop_last, as the official loader
            idx = order[s : s + batch_size]
            picks = [int(torch.randint(len(scenes["captions"][i]), (1,), generator=generator))
                     for i in idx]  # fmt: skip
            texts = [scenes["captions"][i][k].text for i, k in zip(idx, picks, strict=True)]
            yield _images(scenes, idx), _encode(texts, vocab, max_len)


def _sentence_step(text_encoder, image_encoder, opt, images, captions) -> dict[str, float]:
    """method.damsm_step with the sentence terms alone (L1^s + L2^s)."""
    lengths = caption_lengths(captions)
    _, sentence = text_encoder(captions, lengths)
    _, code = image_encoder(images)
    terms = method.sent_loss(code, sentence)
    terms["total"] = terms["s_loss0"] + terms["s_loss1"]
    opt.zero_grad(set_to_none=True)
    terms["total"].backward()
    nn.utils.clip_grad_norm_(text_encoder.parameters(), method.DAMSM_GRAD_CLIP)
    opt.step()
    return {k: float(v.detach()) for k, v in terms.items()}


def train_damsm(text_encoder: nn.Module, image_encoder: nn.Module, scenes: dict,
                vocab: dict[str, int], *, steps: int, batch_size: int,
                lr: float = method.DAMSM_LR, seed: int, sentence_only: bool = False,
                max_len: int | None = None,
                on_step: Callable[[int, dict], None] | None = None) -> dict:  # fmt: skip
    """Train both encoders `steps` Adam steps (betas method.BETAS; one Adam, no per-epoch reset or
    decay at this scale). Returns the log {"steps": [...], "<term>": [...] per step,
    "wall_s": ...}; with `sentence_only` the words terms are neither computed nor logged."""
    if len(vocab) > text_encoder.cfg.n_words:
        raise InputError(f"vocabulary of {len(vocab)} > the encoder's {text_encoder.cfg.n_words}")
    max_len = max_len or text_encoder.cfg.words_num
    gen = torch.Generator().manual_seed(seed)
    params = [*text_encoder.parameters(), *image_encoder.parameters()]
    opt = torch.optim.Adam([p for p in params if p.requires_grad], lr=lr, betas=method.BETAS)
    batches = scene_batches(scenes, vocab, max_len=max_len, batch_size=batch_size, generator=gen)
    text_encoder.train()
    image_encoder.train()
    log: dict = {"steps": []}
    start = time.perf_counter()
    for step in range(steps):
        images, captions = next(batches)
        if sentence_only:
            terms = _sentence_step(text_encoder, image_encoder, opt, images, captions)
        else:
            terms = method.damsm_step(text_encoder, image_encoder, opt, images, captions)
        log["steps"].append(step)
        for k, v in terms.items():
            log.setdefault(k, []).append(v)
        if on_step is not None:
            on_step(step, terms)
    log["wall_s"] = time.perf_counter() - start
    return log


@torch.no_grad()
def evaluate_damsm(text_encoder: nn.Module, image_encoder: nn.Module, scenes: dict,
                   vocab: dict[str, int], *, generator: torch.Generator,
                   candidates: int = 100, max_len: int | None = None,
                   loss: method.AttnGANLoss = method.CUB_LOSS) -> dict:  # fmt: skip
    """In eval mode: "r1", R-precision at 1 (method.r_precision, the image's global code against
    its first caption among min(candidates, N) candidates); and the binding test over the images
    whose first caption with a colour `binding_swap` foil exists: "binding_sentence", the
    fraction where cos(code, sentence) of the true caption beats its foil's, "binding_words" the
    same with method.word_relevance; "binding_n", how many such images."""
    max_len = max_len or text_encoder.cfg.words_num
    was = text_encoder.training, image_encoder.training
    text_encoder.eval()
    image_encoder.eval()
    n = len(scenes["captions"])
    idx = np.arange(n)
    regions, code = image_encoder(_images(scenes, idx))

    def encode_texts(texts):
        caps = _encode(texts, vocab, max_len)
        lengths = caption_lengths(caps)
        words, sentence = text_encoder(caps, lengths)
        pad = torch.arange(caps.shape[1])[None] >= lengths[:, None]
        return words, sentence, pad

    _, sentence, _ = encode_texts([c[0].text for c in scenes["captions"]])
    r1 = method.r_precision(code, sentence, candidates=min(candidates, n), generator=generator)
    rows, true, foil = [], [], []
    for i in range(n):
        for cap in scenes["captions"][i]:
            swapped = binding_swap(cap, scenes["objects"][i], size=scenes["size"])
            if swapped is not None:
                rows.append(i)
                true.append(cap.text)
                foil.append(swapped.text)
                break
    out = {"r1": r1, "binding_n": len(rows)}
    if rows:
        r = torch.as_tensor(rows)
        scores = {}
        for name, texts in (("true", true), ("foil", foil)):
            words, sent, pad = encode_texts(texts)
            cos = method.cosine(code[r], sent, dim=1)
            wr = torch.stack([method.word_relevance(regions[r[j:j + 1]], words[j:j + 1],
                                                    pad[j:j + 1], gamma1=loss.gamma1,
                                                    gamma2=loss.gamma2)[0, 0]
                              for j in range(len(rows))])  # fmt: skip
            scores[name] = (cos, wr)
        out["binding_sentence"] = float((scores["true"][0] > scores["foil"][0]).double().mean())
        out["binding_words"] = float((scores["true"][1] > scores["foil"][1]).double().mean())
    text_encoder.train(was[0])
    image_encoder.train(was[1])
    return out
