"""Writes `keras_tiny.h5.gz` and `keras_tiny_io.npz`, once, with Keras itself: the Keras port of
NASNet-A (`keras.applications.nasnet.NASNet`, the network of the released `NASNet-mobile.h5`)
built small, its weights and BN statistics drawn at random, saved in the Keras-2 HDF5 layout of
the released files, with an input batch and the logits Keras computes for it. The tests load the
file through `sotazoo.papers.nasnet.convert` into our model and compare logits. Not run by the
tests: it needs `pip install tensorflow-cpu h5py` (TensorFlow 2.21.0, Keras 3.15.1 wrote the
committed files).

    python tests/data/nasnet/make_keras.py
"""

import gzip
from pathlib import Path

import h5py
import keras
import numpy as np
from keras.src.applications.nasnet import NASNet
from keras.src.legacy.saving import legacy_h5_format

HERE = Path(__file__).resolve().parent
# Mobile's shape (stem of 32 filters, no skip_reduction) with 4 first-stage filters, one Normal
# cell per stage, 64 px inputs, 10 classes; gzipped (the HDF5 headers outweigh the weights).
CONFIG = {
    "penultimate_filters": 96,
    "num_blocks": 1,
    "stem_block_filters": 32,
    "skip_reduction": False,
    "filter_multiplier": 2,
    "classes": 10,
}


def main() -> None:
    keras.utils.set_random_seed(0)
    model = NASNet(
        input_shape=(64, 64, 3),
        include_top=True,
        weights=None,
        classifier_activation=None,
        **CONFIG,
    )
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            n = gamma.shape
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, n),
                    rng.normal(0, 0.2, n),
                    rng.normal(0, 0.2, n),
                    rng.uniform(0.5, 2.0, n),
                ]
            )
        elif isinstance(layer, keras.layers.Dense):
            w, b = layer.get_weights()
            layer.set_weights([w, rng.normal(0, 0.1, b.shape)])
    x = rng.random((1, 64, 64, 3), dtype=np.float32) * 2 - 1  # Keras's NASNet input range
    logits = np.asarray(model(x, training=False))
    with h5py.File(HERE / "keras_tiny.h5", "w", libver="latest") as f:  # compact headers
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    with (
        open(HERE / "keras_tiny.h5", "rb") as src,
        gzip.open(HERE / "keras_tiny.h5.gz", "wb") as dst,
    ):
        dst.write(src.read())
    (HERE / "keras_tiny.h5").unlink()
    np.savez(
        HERE / "keras_tiny_io.npz",
        x=x.transpose(0, 3, 1, 2),
        logits=logits,
        config=np.array(repr(CONFIG)),
    )
    print(keras.__version__, model.count_params(), "parameters", logits[0, :4])


if __name__ == "__main__":
    main()
