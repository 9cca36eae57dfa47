"""What `lexiedge tune` searches for emotion-av by default (``lexiedge tune --show-space`` prints it).

The anchor of issue 28 (ResLSTM-SA) searched rate, decay, dropout and batch with Optuna; label smoothing and
the clip length are the two other settings measured to move validation UAR on real speech here. Keys
of the usual partners (the ``classifier`` trainer's ``label_smoothing``, the ``ravdess`` data's
``clip_seconds``) are left out by `lexiedge tune` when a profile pairs the model with other plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lexiedge.api import Choice, FloatRange, IntRange, SearchParam

if TYPE_CHECKING:
    from lexiedge.profile import ModelEntry

# every dropout of the model moves together: one value, four keys (a search of a few dozen trials cannot
# tell four separate rates apart)
DROPOUT_KEYS = ("model.audio.dropout", "model.visual.dropout", "model.fusion.dropout", "model.head.dropout")


def default_space(entry: ModelEntry) -> list[SearchParam]:
    train = entry.train.settings
    lr = float(getattr(train, "lr", 1e-3))
    epochs = int(getattr(train, "epochs", 40))
    return [
        FloatRange.around("train.lr", lr),  # lr / 10 to lr * 10: the profile's fits its model size
        FloatRange("train.weight_decay", 1e-4, 0.1, log=True),
        FloatRange("dropout", 0.0, 0.4, keys=DROPOUT_KEYS),
        FloatRange("train.label_smoothing", 0.0, 0.2),
        Choice("train.batch_size", (4, 8, 16)),
        IntRange("train.epochs", max(1, epochs // 2), max(2, epochs * 2)),
        Choice("data.clip_seconds", (2.0, 3.0, 4.0)),  # RAVDESS sentences last 3-4 s
    ]
