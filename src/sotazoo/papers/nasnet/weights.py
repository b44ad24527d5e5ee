"""NASNet-A checkpoints: the Keras port of the TF-Slim release.

The TF-Slim release (`nasnet-a_{mobile,large}_04_10_2017.tar.gz`, linked from the slim README)
is a TensorFlow checkpoint inside a tarball with no published digest: unpack it yourself and pass
`model.ckpt.index` (`convert.read_tf_slim` reads it without TensorFlow). The Keras applications
ship the same weights converted to HDF5 (`NASNet-mobile.h5`, `NASNet-large.h5`; URLs and MD5
digests from `keras/src/applications/nasnet.py`, `file_hash`), 1000 classes (the background class
dropped). Keras publishes MD5 only, which sotazoo records but does not trust for a download:
fetch the file yourself and pass its path.

The Keras network differs from TF-Slim's at the borders of its stride-2 pools (zero padding
counted by the averages and seen by the maxima): `count_pool_padding=True,
zero_pad_max_pool=True` computes what Keras computes; our default computes as TF-Slim, whose
checkpoint these are (tests/papers/test_nasnet.py measures both).

Metrics: the slim README's ImageNet top-1/top-5 of the release these files convert.

`nasnet_mini.sotazoo`: the browser demo's classifier, trained here by `sotazoo train nasnet_mini
--seed 0` (train.py; its log beside it in checkpoints/).
"""

from sotazoo.data import SHAPE_CLASSES
from sotazoo.weights import Weights, trained_here

# The demo classifier's normalisation of the shapes images ([0, 1] RGB), used by its recipe
# (train.py): the same constants as SENet's seresnet_mini, which trains on the same data.
MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)
_KERAS = "https://storage.googleapis.com/tensorflow/keras-applications/nasnet/"
_SOURCE = "TF-Slim README (research/slim), the checkpoint these Keras files convert: ImageNet val"
_RECIPE = "https://github.com/tensorflow/models/tree/master/research/slim (nasnet.py configs)"
_LICENSE = "Apache-2.0 (tensorflow/models; keras-applications)"

WEIGHTS = (
    Weights(
        model="nasnet_a_mobile",
        tag="official",
        urls=(_KERAS + "NASNet-mobile.h5",),
        sha256="",
        md5="020fb642bf7360b370c678b08e0adf61",
        filename="NASNet-mobile.h5",
        format="keras_h5",
        num_params=5_289_978,
        metrics={"imagenet_top1": 74.0, "imagenet_top5": 91.6},
        metrics_source=_SOURCE,
        recipe=_RECIPE,
        license=_LICENSE,
        transforms={"resize": 256, "crop": 224, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
    ),
    Weights(
        model="nasnet_a_large",
        tag="official",
        urls=(_KERAS + "NASNet-large.h5",),
        sha256="",
        md5="11577c9a518f0070763c2b964a382f17",
        filename="NASNet-large.h5",
        format="keras_h5",
        num_params=88_753_150,
        metrics={"imagenet_top1": 82.7, "imagenet_top5": 96.2},
        metrics_source=_SOURCE,
        recipe=_RECIPE,
        license=_LICENSE,
        transforms={"resize": 378, "crop": 331, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
    ),
    trained_here(
        "nasnet",
        "nasnet_mini",
        sha256="cff0f1405e2da810aae76bdff84a80ce7d3022ba0f96e07b3b8e0ef53e8e983c",
        num_params=230_362,
        metrics={"shapes_val_top1": 99.2},
        measured_on="2,000 held-out shapes-in-clutter images (seed 2), never trained on",
        transforms={"size": 32, "mean": MEAN, "std": STD, "classes": SHAPE_CLASSES},
    ),
)
