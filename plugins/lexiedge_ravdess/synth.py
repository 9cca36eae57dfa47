"""A small synthetic data set in the RAVDESS layout, with real mp4 files, that a model can learn.

Each clip is a drawn face that talks and a voiced tone. Emotions differ the way they do in speech and
faces: pitch level and contour, syllable rate, loudness and spectral tilt (bright, loud, fast for angry;
low, soft, slow, dark for sad), and mouth curvature and openness, brow angle and eye size. Actors differ
in base pitch, noise, skin tone, face size and position, so a model must learn the emotion, not the actor.
Strong intensity (II = 02) pushes every cue further from neutral, as actors do.

Files are encoded with PyAV (H.264 when the wheel has it, MPEG-4 part 2 otherwise; AAC audio at 48 kHz,
like the distribution) and written to a temp name, then renamed, so an interrupted run leaves no half file.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np
import soundfile

from lexiedge import atomic
from lexiedge_ravdess.labels import AUDIO_ONLY, AUDIO_VIDEO, EMOTIONS, SPEECH, VIDEO_ONLY
from lexiedge_runtime.media.decode import resample_swr

VIDEO_ENCODERS = ("libx264", "h264", "mpeg4")  # first one this PyAV build can encode with is used
AUDIO_RATE = 48000
SYNTH_RATE = 16000
# Audio-only wavs cycle through the layouts met in the real data (most 16 kHz mono, some 22.05 kHz, 48 kHz stereo).
WAV_LAYOUTS = ((16000, 1), (22050, 1), (48000, 2))
WIDTH, HEIGHT, FPS = 128, 96, 10
NAME_PARTS = list(itertools.product((1, 2), (1, 2), (1, 2)))  # (intensity, statement, repetition)
MAX_CLIPS_PER_EMOTION = len(NAME_PARTS)

# Per emotion, RAVDESS order. Voice: pitch factor, pitch glide over the clip (semitones), syllables per
# second, loudness (peak), harmonic roll-off exponent (higher = darker), vibrato depth (fraction of f0).
VOICE = {
    "neutral": (1.00, 0.0, 3.0, 0.30, 1.6, 0.00),
    "calm": (0.92, -1.0, 2.2, 0.20, 2.2, 0.00),
    "happy": (1.25, 3.0, 4.5, 0.50, 1.1, 0.01),
    "sad": (0.82, -4.0, 1.8, 0.15, 2.8, 0.00),
    "angry": (1.12, -2.0, 5.5, 0.85, 0.6, 0.00),
    "fearful": (1.38, 2.0, 6.0, 0.40, 1.3, 0.04),
    "disgust": (0.90, -3.0, 2.6, 0.35, 1.9, 0.00),
    "surprised": (1.45, 7.0, 3.6, 0.60, 1.0, 0.01),
}
# Face: mouth curve (+ smile, - frown), mouth opening, brow tilt (+ inner ends up), brow raise, eye size.
FACE = {
    "neutral": (0.00, 0.10, 0.0, 0.0, 1.00),
    "calm": (0.15, 0.05, 0.0, -0.1, 0.75),
    "happy": (0.90, 0.35, 0.0, 0.2, 0.85),
    "sad": (-0.70, 0.10, 0.8, -0.2, 0.80),
    "angry": (-0.40, 0.40, -0.9, -0.4, 0.90),
    "fearful": (-0.20, 0.45, 0.7, 0.7, 1.35),
    "disgust": (-0.55, 0.20, -0.5, -0.3, 0.65),
    "surprised": (0.00, 0.85, 0.2, 1.0, 1.50),
}


@dataclass(frozen=True)
class SynthSpec:
    actors: int = 6
    clips_per_emotion: int = 2
    seconds: float = 1.5
    seed: int = 0
    audio_only: int = 0  # extra audio-only .wav clips (modality 03) per actor and emotion
    video_only: int = 0  # extra video-only .mp4 clips without an audio stream (modality 02) per actor and emotion


@dataclass
class SynthReport:
    files: list[Path] = field(default_factory=list)
    video_encoder: str = ""
    audio_encoder: str = "aac"


@dataclass(frozen=True)
class Actor:
    """What stays the same across one actor's clips."""

    f0: float
    noise: float
    skin: tuple[int, int, int]
    background: tuple[int, int, int]
    face_scale: float
    offset: tuple[float, float]


def video_encoder() -> str:
    """The first encoder of VIDEO_ENCODERS that this PyAV build has."""
    for name in VIDEO_ENCODERS:
        try:
            av.codec.Codec(name, "w")
        except (av.FFmpegError, ValueError):
            continue
        return name
    raise RuntimeError(f"this PyAV build has none of the video encoders {', '.join(VIDEO_ENCODERS)}")


def make_actor(seed: int, actor: int) -> Actor:
    rng = np.random.default_rng([seed, actor, 0])
    male = actor % 2 == 1  # RAVDESS: odd actors are male, even female
    f0 = float(rng.uniform(95, 140) if male else rng.uniform(170, 240))
    skin = tuple(int(v) for v in np.clip(np.array([225, 180, 150]) * rng.uniform(0.55, 1.1), 0, 255))
    background = tuple(int(v) for v in rng.integers(40, 200, size=3))
    offset = (float(rng.uniform(-5, 5)), float(rng.uniform(-4, 4)))
    return Actor(f0, float(rng.uniform(0.005, 0.03)), skin, background, float(rng.uniform(0.85, 1.1)), offset)


