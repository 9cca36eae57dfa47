"""The demo page at ``/``: the emotion classifier in the browser (WASM) and the tutor chat.

What the server adds for it, all read-only:

* ``GET /`` and ``/web/{app.js,style.css}`` — the page (package data of this module, ``web/``);
* ``GET /web/status.json`` — whether the in-browser runtime was found, and if not, the one line the
  page shows instead of failing silently;
* ``/web/lexiedge/`` — the JavaScript runtime (``runtime-js/src``), ``/web/ort/`` — onnxruntime-web's
  files (``node_modules/onnxruntime-web/dist``): the page imports both as ES modules, no bundler;
* ``GET /web/models/{name}/{file}`` — a served classifier's ``manifest.json`` (the one the server
  loaded) and the files that manifest lists, nothing else: the JavaScript runtime checks each file's
  sha256 against it before it creates a session. Behind the API key when one is set (the page asks
  for it); the page and the runtime's code are not.

Where the JavaScript runtime is (``--web-runtime DIR`` or ``$LEXIEDGE_WEB_RUNTIME``, else ``runtime-js/``
of the source checkout this package was installed from): DIR holds ``src/index.js``, and
onnxruntime-web is ``DIR/node_modules/onnxruntime-web`` (``npm ci --ignore-scripts`` in DIR) or a sibling
``DIR/../onnxruntime-web`` (DIR installed from npm as ``node_modules/lexiedge-runtime-js``).
"""

from __future__ import annotations

import json
import mimetypes
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from lexiedge_runtime import Classifier
from lexiedge_runtime.manifest import MANIFEST
from lexiedge_runtime.serve.models import ServedModel, ServeError
from lexiedge_runtime.serve.protocol import ApiError
from lexiedge_runtime.tasks import AV_CLASSIFICATION, known_tasks, task_spec

WEB_RUNTIME_ENV = "LEXIEDGE_WEB_RUNTIME"
PAGE_DIR = Path(__file__).resolve().parent / "web"
PAGE_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
ORT_ENTRY = "ort.wasm.min.mjs"  # onnxruntime-web's WASM-only ES module; it loads ort-wasm-*.{mjs,wasm} beside it
MODEL_PREFIX = "/web/models/"
NOT_INSTALLED = ("the in-browser runtime is not installed on this server: run `npm ci --ignore-scripts` in "
                 "runtime-js/ (or start lexiedge serve with --web-runtime DIR); the tutor chat works without it")

for _type, _suffix in (("text/javascript", ".mjs"), ("text/javascript", ".js"), ("application/wasm", ".wasm")):
    mimetypes.add_type(_type, _suffix)  # some systems map .js to text/plain, which browsers refuse for modules


@dataclass(frozen=True)
class WebRuntime:
    """Where the JavaScript runtime and onnxruntime-web are, or why they are not served."""

    module_dir: Path | None = None  # runtime-js/src
    ort_dir: Path | None = None  # onnxruntime-web/dist
    problem: str | None = NOT_INSTALLED

    @property
    def available(self) -> bool:
        return self.module_dir is not None and self.ort_dir is not None


def find_web_runtime(option: str | None = None) -> WebRuntime:
    """``--web-runtime`` (then ``$LEXIEDGE_WEB_RUNTIME``) must be a runtime-js folder; the checkout's is a default."""
    chosen = option or os.environ.get(WEB_RUNTIME_ENV) or None
    if chosen is not None:
        found = _runtime_in(Path(chosen))
        if isinstance(found, str):
            where = "--web-runtime" if option else f"${WEB_RUNTIME_ENV}"
            raise ServeError(f"{where} {chosen}: {found}")
        return found
    checkout = Path(__file__).resolve().parents[3] / "runtime-js"
    found = _runtime_in(checkout) if checkout.is_dir() else NOT_INSTALLED
    return found if isinstance(found, WebRuntime) else WebRuntime(problem=NOT_INSTALLED)


