"""The errors sotazoo raises; each message names the problem and, where there is one, the fix."""


class SotazooError(Exception):
    """Base class of sotazoo's errors (the CLI prints these without a traceback)."""


class CardError(SotazooError, ValueError):
    """A card file is missing, unreadable or breaks the schema."""


class UnknownNameError(SotazooError, KeyError):
    """A model, paper or weights name that does not exist; the message suggests close names."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0])


class WeightsError(SotazooError, RuntimeError):
    """A weight file is missing, unreadable, tampered with, or does not fit the model."""


class InputError(SotazooError, ValueError):
    """An input tensor has the wrong rank, channel count, dtype, size or values."""
