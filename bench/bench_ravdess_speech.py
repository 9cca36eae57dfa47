"""Audio-only emotion-av on real RAVDESS speech: train on actors 01-06, validate on 07-08, report UAR.

    python bench/bench_ravdess_speech.py                         # the cpu profile's model, 20 epochs
    python bench/bench_ravdess_speech.py --audio larger          # dim 96, 4 layers, 64 mel bands (LARGER_AUDIO)
    python bench/bench_ravdess_speech.py --epochs 30 --lr 2e-3 --json result.json
    python bench/bench_ravdess_speech.py --set models.emotion-av.train.label_smoothing=0.1

The run is ``lexiedge train --profile cpu --model emotion-av --data ../shared/data/ravdess-speech`` (the
same ``lexiedge.pipeline.train`` call the CLI makes) with these overrides:

    models.emotion-av.data.modalities=[audio]             # audio-only: every clip's frames are zeros, mask 0
    models.emotion-av.data.split={train: [1..6], val: [7, 8], test: []}
    models.emotion-av.data.clip_seconds=3.0               # RAVDESS sentences last ~3.5 s; the centre 3 s
    models.emotion-av.train.epochs / lr / batch_size      # --epochs 20, --lr 1e-3, --batch-size 8 by default

The data are the 480 speech wavs of ../shared/data/ravdess-speech (16 kHz mono, and 11 files left at
22.05 or 48 kHz stereo, which the loader resamples and downmixes): 360 clips to train, 120 to validate
(RAVDESS has half as many neutral clips, so UAR, the mean recall per emotion, is the score; chance is
1/8 = 0.125). Decoded clips go to the feature cache (``$LEXIEDGE_CACHE``), so only the first run decodes.
Printed and written (``--json``): the best epoch by validation UAR (the checkpoint the trainer keeps),
its UAR, WAR and macro-F1, the last epoch's, the chance level, the wall time and the run directory, and
a yardstick: a linear classifier on each clip's per-band log-mel mean and std (``--no-reference`` skips it).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

MODEL = "emotion-av"
TRAIN_ACTORS = [1, 2, 3, 4, 5, 6]
VAL_ACTORS = [7, 8]
NUM_CLASSES = 8
CHANCE_UAR = 1.0 / NUM_CLASSES
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess-speech"

# --audio larger: twice the cpu profile's audio width, twice its depth, 64 mel bands (the model's
# default); the fusion's audio input must follow the audio width.
LARGER_AUDIO = [
    f"models.{MODEL}.model.n_mels=64",
    f"models.{MODEL}.model.audio={{dim: 96, layers: 4, heads: 4, ffn: 192}}",
    f"models.{MODEL}.model.fusion.audio_in=96",
]


def overrides(args: argparse.Namespace) -> list[str]:
    key = f"models.{MODEL}"
    chosen = [
        f"{key}.data.modalities=[audio]",
        f"{key}.data.split={{train: {TRAIN_ACTORS}, val: {VAL_ACTORS}, test: []}}",
        f"{key}.data.clip_seconds={args.clip_seconds}",
        f"{key}.train.epochs={args.epochs}",
        f"{key}.train.lr={args.lr}",
        f"{key}.train.batch_size={args.batch_size}",
        f"{key}.train.seed={args.seed}",
    ]
    if args.audio == "larger":
        chosen += LARGER_AUDIO
    return chosen + list(args.set or [])


def best_and_last(history: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The evaluation row with the highest validation UAR (first of ties, like the trainer) and the last row."""
    rows = [row for row in history if isinstance(row.get("val/uar"), (int, float))]
    if not rows:
        raise SystemExit("the run has no validation scores (history.json has no val/uar)")
    best = rows[0]
    for row in rows[1:]:
        if row["val/uar"] > best["val/uar"]:
            best = row
    return best, rows[-1]


def scores(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "epoch": row["epoch"],
        "step": row["step"],
        "val_uar": row["val/uar"],
        "val_war": row["val/war"],
        "val_macro_f1": row["val/macro_f1"],
        "val_loss": row["val/loss"],
        "train_uar": row.get("train/uar"),
    }


def parameter_count(profile: Any) -> int:
    """Parameters of the model the profile builds (what trains; buffers such as the mel filters excluded)."""
    from lexiedge.plugin import get_host

    entry = profile.model(MODEL)
    built = get_host().models.get(entry.model.plugin).build(entry.model.settings, profile.device)
    return sum(parameter.numel() for parameter in built.module.parameters())


