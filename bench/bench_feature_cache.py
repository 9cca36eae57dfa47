"""Training-loader throughput with the ravdess feature cache vs decoding every clip at every step.

    python bench/bench_feature_cache.py                  # synth-av set (+ the real clip in ../shared/data)
    python bench/bench_feature_cache.py --actors 4 --seconds 1.5 --epochs 3
    python -m pytest bench/bench_feature_cache.py        # the same two loaders under pytest-benchmark

Both loaders are the same torch DataLoader (batch 2, shuffled, no worker processes, so the number is the
per-sample cost of one core) over the same clips and settings; only where the arrays come from differs:
memory-mapped .npy files from the cache, or PyAV/soundfile decoding plus face cropping at every step.
Both are warmed up (one batch) before timing; the cache is built before the cached run is timed.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console
from torch.utils.data import DataLoader, Dataset

from lexiedge_ravdess.dataset import DecodingClipDataset, collate_batch
from lexiedge_ravdess.labels import find_clips
from lexiedge_ravdess.loading import load_splits
from lexiedge_ravdess.settings import RavdessSettings, SplitSettings
from lexiedge_ravdess.synth import SynthSpec, write_synthetic_set
from lexiedge_runtime.media.faces import face_detector

BATCH_SIZE = 2


def samples_per_second(dataset: Dataset, epochs: int) -> float:
    """Throughput of whole shuffled epochs through the DataLoader, after one warm-up batch."""
    loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, collate_fn=collate_batch, num_workers=0)
    next(iter(loader))
    start = time.perf_counter()
    seen = 0
    for _ in range(epochs):
        for batch in loader:
            seen += batch["label"].shape[0]
    return seen / (time.perf_counter() - start)


def build(root: Path, cache_dir: Path, spec: SynthSpec | None, settings: RavdessSettings):
    """The cached and the decoding dataset over every clip under ``root`` (synthesised first when ``spec``)."""
    if spec is not None:
        write_synthetic_set(root, spec)
    clips, _ = find_clips(root)
    # Every actor in train: the benchmark reads all clips, not a split of them.
    settings = settings.model_copy(update={"split": SplitSettings(train=sorted({c.actor for c in clips}))})
    splits = load_splits(settings, root, cache_dir=cache_dir, console=Console(quiet=True), workers=0)
    return splits.train, DecodingClipDataset(splits.train.clips, settings)


def compare(name: str, cached: Dataset, decoding: Dataset, epochs: int, console: Console) -> float:
    cached_rate = samples_per_second(cached, epochs)
    decoding_rate = samples_per_second(decoding, 1)  # one epoch is enough: every step decodes
    ratio = cached_rate / decoding_rate
    console.print(f"{name}")
    console.print(f"  decode at every step : {decoding_rate:10.1f} samples/s")
    console.print(f"  feature cache        : {cached_rate:10.1f} samples/s")
    console.print(f"  ratio                : {ratio:10.1f}x  (target >= 20x)")
    return ratio


def real_clip_copies(shared: Path, root: Path, copies: int) -> bool:
    """The real RAVDESS mp4 under ``copies`` names (one per emotion), if ../shared/data has it."""
    source = shared / "ravdess-av" / "Actor_01" / "01-01-01-01-01-01-01.mp4"
    if not source.is_file():
        return False
    (root / "Actor_01").mkdir(parents=True)
    for emotion in range(1, copies + 1):
        shutil.copy(source, root / "Actor_01" / f"01-01-{emotion:02d}-01-01-01-01.mp4")
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", type=int, default=3)
    parser.add_argument("--clips-per-emotion", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0, help="clip length (RAVDESS clips are 3-4 s)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs timed on the cached loader")
    parser.add_argument("--shared-data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    console = Console(highlight=False, width=140)
    settings = RavdessSettings()  # the contract's defaults: 3 s at 16 kHz, 8 frames of 64x64, face crop
    console.print(
        f"settings: clip_seconds={settings.clip_seconds} frames={settings.frames} image_size={settings.image_size} "
        f"face_crop={settings.face_crop} (detector: {face_detector().name}); DataLoader batch {BATCH_SIZE}, "
        f"num_workers=0, shuffled; cached: {args.epochs} epochs, decoding: 1 epoch"
    )
    spec = SynthSpec(actors=args.actors, clips_per_emotion=args.clips_per_emotion, seconds=args.seconds, seed=0)
    with tempfile.TemporaryDirectory(prefix="bench-feature-cache-") as tmp:
        cached, decoding = build(Path(tmp) / "synth", Path(tmp) / "cache", spec, settings)
        compare(
            f"synth-av: {len(cached)} clips ({spec.actors} actors, {spec.seconds} s, 128x96 H.264/MPEG-4 + 48 kHz AAC)",
            cached, decoding, args.epochs, console,
        )
        if real_clip_copies(args.shared_data, Path(tmp) / "real", copies=4):
            cached, decoding = build(Path(tmp) / "real", Path(tmp) / "cache", None, settings)
            compare("real RAVDESS clip (1280x720 H.264 30 fps + 48 kHz AAC, 3.3 s), 4 copies",
                    cached, decoding, args.epochs, console)
        else:
            console.print(f"(real RAVDESS clip not measured: {args.shared_data} has no ravdess-av/)")


# --- pytest-benchmark -------------------------------------------------------------------------


def _pytest_datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-feature-cache")
    spec = SynthSpec(actors=2, clips_per_emotion=1, seconds=1.5)
    return build(root / "data", root / "cache", spec, RavdessSettings())


def test_cached_loader(benchmark, tmp_path_factory) -> None:
    cached, _ = _pytest_datasets(tmp_path_factory)
    rate = benchmark.pedantic(samples_per_second, args=(cached, 1), rounds=3, warmup_rounds=1)
    assert rate > 0


def test_decoding_loader(benchmark, tmp_path_factory) -> None:
    _, decoding = _pytest_datasets(tmp_path_factory)
    rate = benchmark.pedantic(samples_per_second, args=(decoding, 1), rounds=1, warmup_rounds=0)
    assert rate > 0


if __name__ == "__main__":
    main()
