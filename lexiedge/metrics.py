"""Classification scores from a confusion matrix (rows: true class, columns: predicted class).

UAR (unweighted average recall) is the mean recall over the classes present in the ground truth, so
every emotion counts the same however many clips it has; WAR (weighted average recall) is plain
accuracy. Macro-F1 averages F1 over the classes that occur in the truth or the predictions (a class
predicted but never true scores 0 and pulls the mean down, as in scikit-learn).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of (true, predicted) pairs as a ``num_classes x num_classes`` int64 matrix."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.size} labels but {y_pred.size} predictions")
    for name, values in (("label", y_true), ("prediction", y_pred)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"a {name} is outside 0..{num_classes - 1}")
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def recall_per_class(confusion: np.ndarray) -> np.ndarray:
    """Recall of each class; NaN for a class with no true samples."""
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(confusion) / support, np.nan)


def f1_per_class(confusion: np.ndarray) -> np.ndarray:
    """F1 of each class; NaN for a class neither true nor predicted, 0 when it never hits."""
    true_positive = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    denominator = support + predicted
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2.0 * true_positive / denominator, np.nan)


def uar(confusion: np.ndarray) -> float:
    recalls = recall_per_class(confusion)
    return float(np.nanmean(recalls)) if np.any(~np.isnan(recalls)) else float("nan")


def war(confusion: np.ndarray) -> float:
    total = confusion.sum()
    return float(np.trace(confusion) / total) if total else float("nan")


def macro_f1(confusion: np.ndarray) -> float:
    scores = f1_per_class(confusion)
    return float(np.nanmean(scores)) if np.any(~np.isnan(scores)) else float("nan")


def classification_metrics(confusion: np.ndarray) -> dict[str, Any]:
    """UAR, WAR, macro-F1, per-class recall and the matrix itself (JSON-able)."""
    return {
        "uar": uar(confusion),
        "war": war(confusion),
        "macro_f1": macro_f1(confusion),
        "recall_per_class": [None if np.isnan(r) else float(r) for r in recall_per_class(confusion)],
        "samples": int(confusion.sum()),
        "confusion": confusion.astype(int).tolist(),
    }
