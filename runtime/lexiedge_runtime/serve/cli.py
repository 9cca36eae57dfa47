"""``lexiedge serve`` / ``lexiedge-serve``: load artifacts once and serve them with uvicorn.

The options live here, in the runtime distribution, so the server starts in an app's environment
without the toolkit (``lexiedge-serve``, from ``lexiedge-runtime[serve]``); the toolkit's
``lexiedge serve`` passes its arguments on unchanged, and imports no plugin (and so no torch) to do it.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Sequence

from lexiedge_runtime.errors import LexiedgeError
from lexiedge_runtime.extras import require

API_KEY_ENV = "LEXIEDGE_API_KEY"


def parser(prog: str = "lexiedge-serve") -> argparse.ArgumentParser:
    from lexiedge_runtime.serve.models import DEFAULT_MAX_QUEUE
    from lexiedge_runtime.serve.protocol import DEFAULT_MAX_BODY_BYTES

    p = argparse.ArgumentParser(
        prog=prog,
        description="Serve lexiedge artifacts over HTTP: POST /v1/chat/completions (OpenAI-compatible) for tutor "
                    "artifacts, POST /v1/emotion for classifier artifacts, GET /v1/models, /health, /metrics.",
        epilog=f"Example: {prog} artifacts/qwen-lora/onnx-int4 artifacts/emotion-av/onnx-int8 --port 8000; then "
               "any OpenAI client with base_url http://127.0.0.1:8000/v1.",
    )
    p.add_argument("artifacts", nargs="+", metavar="ARTIFACT",
                   help="artifact directory written by `lexiedge export`; NAME=DIR serves it as NAME "
                        "(default: <model>-<target> from its manifest)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--api-key", default=None,
                   help=f"require 'Authorization: Bearer KEY' on every request (default: ${API_KEY_ENV}, else none)")
    p.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY_BYTES / (1 << 20),
                   help="largest request body accepted, in MiB (default %(default)g); larger ones get 413")
    p.add_argument("--max-queue", type=int, default=DEFAULT_MAX_QUEUE,
                   help="requests per model running or waiting before more get 503 (default %(default)d)")
    p.add_argument("--device", default="auto", help="auto (default), tensorrt, cuda or cpu")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads per model (default: ONNX Runtime's)")
    p.add_argument("--allow-unverified", action="store_true",
                   help="serve artifacts whose export verification failed (warns)")
    p.add_argument("--web-runtime", default=None, metavar="DIR",
                   help="runtime-js folder (src/ and node_modules/onnxruntime-web) for the demo page at / "
                        "(default: $LEXIEDGE_WEB_RUNTIME, else runtime-js/ of this source checkout)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level (default info: one line per request)")
    return p


def main(argv: Sequence[str] | None = None, prog: str = "lexiedge-serve") -> int:
    """Parse, load every artifact, serve until interrupted; a user error is one line and exit code 2 (3)."""
    args = parser(prog).parse_args(argv)
    try:
        require("serve", f"`{prog}`")
        settings = _checked(args)
        from lexiedge_runtime.serve.app import create_app
        from lexiedge_runtime.serve.models import load_models
        from lexiedge_runtime.serve.web import find_web_runtime

        web_runtime = find_web_runtime(args.web_runtime)
        models = load_models(args.artifacts, device=args.device, threads=args.threads,
                             allow_unverified=args.allow_unverified, max_queue=args.max_queue)
    except LexiedgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    import uvicorn

    api_key = settings["api_key"]
    if api_key is None and not _is_loopback(args.host):
        print(f"warning: serving on {args.host} without an API key: anyone who can reach this machine can use the "
              f"models (pass --api-key or set {API_KEY_ENV})", file=sys.stderr)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    listed = ", ".join(f"{m.name} ({m.task})" for m in models.values())
    print(f"serving {listed} on http://{shown}:{args.port} (OpenAI base_url http://{shown}:{args.port}/v1"
          f"{', API key required' if api_key else ''}; demo page http://{shown}:{args.port}/)", file=sys.stderr,
          flush=True)
    if web_runtime.problem:
        print(f"note: the demo page at / cannot run models in the browser: {web_runtime.problem}", file=sys.stderr)
    app = create_app(models, api_key=api_key, max_body_bytes=settings["max_body_bytes"], web_runtime=web_runtime)
    # a short graceful shutdown: open streams are cut on Ctrl-C rather than awaited
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=3)
    return 0


def _checked(args: argparse.Namespace) -> dict:
    from lexiedge_runtime.serve.models import ServeError

    if not 0 <= args.port <= 65535:
        raise ServeError(f"--port {args.port}: expected 0-65535")
    if not args.max_body_mb > 0:
        raise ServeError(f"--max-body-mb {args.max_body_mb:g}: expected a size above 0")
    if args.max_queue < 1:
        raise ServeError(f"--max-queue {args.max_queue}: expected 1 or more")
    if args.threads is not None and args.threads < 1:
        raise ServeError(f"--threads {args.threads}: expected 1 or more")
    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None
    if api_key is not None and (not api_key.strip() or any(c.isspace() for c in api_key)):
        raise ServeError("the API key must be a non-empty word without spaces")
    return {"api_key": api_key, "max_body_bytes": int(args.max_body_mb * (1 << 20))}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: only the machine's resolver knows; warn
        return False


if __name__ == "__main__":
    sys.exit(main())
