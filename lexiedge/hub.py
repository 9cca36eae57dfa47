"""Reaching the Hugging Face hub: the local cache first, one short attempt online, then one line.

transformers' ``from_pretrained`` on a hub name that is not cached asks the hub, and huggingface_hub
retries a failed connection with backoff (about 50 s for one model with no network). Every hub load in
lexiedge goes through :func:`load_from_hub` instead:

1. ``load(local_files_only=True)``: the cache alone, no network;
2. one HEAD request for the repository's ``config.json`` (huggingface_hub's HTTP session, no retries,
   :data:`PROBE_TIMEOUT` seconds), only to learn whether the hub answers at all;
3. if it answers, ``load(local_files_only=False)`` downloads what is missing (with huggingface_hub's own
   retries: a network that answered once is worth retrying); if not, one :class:`NotAvailableError` line
   naming what was needed, why, and the ways out.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from lexiedge.errors import NotAvailableError

T = TypeVar("T")

#: seconds the one online probe may take (connect and answer); LEXIEDGE_HUB_TIMEOUT overrides it
PROBE_TIMEOUT = 4.0


def probe_timeout() -> float:
    value = os.environ.get("LEXIEDGE_HUB_TIMEOUT")
    try:
        return float(value) if value else PROBE_TIMEOUT
    except ValueError:
        return PROBE_TIMEOUT


def hub_unreachable_reason(repo_id: str, revision: str | None = None) -> str | None:
    """Why the hub cannot serve ``repo_id`` now (one short phrase), or None when it answers.

    One HEAD request for the repository's config.json through huggingface_hub's own HTTP session
    (:func:`huggingface_hub.get_session`: its proxies and SSL settings), without retries and without
    building the hub's user-agent (which fetches a telemetry registry first). Any HTTP answer below 500
    (even 401/404) means the hub is reachable: the load that follows reports what it says.
    """
    from huggingface_hub import constants, get_session, hf_hub_url

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    url = hf_hub_url(repo_id, "config.json", revision=revision)
    try:
        response = get_session().head(url, timeout=probe_timeout(), follow_redirects=False)
    except Exception as error:  # httpx connect/read errors, DNS failures, proxies: the network, not the model
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"cannot reach {constants.ENDPOINT}: {detail}"
    if response.status_code >= 500:
        return f"{constants.ENDPOINT} answered HTTP {response.status_code}"
    return None


def hub_cache_dir() -> str:
    """The Hugging Face hub's download cache (where ``from_pretrained`` looks first)."""
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def load_from_hub(
    load: Callable[[bool], T],
    repo_id: str,
    *,
    revision: str | None = None,
    what: str = "model",
    ways_out: str = "",
) -> T:
    """``load(local_files_only)`` for a hub repository: cache first, then online only if the hub answers.

    ``what`` names what was needed ("base model 'Qwen/...'"), ``ways_out`` the alternatives the caller
    offers (a local directory, a built base); both go into the one-line error when the hub is unreachable.
    OSErrors of the online load (a gated or missing repository) propagate for the caller to word.
    """
    try:
        return load(True)
    except OSError:
        pass  # not (completely) in the cache
    reason = hub_unreachable_reason(repo_id, revision)
    if reason is not None:
        hint = f"pre-fetch it on a connected machine (hf download {repo_id}; cache: {hub_cache_dir()})"
        raise NotAvailableError(
            f"{what} is not in the local Hugging Face cache and the hub is unreachable ({reason}); "
            f"{hint}" + (f", {ways_out}" if ways_out else "")
        )
    return load(False)
