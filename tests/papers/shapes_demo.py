"""The check shared by the two classifiers trained here on shapes (SENet's seresnet_mini, NASNet's
nasnet_mini): their committed weights match their log, and the held-out accuracy they record is
what the weights score when evaluated again."""

import json

import sotazoo


def check_shapes_classifier(model: str, recipe_module) -> None:
    """`recipe_module` is the paper's train.py, with its `ShapesRecipe` and `shapes_split`."""
    from sotazoo.train import evaluate
    from sotazoo.weights import fetch

    w = sotazoo.get_weights(model, "sotazoo")
    path = fetch(w)
    log = json.loads(path.with_name(f"{model}.sotazoo.log.json").read_text())
    assert log["sha256"] == w.sha256 and log["metrics"] == dict(w.metrics)
    assert log["command"] == f"sotazoo train {model} --seed 0"
    assert not log["git_dirty"] and log["git_commit"] != "unknown"
    r = recipe_module.ShapesRecipe()
    x, y = recipe_module.shapes_split(r.n_val, r.val_seed)
    net = sotazoo.create_model(model, weights="sotazoo")
    # the metric was rounded to 0.01 % of 2,000 images (0.05 % each): recomputed, it is the same
    assert round(100 * evaluate(net, x, y), 2) == w.metrics["shapes_val_top1"]
