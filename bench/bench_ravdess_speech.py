"""emotion-av on real RAVDESS speech: speaker-grouped k-fold over actors 01-20, or the quick 1-12 -> 13-16.

    python bench/bench_ravdess_speech.py --folds 5 --seeds 0 1           # the yardstick: 5 folds x 2 seeds
    python bench/bench_ravdess_speech.py --folds 5 --enroll neutral      # without and with enrollment
    python bench/bench_ravdess_speech.py --folds 5 --seeds 0 1 2 --ensemble  # + each fold's 3-seed ensemble
    python bench/bench_ravdess_speech.py --folds 5 --teachers 0 1 2 --seeds 3 4  # seeds 3, 4 distilled from 0-2
    python bench/bench_ravdess_speech.py --folds 5 --out cv --fold 1 2  # with --fold 3 4 5 in a second process
    python bench/bench_ravdess_speech.py                                 # the quick check: cpu as shipped
    python bench/bench_ravdess_speech.py --profile rtx3050-4gb           # its sizes, trained on this CPU
    python bench/bench_ravdess_speech.py --set models.emotion-av.train.epochs=20 --json out.json
    python bench/bench_ravdess_speech.py --ablation --json ablation.json # the README's ablation table

``--folds K`` is ``lexiedge eval --folds K`` (:mod:`lexiedge.crossval`, the same protocol): the actors present
(01-20) cut into K blocks of consecutive actors (5 folds: 1-4, 5-8, ...), each model trained on the other
actors for the recipe's fixed epochs and scored with its final weights on its block, never evaluated on
it while training; feature statistics fitted on the training actors only. Printed and written: mean ± sd
of UAR, WAR and macro-F1 over folds x seeds, each seed's mean over folds, and the per-fold table. The run
folders under ``--out`` make it resumable: the same command continues after a kill. ``--enroll neutral|K``
reports each recipe without and with speaker enrollment, on the same scored clips (each test actor's
enrollment clips left out of both): the recipe as is, and the recipe normalised by speaker
(``feature_norm: speaker``, ``data.enrollment.clips``), whose test actors' profiles come from those clips.
``--teachers S...`` first cross-validates the recipe with those seeds (``OUT/teachers``, scored also as
one seed ensemble per fold), then trains the ``--seeds`` students with ``train.distill.teachers`` set to
that folder, so each fold's student learns from the teacher seeds' models of the same fold only.

Without ``--folds``, each run is ``lexiedge train --profile P --model emotion-av --data
../shared/data/ravdess-speech`` (the same ``lexiedge.training_runs.train`` call the CLI makes) with one
override, the split:

    models.emotion-av.data.split={train: [1..12], val: [13..16], test: []}

The 960 speech wavs of ../shared/data/ravdess-speech (actors 01-16; most 16 kHz mono, 11 left at 22.05 or
48 kHz stereo, which the loader resamples and downmixes) have no video: the visual branch is masked, as
for any speech-only set, with no flag. 720 clips train, 240 validate (RAVDESS has half as many neutral
clips, so UAR, the mean recall per emotion, is the score; chance is 1/8). Actors 17-24 are not here on
purpose: they are the held-out speakers the product is judged on elsewhere, so no recipe is tuned on them.

Printed and written (``--json``): the best epoch by validation UAR (the checkpoint the trainer keeps) and
the last epoch, each with UAR, WAR and macro-F1; the validation confusion matrix of the best weights
(``lexiedge eval``: confusion.png and confusion.json beside the run); wall time; parameters; and a
yardstick: a linear classifier on each clip's per-band log-mel mean and standard deviation (and the
standard deviation of its frame-to-frame change), fitted on the same training clips.

``--ablation`` trains the cpu profile once per row: the recipe before the real-data work (issue 11),
the shipped recipe, and the shipped recipe with each change alone undone (``--rows 0 1 4`` picks rows,
so that two processes can share the work).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

MODEL = "emotion-av"
TRAIN_ACTORS = list(range(1, 13))
VAL_ACTORS = [13, 14, 15, 16]
NUM_CLASSES = 8
CHANCE_UAR = 1.0 / NUM_CLASSES
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess-speech"
SPLIT = f"models.{MODEL}.data.split={{train: {TRAIN_ACTORS}, val: {VAL_ACTORS}, test: []}}"

_M, _D, _T = f"models.{MODEL}.model", f"models.{MODEL}.data", f"models.{MODEL}.train"
# The cpu profile's emotion-av recipe before issue 11 (at chance on real speech), as overrides of today's.
# (Not undoable by a setting: the old 0.02-std initialisation of the fusion/stem projections.)
BEFORE = [
    f"{_M}.feature_norm=utterance",
    f"{_M}.spec_augment=null",
    f"{_M}.audio.stem=strided",
    f"{_D}.clip_seconds=1.5",
    f"{_D}.random_crop=false",
    f"{_D}.speed_perturb=[]",
    f"{_T}.epochs=30",
    f"{_T}.lr=2.0e-3",
]
# One row per change: the shipped recipe with that change alone undone (what it is worth in the whole).
CHANGES = {
    "global feature normalisation": [f"{_M}.feature_norm=utterance"],
    "3 s clips (not 1.5 s)": [f"{_D}.clip_seconds=1.5"],
    "random crops": [f"{_D}.random_crop=false"],
    "speed perturbation": [f"{_D}.speed_perturb=[]"],
    "no SpecAugment (the model's default masking on)": [f"{_M}.spec_augment={{}}"],
    "the strided stem (VGG instead)": [f"{_M}.audio.stem=vgg"],
    "learning rate and epochs": [f"{_T}.epochs=30", f"{_T}.lr=2.0e-3"],
}


def ablation_rows() -> list[tuple[str, list[str]]]:
    rows = [("before (issue 11)", BEFORE), ("shipped (all changes)", [])]
    rows += [(f"shipped without {name}", undone) for name, undone in CHANGES.items()]
    return rows


def best_and_last(history: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The evaluation row with the highest validation UAR (first of ties, as the trainer) and the last."""
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


