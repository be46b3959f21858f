"""Parameter counts of Keras models, and ours beside the paper's (Table 3)."""
from __future__ import annotations

import tensorflow as tf

COUNTS = ("total", "trainable", "non_trainable")


def parameter_counts(model: tf.keras.Model) -> dict[str, int]:
    """Total, trainable and non-trainable parameter counts, as Keras' summary reports them."""
    trainable = sum(int(tf.size(w)) for w in model.trainable_weights)
    non_trainable = sum(int(tf.size(w)) for w in model.non_trainable_weights)
    return {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable}


def compare_counts(ours: dict[str, int], paper: dict[str, int] | None) -> list[dict]:
    """Rows of our counts beside the paper's with the difference (``None`` where the paper gives none)."""
    rows = []
    for key in COUNTS:
        reference = paper[key] if paper else None
        difference = None if reference is None else ours[key] - reference
        rows.append(
            {
                "count": key,
                "paper": reference,
                "ours": ours[key],
                "difference": difference,
                "difference_pct": None if reference is None else round(100.0 * difference / reference, 2),
            }
        )
    return rows
