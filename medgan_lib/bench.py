"""Training-step benchmark: the naive loop against the project's fast loop, side by side.

    python -m medgan_lib.bench [--quick] [--out runs/bench/bench.md]     # speed
    python -m medgan_lib.bench quality [--epochs 120]                     # losses and samples, f32 vs bf16

**speed.** Two model families: the ``paper`` preset's (Xception transfer discriminator, the
paper's generator at width 1, batch 16) and the ``cpu`` preset's (what ``make reproduce``
trains: MobileNet alpha 0.25, width-8 generator, batch 32), each at 64 and 128 px (one
upsampling level per doubling from the 4 px start) and with the frozen ``transfer`` backbone and a
trainable ``scratch`` one; a preset whose discriminator has no backbone (the recommended
``medgan`` preset, where it is on the list) runs in its own mode only. Per case it builds every loop's models with equal weights (copied)
and times training steps in one process, interleaved round by round (order reversed every round)
after a warm-up; steps per round are chosen so that the naive loop takes about
``--round-seconds``:

* ``alternating f32`` = the naive loop: the paper's strict alternation without caching, float32,
  Keras' Adam. The D step runs G and the discriminator on the real and the generated images; the
  G step runs G again and the backbone forward and backward (``update_order="alternating"``,
  ``cache_real_features=False``, ``fused_adam=False``, ``mixed_precision=False``);
* then the optimisations one at a time, cumulatively: ``+cache`` (real features computed once;
  transfer only), ``simultaneous`` (one generated batch and one D forward for both updates),
  ``+fused Adam`` (one fused kernel per variable update; this row is the ``cpu`` preset's loop) and
  ``bf16`` (``mixed_precision=True``, where the CPU has bf16 instructions): the fast loop.

A preset whose own loop is none of these (``medgan``: alternating + fused Adam + bf16) is also
timed in its own loop, the ``own`` row (:func:`own_loop`).

``--quick`` keeps only the naive, the fast and the preset's own loop, with shorter rounds and no
thread probes.

Per loop: images/s (median over rounds), the ratio to naive, the share of step time spent waiting
for the next batch (``next()`` on the prefetched tf.data iterator), step memory (peak of
TensorFlow's CPU allocator during the loop's steps above what was live before them; the
whole-process RSS high-water mark is reported once), FLOPs per step
and achieved FLOP/s as a share of the float32 and bf16 matrix-multiply rates (best of
measurements taken before every case and at the end of the run). FLOPs are counted on the step's
traced graph with TensorFlow's per-op ``flops`` statistics (the registry ``tf.compat.v1.profiler``
uses; forward and backward, multiply-add = 2), over the ops the step executes (those the outputs
and stateful updates depend on); Einsum and the depthwise-convolution gradients, which TF leaves
unregistered, are registered here. Without ``--quick`` it also times the fast loop under several
thread settings, one subprocess each.

If no ImageNet weights are found (set ``MEDGAN_WEIGHTS_DIR``), ``transfer`` uses the frozen
transfer architecture with random weights (same arithmetic) and the report says so. XLA is not
used (5-11x slower on this CPU).

**quality.** Training runs of the ``cpu`` preset with the naive loop, its own loop (float32) and
the fast loop (bf16), compared on losses and on samples (SWD, precision/recall on pixel features, the
sample grids).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import graph_util, ops

from .config import PRESETS, Config, preset
from .data import load_images, make_dataset
from .discriminator import build_transfer_architecture
from .gan import GAN, cpu_has_native_bf16, make_optimizers, precision_policy
from .generator import build_generator
from .pretrained import WeightsUnavailable
from .rundir import history_path, read_history, sample_path, snapshot_epochs, snapshot_generator
from .sampling import generate_images, latent_batch
from .tables import markdown_table

NAIVE = {"update_order": "alternating", "cache_real_features": False, "fused_adam": False, "mixed_precision": False}
INTERMEDIATE = (  # the optimisations one by one, cumulative
    {**NAIVE, "cache_real_features": True},
    {**NAIVE, "cache_real_features": True, "update_order": "simultaneous"},
    {**NAIVE, "cache_real_features": True, "update_order": "simultaneous", "fused_adam": True},
)
FAST = {**INTERMEDIATE[-1], "mixed_precision": cpu_has_native_bf16()}
THREAD_SETTINGS = ((0, 0), (2, 1), (1, 2), (1, 1))  # (intra_op, inter_op); 0 = TensorFlow's default
BENCH_IMAGES = 256  # phantom images per case
BACKBONE_DISCRIMINATORS = ("paper", "projected")  # with a transfer and a scratch mode
DEFAULT_PRESETS = [name for name in PRESETS if name != "smoke"]  # every model family but CI's
DEFAULT_OUT = Path("runs/bench/bench.md")


# ----------------------------------------------------------------------------- FLOPs


def _shape(graph: tf.Graph, name: str) -> list[int]:
    return graph_util.tensor_shape_from_node_def_name(graph, name).as_list()


@ops.RegisterStatistics("Einsum", "flops")
def _einsum_flops(graph: tf.Graph, node: Any) -> ops.OpStats:
    """2 x the product of every index's size (one multiply-add per index combination)."""
    inputs = node.attr["equation"].s.decode().split("->")[0].split(",")
    sizes = {}
    for labels, name in zip(inputs, node.input):
        sizes.update(zip(labels, _shape(graph, name)))
    return ops.OpStats("flops", 2 * math.prod(sizes.values()))


