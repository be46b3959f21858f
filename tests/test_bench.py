"""The benchmark's FLOP counter on known graphs, and a tiny end-to-end run."""
import tensorflow as tf

from medgan_lib.bench import count_flops, main


def graph_of(function, *specs: tf.TensorSpec) -> tf.Graph:
    return tf.function(function).get_concrete_function(*specs).graph


def test_matmul_counts_2mnk_and_unused_ops_are_not_counted():
    def product(a, b):
        tf.linalg.matmul(b, b, transpose_b=True)  # traced but never executed: not an output
        return tf.linalg.matmul(a, b)

    graph = graph_of(product, tf.TensorSpec((8, 16)), tf.TensorSpec((16, 4)))
    assert count_flops(graph) == 2 * 8 * 16 * 4


def test_einsum_and_depthwise_gradients_are_counted():
    einsum = graph_of(lambda x, w: tf.einsum("bhwc,fc->bhwf", x, w), tf.TensorSpec((2, 5, 5, 3)), tf.TensorSpec((7, 3)))
    assert count_flops(einsum) == 2 * 2 * 5 * 5 * 3 * 7

    def depthwise_with_gradients(x, w):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            total = tf.reduce_sum(tf.nn.depthwise_conv2d(x, w, strides=[1, 1, 1, 1], padding="SAME"))
        return total, tape.gradient(total, [x, w])

    graph = graph_of(depthwise_with_gradients, tf.TensorSpec((2, 6, 6, 4)), tf.TensorSpec((3, 3, 4, 1)))
    forward = 2 * (2 * 6 * 6 * 4) * 3 * 3
    reduction = count_flops(graph) - 3 * forward  # forward, input gradient, filter gradient
    assert 0 <= reduction <= 2 * 6 * 6 * 4  # the Sum


def test_quick_benchmark_writes_its_table(tmp_path):
    out = tmp_path / "bench.md"
    assert main(["--quick", "--presets", "smoke", "--sizes", "32", "--modes", "scratch",
                 "--rounds", "1", "--steps", "1", "--out", str(out)]) == 0
    report = out.read_text()
    assert "| preset | size | D | loop | images/s | x naive |" in report
    assert "| smoke | 32 | scratch | alternating f32 |" in report
    assert "| smoke | 32 | scratch | simultaneous+fused Adam bf16 |" in report
    assert "| smoke | 32 | scratch | alternating+fused Adam f32 |" in report  # the smoke preset's own loop
    assert "float32" in report and "bf16" in report and "Machine:" in report


def test_presets_without_a_backbone_run_in_their_own_mode_only(monkeypatch):
    from medgan_lib.bench import parse_args, speed_cases
    from medgan_lib.config import PRESETS, preset

    monkeypatch.setitem(PRESETS, "conv-smoke", preset("smoke").replace(preset="conv-smoke", discriminator="dcgan"))
    args = parse_args(["--presets", "smoke", "conv-smoke", "--sizes", "32", "64"])
    assert speed_cases(args) == [("smoke", "32", "transfer"), ("smoke", "32", "scratch"), ("smoke", "64", "transfer"),
                                 ("smoke", "64", "scratch"), ("conv-smoke", "32", "scratch"), ("conv-smoke", "64", "scratch")]


def test_the_medgan_preset_is_timed_in_its_own_loop():
    from medgan_lib.bench import FAST, NAIVE, loop_name, own_loop
    from medgan_lib.config import MEDGAN

    own = own_loop(MEDGAN)
    assert own == {"update_order": "alternating", "cache_real_features": True, "fused_adam": True,
                   "mixed_precision": True}
    assert loop_name(MEDGAN.replace(**own), cache=False) not in {loop_name(MEDGAN.replace(**c), False) for c in (NAIVE, FAST)}
