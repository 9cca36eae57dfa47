"""The speaker profiles a server holds (``POST /v1/emotion/calibrate``): statistics only, bounded, least
recently used first out.

A profile is two vectors per speaker (:class:`~lexiedge_runtime.enrollment.SpeakerProfile`); the clips
it was made from are deleted with the request. Clients name a profile by the id ``calibrate`` returned
(``spk-`` and 24 random hex digits: one client cannot guess another's). The store keeps at most
``capacity`` profiles: a new one evicts the one used least recently, and ``DELETE
/v1/emotion/speakers/{id}`` removes one at once. Nothing is written to disk: a restart forgets them all.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

from lexiedge_runtime.enrollment import SpeakerProfile
from lexiedge_runtime.serve.protocol import ApiError, bad_request

DEFAULT_MAX_SPEAKERS = 1024  # a profile is a few hundred bytes: the bound is against growth without end


@dataclass(frozen=True)
class HeldProfile:
    model: str  # the served model's name: a profile is fed only to the model that made it
    profile: SpeakerProfile


class SpeakerStore:
    """Profiles by id, at most ``capacity``, the least recently used evicted first (thread-safe)."""

    def __init__(self, capacity: int = DEFAULT_MAX_SPEAKERS) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._held: OrderedDict[str, HeldProfile] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._held)

    def add(self, model: str, profile: SpeakerProfile) -> str:
        """Hold ``profile`` of ``model``; returns its id."""
        speaker_id = f"spk-{secrets.token_hex(12)}"
        with self._lock:
            self._held[speaker_id] = HeldProfile(model, profile)
            while len(self._held) > self.capacity:
                self._held.popitem(last=False)
        return speaker_id

    def get(self, speaker_id: object, model: str) -> SpeakerProfile:
        """The profile ``speaker_id`` names for ``model`` (now the most recently used), or the API's
        refusal."""
        if not isinstance(speaker_id, str) or not speaker_id:
            raise bad_request("'speaker' must be the id POST /v1/emotion/calibrate returned", "speaker")
        with self._lock:
            held = self._held.get(speaker_id)
            if held is not None:
                self._held.move_to_end(speaker_id)
        if held is None:
            raise self._unknown(speaker_id)
        if held.model != model:
            raise bad_request(
                f"the speaker profile {speaker_id!r} was made with the model {held.model!r}, not "
                f"{model!r}: calibrate the speaker with {model!r}",
                "speaker",
            )
        return held.profile

    def remove(self, speaker_id: str) -> None:
        with self._lock:
            held = self._held.pop(speaker_id, None)
        if held is None:
            raise self._unknown(speaker_id)

    def _unknown(self, speaker_id: str) -> ApiError:
        return ApiError(
            404,
            f"no speaker profile {speaker_id[:64]!r} is held here (deleted, never made, or evicted: "
            f"the server keeps the {self.capacity} most recently used); calibrate the speaker again",
            param="speaker",
            code="speaker_not_found",
        )
