"""Writes `tf_slim_tiny/model.ckpt`, once, with TensorFlow: the weights of `keras_tiny.h5.gz`
under the variable names of the TF-Slim release (research/slim/nets/nasnet/nasnet.py and
nasnet_utils.py: `conv0/weights`, `cell_0/comb_iter_0/left/separable_5x5_1/depthwise_weights`,
`cell_0/beginning_bn/gamma`, `reduction_cell_1/prev_bn/beta`, `final_layer/FC/weights`, ...),
plus the variables a training checkpoint also holds (`global_step`, an auxiliary head, a
momentum slot). The tests read it through `sotazoo.tfcheckpoint` and check it converts to the
same network as the Keras file. Not run by the tests: it needs `pip install tensorflow-cpu h5py`
(TensorFlow 2.21.0 wrote the committed files).

    python tests/data/nasnet/make_tf_slim.py
"""

import gzip
import io
import re
from pathlib import Path

import h5py
import numpy as np
import tensorflow as tf

HERE = Path(__file__).resolve().parent
# Keras's separable blocks (cell kind, side, number) -> comb_iter index, from the two ports' cells
SEP = {
    ("normal", "left", 1): 0,
    ("normal", "right", 1): 0,
    ("normal", "left", 2): 1,
    ("normal", "right", 2): 1,
    ("normal", "left", 5): 4,
    ("reduction", "left", 1): 0,
    ("reduction", "right", 1): 0,
    ("reduction", "right", 2): 1,
    ("reduction", "right", 3): 2,
    ("reduction", "left", 4): 4,
}


def keras_weights() -> dict[str, np.ndarray]:
    data = gzip.decompress((HERE / "keras_tiny.h5.gz").read_bytes())
    out = {}
    with h5py.File(io.BytesIO(data), "r") as f:
        for layer in f.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            for w in f[layer].attrs["weight_names"]:
                w = w.decode() if isinstance(w, bytes) else w
                out[f"{layer}/{w.rsplit('/', 1)[-1]}"] = f[layer][w][()]
    return out


def tf_names(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    normal = sorted({int(m[1]) for k in weights if (m := re.match(r"normal_conv_1_(\d+)/", k))})
    n = len(normal) // 3
    cells = {
        "stem_1": "cell_stem_0",
        "stem_2": "cell_stem_1",
        f"reduce_{n}": "reduction_cell_0",
        f"reduce_{2 * n}": "reduction_cell_1",
    }
    for i in normal:
        cells[str(i)] = f"cell_{i - i // (n + 1)}"
    projected = {m[1] for k in weights if (m := re.match(r"adjust_conv_projection_(.+)/", k))}
    out = {}
    for key, value in weights.items():
        layer, var = key.split("/")
        if layer == "stem_conv1":
            name = "conv0/weights"
        elif layer == "stem_bn1":
            name = f"conv0_bn/{var}"
        elif layer == "predictions":
            name = "final_layer/FC/" + {"kernel": "weights", "bias": "biases"}[var]
        elif m := re.fullmatch(
            r"separable_conv_([12])_(bn_)?(normal|reduction)_(left|right)(\d)_(.+)", layer
        ):
            k = SEP[(m[3], m[4], int(m[5]))]
            size = None
            for other, v in weights.items():
                if other.startswith(f"separable_conv_1_{m[3]}_{m[4]}{m[5]}_{m[6]}/depthwise"):
                    size = v.shape[0]
            base = f"{cells[m[6]]}/comb_iter_{k}/{m[4]}/"
            if m[2]:
                name = base + f"bn_sep_{size}x{size}_{m[1]}/{var}"
            else:
                name = base + f"separable_{size}x{size}_{m[1]}/{var.replace('kernel', 'weights')}"
        elif m := re.fullmatch(r"(normal|reduction)_(conv|bn)_1_(.+)", layer):
            name = f"{cells[m[3]]}/" + ("1x1/weights" if m[2] == "conv" else f"beginning_bn/{var}")
        elif m := re.fullmatch(r"adjust_(conv_1|conv_2|conv_projection|bn)_(.+)", layer):
            cell = cells[m[2]]
            part = {
                "conv_1": "path1_conv/weights",
                "conv_2": "path2_conv/weights",
                "conv_projection": "prev_1x1/weights",
            }.get(m[1])
            if part is None:
                part = ("prev_bn/" if m[2] in projected else "final_path_bn/") + var
            name = f"{cell}/{part}"
        else:
            raise KeyError(key)
        out[name] = value
    rng = np.random.default_rng(1)
    out["global_step"] = np.array(1000, dtype=np.int64)
    out[f"aux_{2 * n - 1}/aux_logits/proj/weights"] = rng.normal(size=(1, 1, 16, 128)).astype(
        np.float32
    )
    out["final_layer/FC/weights/Momentum"] = np.zeros_like(out["final_layer/FC/weights"])
    return out


def main() -> None:
    values = tf_names(keras_weights())
    g = tf.Graph()
    with g.as_default():
        variables = [tf.compat.v1.Variable(v, name=k) for k, v in values.items()]
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session(graph=g) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            (HERE / "tf_slim_tiny").mkdir(exist_ok=True)
            saver.save(sess, str(HERE / "tf_slim_tiny" / "model.ckpt"), write_meta_graph=False)
    (HERE / "tf_slim_tiny" / "checkpoint").unlink()  # the .index file is what users pass
    print(tf.__version__, len(values), "variables")


if __name__ == "__main__":
    main()