def _runtime_in(folder: Path) -> WebRuntime | str:
    if not (folder / "src" / "index.js").is_file():
        return "not a runtime-js folder (expected src/index.js in it)"
    for ort in (folder / "node_modules" / "onnxruntime-web", folder.parent / "onnxruntime-web"):
        if (ort / "dist" / ORT_ENTRY).is_file():
            return WebRuntime((folder / "src").resolve(), (ort / "dist").resolve(), None)
    return f"onnxruntime-web is not installed there (expected node_modules/onnxruntime-web/dist/{ORT_ENTRY}): " \
           f"run `npm ci --ignore-scripts` in {folder}"


def is_public(path: str) -> bool:
    """The page and the runtime's code need no API key (a browser cannot send one for them); models do."""
    return path == "/" or (path.startswith("/web/") and not path.startswith(MODEL_PREFIX))


def routes(models: dict[str, ServedModel], runtime: WebRuntime, *, key_required: bool) -> list[BaseRoute]:
    pages = _Pages(models, runtime, key_required)
    served: list[BaseRoute] = [
        Route("/", pages.index, methods=["GET"]),
        Route("/web/status.json", pages.status, methods=["GET"]),
        Route("/web/models/{name}/{path:path}", pages.model_file, methods=["GET"]),
    ]
    if runtime.available:
        assert runtime.module_dir is not None and runtime.ort_dir is not None
        served += [Mount("/web/lexiedge", StaticFiles(directory=runtime.module_dir), name="lexiedge-js"),
                   Mount("/web/ort", StaticFiles(directory=runtime.ort_dir), name="onnxruntime-web")]
    served.append(Route("/web/{file}", pages.page_file, methods=["GET"]))
    return served


class _Pages:
    def __init__(self, models: dict[str, ServedModel], runtime: WebRuntime, key_required: bool) -> None:
        self.models, self.runtime, self.key_required = models, runtime, key_required

    async def index(self, request: Request) -> Response:
        return FileResponse(PAGE_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})

    async def page_file(self, request: Request) -> Response:
        name = request.path_params["file"]
        if name not in PAGE_FILES:
            raise ApiError(404, f"GET {request.url.path}: no such file", code="not_found")
        return FileResponse(PAGE_DIR / name, media_type=PAGE_FILES[name], headers={"Cache-Control": "no-cache"})

    async def status(self, request: Request) -> Response:
        return JSONResponse({"runtime": self.runtime.available, "problem": self.runtime.problem,
                             "module": "/web/lexiedge/index.js", "ort": f"/web/ort/{ORT_ENTRY}",
                             "key_required": self.key_required, "tasks": _page_tasks()})

    async def model_file(self, request: Request) -> Response:
        """A served classifier's manifest (as loaded) or a file it lists, read without following a link."""
        name, path = request.path_params["name"], request.path_params["path"]
        served = self.models.get(name)
        if served is None or not isinstance(served.model, Classifier):
            known = ", ".join(m.name for m in self.models.values() if isinstance(m.model, Classifier)) or "none"
            raise ApiError(404, f"no classifier {name!r} is served here (classifiers: {known})", code="model_not_found")
        model = served.model
        if path == MANIFEST:
            return Response(json.dumps(model.manifest), media_type="application/json",
                            headers={"Cache-Control": "no-cache"})
        if path not in model.manifest["files"]:  # validated at load: every listed name lies inside the artifact
            raise ApiError(404, f"{name}: {path!r} is not a file its manifest lists", code="not_found")
        directory = Path(model.artifact_dir)
        current = directory
        for part in path.split("/"):  # no symbolic link on the way, as when the artifact was loaded
            current = current / part
            try:
                mode = os.lstat(current).st_mode
            except OSError:
                raise ApiError(404, f"{name}: {path} is missing from the artifact", code="not_found") from None
            if stat.S_ISLNK(mode):
                raise ApiError(403, f"{name}: {path} is a symbolic link, refused", code="forbidden")
        if not stat.S_ISREG(mode):
            raise ApiError(404, f"{name}: {path} is not a regular file", code="not_found")
        return FileResponse(current, media_type="application/octet-stream", headers={"Cache-Control": "no-cache"})


def _page_tasks() -> dict[str, Any]:
    """Which served models the page offers where, by the task specs: chat with a text-generating task's,
    classify in the browser with the task runtime-js runs (its name is in the schema module it imports)."""
    chat = [name for name in known_tasks() if task_spec(name).generates]
    return {"chat": chat, "classify": AV_CLASSIFICATION}
