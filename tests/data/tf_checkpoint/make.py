"""Writes the TensorFlow checkpoints in this folder, once, with TensorFlow itself; the tests read
them with `sotazoo.tfcheckpoint` (no TensorFlow) and compare with `expected.npz`, the same arrays
written by numpy. Not run by the tests: it needs `pip install tensorflow-cpu` (2.21.0 wrote the
committed files) in an environment of its own.

    python tests/data/tf_checkpoint/make.py

- `name_based/model.ckpt`: TF1-style (`tf.compat.v1.train.Saver`, graph mode), keys are the
  variables' names as in the TF-Slim releases (NASNet, DeepLab); 300 small variables so the index
  spans several blocks with prefix-compressed keys, dtypes float32/float64/float16/bfloat16/int32/
  int64/uint8/bool, a scalar and an empty tensor.
- `object_based/ckpt-1`: TF2-style (`tf.train.Checkpoint`), with its string object graph.
"""

from pathlib import Path

import numpy as np
import tensorflow as tf

HERE = Path(__file__).resolve().parent


def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2017)
    out = {
        "cell_stem_0/1x1/weights": rng.standard_normal((1, 1, 3, 8)).astype(np.float32),
        "cell_stem_0/beginning_bn/moving_mean": rng.standard_normal(8).astype(np.float32),
        "final_layer/FC/biases": rng.standard_normal(11).astype(np.float64),
        "half/value": rng.standard_normal((2, 3)).astype(np.float16),
        "ints/int32": rng.integers(-1000, 1000, (5,)).astype(np.int32),
        "ints/uint8": rng.integers(0, 255, (4, 4)).astype(np.uint8),
        "flags/bool": rng.random(7) > 0.5,
        "global_step": np.array(123456789012, dtype=np.int64),
        "empty/vector": np.zeros((0, 3), dtype=np.float32),
        "big/weights": rng.standard_normal((40, 50)).astype(np.float32),
    }
    for i in range(300):
        out[
            f"cell_{i // 10}/comb_iter_{i % 5}/left/separable_3x3_{i % 2 + 1}/depthwise_weights"
        ] = rng.standard_normal((3, 3, 2, 1)).astype(np.float32)
    return out


def bfloat16_source() -> np.ndarray:
    return np.array([1.0, -2.5, 3.140625, 0.0, 1e-3], dtype=np.float32)  # bfloat16 rounds 1e-3


def main() -> None:
    values = arrays()
    g = tf.Graph()
    with g.as_default():
        variables = [tf.compat.v1.Variable(v, name=k) for k, v in values.items()]
        bf = tf.compat.v1.Variable(tf.cast(bfloat16_source(), tf.bfloat16), name="bf16/value")
        saver = tf.compat.v1.train.Saver(variables + [bf], save_relative_paths=True)  # no machine path
        with tf.compat.v1.Session(graph=g) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            (HERE / "name_based").mkdir(exist_ok=True)
            saver.save(sess, str(HERE / "name_based" / "model.ckpt"), write_meta_graph=False)
            bf_read = sess.run(tf.cast(bf, tf.float32))
    values["bf16/value"] = bf_read  # what bfloat16 keeps, read back through TensorFlow
    ckpt = tf.train.Checkpoint(
        kernel=tf.Variable(values["cell_stem_0/1x1/weights"]), step=tf.Variable(np.int64(7))
    )
    ckpt.write(str(HERE / "object_based" / "ckpt-1"))
    np.savez(HERE / "expected.npz", **{k.replace("/", "|"): v for k, v in values.items()})
    print(tf.__version__, "wrote", sorted(p.name for p in HERE.rglob("*") if p.is_file()))


if __name__ == "__main__":
    main()