@ops.RegisterStatistics("DepthwiseConv2dNativeBackpropInput", "flops")
@ops.RegisterStatistics("DepthwiseConv2dNativeBackpropFilter", "flops")
def _depthwise_backprop_flops(graph: tf.Graph, node: Any) -> ops.OpStats:
    """As the forward depthwise convolution: 2 x output elements x filter height x width."""
    filter_shape = _shape(graph, node.input[1] if node.op.endswith("Input") else node.name)
    return ops.OpStats("flops", 2 * math.prod(_shape(graph, node.input[2])) * filter_shape[0] * filter_shape[1])


def executed_ops(graph: tf.Graph) -> list[tf.Operation]:
    """The ops a function graph runs: ancestors of its outputs and control outputs (stateful updates)."""
    seen: set[tf.Operation] = set()
    stack = [t.op for t in graph.outputs] + list(graph.control_outputs)
    while stack:
        op = stack.pop()
        if op not in seen:
            seen.add(op)
            stack.extend(t.op for t in op.inputs)
            stack.extend(op.control_inputs)
    return list(seen)


def count_flops(graph: tf.Graph) -> int:
    """FLOPs of one run of a function graph (ops with no registered statistics count 0)."""
    total = 0
    for op in executed_ops(graph):
        try:
            value = ops.get_stats_for_node_def(graph, op.node_def, "flops").value
        except ValueError:  # an op whose shapes are not static: only loss-sized elementwise ops here
            value = None
        total += value or 0
    return total


def matmul_rate(dtype: tf.DType, n: int = 2048, repeats: int = 6) -> float:
    """Best FLOP/s of an n x n matrix product in ``dtype`` (2 n^3 FLOPs each)."""
    a = tf.cast(tf.random.stateless_normal((n, n), seed=(1, 2)), dtype)
    b = tf.cast(tf.random.stateless_normal((n, n), seed=(3, 4)), dtype)
    product = tf.function(lambda x, y: tf.linalg.matmul(x, y)[0, 0])
    product(a, b).numpy()
    best = math.inf
    for _ in range(repeats):
        began = time.perf_counter()
        product(a, b).numpy()
        best = min(best, time.perf_counter() - began)
    return 2 * n**3 / best


# ----------------------------------------------------------------------------- memory

MIB = 2**20


