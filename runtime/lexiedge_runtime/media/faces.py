"""One face box per clip with OpenCV's Haar cascade, and the square crop around it.

One box per clip (the largest face over a few frames) rather than one per frame: per-frame boxes jitter,
and the model would then see a face that jumps around. When no face is found, or the installed OpenCV
has no Haar cascade (OpenCV 5 moved ``CascadeClassifier`` and its XML files to opencv-contrib), the
centre square is used; RAVDESS actors sit centred, so the face is inside it either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

CASCADE_FILE = "haarcascade_frontalface_default.xml"
PROBE_FRAMES = 3  # detection cost grows with frames; three spread over the clip find the face reliably
DETECT_MAX_SIDE = 320  # Haar works on small images; detecting at 720p costs 10x for the same box
FACE_MARGIN = 1.4  # the cascade's box is tight on the eyes and mouth; keep brows, chin and cheeks


@dataclass(frozen=True)
class Box:
    """A square ``side`` x ``side`` region with its top-left corner at (x, y), in pixels."""

    x: int
    y: int
    side: int


@dataclass(frozen=True)
class FaceDetector:
    """The Haar cascade when this OpenCV has one; ``cascade`` is None otherwise and ``name`` says why."""

    cascade: object | None
    name: str


@lru_cache(maxsize=1)
def face_detector() -> FaceDetector:
    """The process's detector, loaded once (worker processes load their own)."""
    cascade_class = getattr(cv2, "CascadeClassifier", None)
    if cascade_class is None:
        return FaceDetector(None, f"none: OpenCV {cv2.__version__} has no CascadeClassifier (OpenCV < 5 has it)")
    folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
    path = Path(folder) / CASCADE_FILE
    if not path.is_file():
        return FaceDetector(None, f"none: OpenCV {cv2.__version__} ships no {CASCADE_FILE}")
    cascade = cascade_class(str(path))
    if cascade.empty():
        return FaceDetector(None, f"none: {path} did not load")
    return FaceDetector(cascade, f"haar ({CASCADE_FILE}, OpenCV {cv2.__version__})")


def detect_face(frames_rgb: Sequence[np.ndarray]) -> tuple[int, int, int, int] | None:
    """The largest face (x, y, w, h) over up to PROBE_FRAMES frames spread over the clip, or None."""
    detector = face_detector()
    if detector.cascade is None or not frames_rgb:
        return None
    picks = np.linspace(0, len(frames_rgb) - 1, num=min(PROBE_FRAMES, len(frames_rgb))).round().astype(int)
    best: tuple[int, int, int, int] | None = None
    for index in sorted(set(picks.tolist())):
        frame = frames_rgb[index]
        height, width = frame.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
        small = cv2.resize(frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        # A face smaller than a fifth of the frame is a false hit (an eye, a pattern) in RAVDESS-like footage.
        min_side = max(20, min(small.shape[:2]) // 5)
        found = detector.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
        for x, y, w, h in np.asarray(found).reshape(-1, 4):
            candidate = (round(x / scale), round(y / scale), round(w / scale), round(h / scale))
            if best is None or candidate[2] * candidate[3] > best[2] * best[3]:
                best = candidate
    return best


def crop_box(height: int, width: int, face: tuple[int, int, int, int] | None) -> Box:
    """The square to crop: around ``face`` (enlarged by FACE_MARGIN) or the centre square; inside the image."""
    limit = min(height, width)
    if face is None:
        return Box((width - limit) // 2, (height - limit) // 2, limit)
    x, y, w, h = face
    side = min(limit, max(1, round(max(w, h) * FACE_MARGIN)))
    centre_x, centre_y = x + w / 2, y + h / 2
    left = int(np.clip(round(centre_x - side / 2), 0, width - side))
    top = int(np.clip(round(centre_y - side / 2), 0, height - side))
    return Box(left, top, side)


def crop_and_resize(frame_rgb: np.ndarray, box: Box, size: int) -> np.ndarray:
    """uint8 (size, size, 3): the box cut out and resized (area averaging when shrinking avoids aliasing)."""
    patch = frame_rgb[box.y : box.y + box.side, box.x : box.x + box.side]
    interpolation = cv2.INTER_AREA if box.side >= size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interpolation)
