"""How a laptop MUNIT is scored: diversity of one input's translations, proxy FID, content kept.

The paper scores edges->shoes by LPIPS diversity (the mean LPIPS distance between pairs of outputs
for one input, averaged over inputs) and by human preference. Neither fits here: LPIPS
needs ImageNet-trained VGG/AlexNet weights, which cannot be downloaded (facts §0), and there are
no raters. The project's offline feature network is the FID proxy (`sotazoo.metrics.fid_proxy`),
a 16x16 grey digit classifier; its standard use (`sotazoo.metrics.fid.ProxyFeatures`) converts
an RGB image to luma first, which would hide most of a colour change (two colours of equal luma
look alike). So the feature of an image here is the proxy's 64-d embedding of EACH of its three
colour channels, resampled to 16x16 as the proxy's own inputs are, concatenated: 192 numbers
(`ColourProxyFeatures`). In it:
- diversity: for each of `inputs` held-out edge maps, `k` translations with independent style
  codes s ~ N(0, I) (the ablation: its one output, s = 0), the mean Euclidean distance over the
  k(k-1)/2 pairs, averaged over the inputs. Two references from real coloured digits: the same
  number for k real colourings of each held-out digit (the data's own diversity given a shape,
  what a perfect translator would reach), and the mean distance over all pairs of `inputs`
  real images of different digits and colours (the paper's "real data" row: random pairs);
- quality: proxy FID (`sotazoo.metrics.fid.fid` with these features) of the translations of all
  held-out edge maps, `fid_styles` style codes each, against as many held-out real coloured
  digits (the held-out digits painted `fid_styles` times with data.TEST_SEED's colours). Lower is
  better; its values are on the proxy's own scale, whose floor is the FID of as many other real
  paintings of the same digits. The luma proxy FID is reported beside it;
- content kept (reported, not judged): the proxy classifier's digit top-1 on each translation's
  "ink map", the RGB distance of every pixel from the image's border colour, scaled to [-1, 1].
  The same map of the real coloured digits gives the reference accuracy.
Evaluation style codes come from `EVAL_SEED`, the same for every arm, seed and checkpoint.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import nn

from sotazoo.papers.munit import data

EVAL_SEED = 12_345  # style codes of every evaluation; training uses other generators


class ColourProxyFeatures(nn.Module):
    """(N, 3, H, W) in [-1, 1] -> (N, 192): the FID proxy's embedding of each colour channel."""

    dim = 192

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from sotazoo.data.digits import resample
        from sotazoo.metrics.fid_proxy import PROXY_SIZE

        n, c = x.shape[:2]
        channels = resample(x.reshape(n * c, 1, *x.shape[2:]), PROXY_SIZE)
        return self.net.features(channels.clamp(-1, 1)).reshape(n, c * 64)  # (N, C*64)


@torch.no_grad()
def translate(model: nn.Module, x_a: torch.Tensor, s_b: torch.Tensor, batch: int = 256):
    """Domain-A images -> domain B with style codes `s_b`, in eval mode (the model's mode is
    restored after)."""
    was = model.training
    model.eval()
    try:
        out = [model.gen_b.decode(model.gen_a.enc_content(x_a[i : i + batch]), s_b[i : i + batch])
               for i in range(0, len(x_a), batch)]  # fmt: skip
        return torch.cat(out)
    finally:
        model.train(was)


def eval_styles(n: int, style_dim: int, *, style: bool) -> torch.Tensor:
    """(n, style_dim, 1, 1): N(0, I) codes from EVAL_SEED, or zeros for the ablation."""
    if not style:
        return torch.zeros(n, style_dim, 1, 1)
    return torch.randn(n, style_dim, 1, 1, generator=torch.Generator().manual_seed(EVAL_SEED))


def mean_pairwise_distance(feats: torch.Tensor) -> float:
    """(inputs, k, D) -> the mean Euclidean distance over the k(k-1)/2 pairs of each input,
    averaged over the inputs."""
    k = feats.shape[1]
    d = torch.cdist(feats.double(), feats.double())  # (inputs, k, k)
    return float(d.sum((1, 2)).mean() / (k * (k - 1)))


def ink_map(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] -> (N, 1, H, W): each pixel's RGB distance from the mean colour of
    the 2-pixel border, divided by the image's largest, mapped to [-1, 1] (bright = ink)."""
    border = torch.ones_like(x[:, :1], dtype=torch.bool)
    border[:, :, 2:-2, 2:-2] = False
    bg = (x * border).sum((2, 3), keepdim=True) / border.sum((2, 3), keepdim=True)
    dist = (x - bg).square().sum(1, keepdim=True).sqrt()
    return 2 * dist / dist.amax((2, 3), keepdim=True).clamp_min(1e-6) - 1


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    inputs: int = 100  # held-out edge maps for diversity
    k: int = 5  # translations per input (10 pairs each)
    fid_styles: int = 2  # style codes per held-out edge map for the FID