def reset_step_memory() -> int:
    """Reset TensorFlow's CPU allocator peak; returns the bytes live now."""
    tf.config.experimental.reset_memory_stats("CPU:0")
    return tf.config.experimental.get_memory_info("CPU:0")["current"]


def step_memory_mib(live_before: int) -> float:
    """TensorFlow CPU allocator peak since the reset, above what was live before, in MiB."""
    return (tf.config.experimental.get_memory_info("CPU:0")["peak"] - live_before) / MIB


def process_peak_rss_mib() -> float:
    """This process's resident-set high-water mark (getrusage; KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- loops


def loop_name(config: Config, cache: bool) -> str:
    """A loop's effective settings, e.g. "simultaneous+cache+fused Adam bf16"."""
    return (f"{config.update_order}{'+cache' if cache else ''}{'+fused Adam' if config.fused_adam else ''} "
            f"{'bf16' if config.mixed_precision else 'f32'}")


def build_loop_gan(config: Config) -> tuple[GAN, str]:
    """The GAN of ``config`` and its discriminator's weights ("imagenet", "random frozen", "scratch")."""
    from .runs import build_gan

    try:
        gan, info = build_gan(config)
        return gan, "imagenet" if info.mode == "transfer" else "scratch"
    except WeightsUnavailable:
        shape = (config.image_size, config.image_size, config.channels)
        with precision_policy(config.mixed_precision):
            generator = build_generator(config)
            discriminator, _ = build_transfer_architecture(shape, config.backbone, config.d_minibatch_std)
        gan = GAN(generator, discriminator, config)
        gan.compile(*make_optimizers(config))
        return gan, "random frozen"


@dataclasses.dataclass
class Measurement:
    """What was measured for one loop of one case."""

    name: str
    batch_size: int
    cache_seconds: float | None  # computing the feature cache, None without one
    steps: int = 1
    flops: int = 0
    seconds: list[float] = dataclasses.field(default_factory=list)
    waits: list[float] = dataclasses.field(default_factory=list)
    peaks: list[float] = dataclasses.field(default_factory=list)

    def images_per_second(self) -> float:
        return statistics.median(self.steps * self.batch_size / s for s in self.seconds)

    def row(self, naive: "Measurement", rates: dict[str, float]) -> dict[str, Any]:
        ips = self.images_per_second()
        achieved = self.flops * ips / self.batch_size
        return {
            "loop": self.name,
            "images/s": ips,
            "x naive": ips / naive.images_per_second(),
            "data wait %": 100 * sum(self.waits) / sum(self.seconds),
            "step memory MiB": max(self.peaks),
            "GFLOP/step": self.flops / 1e9,
            "GFLOP/s": achieved / 1e9,
            "% f32 matmul": 100 * achieved / rates["float32"],
            "% bf16 matmul": 100 * achieved / rates["bfloat16"],
            "cache s (once)": "-" if self.cache_seconds is None else self.cache_seconds,
        }


@dataclasses.dataclass
class Loop:
    """One training loop under test."""

    gan: GAN
    step: Any
    batches: Iterator[tf.Tensor]
    measured: Measurement

    def one_step(self) -> float:
        """Run one step; its seconds."""
        began = time.perf_counter()
        float(self.step(next(self.batches))["d_loss"])  # waits for the step to finish
        return time.perf_counter() - began

    def warm_up(self, steps: int) -> float:
        """Run ``steps`` untimed steps (tracing, caches); the last one's seconds."""
        return [self.one_step() for _ in range(steps)][-1]

    def run(self) -> None:
        """Time ``measured.steps`` training steps; record time, data wait and peak memory."""
        live = reset_step_memory()
        wait = 0.0
        began = time.perf_counter()
        for _ in range(self.measured.steps):
            fetch = time.perf_counter()
            batch = next(self.batches)
            wait += time.perf_counter() - fetch
            float(self.step(batch)["d_loss"])
        self.measured.seconds.append(time.perf_counter() - began)
        self.measured.waits.append(wait)
        self.measured.peaks.append(step_memory_mib(live))


