"""AttnGAN's objective, its DAMSM matching loss, one training step, and R-precision.

Paper §3.2-3.3 (arXiv 1711.10485; equation numbers as there) and taoxugit/AttnGAN at 0d000e6
(`code/miscc/losses.py`, `code/GlobalAttention.py` func_attention, `code/trainer.py`,
`code/pretrain_DAMSM.py`, `code/cfg/bird_attn2.yml`, `coco_attn2.yml`, `cfg/DAMSM/*.yml`).

DAMSM scores an image Q against a caption D in a shared D-dim space. Word-level (Eq. 7-11): with
the image's regions v (D x R, R = 17 x 17 from Inception's Mixed_6e) and the caption's words
e (D x T),

    s = e^T v                                             (Eq. 7, T x R)
    s_bar[i, j] = exp(s[i, j]) / sum_k exp(s[k, j])       (Eq. 8, a softmax over the words)
    alpha[i, j] = exp(g1 s_bar[i, j]) / sum_k exp(g1 s_bar[i, k]),  c_i = sum_j alpha[i, j] v_j
                                                           (Eq. 9: each word's region context)
    R(Q, D) = log(sum_i exp(g2 cos(c_i, e_i)))^(1 / g2)   (Eq. 10)
    P(D_i | Q_i) = exp(g3 R(Q_i, D_i)) / sum_j exp(g3 R(Q_i, D_j))   (Eq. 11, over the batch)
    L1^w = -sum_i log P(D_i | Q_i),  L2^w = -sum_i log P(Q_i | D_i)   (Eq. 12-13)

The sentence level redefines Eq. 10 as R(Q, D) = cos(v_bar, e_bar), the global image code
against the sentence vector, and puts it into Eq. 11-13 (L1^s, L2^s); L_DAMSM = L1^w + L2^w +
L1^s + L2^s (Eq. 14).

G's loss (Eq. 3-4) sums over the stages i the unconditional and conditional adversarial terms
-log D_i(x_i) - log D_i(x_i, e_bar), and adds lambda L_DAMSM on the last stage's image and the
KL of conditioning augmentation; each D (Eq. 5) scores real, fake, and (code only) real images
with the next caption of the batch.

What the official code does differently from the equations (and what we do, as the code):
- Eq. 10 without the power 1 / g2: R = log sum_i exp(g2 cos), g2 times the paper's R, so the
  batch softmax runs at g2 g3 = 50 on the paper's scale. Padded words are sliced off per caption
  (`words_emb[i, :, :cap_lens[i]]`): they take part neither in Eq. 8's softmax nor in Eq. 10's
  sum. We mask them instead (one batched computation, the same numbers).
- Eq. 12-13 and the sentence loss are batch means (nn.CrossEntropyLoss), not sums; a caption of
  the same class as the image (CUB's class_info.pickle, `class_ids`) is not a negative: its score
  is set to -inf. COCO has no class file, so only the true pair is excluded there.
- gamma1 = 4 in every released cfg (bird_attn2.yml, coco_attn2.yml, DAMSM/bird.yml, coco.yml; the
  yml comment: "1,2,5 good 4 best"); the paper (§3.2) and config.py's default say 5. The released
  CUB model ran with 4: it is our default.
- Eq. 4 weighs each term 1/2, the code 1. Eq. 5's 1/2 weights become (real_uncond + real_cond) / 2
  + (fake_uncond + fake_cond + wrong_cond) / 3: a third, mismatched-caption term, not in the paper.
- KL_loss = -1/2 mean(1 + logvar - mu^2 - exp(logvar)), a mean over batch and dimensions,
  weight 1 (trainer.py adds it unweighted); Eq. 3 does not list it.
- The discriminators return probabilities (sigmoid inside D_GET_LOGITS), scored by nn.BCELoss.

The recipe (trainer.py): per batch, G makes its images once; each D takes an Adam step on its
loss with the fakes detached; then G takes one on its loss; a running average of G's parameters
(avg_p = 0.999 avg_p + 0.001 p) is what the checkpoints hold. Adam lr 2e-4, betas (0.5, 0.999)
for G and for each D. DAMSM pretraining (pretrain_DAMSM.py, DAMSM/bird.yml): Adam lr 0.002, betas
(0.5, 0.999) over the text encoder and the image encoder's two heads, the text encoder's gradient
norm clipped to 0.25 (the image heads are not clipped); a new Adam each epoch (its moments reset),
lr x 0.98 after every epoch while it is above 0.0002. Batch 48 (the paper says 50), 20 for the
CUB GAN, 14 for COCO.

Ours, with the same arithmetic: D's parameters are frozen during G's step (the official code lets
gradients reach them and clears them before the next D step); the noise comes from a
`torch.Generator`; R-precision is written from the paper's definition (the repository has no code
for it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sotazoo.errors import InputError
from sotazoo.papers.attngan.model import AttnGAN, caption_lengths
from sotazoo.train.gan import frozen, optimizer_step

G_LR = D_LR = 2e-4  # TRAIN.GENERATOR_LR / DISCRIMINATOR_LR, bird_attn2.yml and coco_attn2.yml
BETAS = (0.5, 0.999)  # trainer.define_optimizers and pretrain_DAMSM.py
G_EMA_DECAY = 0.999  # trainer.train: avg_param_G, the weights that get saved
DAMSM_LR = 2e-3  # TRAIN.ENCODER_LR, cfg/DAMSM/bird.yml and coco.yml
DAMSM_LR_DECAY = 0.98  # per epoch, while lr > DAMSM_LR / 10 (pretrain_DAMSM.py)
DAMSM_GRAD_CLIP = 0.25  # TRAIN.RNN_GRAD_CLIP: the text encoder's gradient norm


@dataclass(frozen=True, kw_only=True)
class AttnGANLoss:
    """TRAIN.SMOOTH of the released cfgs and the KL weight of trainer.py."""

    gamma1: float = 4.0  # region attention, Eq. 9: 4 in every released yml; 5 in the paper
    gamma2: float = 5.0  # word aggregation, Eq. 10
    gamma3: float = 10.0  # batch posterior, Eq. 11
    lam: float = 5.0  # TRAIN.SMOOTH.LAMBDA: 5 for CUB (bird_attn2.yml), 50 for COCO
    kl_w: float = 1.0  # trainer.py: errG_total += KL_loss(mu, logvar)


CUB_LOSS = AttnGANLoss()
COCO_LOSS = AttnGANLoss(lam=50.0)  # coco_attn2.yml


# ---------------------------------------------------------------------- DAMSM


def cosine(a: Tensor, b: Tensor, dim: int, eps: float = 1e-8) -> Tensor:
    """a.b / max(|a| |b|, eps) along `dim` (losses.cosine_similarity's clamp)."""
    return (a * b).sum(dim) / (a.norm(dim=dim) * b.norm(dim=dim)).clamp(min=eps)


def region_word_attention(
    regions: Tensor, words: Tensor, pad: Tensor, *, gamma1: float
) -> tuple[Tensor, Tensor]:
    """Eq. 7-9 for every image against every caption: regions (Bi, D, H, W), words (Bc, D, T),
    pad (Bc, T) True at padded words -> each word's region context (Bi, Bc, D, T) and the
    attention over the regions (Bi, Bc, T, H, W) (zero rows past a caption's length)."""
    bi, d, h, w = regions.shape
    v = regions.reshape(bi, d, h * w)  # (Bi, D, R)
    s = torch.matmul(v.transpose(1, 2)[:, None], words[None])  # Eq. 7: (Bi, Bc, R, T)
    s = s.masked_fill(pad[None, :, None, :], torch.finfo(s.dtype).min)
    s_bar = s.softmax(dim=3)  # Eq. 8: over the caption's words, for each region
    alpha = (gamma1 * s_bar).transpose(2, 3).softmax(dim=3)  # Eq. 9: over regions (Bi, Bc, T, R)
    context = torch.matmul(v[:, None], alpha.transpose(2, 3))  # (Bi, Bc, D, T)
    alpha = alpha.masked_fill(pad[None, :, :, None], 0)
    return context, alpha.reshape(bi, words.shape[0], -1, h, w)


def word_relevance(
    regions: Tensor, words: Tensor, pad: Tensor, *, gamma1: float, gamma2: float
) -> Tensor:
    """(Bi, Bc) R(Q_i, D_j) as the official code computes it: log sum_words exp(g2 cos(c, e)),
    which is g2 times Eq. 10's value."""
    _check_words(words, pad)
    words = words.masked_fill(pad[:, None, :], 0)  # padded features never reach a number
    context, _ = region_word_attention(regions, words, pad, gamma1=gamma1)
    cos = cosine(context, words[None], dim=2)  # (Bi, Bc, T): R(c_i, e_i) of Eq. 10
    cos = (gamma2 * cos).masked_fill(pad[None], -torch.inf)
    return torch.logsumexp(cos, dim=2)


def _posterior(scores: Tensor, class_ids: Tensor | None) -> tuple[Tensor, ...]:
    """Eq. 11-13 on (B, B) scores (row: image, column: caption), batch means: (-log P(D_i | Q_i),
    -log P(Q_i | D_i)); same-class pairs other than the true one are no negatives (-inf)."""
    b = scores.shape[0]
    if class_ids is not None:
        class_ids = torch.as_tensor(class_ids, device=scores.device)
        same = class_ids[:, None] == class_ids[None, :]
        same &= ~torch.eye(b, dtype=torch.bool, device=scores.device)
        scores = scores.masked_fill(same, -torch.inf)
    target = torch.arange(b, device=scores.device)
    return F.cross_entropy(scores, target), F.cross_entropy(scores.T, target)


def words_loss(regions: Tensor, words: Tensor, pad: Tensor, *, class_ids: Tensor | None = None,
               loss: AttnGANLoss = CUB_LOSS) -> dict[str, Tensor]:  # fmt: skip
    """The word-level DAMSM loss (losses.words_loss): regions (B, D, H, W), words (B, D, T), pad
    (B, T) -> {"w_loss0": image -> caption (L1^w), "w_loss1": caption -> image (L2^w)}; with
    `class_ids` (B,), captions of the image's class are no negatives."""
    _check_pair(regions.shape[:2], words.shape[:2], "regions (B, D, H, W)", "words (B, D, T)")
    r = word_relevance(regions, words, pad, gamma1=loss.gamma1, gamma2=loss.gamma2)
    w0, w1 = _posterior(loss.gamma3 * r, class_ids)
    return {"w_loss0": w0, "w_loss1": w1}


def sent_loss(image_code: Tensor, sentence: Tensor, *, class_ids: Tensor | None = None,
              loss: AttnGANLoss = CUB_LOSS) -> dict[str, Tensor]:  # fmt: skip
    """The sentence-level DAMSM loss (losses.sent_loss: cos(v_bar, e_bar) in Eq. 11-13): image
    codes (B, D), sentences (B, D) -> {"s_loss0": image -> caption, "s_loss1": the reverse}."""
    _check_pair(image_code.shape, sentence.shape, "image codes (B, D)", "sentences (B, D)")
    norms = image_code.norm(dim=1, keepdim=True) * sentence.norm(dim=1, keepdim=True).T
    scores = image_code @ sentence.T / norms.clamp(min=1e-8)  # (B, B) cosines
    s0, s1 = _posterior(loss.gamma3 * scores, class_ids)
    return {"s_loss0": s0, "s_loss1": s1}


def damsm_loss(regions: Tensor, image_code: Tensor, words: Tensor, sentence: Tensor,
               pad: Tensor, *, class_ids: Tensor | None = None,
               loss: AttnGANLoss = CUB_LOSS) -> dict[str, Tensor]:  # fmt: skip
    """L_DAMSM (Eq. 14): the four terms and their sum under "total"."""
    terms = {**words_loss(regions, words, pad, class_ids=class_ids, loss=loss),
             **sent_loss(image_code, sentence, class_ids=class_ids, loss=loss)}  # fmt: skip
    terms["total"] = sum(terms.values())
    return terms


def _check_pair(a: tuple, b: tuple, name_a: str, name_b: str) -> None:
    if tuple(a) != tuple(b):
        raise InputError(f"{name_a} and {name_b} must agree on B and D, got {tuple(a)} and "
                         f"{tuple(b)}")  # fmt: skip


def _check_words(words: Tensor, pad: Tensor) -> None:
    if pad.dtype != torch.bool or pad.shape != (words.shape[0], words.shape[2]):
        raise InputError(f"pad must be a bool (B, T) mask for words (B, D, T) = "
                         f"{tuple(words.shape)}, got {pad.dtype} {tuple(pad.shape)}")  # fmt: skip
    if bool(pad.all(dim=1).any()):
        raise InputError("every caption needs at least one word: a row of pad is all True")


# ---------------------------------------------------------------------- the GAN losses


def kl_loss(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) of conditioning augmentation, a mean over all entries
    (losses.KL_loss)."""
    return -0.5 * torch.mean(1 + logvar - mu.square() - logvar.exp())


def _bce(p: Tensor, label: float) -> Tensor:
    return F.binary_cross_entropy(p, torch.full_like(p, label))  # nn.BCELoss: log clamped at -100


def discriminator_loss(d: nn.Module, real: Tensor, fake: Tensor,
                       sentence: Tensor) -> dict[str, Tensor]:  # fmt: skip
    """One stage's D loss (losses.discriminator_loss) for our `Discriminator`: real and fake
    images (B, 3, S, S) go through D separately (each its own BatchNorm statistics), the fakes
    detached; "wrong" pairs real image b with caption b + 1."""
    if real.shape[0] < 2:
        raise InputError("discriminator_loss needs a batch of 2 or more (the mismatched pairs)")
    real_code, fake_code = d.features(real), d.features(fake.detach())
    terms = {
        "real": _bce(d.UNCOND_DNET(real_code), 1.0),
        "cond_real": _bce(d.COND_DNET(real_code, sentence), 1.0),
        "fake": _bce(d.UNCOND_DNET(fake_code), 0.0),
        "cond_fake": _bce(d.COND_DNET(fake_code, sentence), 0.0),
        "cond_wrong": _bce(d.COND_DNET(real_code[:-1], sentence[1:]), 0.0),
    }
    terms["total"] = ((terms["real"] + terms["cond_real"]) / 2
                      + (terms["fake"] + terms["cond_fake"] + terms["cond_wrong"]) / 3)  # fmt: skip
    return terms


def generator_loss(discriminators: Sequence[nn.Module], image_encoder: Callable,
                   images: Sequence[Tensor], words: Tensor, sentence: Tensor, pad: Tensor,
                   mu: Tensor, logvar: Tensor, *, class_ids: Tensor | None = None,
                   loss: AttnGANLoss = CUB_LOSS) -> dict[str, Tensor]:  # fmt: skip
    """G's loss (losses.generator_loss + KL_loss): per stage k "g{k}" = BCE(D(x), 1) + BCE(D(x,
    s), 1); the DAMSM terms of the last image under the frozen `image_encoder` (images -> regions,
    code); "kl"; "total" = sum g{k} + lam * (w_loss0 + w_loss1 + s_loss0 + s_loss1) + kl_w kl."""
    terms = {}
    for k, (d, x) in enumerate(zip(discriminators, images, strict=True)):
        cond, uncond = d(x, sentence)
        terms[f"g{k}"] = _bce(uncond, 1.0) + _bce(cond, 1.0)
    regions, code = image_encoder(images[-1])
    damsm = damsm_loss(regions, code, words, sentence, pad, class_ids=class_ids, loss=loss)
    terms.update({k: v for k, v in damsm.items() if k != "total"})
    terms["kl"] = kl_loss(mu, logvar)
    adv = sum(terms[f"g{k}"] for k in range(len(images)))
    terms["total"] = adv + loss.lam * damsm["total"] + loss.kl_w * terms["kl"]
    return terms


# ---------------------------------------------------------------------- one iteration


class Optimizers(NamedTuple):
    gen: torch.optim.Adam
    dis: list[torch.optim.Adam]


def optimizers(netG: nn.Module, discriminators: Sequence[nn.Module], *, lr_g: float = G_LR,
               lr_d: float = D_LR) -> Optimizers:  # fmt: skip
    """Adam for G and one per D (trainer.define_optimizers)."""
    return Optimizers(torch.optim.Adam(netG.parameters(), lr=lr_g, betas=BETAS),
                      [torch.optim.Adam(d.parameters(), lr=lr_d, betas=BETAS)
                       for d in discriminators])  # fmt: skip


def train_step(model: AttnGAN, discriminators: Sequence[nn.Module], image_encoder: Callable,
               opts: Optimizers, real_images: Sequence[Tensor], captions: Tensor, *,
               class_ids: Tensor | None = None, loss: AttnGANLoss = CUB_LOSS,
               avg_params: list[Tensor] | None = None,
               generator: torch.Generator | None = None) -> dict[str, float]:  # fmt: skip
    """One iteration of trainer.train for an `AttnGAN` (frozen text encoder, `netG`): the D steps
    on `real_images` (one batch per stage), then the G step; updates `avg_params` (a list of
    tensors shaped like netG's parameters) as the running average when given."""
    words, sentence, pad = model.encode_text(captions)  # no gradient: the encoder is frozen
    noise = torch.randn(captions.shape[0], model.cfg.z_dim, generator=generator)
    images, _, mu, logvar = model.netG(noise, sentence, words, pad, generator=generator)
    out = {}
    for k, (d, opt) in enumerate(zip(discriminators, opts.dis, strict=True)):
        terms = discriminator_loss(d, real_images[k], images[k], sentence)
        optimizer_step(opt, terms["total"])
        out[f"d{k}"] = float(terms["total"].detach())
    with frozen(*discriminators):
        terms = generator_loss(discriminators, image_encoder, images, words, sentence, pad, mu,
                               logvar, class_ids=class_ids, loss=loss)  # fmt: skip
        optimizer_step(opts.gen, terms["total"])
    if avg_params is not None:
        with torch.no_grad():
            for avg, p in zip(avg_params, model.netG.parameters(), strict=True):
                avg.mul_(G_EMA_DECAY).add_(p, alpha=1 - G_EMA_DECAY)
    return {**out, **{f"g_{k}": float(v.detach()) for k, v in terms.items()}}


def damsm_step(text_encoder: nn.Module, image_encoder: nn.Module, opt: torch.optim.Optimizer,
               images: Tensor, captions: Tensor, *, class_ids: Tensor | None = None,
               loss: AttnGANLoss = CUB_LOSS) -> dict[str, float]:  # fmt: skip
    """One step of pretrain_DAMSM.train: L_DAMSM on real images (B, 3, H, W) and their captions
    (B, T) padded with 0, the text encoder's gradient norm clipped to 0.25, then Adam
    (`torch.optim.Adam(params, lr=DAMSM_LR, betas=BETAS)` over the text encoder and the image
    encoder's trainable heads)."""
    lengths = caption_lengths(captions)  # tokens before the first padding id 0
    words, sentence = text_encoder(captions, lengths)
    pad = torch.arange(captions.shape[1], device=captions.device)[None] >= lengths[:, None]
    regions, code = image_encoder(images)
    terms = damsm_loss(regions, code, words, sentence, pad, class_ids=class_ids, loss=loss)
    opt.zero_grad(set_to_none=True)
    terms["total"].backward()
    nn.utils.clip_grad_norm_(text_encoder.parameters(), DAMSM_GRAD_CLIP)
    opt.step()
    return {k: float(v.detach()) for k, v in terms.items()}


# ---------------------------------------------------------------------- R-precision


def r_precision(image_features: Tensor, sentence_features: Tensor, *,
                candidates: int = 100, repeats: int = 1, generator: torch.Generator,
                chunk: int = 256) -> float:  # fmt: skip
    """R-precision at R = 1 (§4): image i (its global DAMSM code, row i of (N, D)) queries its
    true caption (row i of the sentence vectors, (N, D)) among `candidates` - 1 others drawn
    without replacement from the remaining N - 1, ranked by cosine similarity. The fraction of
    images whose true caption ranks first, averaged over images and `repeats` fresh draws of the
    negatives. A tie with k negatives scores 1 / (k + 1), the expectation of a random ranking.
    (Table 2 gives a mean +- std over repeated evaluations; call this once per evaluation.)"""
    n = image_features.shape[0]
    if image_features.ndim != 2 or sentence_features.shape != image_features.shape:
        raise InputError(f"image and sentence features must both be (N, D), got "
                         f"{tuple(image_features.shape)} and {tuple(sentence_features.shape)}")  # fmt: skip
    if not 2 <= candidates <= n:
        raise InputError(f"candidates must lie in [2, N = {n}], got {candidates}")
    img = F.normalize(image_features.detach().cpu().double(), dim=1)
    sen = F.normalize(sentence_features.detach().cpu().double(), dim=1)
    true = (img * sen).sum(1)  # (N,)
    hits = torch.zeros((), dtype=torch.float64)
    for _ in range(repeats):
        for start in range(0, n, chunk):
            rows = torch.arange(start, min(start + chunk, n))
            u = torch.rand(len(rows), n, generator=generator, dtype=torch.float64)
            u[torch.arange(len(rows)), rows] = 2.0  # never the true caption
            neg = u.topk(candidates - 1, dim=1, largest=False).indices  # (chunk, candidates - 1)
            scores = torch.bmm(sen[neg], img[rows, :, None]).squeeze(2)  # cosines of the negatives
            above = (scores > true[rows, None]).any(1)
            ties = (scores == true[rows, None]).sum(1)
            hits += torch.where(above, 0.0, 1.0 / (1 + ties)).sum()
    return float(hits) / (n * repeats)