def parameter_count(run: Path) -> int:
    """Learned parameters of the run's model (buffers, such as feature statistics and filters, left out)."""
    from lexiedge.plugin import get_host
    from lexiedge.rundir import load_run_profile

    profile, key = load_run_profile(run)
    entry = profile.model(key)
    built = (
        get_host()
        .models.get(entry.model.plugin)
        .build(entry.model.settings, profile.device, pretrained=False)
    )
    return sum(parameter.numel() for parameter in built.module.parameters())


def reference_scores(profile: Any, data: Path) -> dict[str, Any]:
    """Validation scores of a linear classifier on each clip's per-band log-mel statistics.

    A yardstick, not a model we ship: the same clips, split and mel filters as the run (centre windows of
    clip_seconds, no augmentation), each clip summarised by the mean and standard deviation of every band
    and the standard deviation of its frame-to-frame change; a softmax regression on those, fitted on the
    training clips. Seconds to fit, deterministic.
    """
    import torch
    from lexiedge_emotion_av.frontend import LOG_FLOOR, AudioFrontend
    from lexiedge_ravdess.loading import load_splits
    from rich.console import Console

    from lexiedge.metrics import classification_metrics, confusion_matrix
    from lexiedge.cache import cache_dir

    entry = profile.model(MODEL)
    data_settings = entry.data.settings.model_copy(update={"random_crop": False})
    splits = load_splits(data_settings, data, cache_dir=cache_dir(), console=Console(quiet=True))
    model = entry.model.settings
    frontend = AudioFrontend(model.sample_rate, model.n_fft, model.hop_length, model.n_mels)

    def features(dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
        waveforms = torch.stack([dataset[index]["waveform"] for index in range(len(dataset))])
        with torch.no_grad():
            log_mel = torch.log(frontend.mel_power(waveforms) + LOG_FLOOR)  # (N, mels, frames)
        change = log_mel[..., 1:] - log_mel[..., :-1]
        return torch.cat([log_mel.mean(-1), log_mel.std(-1), change.std(-1)], dim=1), torch.tensor(
            dataset.labels
        )

    (x_train, y_train), (x_val, y_val) = features(splits.train), features(splits.val)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    torch.manual_seed(0)
    linear = torch.nn.Linear(x_train.shape[1], NUM_CLASSES)
    optimizer = torch.optim.Adam(linear.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(300):  # full batch
        loss = torch.nn.functional.cross_entropy(linear(x_train), y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = linear(x_val).argmax(-1).numpy()
    metrics = classification_metrics(confusion_matrix(y_val.numpy(), predicted, NUM_CLASSES))
    return {
        "val_uar": metrics["uar"],
        "val_war": metrics["war"],
        "val_macro_f1": metrics["macro_f1"],
        "features": f"per-band mean, std and delta std of {model.n_mels} log-mel bands",
    }


def train_once(
    profile_name: str, overrides: list[str], data: Path, out: Path, console: Any
) -> dict[str, Any]:
    from lexiedge import training_runs
    from lexiedge.evaluate import evaluate
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile
    from lexiedge.rundir import read_history, read_run_info

    chosen = [SPLIT, *overrides]
    console.print(
        f"lexiedge train --profile {profile_name} --model {MODEL} --data {data}"
        + "".join(f" --set '{item}'" for item in chosen)
        + f" --out {out}",
        soft_wrap=True,
        markup=False,
    )
    profile = load_profile(profile_name, chosen, host=get_host())
    request = training_runs.TrainRequest(
        profile=profile, model_keys=[MODEL], data={MODEL: data}, out=out, resume=False
    )
    started = time.perf_counter()
    training_runs.train(request, console)
    wall_s = time.perf_counter() - started
    history = read_history(out)
    best, last = best_and_last(history)
    report = evaluate([out], data=data, split="val", out=out / "eval-val", limit=None, console=console)
    confusion = report.results[0]
    return {
        "profile": profile_name,
        "overrides": chosen,
        "parameters": parameter_count(out),
        "epochs": profile.model(MODEL).train.settings.epochs,
        "best": scores(best),
        "last": scores(last),
        "best_weights_val": {key: confusion.metrics[key] for key in ("uar", "war", "macro_f1")},
        "confusion_png": confusion.files["confusion_png"],
        "wall_s": wall_s,
        "run_dir": str(out),
        "learning_check": read_run_info(out).get("learning_check"),
    }


def crossval_once(
    profile_name: str,
    overrides: list[str],
    data: Path,
    out: Path,
    folds: int,
    seeds: list[int],
    console: Any,
    enroll: str | None = None,
    ensemble: bool = False,
    only_folds: tuple[int, ...] = (),
) -> dict[str, Any]:
    """``lexiedge eval --folds K`` of the recipe (the profile + ``overrides``) over the actors of ``data``;
    ``ensemble``: each fold's seeds also scored as one model (the mean of their probabilities);
    ``only_folds``: these folds only (``--fold``: the others run in another process on the same ``out``)."""
    from lexiedge.crossval import CrossValRequest, cross_validate, print_report
    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile

    console.print(
        f"lexiedge eval --folds {folds} --profile {profile_name} --model {MODEL} --data {data}"
        + "".join(f" --set '{item}'" for item in overrides)
        + "".join(f" --seed {s}" for s in seeds)
        + (f" --enroll {enroll}" if enroll else "")
        + (" --ensemble" if ensemble else "")
        + "".join(f" --fold {f}" for f in only_folds)
        + f" --out {out}",
        soft_wrap=True,
        markup=False,
    )
    profile = load_profile(profile_name, overrides, host=get_host())
    started = time.perf_counter()
    report = cross_validate(
        CrossValRequest(
            profile=profile,
            model_key=MODEL,
            data=data,
            folds=folds,
            out=out,
            seeds=tuple(seeds),
            enroll=enroll,
            ensemble=ensemble,
            only_folds=only_folds,
        ),
        console,
    )
    print_report(report, console)
    return {
        "profile": profile_name,
        "overrides": overrides,
        "folds": folds,
        "seeds": seeds,
        "epochs": profile.model(MODEL).train.settings.epochs,
        "wall_s": time.perf_counter() - started,
        "crossval": report.summary,
        "report": str(report.path),
        "enroll": enroll,
    }


def enrollment_rows(
    profile_name: str,
    overrides: list[str],
    data: Path,
    out: Path,
    folds: int,
    seeds: list[int],
    enroll: str,
    console: Any,
) -> dict[str, Any]:
    """The recipe without and with enrollment, k-fold, both scored on the same clips (each test speaker's
    enrollment clips left out): the recipe as is (rescored with ``--enroll``), and the recipe normalised by
    speaker (feature_norm: speaker, data.enrollment.clips = ``enroll``), trained and scored with profiles."""
    crossval_once(profile_name, overrides, data, out, folds, seeds, console)  # trained once, kept
    without = crossval_once(profile_name, overrides, data, out, folds, seeds, console, enroll=enroll)
    clips = enroll if enroll == "neutral" else int(enroll)
    speaker = [*overrides, f"{_M}.feature_norm=speaker", f"{_D}.enrollment.clips={clips}"]
    with_profiles = crossval_once(
        profile_name,
        speaker,
        data,
        out.with_name(out.name + "-speaker"),
        folds,
        seeds,
        console,
        enroll=enroll,
    )
    gain = with_profiles["crossval"]["mean_sd"]["uar"]["mean"] - without["crossval"]["mean_sd"]["uar"]["mean"]
    return {"enroll": enroll, "without": without, "with": with_profiles, "uar_gain": gain}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[1:10]),
    )
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="RAVDESS speech folder (Actor_NN/*.wav)"
    )
    parser.add_argument(
        "--profile", default="cpu", help="cpu (as shipped) or rtx3050-4gb (its sizes, on this CPU)"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="more profile overrides"
    )
    parser.add_argument(
        "--folds", type=int, help="speaker-grouped k-fold over every actor in --data (the yardstick)"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="with --folds: train.seed of each repeat"
    )
    parser.add_argument(
        "--enroll",
        metavar="neutral|K",
        help="with --folds: each recipe without and with speaker "
        "enrollment (normalised by the profile of each speaker's neutral+calm or K clips)",
    )
    parser.add_argument(
        "--ensemble",
        action="store_true",
        help="with --folds and 2+ --seeds: also score each fold's seed models as one ensemble",
    )
    parser.add_argument(
        "--teachers",
        type=int,
        nargs="+",
        metavar="SEED",
        help="with --folds: cross-validate these seeds first (OUT/teachers), then distil each fold's "
        "--seeds students from the same fold's teacher models (train.distill)",
    )
    parser.add_argument(
        "--fold", type=int, nargs="+", default=[],
        help="with --folds: only these folds (run the others in another process with the same --out; a run "
        "without --fold then reports them all)",
    )
    parser.add_argument("--ablation", action="store_true", help="the ablation table's runs (cpu profile)")
    parser.add_argument(
        "--rows", type=int, nargs="+", help="with --ablation: only these rows (0 = before, 1 = shipped)"
    )
    parser.add_argument(
        "--out", type=Path, help="parent of the run directories (default: a new temp directory)"
    )
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    parser.add_argument("--no-reference", action="store_true", help="skip the linear log-mel yardstick")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(
            f"{args.data}: no such folder; pass --data DIR with RAVDESS Actor_NN/*.wav speech files"
        )
    if args.fold and (not args.folds or args.enroll or args.ablation):
        raise SystemExit("--fold: needs --folds, without --enroll or --ablation")
    if args.teachers and (not args.folds or args.enroll or args.ablation):
        raise SystemExit("--teachers: needs --folds, without --enroll or --ablation")
    if args.teachers and set(args.teachers) & set(args.seeds):
        raise SystemExit(
            f"--teachers {' '.join(map(str, args.teachers))}: a student seed (--seeds) must not be a teacher's"
        )

    import tempfile

    from rich.console import Console

    from lexiedge.plugin import get_host
    from lexiedge.profile import load_profile

    console = Console(highlight=False)
    root = args.out or Path(tempfile.mkdtemp(prefix="bench-ravdess-speech-"))
    shipped = f"{args.profile} as shipped"
    # a row's name says what it ran: --set overrides are part of the recipe, not "as shipped"
    rows = (
        ablation_rows()
        if args.ablation
        else [(f"{shipped} + {', '.join(args.set)}" if args.set else shipped, [])]
    )
    if args.ablation and args.rows:
        rows = [rows[index] for index in args.rows]
    profile_name = "cpu" if args.ablation else args.profile
    results = []
    if args.teachers:
        # the teachers: the recipe itself, cross-validated with their seeds (resumable like any --out)
        teachers = crossval_once(
            profile_name,
            args.set,
            args.data,
            root / "teachers",
            args.folds,
            args.teachers,
            console,
            ensemble=len(args.teachers) > 1,
            only_folds=tuple(args.fold),
        )
        teachers["name"] = f"teachers: {rows[0][0]}"  # the recipe's own row name (--set included)
        results.append(teachers)
        distill = f"{_T}.distill.teachers=[{json.dumps(str((root / 'teachers').resolve()))}]"
        rows = [(f"{rows[0][0]}, distilled from seeds {', '.join(map(str, args.teachers))}", [distill])]
    for index, (name, overrides) in enumerate(rows):
        if args.folds and args.enroll:
            result = enrollment_rows(
                profile_name,
                [*overrides, *args.set],
                args.data,
                root / f"crossval-{index:02d}",
                args.folds,
                args.seeds,
                args.enroll,
                console,
            )
            result["name"] = name
            results.append(result)
            console.print(
                f"{name}: UAR with enrollment ({args.enroll}) - without, same clips: "
                f"{result['uar_gain']:+.3f}",
                soft_wrap=True,
                markup=False,  # a recipe's name holds its --set values: [...] is not markup
            )
            continue
        if args.folds:
            result = crossval_once(
                profile_name,
                [*overrides, *args.set],
                args.data,
                root / f"crossval-{index:02d}",
                args.folds,
                args.seeds,
                console,
                ensemble=args.ensemble,
                only_folds=tuple(args.fold),
            )
            result["name"] = name
            results.append(result)
            stats = result["crossval"]["mean_sd"]
            console.print(
                f"{name}: UAR {stats['uar']['mean']:.3f} ± {stats['uar']['sd']:.3f} over "
                f"{stats['uar']['n']} fold x seed runs",
                soft_wrap=True,
                markup=False,  # a recipe's name holds its --set values: [...] is not markup
            )
            continue
        result = train_once(
            profile_name, [*overrides, *args.set], args.data, root / f"run-{index:02d}", console
        )
        result["name"] = name
        results.append(result)
        best = result["best"]
        console.print(
            f"{name}: best val UAR {best['val_uar']:.3f} (epoch {best['epoch']:.0f}; "
            f"WAR {best['val_war']:.3f}, "
            f"macro-F1 {best['val_macro_f1']:.3f}), last {result['last']['val_uar']:.3f}; "
            f"{result['wall_s'] / 60:.1f} min",
            soft_wrap=True,
            markup=False,  # a recipe's name holds its --set values: [...] is not markup
        )
    reference = None
    if not args.no_reference and not args.folds:
        reference_profile = load_profile(profile_name, [SPLIT, *args.set], host=get_host())
        reference = reference_scores(reference_profile, args.data)
        console.print(
            f"yardstick (linear, {reference['features']}): val UAR {reference['val_uar']:.3f}, "
            f"WAR {reference['val_war']:.3f}, macro-F1 {reference['val_macro_f1']:.3f}",
            soft_wrap=True,
        )
    if args.folds:
        summary = {
            "data": str(args.data),
            "folds": args.folds,
            "seeds": args.seeds,
            "chance_uar": CHANCE_UAR,
            "enroll": args.enroll,
            "results": results,
        }
        console.print(
            enrollment_table(results) if args.enroll else crossval_table(results),
            markup=False,
            soft_wrap=True,
        )
    else:
        summary = {
            "data": str(args.data),
            "train_actors": TRAIN_ACTORS,
            "val_actors": VAL_ACTORS,
            "chance_uar": CHANCE_UAR,
            "results": results,
            "reference_linear": reference,
        }
        console.print(markdown_table(results, reference), markup=False, soft_wrap=True)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def enrollment_table(results: list[dict[str, Any]]) -> str:
    """A markdown row per recipe: UAR without and with enrollment (same scored clips), per seed, the gain."""
    lines = [
        "| recipe | enrollment | UAR without (mean ± sd) | UAR with | gain | per seed without / with |",
        "|---|---|---:|---:|---:|---|",
    ]
    for result in results:
        without, with_ = result["without"]["crossval"], result["with"]["crossval"]
        cells = [
            f"{run['mean_sd']['uar']['mean']:.3f} ± {run['mean_sd']['uar']['sd']:.3f}"
            for run in (without, with_)
        ]
        seeds = ", ".join(
            f"{a['uar']:.3f} / {b['uar']:.3f}"
            for a, b in zip(without["per_seed"].values(), with_["per_seed"].values())
        )
        lines.append(
            f"| {result['name']} | {result['enroll']} | {cells[0]} | {cells[1]} | {result['uar_gain']:+.3f} "
            f"| {seeds} |"
        )
    return "\n".join(lines)