def make_loop(config: Config, images: np.ndarray, reference: GAN | None) -> tuple[Loop, str]:
    """Build ``config``'s GAN (weights copied from ``reference``), its feature cache, data and step."""
    gan, weights = build_loop_gan(config)
    if reference is not None:
        gan.generator.set_weights(reference.generator.get_weights())
        gan.discriminator.set_weights(reference.discriminator.get_weights())
    began = time.perf_counter()
    inputs = gan.training_inputs(images, config.batch_size)
    cache_seconds = time.perf_counter() - began if gan.feature_cache else None
    batches = iter(make_dataset(inputs, config.batch_size, config.seed, epoch=1).repeat())
    name = loop_name(config, gan.feature_cache)
    return Loop(gan, tf.function(gan.train_step), batches, Measurement(name, config.batch_size, cache_seconds)), weights


def steps_per_round(args: argparse.Namespace, step_seconds: float) -> int:
    """``--steps``, else as many steps as take about ``--round-seconds``."""
    return args.steps or max(1, round(args.round_seconds / step_seconds))


def case_config(preset_name: str, size: int, mode: str) -> Config:
    """The preset's models at ``size`` px (one upsampling level per doubling) with discriminator ``mode``."""
    base = preset(preset_name)
    levels = round(math.log2(size / base.start_size))
    if base.start_size * 2**levels != size:
        raise ValueError(f"size {size} is not {base.start_size} x a power of 2")
    return base.replace(levels=levels, d_mode=mode, n_images=BENCH_IMAGES)


def case_images(config: Config) -> np.ndarray:
    return load_images(config.data, config.image_size, config.channels, n_images=config.n_images, seed=config.seed).images


def own_loop(config: Config) -> dict[str, Any]:
    """The loop settings (the fields of :data:`NAIVE`) ``config`` trains with."""
    return {name: getattr(config, name) for name in NAIVE}


def bench_case(config: Config, args: argparse.Namespace) -> tuple[list[Measurement], str]:
    """Interleaved timing of the loops for one case (the preset's own loop too, when it is another
    one): (their measurements, weights note)."""
    images = case_images(config)
    settings = [NAIVE] + ([] if args.quick else list(INTERMEDIATE)) + [FAST, own_loop(config)]
    loops: list[Loop] = []
    for changes in settings:
        loop, weights = make_loop(config.replace(**changes), images, loops[0].gan if loops else None)
        if loop.measured.name not in [known.measured.name for known in loops]:  # scratch: no cache
            loops.append(loop)
    for loop in loops:
        seconds = loop.warm_up(args.warmup)
        if loop is loops[0]:  # every loop runs as many steps per round as the naive loop
            steps = steps_per_round(args, seconds)
        loop.measured.steps = steps
        loop.measured.flops = count_flops(loop.step.get_concrete_function(next(loop.batches)).graph)
    for r in range(args.rounds):
        for loop in loops if r % 2 == 0 else loops[::-1]:
            loop.run()
    return [loop.measured for loop in loops], weights


# ----------------------------------------------------------------------------- child processes


def child(args: argparse.Namespace, *extra: str) -> dict[str, Any]:
    """Run this module in a fresh process with the timing options and ``extra``; its JSON result."""
    command = [sys.executable, "-m", "medgan_lib.bench", *extra, "--rounds", str(args.rounds),
               "--round-seconds", str(args.round_seconds), "--warmup", str(args.warmup)]
    command += ["--steps", str(args.steps)] if args.steps else []
    command += ["--quick"] if args.quick else []
    out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def case_result(args: argparse.Namespace) -> dict[str, Any]:
    """In a child process: the interleaved timing of ``args.case`` and the matmul rates around it."""
    preset_name, size, mode = args.case
    config = case_config(preset_name, int(size), mode)
    rates: dict[str, float] = {}
    measure_rates(rates)
    measured, weights = bench_case(config, args)
    measure_rates(rates)
    discriminator = (f"{config.backbone} weights {weights}" if config.discriminator in BACKBONE_DISCRIMINATORS
                     else f"{config.discriminator} discriminator (no backbone)")
    note = (f"{preset_name} {size} px {mode}: batch {config.batch_size}, {measured[0].steps} steps per round, "
            f"{discriminator}, process peak RSS {process_peak_rss_mib():.0f} MiB")
    return {"rates": rates, "note": note, "measured": [dataclasses.asdict(m) for m in measured]}


