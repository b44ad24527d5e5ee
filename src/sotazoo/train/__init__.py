"""Training helpers: seeding, a plain supervised loop, evaluation. No framework."""

from sotazoo.train.loop import TrainConfig, evaluate, fit, seed_everything, seeded_model

__all__ = ["TrainConfig", "evaluate", "fit", "seed_everything", "seeded_model"]
