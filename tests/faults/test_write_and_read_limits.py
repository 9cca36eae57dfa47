"""A file size limit during a checkpoint and a JFLEG file that is not UTF-8 are one line, not a traceback.

Issue 31, item 14. `ulimit -f` makes a write fail with EFBIG (Python ignores SIGXFSZ), which
safetensors reports as "File too large (os error 27)": it must read like a full disk does (the
partial checkpoint removed, --resume after), in a real process under a real RLIMIT_FSIZE.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import fault_plugins
from fault_helpers import finish, start

FILE_SIZE_LIMIT = 4096  # bytes: above profile.yaml, run.json and the first metrics lines, below the weights


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def test_a_file_size_limit_while_checkpointing_is_one_line_and_resume_finishes(profile_path, tmp_path):
    run = tmp_path / "run"
    process = subprocess.Popen(fault_plugins.script_command("train", "--profile", str(profile_path), "--out", str(run)),
                               env=fault_plugins.process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=_limit_file_size)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines() == [
        f"error: a file in {run / 'checkpoints'} outgrew the file size limit (ulimit -f) while writing checkpoint "
        "step-00000003: the partial checkpoint was removed and the earlier ones are intact; raise the limit and "
        "--resume"]
    assert list((run / "checkpoints").iterdir()) == [], "no temp directory is left"
    assert json.loads((run / "run.json").read_text())["status"] == "failed"

    resumed = finish(start("train", "--profile", profile_path, "--out", run, "--resume"))  # the limit lifted
    assert resumed.code == 0, resumed.output[-3000:]
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


def test_a_jfleg_file_that_is_not_utf8_is_one_line_naming_the_line(tmp_path):
    source = tmp_path / "jfleg"
    source.mkdir()
    (source / "dev.src").write_bytes(b"She go to school .\nThe caf\xe9 are open .\n")
    for k in range(4):
        (source / f"dev.ref{k}").write_text("She goes to school .\nThe cafe is open .\n", encoding="utf-8")
    out = tmp_path / "jfleg-dev.jsonl"
    result = subprocess.run([sys.executable, "-m", "lexiedge.cli", "data", "jfleg", "--src", str(source), "--split",
                             "dev", "--out", str(out)], capture_output=True, text=True, timeout=120,
                            env=fault_plugins.process_env())
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {source / 'dev.src'}: not UTF-8 text (line 2, byte 8); expected JFLEG's UTF-8 text files "
        "(re-save the file as UTF-8)"]
    assert not out.exists()