def probe_result(args: argparse.Namespace) -> dict[str, Any]:
    """In a child process: the fast loop of ``args.case`` under the thread setting ``args.probe``."""
    intra, inter = args.probe
    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    preset_name, size, mode = args.case
    config = case_config(preset_name, int(size), mode).replace(**FAST)
    loop, _ = make_loop(config, case_images(config), None)
    loop.measured.steps = steps_per_round(args, loop.warm_up(args.warmup))
    for _ in range(args.rounds):
        loop.run()
    return {"images/s": loop.measured.images_per_second()}


def bench_threads(args: argparse.Namespace, case: tuple[str, str, str]) -> list[dict[str, Any]]:
    """The fast loop of ``case`` under each of THREAD_SETTINGS, one child process each."""
    rows = [{"case": " ".join(case), "intra_op": intra or "default (2)", "inter_op": inter or "default (2)",
             "images/s": child(args, "--probe", str(intra), str(inter), "--case", *case)["images/s"]}
            for intra, inter in THREAD_SETTINGS]
    best = max(row["images/s"] for row in rows)
    for row in rows:
        row["vs best %"] = 100 * row["images/s"] / best
    return rows


# ----------------------------------------------------------------------------- report


def command_line(args: argparse.Namespace) -> str:
    return " ".join(["python -m medgan_lib.bench", *args.argv])


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.exists() else []
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{models[0] if models else platform.processor()}, {os.cpu_count()} logical CPUs, "
            f"{platform.system()} {platform.release()}; TensorFlow {tf.__version__}, Python {platform.python_version()}; "
            f"load average (1, 5, 15 min) at the end {load}")


SPEED_COLUMNS = ["preset", "size", "D", "loop", "images/s", "x naive", "data wait %", "step memory MiB",
                 "GFLOP/step", "GFLOP/s", "% f32 matmul", "% bf16 matmul", "cache s (once)"]


def measure_rates(rates: dict[str, float]) -> None:
    """Raise ``rates`` to the best float32 / bf16 matrix-multiply rates measured now."""
    for name, dtype in (("float32", tf.float32), ("bfloat16", tf.bfloat16)):
        rates[name] = max(rates.get(name, 0.0), matmul_rate(dtype))