def _strength(intensity: int) -> float:
    return 1.0 if intensity == 1 else 1.4


def _towards(emotion: str, table: dict[str, tuple[float, ...]], strength: float) -> np.ndarray:
    neutral, target = np.array(table["neutral"]), np.array(table[emotion])
    return neutral + (target - neutral) * strength


def synth_voice(emotion: str, actor: Actor, strength: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """float32 (N,) at AUDIO_RATE: a harmonic tone with syllable-like bursts, silence at both ends.

    Synthesised at SYNTH_RATE (the model hears 16 kHz; harmonics above 8 kHz would be filtered anyway)
    and resampled to AUDIO_RATE, so the files carry 48 kHz audio like the distribution's.
    """
    pitch, glide, rate, loudness, tilt, vibrato = _towards(emotion, VOICE, strength)
    n = round(seconds * SYNTH_RATE)
    t = np.arange(n, dtype=np.float64) / SYNTH_RATE
    base = actor.f0 * pitch * rng.uniform(0.96, 1.04)
    f0 = base * 2.0 ** (glide * (t / seconds - 0.5) / 12.0)
    f0 *= 1.0 + vibrato * np.sin(2 * np.pi * rng.uniform(5.0, 7.0) * t)
    phase = 2 * np.pi * np.cumsum(f0) / SYNTH_RATE
    harmonics = np.arange(1, int(0.4 * SYNTH_RATE / (base * 1.3)) + 1)[:24]
    voice = (np.sin(np.outer(harmonics, phase) + rng.uniform(0, 2 * np.pi, (len(harmonics), 1)))
             * (harmonics ** (-tilt))[:, None]).sum(axis=0)
    voice /= np.max(np.abs(voice)) + 1e-9
    syllables = np.clip(np.sin(np.pi * rate * rng.uniform(0.9, 1.1) * t + rng.uniform(0, np.pi)), 0, None) ** 0.7
    # Actors breathe before and after the sentence, as in RAVDESS: speech sits between 15% and 90%.
    speaking = ((t > 0.15 * seconds) & (t < 0.9 * seconds)).astype(float)
    speaking = np.convolve(speaking, np.hanning(301) / np.hanning(301).sum(), mode="same")
    signal = voice * syllables * speaking * loudness * rng.uniform(0.9, 1.1)
    signal += rng.normal(0.0, actor.noise, n)
    return np.clip(resample_swr(signal.astype(np.float32), SYNTH_RATE, AUDIO_RATE), -1.0, 1.0)


def synth_face(emotion: str, actor: Actor, strength: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """uint8 (T, HEIGHT, WIDTH, 3) RGB: a drawn face whose mouth moves with speech and whose head sways."""
    curve, opening, brow_tilt, brow_raise, eye_size = _towards(emotion, FACE, strength)
    _, _, rate, _, _, _ = _towards(emotion, VOICE, strength)
    count = max(1, round(seconds * FPS))
    sway = rng.uniform(0, 2 * np.pi, size=2)
    frames = np.empty((count, HEIGHT, WIDTH, 3), np.uint8)
    for i in range(count):
        t = i / FPS
        image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
        image[:] = actor.background
        image = cv2.add(image, rng.integers(0, 12, size=image.shape, dtype=np.uint8))
        cx = WIDTH / 2 + actor.offset[0] + 2.5 * np.sin(2 * np.pi * 0.4 * t + sway[0])
        cy = HEIGHT / 2 + actor.offset[1] + 1.5 * np.sin(2 * np.pi * 0.3 * t + sway[1])
        a, b = 24 * actor.face_scale, 31 * actor.face_scale  # half width, half height of the face
        talking = max(0.0, np.sin(np.pi * rate * t)) if 0.15 * seconds < t < 0.9 * seconds else 0.0
        _draw_face(image, cx, cy, a, b, actor.skin, curve, opening * (0.6 + 0.6 * talking), brow_tilt, brow_raise, eye_size)
        frames[i] = image
    return frames


def _draw_face(image, cx, cy, a, b, skin, curve, opening, brow_tilt, brow_raise, eye_size) -> None:
    aa = cv2.LINE_AA
    point = lambda x, y: (int(round(x)), int(round(y)))  # noqa: E731 - cv2 wants int pixel tuples
    cv2.ellipse(image, point(cx, cy), point(a, b), 0, 0, 360, skin, -1, aa)
    dark = (30, 20, 20)
    for side in (-1, 1):
        ex, ey = cx + side * 0.4 * a, cy - 0.18 * b
        cv2.ellipse(image, point(ex, ey), point(0.22 * a, max(1.0, 0.13 * b * eye_size)), 0, 0, 360, (245, 245, 245), -1, aa)
        cv2.circle(image, point(ex, ey), max(1, int(round(0.07 * a * eye_size))), dark, -1, aa)
        brow_y = ey - (0.17 + 0.12 * brow_raise) * b
        inner, outer = (ex - side * 0.2 * a, brow_y - 0.12 * b * brow_tilt), (ex + side * 0.25 * a, brow_y)
        cv2.line(image, point(*inner), point(*outer), dark, 2, aa)
    mouth_x, mouth_y, half = cx, cy + 0.5 * b, 0.38 * a
    xs = np.linspace(-1, 1, 15)
    upper = mouth_y + curve * 0.16 * b * (1 - xs**2) - curve * 0.05 * b
    lower = upper + opening * 0.28 * b * (1 - xs**2) + 1.0
    outline = np.concatenate([np.stack([mouth_x + xs * half, upper], 1), np.stack([mouth_x + xs[::-1] * half, lower[::-1]], 1)])
    cv2.fillPoly(image, [np.round(outline).astype(np.int32)], (120, 25, 35), aa)


def write_mp4(path: Path, frames: np.ndarray | None, voice: np.ndarray | None, encoder: str) -> None:
    """Encode frames (uint8 (T, H, W, 3) at FPS) and/or a mono voice at AUDIO_RATE into ``path``, atomically."""
    with atomic.atomic_path(path, suffix=".part") as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            video = audio = None
            if frames is not None:
                video = container.add_stream(encoder, rate=FPS)
                video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
                if encoder == "mpeg4":
                    video.bit_rate = 600_000  # MPEG-4's default rate smears small faces
                else:  # x264's default preset spends 6x the time for no visible gain on drawn faces
                    video.options = {"preset": "ultrafast", "crf": "18"}
            if voice is not None:
                audio = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
            if video is not None:
                for index, image in enumerate(frames):
                    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                    frame.pts = index
                    container.mux(video.encode(frame))
                container.mux(video.encode(None))
            if audio is not None:
                frame = av.AudioFrame.from_ndarray(voice[np.newaxis, :], format="fltp", layout="mono")
                frame.sample_rate, frame.pts = AUDIO_RATE, 0
                container.mux(audio.encode(frame))
                container.mux(audio.encode(None))


def write_wav(path: Path, voice: np.ndarray, layout: tuple[int, int], rng: np.random.Generator) -> None:
    """A PCM-16 wav at ``layout`` = (rate, channels), from a voice at AUDIO_RATE; stereo channels slightly unequal."""
    rate, channels = layout
    samples = resample_swr(voice, AUDIO_RATE, rate) if rate != AUDIO_RATE else voice
    if channels == 2:
        samples = np.stack([samples, np.clip(samples * rng.uniform(0.8, 1.0), -1, 1)], axis=1)
    with atomic.atomic_path(path, suffix=".part") as tmp:
        soundfile.write(str(tmp), samples, rate, subtype="PCM_16", format="WAV")


def clip_name(modality: int, emotion: int, index: int, actor: int) -> str:
    intensity, statement, repetition = NAME_PARTS[index]
    return f"{modality:02d}-{SPEECH:02d}-{emotion + 1:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}"


def write_synthetic_set(
    out: Path, spec: SynthSpec, progress: Callable[[int, int], None] | None = None
) -> SynthReport:
    """Write ``Actor_NN/MM-VV-EE-II-SS-RR-AA.(mp4|wav)`` under ``out``; same seed, same clips."""
    largest = max(spec.clips_per_emotion, spec.audio_only, spec.video_only)
    if largest > MAX_CLIPS_PER_EMOTION:
        raise ValueError(f"at most {MAX_CLIPS_PER_EMOTION} clips per actor, emotion and modality (RAVDESS names)")
    report = SynthReport(video_encoder=video_encoder())
    plan = [
        (modality, count)
        for modality, count in ((AUDIO_VIDEO, spec.clips_per_emotion), (AUDIO_ONLY, spec.audio_only), (VIDEO_ONLY, spec.video_only))
        if count > 0
    ]
    total = spec.actors * len(EMOTIONS) * sum(count for _, count in plan)
    for actor_number in range(1, spec.actors + 1):
        actor = make_actor(spec.seed, actor_number)
        folder = out / f"Actor_{actor_number:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for emotion_index, emotion in enumerate(EMOTIONS):
            for modality, count in plan:
                for index in range(count):
                    rng = np.random.default_rng([spec.seed, actor_number, emotion_index + 1, index, modality])
                    strength = _strength(NAME_PARTS[index][0])
                    voice = synth_voice(emotion, actor, strength, spec.seconds, rng) if modality != VIDEO_ONLY else None
                    stem = clip_name(modality, emotion_index, index, actor_number)
                    if modality == AUDIO_ONLY:
                        path = folder / f"{stem}.wav"
                        write_wav(path, voice, WAV_LAYOUTS[(emotion_index + index) % len(WAV_LAYOUTS)], rng)
                    else:
                        path = folder / f"{stem}.mp4"
                        faces = synth_face(emotion, actor, strength, spec.seconds, rng)
                        write_mp4(path, faces, voice, report.video_encoder)
                    report.files.append(path)
                    if progress:
                        progress(len(report.files), total)
    return report
