"""The plugin host: registration, lookup, built-ins through entry points, an outside plugin installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lexiedge.api import ModelPlugin, TrainerPlugin
from lexiedge.errors import UnknownPluginError
from lexiedge.plugin import PLUGIN_KINDS, build_host, get_host, hookimpl
from lexiedge.registry import Registry

FIXTURE_PLUGIN = Path(__file__).resolve().parent.parent / "fixtures" / "lexiedge-example-plugin"
BUILT_INS = {
    "models": {"emotion-av", "qwen-lora"},
    "datasets": {"ravdess", "chat-jsonl"},
    "trainers": {"classifier", "causal-lm-lora"},
}


def test_built_in_plugins_load_through_entry_points() -> None:
    host = build_host()
    assert host.broken == {}, f"built-in plugins failed to load: {host.broken}"
    for kind, names in BUILT_INS.items():
        assert names <= set(host.registry(kind).names()), kind
        for name in names:
            assert host.distribution_of(kind, name).startswith("lexiedge "), "registered by the lexiedge distribution"


def test_registry_lookup_and_unknown_names() -> None:
    host = get_host()
    plugin = host.models.get("emotion-av")
    assert isinstance(plugin, ModelPlugin) and plugin.task == "av-classification"
    with pytest.raises(UnknownPluginError) as info:
        host.trainers.get("reinforce")
    assert "reinforce" in str(info.value) and "classifier" in str(info.value) and "causal-lm-lora" in str(info.value)


class _Trainer(TrainerPlugin):
    name = "classifier"
    tasks = frozenset({"x"})

    def loss(self, built, batch):  # pragma: no cover - never called
        raise NotImplementedError

    def fit(self, job):  # pragma: no cover - never called
        raise NotImplementedError


def test_registry_refuses_duplicates_and_non_plugins() -> None:
    registry: Registry[TrainerPlugin] = Registry("trainer", TrainerPlugin)
    registry.add(_Trainer)
    registry.add(_Trainer)  # the same class twice is harmless

    class Other(_Trainer):
        pass

    with pytest.raises(ValueError, match="two trainer plugins are named 'classifier'"):
        registry.add(Other)
    with pytest.raises(TypeError):
        registry.add(object)  # type: ignore[arg-type]


def test_plugins_registered_from_a_module_object() -> None:
    class Extra:
        @hookimpl
        def lexiedge_add_trainers(self, registry):
            class Named(_Trainer):
                name = "my-trainer"

            registry.add(Named)

    host = build_host(Extra(), entry_points=False)
    assert host.trainers.names() == ["my-trainer"]
    assert host.models.names() == []


def test_plugins_command_lists_kinds_and_names(cli) -> None:
    result = cli("plugins")
    assert result.exit_code == 0
    for kind, names in BUILT_INS.items():
        assert kind in result.stdout
        for name in names:
            assert name in result.stdout


def _install(target: Path) -> dict[str, str]:
    """pip-install the example plugin distribution into `target` (no network, no build isolation)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(FIXTURE_PLUGIN)],
        check=True,
        capture_output=True,
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(target), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The example distribution pip-installed once for this module: the environment to run `lexiedge` in."""
    return _install(tmp_path_factory.mktemp("example-plugin") / "site")


def test_an_installed_outside_plugin_shows_up_and_is_usable(tmp_path: Path, installed: dict[str, str]) -> None:
    env = installed
    lexiedge = [sys.executable, "-m", "lexiedge.cli"]
    listed = subprocess.run([*lexiedge, "plugins", "--json"], env=env, capture_output=True, text=True, check=True)
    rows = {row["name"]: row for row in json.loads(listed.stdout)["plugins"]}
    assert rows["av-baseline"]["kind"] == "models"
    assert rows["av-baseline"]["from"] == "lexiedge-example-plugin 0.1.0"
    assert rows["emotion-av"]["from"].startswith("lexiedge ")
    # a user's profile can pick it like any built-in, and the planner builds and measures it
    profile = tmp_path / "baseline.yaml"
    profile.write_text(
        "extends: cpu\nname: baseline\nmodels:\n  emotion-av:\n    model: {plugin: av-baseline, hidden: 16}\n"
    )
    shown = subprocess.run([*lexiedge, "profiles", "show", str(profile)], env=env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "av-baseline" in shown.stdout
    planned = subprocess.run(
        [*lexiedge, "plan", "--profile", str(profile), "--model", "emotion-av"], env=env, capture_output=True, text=True
    )
    assert planned.returncode == 0, planned.stderr
    assert "fits" in planned.stdout


EXAMPLE_PLUGINS = {"av-baseline": "models", "wav-folder": "datasets", "plain-classifier": "trainers",
                   "torchscript": "exporters"}
# an app loading the exporter's artifact through the runtime: the runner the example registers for its engine
LOAD_AND_PREDICT = (
    "import sys, numpy as np\n"
    "from lexiedge_runtime import load\n"
    "model = load(sys.argv[1])\n"
    "tone = 0.5 * np.sin(2 * np.pi * 1760.0 * np.arange(11025) / 22050).astype(np.float32)\n"
    "print(type(model).__name__, model.provider, model.predict(waveform=tone, sample_rate=22050).label)\n"
)


def _write_wav_folder(root: Path) -> Path:
    """Two labels of short tones (low, high) with a little noise, 22.05 kHz: wav-folder resamples them."""
    import numpy as np
    import soundfile

    rng = np.random.default_rng(0)
    time = np.arange(int(22050 * 0.5)) / 22050
    for label, freq in (("low", 220.0), ("high", 1760.0)):
        (root / label).mkdir(parents=True)
        for number in range(4):
            tone = 0.5 * np.sin(2 * np.pi * freq * (1 + 0.05 * number) * time) + 0.05 * rng.standard_normal(time.size)
            soundfile.write(root / label / f"clip{number}.wav", tone.astype(np.float32), 22050)
    return root


def _example_profile(path: Path) -> Path:
    """The profile of docs/plugins.md: the example model, dataset, trainer and exporter together."""
    path.write_text(
        "extends: cpu\n"
        "name: wav-example\n"
        "models:\n"
        "  tones:\n"
        "    model: {plugin: av-baseline, hidden: 8, num_classes: 2}\n"
        "    data: {plugin: wav-folder, clip_seconds: 0.5}\n"
        "    train: {plugin: plain-classifier, epochs: 2, batch_size: 2, lr: 3.0e-3, trackers: []}\n"
        "    export: {targets: [torchscript]}\n"
    )
    return path


def test_the_example_distribution_lists_one_plugin_of_each_kind(installed: dict[str, str]) -> None:
    listed = subprocess.run([sys.executable, "-m", "lexiedge.cli", "plugins", "--json"], env=installed,
                            capture_output=True, text=True, check=True)
    rows = {row["name"]: row for row in json.loads(listed.stdout)["plugins"]}
    for name, kind in EXAMPLE_PLUGINS.items():
        assert rows[name]["kind"] == kind
        assert rows[name]["from"] == "lexiedge-example-plugin 0.1.0"


@pytest.mark.slow
def test_the_example_plugins_train_and_export_together(tmp_path: Path, installed: dict[str, str]) -> None:
    lexiedge = [sys.executable, "-m", "lexiedge.cli"]
    data, profile, run = _write_wav_folder(tmp_path / "wavs"), _example_profile(tmp_path / "wav.yaml"), tmp_path / "run"
    trained = subprocess.run([*lexiedge, "train", "--profile", str(profile), "--model", "tones", "--data", str(data),
                              "--out", str(run)], env=installed, capture_output=True, text=True, check=False)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "wav-folder: 6 train / 2 val clips" in trained.stdout
    from lexiedge.rundir import find_checkpoint, read_history

    assert find_checkpoint(run) is not None, "the run has weights"
    assert len(read_history(run)) == 2 and "val/accuracy" in read_history(run)[-1]

    artifact = tmp_path / "artifact"
    exported = subprocess.run([*lexiedge, "export", "--run", str(run), "--target", "torchscript", "--out", str(artifact)],
                              env=installed, capture_output=True, text=True, check=False)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert "verification against PyTorch" in exported.stdout
    from lexiedge.export import read_manifest, verify_files

    manifest = read_manifest(artifact)
    assert manifest["target"] == "torchscript" and manifest["model_files"] == ["model.pt"]
    assert manifest["verification"]["passed"] and manifest["verification"]["inputs"] == "data"
    assert (artifact / "model.pt").is_file() and verify_files(artifact) == []

    # a new format is a plugin: the example's runner (lexiedge_runtime.runners entry point) runs the
    # artifact in the runtime and in the bench, which names the backend after it; nothing in lexiedge
    # lists the engine
    assert manifest["runtime"]["engine"] == "torchscript" and manifest["labels"] == ["high", "low"]
    loaded = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, str(artifact)], env=installed,
                            capture_output=True, text=True, check=False)
    assert loaded.returncode == 0, loaded.stderr
    runner, provider, label = loaded.stdout.split(maxsplit=2)
    assert (runner, provider) == ("TorchScriptClassifier", "torch.jit") and label.strip() in {"high", "low"}
    bench = [*lexiedge, "bench", str(artifact), "--backends", "torch,torchscript", "--warmup", "1",
             "--iterations", "2", "--rounds", "1", "--out", str(tmp_path / "bench"), "--json"]
    benched = subprocess.run(bench, env=installed, capture_output=True, text=True, check=False)
    assert benched.returncode == 0, benched.stderr
    backends = {row["name"]: row for row in json.loads(benched.stdout)["backends"]}
    assert sorted(backends) == ["torch", "torchscript"]
    assert backends["torchscript"]["artifact"] == str(artifact)
    assert backends["torchscript"]["kind"] == "torchscript" and backends["torch"]["kind"] == "torch"


def test_the_example_dataset_refuses_a_missing_or_empty_folder(tmp_path: Path, installed: dict[str, str]) -> None:
    profile = _example_profile(tmp_path / "wav.yaml")
    (tmp_path / "empty").mkdir()
    for data in (tmp_path / "missing", tmp_path / "empty"):
        result = subprocess.run([sys.executable, "-m", "lexiedge.cli", "train", "--profile", str(profile), "--model",
                                 "tones", "--data", str(data), "--out", str(tmp_path / "run")],
                                env=installed, capture_output=True, text=True, check=False)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and data.name in result.stderr, result.stderr
    assert "needs .wav files in at least two label folders" in result.stderr  # wav-folder's check_source
    assert not (tmp_path / "run").exists(), "refused before the run directory is made"


def test_the_plugin_guide_quotes_the_example_code_as_it_is() -> None:
    """Every line of docs/plugins.md's Python blocks is a line of the example distribution's modules."""
    import re

    guide = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text(encoding="utf-8")
    source = {line.rstrip() for path in (FIXTURE_PLUGIN / "lexiedge_example").glob("*.py")
              for line in path.read_text(encoding="utf-8").splitlines()}
    blocks = re.findall(r"```python\n(.*?)```", guide, flags=re.S)
    assert len(blocks) >= 4, "one block per kind"
    stale = [line for block in blocks for line in block.splitlines() if line.strip() and line.rstrip() not in source]
    assert stale == [], "docs/plugins.md quotes lines the example plugin no longer has"


def test_a_broken_outside_plugin_is_reported_not_fatal(tmp_path: Path) -> None:
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[lexiedge]\nbroken = no_such_module_here.plugin\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "lexiedge.cli", "plugins"], env=env, capture_output=True, text=True)
    assert result.returncode == 0
    assert "emotion-av" in result.stdout
    assert "'broken' failed to load" in result.stderr and "no_such_module_here" in result.stderr


def test_every_kind_has_a_hook() -> None:
    from lexiedge import hookspecs

    for kind in PLUGIN_KINDS:
        hook = getattr(hookspecs, f"lexiedge_add_{kind}")
        assert hook.__doc__ and "registry.add" in hook.__doc__


@pytest.mark.parametrize("terminal", [True, False])
def test_an_export_stage_says_what_runs_and_lets_the_step_show_its_own_progress_bar(terminal: bool) -> None:
    import io

    from rich.console import Console
    from rich.progress import Progress

    from lexiedge.api import ExportJob, NoSettings

    output = io.StringIO()
    console = Console(file=output, force_terminal=terminal, width=120)
    job = ExportJob(profile=None, model_key="m", entry=None, model_plugin=None, run_dir=Path("run"),  # type: ignore[arg-type]
                    out_dir=Path("out"), settings=NoSettings(), console=console)
    with job.stage("verification against PyTorch"):
        with Progress(console=console, transient=True) as progress:  # a dataset decoding clips, inside the stage
            progress.add_task("decoding", total=2)
    text = output.getvalue()
    assert "verification against PyTorch ..." in text and "done" in text.split("verification against PyTorch ...")[1]
