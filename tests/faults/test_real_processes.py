"""The fault suite proper: real lexiedge processes, killed, raced and starved of disk space.

* kill -9 in the middle of writing a checkpoint, then --resume: the same weights as a run never killed;
* two writers on one run directory: the second is refused, naming the first's pid; a kill -9 of the
  first leaves no stale lock;
* a full disk while exporting: a real tmpfs where this machine lets a user mount one (a private mount
  namespace), and everywhere a write that fails with ENOSPC at the first byte of a real file.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import fault_plugins
import pytest
import torch
from fault_helpers import finish, run_process, start, wait_until_stopped
from safetensors.torch import load_file

from lexiedge.train import checkpoint as ckpt

pytestmark = pytest.mark.slow


def _same_final_weights(run: Path, reference: Path) -> bool:
    ours = load_file(str(run / "final" / "model.safetensors"))
    theirs = load_file(str(reference / "final" / "model.safetensors"))
    return ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def _training_steps(run: Path) -> list[int]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in records if "event" not in r]


def test_kill_9_during_a_checkpoint_write_then_resume(profile_path, trained_run, tmp_path):
    run = tmp_path / "run"
    victim = start("train", "--profile", profile_path, "--out", run,
                   env=fault_plugins.process_env(FAULT_STOP_IN_CHECKPOINT="6"))
    try:
        wait_until_stopped(victim)  # step 6's weights and state are on disk, its checksums are not
        partial = [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".tmp-step-00000006-")]
        assert len(partial) == 1 and (partial[0] / ckpt.WEIGHTS).is_file()
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    assert not (run / "checkpoints" / "step-00000006").exists(), "a half-written checkpoint never has a real name"

    resumed = run_process("train", "--profile", profile_path, "--out", run, "--resume")
    assert resumed.code == 0, resumed.output[-3000:]
    assert "resumed from step-00000003" in resumed.output and "warning" not in resumed.output
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")], "the temp dir was cleared"
    assert _same_final_weights(run, trained_run)
    assert _training_steps(run) == _training_steps(trained_run), "every step logged once, as uninterrupted"


def test_two_writers_on_one_run_the_second_is_refused_and_kill_9_leaves_no_stale_lock(profile_path, trained_run,
                                                                                       tmp_path):
    run = tmp_path / "run"
    first = start("train", "--profile", profile_path, "--out", run,
                  env=fault_plugins.process_env(FAULT_STOP_AFTER_CHECKPOINT="6"))
    try:
        wait_until_stopped(first)  # alive, holding the lock, between two steps
        second = run_process("train", "--profile", profile_path, "--out", run, "--resume")
        assert second.code == 2
        assert second.lines == [f"error: {run} is being written by another lexiedge process (pid {first.pid}); wait "
                                "for it to end or stop it: one run directory has one writer"]
        fresh = run_process("train", "--profile", profile_path, "--out", run)  # nor a new run in the same folder
        assert fresh.code == 2 and f"(pid {first.pid})" in fresh.output
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()

    third = run_process("train", "--profile", profile_path, "--out", run, "--resume")
    assert third.code == 0, third.output[-3000:]
    assert "resumed from step-00000006" in third.output
    assert _same_final_weights(run, trained_run)
    assert _training_steps(run) == _training_steps(trained_run), "one writer: no interleaved metrics.jsonl"


def _tmpfs_available(mount_point: Path) -> bool:
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            f"mount -t tmpfs -o size=4k tmpfs {mount_point}"], capture_output=True)
    return probe.returncode == 0


def _assert_disk_full_export(result, out: Path, existing: dict[str, bytes]) -> None:
    assert result.code == 1, result.output[-3000:]
    errors = [line for line in result.lines if line.startswith("error:")]
    assert errors == [f"error: no space left on the disk while exporting fault to onnx ({out}): the partial artifact "
                      f"was removed; {out} is unchanged; free some space (the temp folder's disk too) and export "
                      "again"]
    assert "Traceback" not in result.output
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name], "no temp or .failed folder left"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == existing, "the existing artifact is untouched"


def test_a_full_disk_while_exporting_on_a_real_tmpfs(trained_run, artifact, tmp_path):
    """A 24 KB tmpfs holding the old artifact (20 KB in pages): the new one cannot fit beside it."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    if shutil.which("unshare") is None or not _tmpfs_available(mount_point):
        pytest.skip("this machine does not let a user mount a tmpfs (the patched-write test covers a full disk)")
    out = mount_point / "artifact"
    export = " ".join(map(shlex.quote, fault_plugins.script_command(
        "export", "--run", trained_run, "--target", "onnx", "--out", out, "--force")))
    script = (f"mount -t tmpfs -o size=24k tmpfs {shlex.quote(str(mount_point))} && "
              f"cp -r {shlex.quote(str(artifact))} {shlex.quote(str(out))} && {{ {export}; echo \"exit=$?\"; "
              f"ls -A {shlex.quote(str(mount_point))}; sha256sum {shlex.quote(str(out))}/*; }}")
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
                          env=fault_plugins.process_env(), capture_output=True, text=True, timeout=300)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert "exit=1" in lines, "\n".join(lines[-40:])
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == [f"error: no space left on the disk while exporting fault to onnx ({out}): the partial artifact "
                      f"was removed; {out} is unchanged; free some space (the temp folder's disk too) and export "
                      "again"]
    assert "Traceback" not in done.stdout + done.stderr
    listing = [line for line in done.stdout.splitlines() if line.strip()]
    after = listing[listing.index("exit=1") + 1:]
    assert after[0] == "artifact", "only the old artifact on the disk: no temp or .failed folder left"
    hashes = {line.split()[1].rsplit("/", 1)[-1]: line.split()[0] for line in after[1:]}
    assert hashes == {name: hashlib.sha256((artifact / name).read_bytes()).hexdigest()
                      for name in ("manifest.json", "model.onnx", "README.md")}, "the existing artifact is untouched"


def test_a_full_disk_while_exporting_a_write_failing_at_the_first_byte(trained_run, artifact, tmp_path):
    out = tmp_path / "disk" / "artifact"
    shutil.copytree(artifact, out)
    existing = {p.name: p.read_bytes() for p in out.iterdir()}
    result = finish(start("export", "--run", trained_run, "--target", "onnx", "--out", out, "--force",
                          env=fault_plugins.process_env(FAULT_ENOSPC_UNDER=str(out.parent))))
    _assert_disk_full_export(result, out, existing)