def crossval_table(results: list[dict[str, Any]]) -> str:
    """One markdown row per recipe: mean ± sd over folds x seeds, and each seed's mean over folds."""
    lines = [
        "| recipe | UAR mean ± sd | WAR | macro-F1 | UAR per seed (mean over folds) | runs "
        "| seed ensemble UAR (mean ± sd over folds) |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for result in results:
        stats, seeds = result["crossval"]["mean_sd"], result["crossval"]["per_seed"]
        cell = {
            key: f"{stats[key]['mean']:.3f} ± {stats[key]['sd']:.3f}" for key in ("uar", "war", "macro_f1")
        }
        per_seed = ", ".join(f"{row['uar']:.3f}" for row in seeds.values())
        ensemble = result["crossval"].get("ensemble")
        combined = (
            f"{ensemble['mean_sd']['uar']['mean']:.3f} ± {ensemble['mean_sd']['uar']['sd']:.3f}"
            if ensemble
            else "-"
        )
        lines.append(
            f"| {result['name']} | {cell['uar']} | {cell['war']} | {cell['macro_f1']} | {per_seed} | "
            f"{stats['uar']['n']} | {combined} |"
        )
    return "\n".join(lines)


def markdown_table(results: list[dict[str, Any]], reference: dict[str, Any] | None) -> str:
    lines = [
        "| recipe | best val UAR (epoch) | WAR | macro-F1 | last val UAR | minutes |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        best = result["best"]
        lines.append(
            f"| {result['name']} | {best['val_uar']:.3f} ({best['epoch']:.0f}) | {best['val_war']:.3f} | "
            f"{best['val_macro_f1']:.3f} | {result['last']['val_uar']:.3f} | {result['wall_s'] / 60:.1f} |"
        )
    if reference is not None:
        lines.append(
            f"| linear yardstick | {reference['val_uar']:.3f} | {reference['val_war']:.3f} | "
            f"{reference['val_macro_f1']:.3f} | | |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