def reference_scores(profile: Any, data: Path) -> dict[str, float]:
    """Validation scores of a linear classifier on each clip's per-band log-mel mean and std.

    A yardstick, not a model we ship: the same clips and split through the same mel filters, but
    without the per-utterance normalisation of the model's front end (which removes each band's mean
    level: loudness and spectral tilt) and with no deep network. Seconds to fit, deterministic.
    """
    import torch
    from lexiedge.metrics import classification_metrics, confusion_matrix
    from lexiedge_emotion_av.frontend import LOG_FLOOR, LogMelFrontend
    from lexiedge_ravdess.loading import load_splits
    from rich.console import Console

    from lexiedge.train.rundir import cache_dir

    entry = profile.model(MODEL)
    splits = load_splits(entry.data.settings, data, cache_dir=cache_dir(), console=Console(quiet=True))
    model = entry.model.settings
    frontend = LogMelFrontend(model.sample_rate, model.n_fft, model.hop_length, model.n_mels)

    def features(dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
        waveforms = torch.stack([dataset[index]["waveform"] for index in range(len(dataset))])
        with torch.no_grad():
            log_mel = torch.log(frontend.mel_power(waveforms) + LOG_FLOOR)  # (N, mels, frames)
        return torch.cat([log_mel.mean(-1), log_mel.std(-1)], dim=1), torch.tensor(dataset.labels)

    (x_train, y_train), (x_val, y_val) = features(splits.train), features(splits.val)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    torch.manual_seed(0)
    linear = torch.nn.Linear(x_train.shape[1], NUM_CLASSES)
    optimizer = torch.optim.Adam(linear.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(300):  # full batch: 360 clips
        loss = torch.nn.functional.cross_entropy(linear(x_train), y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = linear(x_val).argmax(-1).numpy()
        train_accuracy = float((linear(x_train).argmax(-1) == y_train).float().mean())
    metrics = classification_metrics(confusion_matrix(y_val.numpy(), predicted, NUM_CLASSES))
    return {"val_uar": metrics["uar"], "val_war": metrics["war"], "val_macro_f1": metrics["macro_f1"],
            "train_war": train_accuracy, "features": f"mean and std of {model.n_mels} log-mel bands"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:6]))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="RAVDESS speech folder (Actor_NN/*.wav)")
    parser.add_argument("--audio", choices=("cpu", "larger"), default="cpu",
                        help="audio branch: the cpu profile's (dim 48, 2 layers) or a larger one (dim 96, 4 layers)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3,
                        help="peak learning rate; the cpu profile's 2e-3 left real speech at chance "
                             "for its first 6 epochs")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--clip-seconds", type=float, default=3.0, help="centre crop of each sentence")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="more profile overrides (repeatable)")
    parser.add_argument("--out", type=Path, help="run directory (default: a new temp directory, kept)")
    parser.add_argument("--json", type=Path, help="write the result to this JSON file")
    parser.add_argument("--no-reference", action="store_true", help="skip the linear log-mel reference classifier")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: no such folder; pass --data DIR with RAVDESS Actor_NN/*.wav speech files")

    import tempfile

    from rich.console import Console

    from lexiedge import pipeline
    from lexiedge.profile import load_profile

    out = args.out or Path(tempfile.mkdtemp(prefix="bench-ravdess-speech-")) / "run"
    chosen = overrides(args)
    console = Console(highlight=False)
    console.print("lexiedge train --profile cpu --model emotion-av --data " + str(args.data)
                  + "".join(f" --set '{item}'" for item in chosen) + f" --out {out}", soft_wrap=True, markup=False)
    profile = load_profile("cpu", chosen)
    request = pipeline.TrainRequest(profile=profile, model_keys=[MODEL], data={MODEL: args.data}, out=out, resume=False)
    started = time.perf_counter()
    pipeline.train(request, console)
    wall_s = time.perf_counter() - started

    history = json.loads((out / "history.json").read_text(encoding="utf-8"))
    best, last = best_and_last(history)
    result = {
        "command": "python bench/bench_ravdess_speech.py " + " ".join(_argv_of(args)),
        "data": str(args.data),
        "train_actors": TRAIN_ACTORS,
        "val_actors": VAL_ACTORS,
        "modalities": ["audio"],
        "audio_branch": args.audio,
        "overrides": chosen,
        "parameters": parameter_count(profile),
        "epochs": args.epochs,
        "chance_uar": CHANCE_UAR,
        "best": scores(best),
        "last": scores(last),
        "wall_s": wall_s,
        "run_dir": str(out),
        "reference_linear": None if args.no_reference else reference_scores(profile, args.data),
    }
    console.print(f"\nRAVDESS speech, audio-only, actors {TRAIN_ACTORS} -> val {VAL_ACTORS} "
                  f"({args.audio} audio branch, {result['parameters']} parameters, {args.epochs} epochs, "
                  f"lr {args.lr}, clip {args.clip_seconds} s)")
    for name, row in (("best", result["best"]), ("last", result["last"])):
        console.print(f"  {name} (epoch {row['epoch']:.0f}): val UAR {row['val_uar']:.3f}  WAR {row['val_war']:.3f}  "
                      f"macro-F1 {row['val_macro_f1']:.3f}  (train UAR {row['train_uar']:.3f})")
    console.print(f"  chance UAR {CHANCE_UAR:.3f}; wall time {wall_s / 60:.1f} min; run {out}")
    reference = result["reference_linear"]
    if reference is not None:
        console.print(f"  reference, linear classifier on {reference['features']} (no per-utterance normalisation): "
                      f"val UAR {reference['val_uar']:.3f}  WAR {reference['val_war']:.3f}  "
                      f"macro-F1 {reference['val_macro_f1']:.3f}  (train WAR {reference['train_war']:.3f})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def _argv_of(args: argparse.Namespace) -> list[str]:
    parts = [f"--audio {args.audio}", f"--epochs {args.epochs}", f"--lr {args.lr}",
             f"--batch-size {args.batch_size}", f"--clip-seconds {args.clip_seconds}", f"--seed {args.seed}"]
    return parts + [f"--set '{item}'" for item in args.set or []]


if __name__ == "__main__":
    main()
