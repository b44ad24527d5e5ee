"""sotazoo: read, run, reproduce and compare the state of the art in computer vision.

>>> import sotazoo
>>> sotazoo.list_papers()                    # papers with a card, in the page's order
>>> sotazoo.list_models(paper="senet")
>>> model = sotazoo.create_model("seresnet50", weights="official")
>>> sotazoo.list_weights("edsr_baseline_x4")  # official and ours, with sources and metrics
>>> sotazoo.predict("edsr_baseline_x4", ["photo.jpg"], out="up/")  # as `sotazoo predict`
"""

from sotazoo.cards import PaperCard
from sotazoo.errors import CardError, InputError, SotazooError, UnknownNameError, WeightsError
from sotazoo.inference import predict
from sotazoo.registry import (
    create_method,
    create_model,
    get_paper,
    get_weights,
    list_methods,
    list_models,
    list_papers,
    list_weights,
)
from sotazoo.weights import Weights

__version__ = "0.1.0"
__all__ = [
    "CardError",
    "InputError",
    "PaperCard",
    "SotazooError",
    "UnknownNameError",
    "Weights",
    "WeightsError",
    "create_method",
    "create_model",
    "get_paper",
    "get_weights",
    "list_methods",
    "list_models",
    "list_papers",
    "list_weights",
    "predict",
]
