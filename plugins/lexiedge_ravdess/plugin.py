"""The ``ravdess`` dataset plugin and its ``lexiedge data synth-av`` command (entry point ``ravdess``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar

import typer

from lexiedge.api import CLIP_STATISTICS, BuiltModel, DataSplits, DatasetPlugin, PluginSettings
from lexiedge.errors import UsageError
from lexiedge.plugin import hookimpl
from lexiedge_ravdess.settings import RavdessSettings
from lexiedge_runtime.tasks import av_classification as av_task

if TYPE_CHECKING:
    from rich.console import Console

    from lexiedge.registry import Registry


class RavdessPlugin(DatasetPlugin):
    """RAVDESS clips (or a synth-av set) split by actor into train/val/test, decoded once into a feature cache."""

    name: ClassVar[str] = "ravdess"
    description: ClassVar[str] = "RAVDESS speech+face clips (Actor_NN/*.mp4|wav), split by actor, feature-cached"
    tasks: ClassVar[frozenset[str]] = frozenset({av_task.NAME})
    Settings: ClassVar[type[PluginSettings]] = RavdessSettings

    def load(
        self,
        settings: PluginSettings,
        source: Path | None,
        *,
        built: BuiltModel,
        model_settings: PluginSettings,
        cache_dir: Path,
        console: Console,
    ) -> DataSplits:
        from lexiedge_ravdess.loading import load_splits  # torch and PyAV load only when data is loaded

        if not isinstance(settings, RavdessSettings):  # a dict or another plugin's settings: validate as ours
            raw = settings if isinstance(settings, dict) else settings.model_dump()
            settings = RavdessSettings.model_validate(raw)
        model_rate = getattr(model_settings, "sample_rate", None)
        if model_rate is not None and model_rate != settings.sample_rate:
            raise UsageError(
                f"data.sample_rate is {settings.sample_rate} Hz but model.sample_rate is {model_rate} Hz; set them equal"
            )
        clip_statistics = (getattr(built, "extras", None) or {}).get(CLIP_STATISTICS)
        if clip_statistics is not None and settings.enrollment is None:
            raise UsageError("the model normalises features by speaker, so it needs each speaker's "
                             "enrollment clips: set data.enrollment.clips (neutral, or a number of clips per "
                             "speaker)")
        return load_splits(settings, source, cache_dir=cache_dir, console=console,
                           clip_statistics=clip_statistics)

    def check_source(self, settings: PluginSettings, source: Path | None) -> None:
        """A folder with usable RAVDESS clips, and enough enrollment clips per actor (by file names alone)."""
        from lexiedge_ravdess.enrollment import choose
        from lexiedge_ravdess.loading import find_usable_clips

        ours = _ours(settings)
        found = find_usable_clips(ours, source)
        if ours.enrollment is not None:
            choose(found.usable, ours.enrollment)

    def groups(self, settings: PluginSettings, source: Path | None) -> list[int | str]:
        """The actors of the usable clips under ``source`` (by file names; nothing decoded): the speakers."""
        from lexiedge_ravdess.loading import find_usable_clips

        return list(find_usable_clips(_ours(settings), source).actors)

    def fold_overrides(self, train: list[int | str], val: list[int | str], test: list[int | str]) -> dict:
        """A fold is ``data.split``: its actors per split."""
        return {"split": {"train": [int(a) for a in train], "val": [int(a) for a in val],
                          "test": [int(a) for a in test]}}

    def enrollment_overrides(self, enroll: str) -> dict:
        """``neutral`` or a clip count K: ``data.enrollment.clips``."""
        clips: str | int = enroll if enroll == "neutral" else _clip_count(enroll)
        return {"enrollment": {"clips": clips}}

    def decode_for_inference(self, settings: PluginSettings | dict, path: Path) -> dict:
        """One .mp4/.wav decoded as evaluation data is: the runtime's decoder with :meth:`media_preprocessing`'s
        options (audio centre-fit to clip_seconds at the model's rate, face-cropped uint8 frames, which
        the runtime scales by 1/255 as training did). For artifacts whose manifest lacks that record."""
        from lexiedge_ravdess.preprocessing import media_spec
        from lexiedge_runtime.media.decode import decode_file

        return decode_file(path, media_spec(_ours(settings)))

    def media_preprocessing(self, settings: PluginSettings | dict) -> dict:
        from lexiedge_ravdess.preprocessing import media_spec

        return media_spec(_ours(settings)).to_manifest()

    def label_of(self, path: Path) -> str | None:
        """The emotion a RAVDESS-named file carries (``MM-VV-EE-...``: EE); None for any other name."""
        from lexiedge_ravdess.labels import InvalidName, parse_name

        try:
            return parse_name(path).emotion_name
        except InvalidName:
            return None

    def held_out_groups(self, settings: PluginSettings, source: Path | None) -> list[int | str]:
        """The actors of ``data.split.test`` present under ``source``; without a split, RAVDESS's held-out test
        actors 21-24 (a folder without them, like the shipped actors 1-20, is all tuning data)."""
        from lexiedge_ravdess.loading import find_usable_clips
        from lexiedge_ravdess.splits import DEFAULT_SPLIT

        ours = _ours(settings)
        test = set((ours.split or DEFAULT_SPLIT).test)
        return [actor for actor in find_usable_clips(ours, source).actors if actor in test]


def _ours(settings: PluginSettings | dict) -> RavdessSettings:
    """An artifact's recorded data_settings (a dict) or another plugin's settings, validated as ours."""
    if isinstance(settings, RavdessSettings):
        return settings
    return RavdessSettings.model_validate(settings if isinstance(settings, dict) else settings.model_dump())


def _clip_count(enroll: str) -> int:
    try:
        count = int(enroll)
    except ValueError:
        count = 0
    if count < 2:
        raise UsageError(f"--enroll {enroll!r}: expected neutral (each speaker's neutral and calm clips) "
                         "or a number of clips per speaker, at least 2")
    return count


@hookimpl
def lexiedge_add_datasets(registry: Registry) -> None:
    registry.add(RavdessPlugin)


def synth_av(
    out: Annotated[Path, typer.Option("--out", "-o", help="folder to write Actor_NN/ into")],
    actors: Annotated[int, typer.Option("--actors", min=1, max=99, help="number of actors")] = 6,
    clips_per_emotion: Annotated[
        int, typer.Option("--clips-per-emotion", min=1, max=8, help="audio-video clips per actor and emotion")
    ] = 2,
    seconds: Annotated[float, typer.Option("--seconds", min=0.5, max=10.0, help="length of each clip")] = 1.5,
    seed: Annotated[int, typer.Option("--seed", help="same seed, same files")] = 0,
    audio_only: Annotated[
        int, typer.Option("--audio-only", min=0, max=8, help="extra audio-only .wav clips per actor and emotion")
    ] = 0,
    video_only: Annotated[
        int, typer.Option("--video-only", min=0, max=8, help="extra video-only .mp4 clips per actor and emotion")
    ] = 0,
    force: Annotated[bool, typer.Option("--force", help="write into a folder that already has files")] = False,
) -> None:
    """Write a small synthetic RAVDESS-layout set (real mp4 files) whose emotions a model can learn."""
    from lexiedge.console import console
    from lexiedge_ravdess.synth import FPS, HEIGHT, WIDTH, SynthSpec, write_synthetic_set

    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"{out}: folder is not empty; pass --force to write into it")
    spec = SynthSpec(actors, clips_per_emotion, seconds, seed, audio_only, video_only)
    report = write_synthetic_set(out, spec)
    console.print(
        f"wrote {len(report.files)} clips to {out} ({actors} actors x 8 emotions; video {report.video_encoder} "
        f"{WIDTH}x{HEIGHT} at {FPS} fps, audio {report.audio_encoder} 48 kHz); "
        f"train with: lexiedge train --profile cpu --model emotion-av --data {out}",
        highlight=False,
        soft_wrap=True,
    )


@hookimpl
def lexiedge_add_data_commands(app: typer.Typer) -> None:
    app.command("synth-av")(synth_av)
