"""Named numpy random streams: every seeded draw outside the training step, by purpose.

A stream is ``numpy.random.default_rng([seed, stream_id])``: a function of the run's (or the
evaluation's) seed and the purpose only, so adding a draw elsewhere never shifts another one.
The ids are fixed forever (changing one changes results). The per-epoch data order uses
``[seed, epoch]`` (epochs counted from 1) in :func:`medgan_lib.data.make_dataset`; the training
step's noise comes from the checkpointed ``tf.random.Generator`` of :class:`medgan_lib.gan.GAN`.
"""
from __future__ import annotations

import numpy as np

STREAM_IDS: dict[str, int] = {
    "fixed_noise": 1,  # the latent batch behind samples/epoch_NNNN (fixed_noise.npy)
    "evaluation_latents": 2,  # latent vectors for evaluation and exploration (sampling.latent_batch)
    "real_subset": 3,  # which real images an evaluation compares against (evaluation.real_sample)
}


def stream(seed: int, purpose: str) -> np.random.Generator:
    """The random generator of ``purpose`` (a key of ``STREAM_IDS``) for ``seed``."""
    return np.random.default_rng([int(seed), STREAM_IDS[purpose]])
