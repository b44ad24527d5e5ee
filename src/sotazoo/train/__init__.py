"""Training helpers: seeding, a plain supervised loop, evaluation. No framework."""

from sotazoo.train.loop import TrainConfig, evaluate, fit, seed_everything

__all__ = ["TrainConfig", "evaluate", "fit", "seed_everything"]
