"""Writes `tf_tiny/model.ckpt` and `tf_tiny_io.npz`, once, with TensorFlow: a small network in
the layout of the official SID checkpoints (cchen156/Learning-to-See-in-the-Dark, train_Sony.py:
`g_conv1_1/weights` ... `g_conv10/biases` from slim.conv2d, and the four transposed-convolution
filters as the unnamed `Variable`, `Variable_1`, `Variable_2`, `Variable_3` in the order the
network creates them, plus Adam slots and `beta1_power` as a training checkpoint holds them),
at a sixteenth of the widths (2 to 32 channels), with random weights; and its output on a random
packed input, computed here with TensorFlow's own ops (conv2d SAME, LeakyReLU as max(0.2 x, x),
2x2 max pooling, conv2d_transpose to the skip's shape, concatenation [upsampled, skip], 1x1
conv, depth_to_space(2)). The tests load the checkpoint through `sotazoo.papers.sid.convert`
and compare outputs. Not run by the tests: it needs `pip install tensorflow-cpu` (TensorFlow
2.21.0 wrote the committed files).

    python tests/data/sid/make_tf.py
"""

from pathlib import Path

import numpy as np
import tensorflow as tf

HERE = Path(__file__).resolve().parent
WIDTHS = (2, 4, 8, 16, 32)
rng = np.random.default_rng(0)


def weights(shape, std):
    return tf.Variable(rng.normal(0, std, shape).astype(np.float32))


names, variables = {}, []


def conv(x, cout, k, scope):
    cin = x.shape[-1]
    w = tf.Variable(rng.normal(0, (2 / (k * k * cin)) ** 0.5, (k, k, cin, cout)).astype(np.float32),
                    name=f"{scope}/weights")
    b = tf.Variable(rng.normal(0, 0.1, (cout,)).astype(np.float32), name=f"{scope}/biases")
    names[f"{scope}/weights"], names[f"{scope}/biases"] = w, b
    return tf.nn.conv2d(x, w, 1, "SAME") + b


def lrelu(x):
    return tf.maximum(x * 0.2, x)


deconv_index = [0]


def up_concat(x1, x2, cout):
    k = deconv_index[0]
    name = "Variable" if k == 0 else f"Variable_{k}"
    deconv_index[0] += 1
    f = tf.Variable(rng.normal(0, 0.2, (2, 2, cout, x1.shape[-1])).astype(np.float32))
    names[name] = f
    up = tf.nn.conv2d_transpose(x1, f, tf.shape(x2), strides=[1, 2, 2, 1])
    return tf.concat([up, x2], 3)


def network(x):
    skips = []
    for lvl, w in enumerate(WIDTHS, start=1):
        if lvl > 1:
            x = tf.nn.max_pool2d(x, 2, 2, "SAME")
        x = lrelu(conv(x, w, 3, f"g_conv{lvl}_1"))
        x = lrelu(conv(x, w, 3, f"g_conv{lvl}_2"))
        skips.append(x)
    for lvl, w in zip(range(6, 10), WIDTHS[-2::-1], strict=True):
        x = up_concat(x, skips[9 - lvl], w)
        x = lrelu(conv(x, w, 3, f"g_conv{lvl}_1"))
        x = lrelu(conv(x, w, 3, f"g_conv{lvl}_2"))
    x = conv(x, 12, 1, "g_conv10")
    return tf.nn.depth_to_space(x, 2)


packed = rng.uniform(0, 1, (1, 32, 48, 4)).astype(np.float32)  # NHWC, as the official code
out = network(tf.constant(packed)).numpy()
# what a training checkpoint also holds: Adam's slots of one variable and its beta powers
extra = {"g_conv1_1/weights/Adam": tf.Variable(tf.zeros_like(names["g_conv1_1/weights"])),
         "beta1_power": tf.Variable(0.9), "beta2_power": tf.Variable(0.999)}
ckpt = tf.train.Checkpoint()
(HERE / "tf_tiny").mkdir(exist_ok=True)
# the checkpoint keys are the official variable names (tf.compat.v1 Saver, relative paths)
saver = tf.compat.v1.train.Saver(var_list={**names, **extra}, save_relative_paths=True)
saver.save(sess=None, save_path=str(HERE / "tf_tiny" / "model.ckpt"), write_meta_graph=False)
np.savez_compressed(HERE / "tf_tiny_io.npz", input=packed.transpose(0, 3, 1, 2),
                    output=out.transpose(0, 3, 1, 2))
print({k: tuple(v.shape) for k, v in names.items()})