class Evaluator:
    """The held-out sets, their features and statistics, computed once."""

    def __init__(self, cfg: EvalConfig = EvalConfig()) -> None:
        from sotazoo.metrics.fid_proxy import load_proxy

        self.cfg = cfg
        self.proxy = load_proxy()
        self.features = ColourProxyFeatures(self.proxy).eval()
        sets = data.heldout(max(2 * cfg.fid_styles, cfg.k))
        self.x_a, self.labels = sets["a"], sets["labels"]
        n = len(self.x_a)
        self.real_b = sets["b"][: cfg.fid_styles * n]  # colouring-major
        self.other_real_b = sets["b"][cfg.fid_styles * n : 2 * cfg.fid_styles * n]
        self.real_by_digit = sets["b"].reshape(-1, n, *sets["b"].shape[1:])[: cfg.k]  # (k, N, ...)

    @cached_property
    def real_stats(self) -> dict:
        from sotazoo.metrics.fid import ProxyFeatures, feature_stats

        return {"colour": feature_stats(self.real_b, features=self.features),
                "luma": feature_stats(self.real_b, features=ProxyFeatures(self.proxy))}  # fmt: skip

    @cached_property
    def reference(self) -> dict[str, float]:
        """The real data's own figures: diversity given the shape and over random pairs, the
        FID of other real paintings of the same digits, content top-1 of the ink maps."""
        k, n = self.cfg.k, self.cfg.inputs
        x = self.real_by_digit[:, :n].transpose(0, 1).reshape(n * k, 3, data.SIZE, data.SIZE)
        with torch.no_grad():
            f = self.features(x).reshape(n, k, -1)
            pairs = self.features(self.real_b[:n])[None]  # one "input" holding n real images
        with _quiet():
            fid = _fid(self.real_stats["colour"], self.other_real_b, self.features)
        return {"diversity_given_shape": mean_pairwise_distance(f),
                "diversity_random_pairs": mean_pairwise_distance(pairs), "fid": fid,
                "content_top1": self.content_top1(self.real_b)}  # fmt: skip

    @torch.no_grad()
    def content_top1(self, x_b: torch.Tensor) -> float:
        """Digit top-1 (%) of the proxy classifier on the ink maps of `x_b`, colouring-major
        translations or paintings of the held-out digits."""
        from sotazoo.data.digits import resample
        from sotazoo.metrics.fid_proxy import PROXY_SIZE

        labels = self.labels.repeat(len(x_b) // len(self.labels))
        pred = self.proxy(resample(ink_map(x_b), PROXY_SIZE).clamp(-1, 1)).argmax(1)
        return 100.0 * float((pred == labels).float().mean())

    def __call__(self, model: nn.Module, *, style: bool = True) -> dict[str, float]:
        """Diversity, proxy FIDs (colour and luma) and content top-1 of `model`'s A -> B
        translations of the held-out edge maps."""
        from sotazoo.metrics.fid import ProxyFeatures

        cfg, n_all, dim = self.cfg, len(self.x_a), model.cfg.style_dim
        n, k = cfg.inputs, cfg.k
        s = eval_styles(max(n * k, n_all * cfg.fid_styles), dim, style=style)
        x_div = translate(model, self.x_a[:n].repeat_interleave(k, 0), s[: n * k])
        with torch.no_grad():
            diversity = mean_pairwise_distance(self.features(x_div).reshape(n, k, -1))
        fake = translate(model, self.x_a.repeat(cfg.fid_styles, 1, 1, 1),
                         s[: n_all * cfg.fid_styles]).clamp(-1, 1)  # fmt: skip
        if not torch.isfinite(fake).all():
            nan = float("nan")
            return {"diversity": nan, "fid": nan, "fid_luma": nan, "content_top1": nan}
        with _quiet():
            return {
                "diversity": diversity,
                "fid": _fid(self.real_stats["colour"], fake, self.features),
                "fid_luma": _fid(self.real_stats["luma"], fake, ProxyFeatures(self.proxy)),
                "content_top1": self.content_top1(fake),
            }


def _fid(real_stats, fake: torch.Tensor, features: nn.Module) -> float:
    from sotazoo.metrics.fid import fid

    return float(fid(real_stats, fake, features=features))


@contextlib.contextmanager
def _quiet():
    """The 192 features are far from independent (three channels of one picture through one
    network, ReLU units that stay at zero on a whole set), so the covariances are singular and
    SciPy's sqrtm warns at every FID; pytorch-fid's arithmetic copes (it adds eps to the
    diagonals when the square root is not finite, and keeps the real part)."""
    from scipy.linalg import LinAlgWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinAlgWarning)
        yield
