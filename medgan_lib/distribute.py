"""Data-parallel training with ``tf.distribute``: one host with several devices, or several hosts.

Strategies (``train --strategy``):

* ``default``: TensorFlow's default strategy, one device; nothing here changes what it computes.
* ``mirrored``: ``tf.distribute.MirroredStrategy`` over every GPU of the host, or, without GPUs,
  over the logical CPU devices made by :func:`configure_logical_cpus` (how it is tested here).
* ``multiworker``: ``tf.distribute.MultiWorkerMirroredStrategy``; every host runs the same command
  with its own ``TF_CONFIG`` (cluster and task); worker 0 (or the "chief" task) is the chief.

Keras ``fit`` splits every global batch into equal per-replica slices and sums the replicas'
gradients before the optimiser applies them. The training step keeps the single-device function
of the global batch:

* losses: each replica's gradients are those of its slice's mean loss divided by the number of
  replicas (:func:`replica_gradients`), so their sum is the gradient of the mean over the global
  batch (``tf.nn.compute_average_loss`` with equal slices); the reported losses and accuracies
  are Keras ``Mean`` metrics, aggregated over the replicas;
* randomness: every draw of a step (latent vectors, dropout masks) is made once for the global
  batch from the checkpointed ``tf.random.Generator``, in cross-replica context, and each replica
  takes its rows (:func:`global_draw`); so the draws are the single-device draws, whatever the
  number of replicas;
* batch statistics: every BatchNormalization layer standardises with the statistics of the
  global batch (:func:`synchronize_batch_norm`, Keras' ``synchronized=True``), and the
  minibatch standard deviation is taken over the global batch (:func:`global_variance`): the
  paper's head standardises the joint [real; fake] batch, and per-replica statistics would make
  it another function of the data.

Left as they are: DiffAugment draws from per-replica streams (TensorFlow's behaviour under a
strategy: deterministic per seed and replica count, but not the single-device draws).
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import tensorflow as tf

from .config import LOGICAL_CPUS_ENV, STRATEGIES
from .errors import MedganError



class DistributeError(MedganError):
    """A strategy or device setup that cannot be used as asked."""


def configure_logical_cpus(count: int) -> None:
    """Split the host CPU into ``count`` logical devices (for MirroredStrategy without GPUs).

    Must run before TensorFlow initialises its devices (before the first op); calling it again
    with the same count is harmless.
    """
    if count < 1:
        raise DistributeError(f"logical CPU count must be >= 1, got {count}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        existing = len(tf.config.list_logical_devices("CPU"))
        if existing != count:
            raise DistributeError(
                f"cannot split the CPU into {count} logical devices: TensorFlow already runs with {existing}; "
                f"set --logical-cpus (or {LOGICAL_CPUS_ENV}) before anything else uses TensorFlow, in a new process"
            ) from None


def logical_cpus_from_env() -> int | None:
    """The logical CPU count asked for by ``$MEDGAN_LOGICAL_CPUS`` (None if unset)."""
    value = os.environ.get(LOGICAL_CPUS_ENV)
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise DistributeError(f"{LOGICAL_CPUS_ENV} must be a positive integer, got {value!r}")
    return int(value)


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy called ``name`` (one of :data:`STRATEGIES`)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise DistributeError("--strategy multiworker needs TF_CONFIG (cluster and task of this worker) in the environment")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as error:
            raise DistributeError(f"TF_CONFIG is not valid JSON: {error}") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise DistributeError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run directory: always, except on non-chief workers."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def worker_id(strategy: tf.distribute.Strategy) -> str:
    """``type:index`` of this worker in a multi-worker cluster, else ``"local"``."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return "local"
    return f"{resolver.task_type}:{resolver.task_id}"


def _replica_context() -> tf.distribute.ReplicaContext | None:
    """The replica context of a step running under a non-default strategy, else None."""
    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return None
    return tf.distribute.get_replica_context()


def global_draw(draw: Callable[[tf.Tensor], tf.Tensor], local_shape: tf.Tensor) -> tf.Tensor:
    """``draw(local_shape)`` without a strategy; under one, this replica's rows of one global draw.

    The global draw has ``local_shape[0] * replicas`` rows and is made once per step in
    cross-replica context (``merge_call``), where a strategy-scoped ``tf.random.Generator`` gives
    the same numbers as without a strategy; replica ``r`` takes rows ``[r n, (r + 1) n)``, which
    is where Keras puts its slice of the global batch.
    """
    context = _replica_context()
    if context is None:
        return draw(local_shape)
    local_shape = tf.convert_to_tensor(local_shape)
    rows = local_shape[0]
    global_shape = tf.concat([[rows * context.num_replicas_in_sync], local_shape[1:]], axis=0)
    drawn = context.merge_call(lambda _strategy: draw(global_shape))
    start = tf.cast(context.replica_id_in_sync_group, rows.dtype) * rows
    return drawn[start:start + rows]


