"""A finished run's model, loaded to be used rather than trained further: scored by an evaluator, or a
teacher a distilled run learns from. Export rebuilds its own (:mod:`lexiedge.export.classifier`), with
the tracing seed and its own error type.

Its own module: it needs the run layout (:mod:`lexiedge.rundir`, torch-free) and export's trust rule for
weights (:func:`lexiedge.export.steps.check_run_has_weights`), which reads the run layout itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lexiedge.errors import UsageError
from lexiedge.rundir import WEIGHTS, find_checkpoint, load_run_profile

if TYPE_CHECKING:
    from lexiedge.api import BuiltModel
    from lexiedge.profile import Profile


def load_trained_model(run_dir: Path, *, action: str) -> tuple[Profile, str, BuiltModel, Path]:
    """The run's profile, model key, model and checkpoint folder: the architecture of its profile rebuilt
    (not pretrained), its best (else final) weights loaded strictly, on the CPU in fp32, in eval mode.

    The weights are trusted on export's terms (:func:`lexiedge.export.steps.check_run_has_weights`: the
    checksums training recorded); ``action`` names the command refused ("evaluate", "distill from")."""
    import torch
    from safetensors.torch import load_file

    from lexiedge.export.steps import check_run_has_weights
    from lexiedge.plugin import get_host

    profile, model_key = load_run_profile(run_dir)
    check_run_has_weights(run_dir, profile, model_key, action=action)
    checkpoint = find_checkpoint(run_dir)
    if checkpoint is None:  # an adapter-only run: it is merged, not loaded as one module
        raise UsageError(f"{run_dir} has no weights (checkpoints/best or final); finish or --resume the run")
    entry = profile.model(model_key)
    with torch.random.fork_rng(devices=[]):  # building must not move the caller's seeded draws
        built = get_host().models.get(entry.model.plugin).build(entry.model.settings, profile.device, pretrained=False)
    built.module.cpu().float().eval()
    built.module.load_state_dict(load_file(checkpoint / WEIGHTS), strict=True)
    return profile, model_key, built, checkpoint
