"""The reference for `sotazoo bench autoaugment_* --vs`: torchvision's `transforms.AutoAugment`
with the same published policy, on uint8 tensors, with our defaults (nearest interpolation,
fill 128), so that both sides do the same kind of work. torchvision has no Cutout nor
SamplePairing and reads some magnitudes otherwise (`method.py` says where); the bench compares
per-image cost, not images (the oracle tests compare images)."""

from __future__ import annotations

from sotazoo.errors import SotazooError


def _torchvision_autoaugment(opts: dict, spec: str):
    from torchvision.transforms import AutoAugment, AutoAugmentPolicy, InterpolationMode

    policy = str(opts.pop("policy", "imagenet"))
    if opts:
        raise SotazooError(f"reference {spec!r}: unknown options {sorted(opts)} (policy=...)")
    try:
        chosen = AutoAugmentPolicy[policy.upper()]
    except KeyError:
        names = [p.name.lower() for p in AutoAugmentPolicy]
        raise SotazooError(f"reference {spec!r}: policy {policy!r} is not one of {names}") from None
    return AutoAugment(chosen, interpolation=InterpolationMode.NEAREST, fill=[128, 128, 128])


REFERENCES = {"torchvision:AutoAugment": _torchvision_autoaugment}
