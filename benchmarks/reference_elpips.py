"""The reference's E-LPIPS (mkettune/elpips under TensorFlow 2's compat.v1), timed, for
bench_elpips.py; run by the Python given as --reference-python (with TensorFlow). Prints one
JSON line: seconds per draw of E-LPIPS-VGG on their example pair, batches of 10 as their
ex_evaluate_distance.py, after one warm-up batch, and the mean of the timed draws."""
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "golden"))
import make_elpips_tf_golden as tf_golden  # noqa: E402  (the loader, the carrier's weights)


def main(config):
    elpips, tf = tf_golden.load_elpips(config["repo"])
    weights = tf_golden.vgg_weights(config["carrier"])
    a, b = tf_golden.load_pair(tf_golden.ADV_PAIR)
    batch = tf_golden.BATCH
    metric_config = elpips.elpips_vgg(batch_size=batch)
    metric_config.set_scale_levels_by_image_size(a.shape[1], a.shape[2])
    x0, x1 = tf.placeholder(tf.float32), tf.placeholder(tf.float32)
    d = elpips.Metric(metric_config, back_prop=False, custom_net_weights=weights).forward(
        tf.tile(x0, [batch, 1, 1, 1]), tf.tile(x1, [batch, 1, 1, 1]))
    with tf.Session() as sess:
        sess.run(d, {x0: a, x1: b})
        values, start = [], time.perf_counter()
        while len(values) < config["draws"]:
            values.extend(sess.run(d, {x0: a, x1: b}).tolist())
        seconds = (time.perf_counter() - start) / len(values)
    print(json.dumps({"seconds_per_draw": seconds, "draws": len(values),
                      "mean": float(np.mean(values))}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