def speed_cases(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """(preset, size, mode) of every case: each size with each ``--modes`` for presets whose
    discriminator has a backbone (paper, projected), else with the preset's own mode only."""
    cases = []
    for name in args.presets:
        config = preset(name)
        modes = args.modes if config.discriminator in BACKBONE_DISCRIMINATORS else [config.d_mode]
        cases += [(name, str(size), mode) for size in args.sizes for mode in modes]
    return cases


def speed(args: argparse.Namespace) -> str:
    """Run the speed benchmark, one child process per case; return its markdown report."""
    rates: dict[str, float] = {"float32": 0.0, "bfloat16": 0.0}
    rows, notes = [], []
    for case in speed_cases(args):
        result = child(args, "--case", *case)
        rates = {name: max(rate, result["rates"][name]) for name, rate in rates.items()}
        notes.append(result["note"])
        measured = [Measurement(**m) for m in result["measured"]]
        rows += [{"preset": case[0], "size": case[1], "D": case[2], "measured": m, "naive": measured[0]}
                 for m in measured]
        print(notes[-1], {m.name: round(m.images_per_second(), 1) for m in measured}, flush=True)
    rows = [{k: row[k] for k in ("preset", "size", "D")} | row["measured"].row(row["naive"], rates) for row in rows]
    report = [
        f"# Training-step benchmark ({_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Command: `{command_line(args)}`.",
        f"Machine: {machine()}.",
        f"Each case in its own process: {args.warmup} warm-up steps per loop, then {args.rounds} interleaved "
        "rounds; images/s is the median over rounds. Cases: " + "; ".join(notes) + ".",
        f"Matrix multiply 2048^2 (best of all measurements): float32 {rates['float32'] / 1e9:.0f} GFLOP/s, "
        f"bf16 {rates['bfloat16'] / 1e9:.0f} GFLOP/s (x{rates['bfloat16'] / rates['float32']:.2f}).",
        "Step memory: peak of TensorFlow's CPU allocator during the loop's steps above the tensors live "
        "before them (activations, gradients, temporaries; all loops' weights and optimizer slots are "
        "live throughout); process peak RSS per case above (getrusage). "
        "FLOPs: TF per-op statistics on the traced step graph, executed ops only. `cache s (once)`: "
        f"computing the real images' features once per run ({BENCH_IMAGES} images; not part of images/s).",
        "",
        markdown_table(rows, SPEED_COLUMNS),
    ]
    if not args.quick:
        probes = list({case[0]: case for case in reversed(speed_cases(args))}.values())[::-1]  # each preset's first
        threads = [row for case in probes for row in bench_threads(args, case)]
        report += ["", "Thread settings (the fast loop, one process per setting, so not interleaved):", "",
                   markdown_table(threads, ["case", "intra_op", "inter_op", "images/s", "vs best %"])]
    return "\n".join(report) + "\n"


# ----------------------------------------------------------------------------- quality


def samples_at(run_dir: Path, config: Config, epoch: int, n: int) -> np.ndarray:
    """``n`` images from the run's generator weights of snapshot ``epoch`` (fixed seed)."""
    generator = snapshot_generator(run_dir, epoch, config)
    return generate_images(generator, latent_batch(config.seed, n, config.latent_dim))


def quality(args: argparse.Namespace) -> str:
    """Train the cpu preset with the naive loop and the fast loop in f32 and bf16; compare losses and samples."""
    from .metrics import pixel_features, precision_recall, sliced_wasserstein_distance
    from .runs import train

    base = preset("cpu").replace(epochs=args.epochs, seed=args.seed)
    real = case_images(base)
    last = max(1, args.epochs // 10)
    epochs = snapshot_epochs(args.epochs)[-3:]
    real_std = float(real.std(axis=0).mean())
    rows = []
    for changes in (NAIVE, INTERMEDIATE[-1], FAST):
        config = base.replace(**changes)
        name = loop_name(config, config.cache_real_features)
        run_dir = args.run_root / f"seed{args.seed}" / name.replace(" ", "_").replace("+", "_")
        train(config, run_dir, progress=False)
        history = read_history(history_path(run_dir))
        tail = history[-last:]
        samples = {epoch: samples_at(run_dir, config, epoch, len(real)) for epoch in epochs}
        fake = samples[args.epochs]
        pr = precision_recall(pixel_features(real), pixel_features(fake))
        rows.append({
            "loop": name,
            "finite": all(math.isfinite(r[k]) for r in history for k in ("d_loss", "g_loss")),
            "d_loss": statistics.mean(r["d_loss"] for r in tail),
            "g_loss": statistics.mean(r["g_loss"] for r in tail),
            "D acc real": statistics.mean(r["d_real_accuracy"] for r in tail),
            "D acc fake": statistics.mean(r["d_fake_accuracy"] for r in tail),
            "SWD x1e3 at " + "/".join(map(str, epochs)): " / ".join(
                f"{sliced_wasserstein_distance(real, x, seed=base.seed)['value']:.0f}" for x in samples.values()),
            "pixel std ratio": float(fake.std(axis=0).mean()) / real_std,
            "precision": pr["precision"],
            "recall": pr["recall"],
            "s/epoch": statistics.median(r["seconds"] for r in history),
            "samples": str(sample_path(run_dir, args.epochs, ".png")),
        })
        print(markdown_table(rows[-1:], list(rows[-1])), flush=True)
    return "\n".join([
        f"# Training quality: {args.epochs} epochs of the cpu preset (seed {args.seed}) per loop "
        f"({_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Command: `{command_line(args)}`. Machine: {machine()}.",
        f"Losses and D accuracies: mean of the last {last} epochs. Samples: {len(real)} images from the "
        f"generator against the {len(real)} training images: SWD (lower is better) at the last three snapshot "
        "epochs (its spread within a run shows the noise), and at the last epoch the per-pixel standard "
        "deviation across samples relative to the training images' (diversity; collapse -> 0) and improved "
        "precision/recall on 16x16 pixel features (metrics module); the sample grid of the last epoch.",
        "",
        markdown_table(rows, list(rows[0])),
    ]) + "\n"


# ----------------------------------------------------------------------------- command line


def parse_args(argv: list[str], prog: str = "python -m medgan_lib.bench") -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"examples:\n  {prog} --quick\n  {prog} quality --epochs 150 --seed 1")
    parser.add_argument("what", nargs="?", choices=("speed", "quality"), default="speed",
                        help="speed: training-step throughput of the loops; quality: short runs of each loop, "
                             "evaluated (default: speed)")
    parser.add_argument("--quick", action="store_true", help="naive, fast and the preset's own loops only, short "
                        "rounds, no thread probes (default: off)")
    parser.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=DEFAULT_PRESETS,
                        help=f"model families (presets) (default: {' '.join(DEFAULT_PRESETS)})")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="image sides (default: 64 128)")
    parser.add_argument("--modes", nargs="+", choices=("transfer", "scratch"), default=["transfer", "scratch"],
                        help="discriminator modes of presets with a backbone; others run in their own mode "
                             "(default: transfer scratch)")
    parser.add_argument("--warmup", type=int, help="warm-up steps per loop (default 3, quick 2)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 3)")
    parser.add_argument("--round-seconds", type=float, help="naive loop's time per round (default 4, quick 1.5)")
    parser.add_argument("--steps", type=int, help="steps per loop and round (overrides --round-seconds) (default: from --round-seconds)")
    parser.add_argument("--epochs", type=int, default=120, help="quality: epochs per run (default: 120)")
    parser.add_argument("--seed", type=int, default=0, help="quality: the runs' seed (weights, noise, data order) (default: 0)")
    parser.add_argument("--run-root", type=Path, default=Path("runs/bench_quality"), help="quality: run directories (default: runs/bench_quality)")
    parser.add_argument("--out", type=Path, help=f"markdown report (default {DEFAULT_OUT}; quality: bench_quality.md)")
    parser.add_argument("--case", nargs=3, help=argparse.SUPPRESS)  # child process: PRESET SIZE MODE
    parser.add_argument("--probe", type=int, nargs=2, help=argparse.SUPPRESS)  # with --case: INTRA INTER
    args = parser.parse_args(argv)
    for name, quick, full in (("warmup", 2, 3), ("rounds", 3, 5), ("round_seconds", 1.5, 4.0)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.out is None:
        args.out = DEFAULT_OUT if args.what == "speed" else DEFAULT_OUT.with_name("bench_quality.md")
    args.argv = argv
    return args


def main(argv: list[str] | None = None, prog: str = "python -m medgan_lib.bench") -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv, prog)
    if args.case:
        print(json.dumps(probe_result(args) if args.probe else case_result(args)))
        return 0
    report = speed(args) if args.what == "speed" else quality(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