def replica_gradients(tape: tf.GradientTape, loss: tf.Tensor, variables: list[tf.Variable]) -> list[tf.Tensor]:
    """Gradients of this replica's mean ``loss``, divided by the number of replicas.

    The optimiser sums them over the replicas: the gradient of the mean over the global batch,
    as ``tf.nn.compute_average_loss`` gives for equal per-replica batches. Unchanged on one replica.
    """
    grads = tape.gradient(loss, variables)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas == 1:
        return grads
    return [None if g is None else g / tf.cast(replicas, g.dtype) for g in grads]


def global_variance(x: tf.Tensor) -> tf.Tensor:
    """Variance of ``x`` over axis 0 of the global batch (all replicas), per feature.

    Without a strategy ``tf.math.reduce_variance``; under one, from sums all-reduced over the
    replicas (``E[x^2] - E[x]^2``, as Keras' synchronised BatchNormalization computes it).
    """
    context = _replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tf.math.reduce_variance(x, axis=0)
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(x, axis=0))
    squares = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(tf.square(x), axis=0))
    count = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(tf.shape(x)[0], x.dtype))
    mean = total / count
    return squares / count - tf.square(mean)


def synchronize_batch_norm(model: tf.keras.Model) -> int:
    """Make every BatchNormalization layer in ``model`` (nested models too) use global-batch statistics.

    Keras 2.15's ``BatchNormalization(synchronized=True)``: the layer reads ``synchronized`` and
    ``fused`` when called, so built layers (also those inside Keras Applications backbones) are
    switched in place, keeping their variables. Returns the number of layers switched.
    """
    layers = [m for m in model.submodules if isinstance(m, tf.keras.layers.BatchNormalization)]
    for layer in layers:
        layer.synchronized = True
        layer.fused = False
    return len(layers)


def start_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy for a training run, after splitting the CPU as ``$MEDGAN_LOGICAL_CPUS`` asks.

    Call it before anything else uses TensorFlow: both the logical devices and the multi-worker
    runtime must be set up before TensorFlow initialises.
    """
    count = logical_cpus_from_env()
    if count is not None:
        configure_logical_cpus(count)
    return make_strategy(name)


def describe(strategy: tf.distribute.Strategy, name: str) -> dict:
    """What provenance records of a strategy: its name, replicas in sync and workers."""
    resolver = getattr(strategy, "cluster_resolver", None)
    workers = len(resolver.cluster_spec().as_dict().get("worker", [])) if resolver is not None and resolver.task_type else 1
    return {"strategy": name, "replicas": int(strategy.num_replicas_in_sync), "workers": max(workers, 1)}


SINGLE_DEVICE = {"strategy": "default", "replicas": 1, "workers": 1}  # runs recorded before strategies existed


def resume_mismatch(recorded: dict | None, current: dict) -> str | None:
    """Why a run recorded with ``recorded`` cannot resume with ``current`` (None if it can)."""
    recorded = recorded or SINGLE_DEVICE
    if (recorded["strategy"], recorded["replicas"]) == (current["strategy"], current["replicas"]):
        return None
    return (
        f"started with --strategy {recorded['strategy']} on {recorded['replicas']} replica(s), resumed with "
        f"--strategy {current['strategy']} on {current['replicas']}: the batch statistics, the gradient sums and "
        "the random draws would differ from the uninterrupted run; resume with the same strategy and devices"
    )


def worker_run_dir(run_dir: Path, strategy: tf.distribute.Strategy) -> Path:
    """Where this process writes the run: ``run_dir`` on the chief, a private copy on other workers.

    Every worker runs the same computation (checkpoints and samples read replicated variables
    collectively), but only the chief's files are kept, as TensorFlow's multi-worker checkpointing
    does: another worker copies the run directory (so it resumes from the same state; several
    hosts need it on a shared file system), writes into the copy and removes it when the process
    ends.
    """
    if is_chief(strategy):
        return run_dir
    copy = Path(tempfile.mkdtemp(prefix=f"medgan-{worker_id(strategy).replace(':', '')}-"))
    atexit.register(shutil.rmtree, copy, ignore_errors=True)
    if run_dir.is_dir():
        shutil.copytree(run_dir, copy, dirs_exist_ok=True)
    return copy
