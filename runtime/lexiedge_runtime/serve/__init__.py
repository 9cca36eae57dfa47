"""A local HTTP server for artifacts (the ``[serve]`` extra): OpenAI-compatible chat, emotion, health.

    lexiedge serve artifacts/qwen-lora/onnx-int4 artifacts/emotion-av/onnx-int8   # the toolkit's command
    lexiedge-serve ...                                                            # the same, runtime only

* ``POST /v1/chat/completions`` — OpenAI's chat completions for a tutor (``causal-lm``) artifact:
  ``messages``, ``max_tokens``, ``temperature``, ``top_p``, ``stop``, ``seed``, ``stream`` (server-sent
  events, ``stream_options.include_usage``), ``usage`` counts. Any OpenAI client works with
  ``base_url="http://127.0.0.1:8000/v1"``.
* ``GET /v1/models`` — the served models (``id``, and lexiedge's ``task``).
* ``POST /v1/emotion`` — a classifier artifact on a wav/mp4 upload (multipart part ``file``, decoded as
  in training, up to the manifest's ``max_input_seconds``)
  or JSON ``{"samples": [...], "sample_rate": 16000}``: ``label``, ``probabilities``,
  ``timing`` (``decode_ms``, ``inference_ms``). ``model`` may be left out when one classifier is served.
* ``GET /health``, ``GET /metrics`` (Prometheus text: requests by route and status, latency, tokens).
* ``GET /`` — a demo page: the emotion classifier runs in the browser (runtime-js over onnxruntime-web,
  served under ``/web/``), the tutor streams from this server (:mod:`~lexiedge_runtime.serve.web`).

Each artifact is loaded once; each model runs its requests one at a time on a worker thread of its own
(:mod:`~lexiedge_runtime.serve.models`), and a tutor reuses its kept KV cache between turns (prefix
reuse). Binds 127.0.0.1 unless told otherwise, and another address only with a key: ``--api-key`` (or
``LEXIEDGE_API_KEY``) makes every request need ``Authorization: Bearer <key>`` (not the page's own
files). Other web pages are refused unless ``--allow-origin`` names them, and a loopback server answers
only to this machine's names in ``Host`` (:mod:`~lexiedge_runtime.serve.access`). Uploads decode within
the model's bounds, connections within a header deadline and a cap
(:mod:`~lexiedge_runtime.serve.connections`); docs/serving.md lists every rule and flag. Errors are
OpenAI's error object: 400 for a bad request (malformed JSON, wrong types, a prompt the model refuses),
401, 403 (origin or Host), 404 (unknown model or route), 413 (body over ``--max-body-mb``, or media that
decode to more than the model reads), 415, 503 (queue full), 500 for a bug; none stops the server.

Modules: :mod:`~lexiedge_runtime.serve.protocol` (the wire format), :mod:`~lexiedge_runtime.serve.app`
(routes, auth, limits), :mod:`~lexiedge_runtime.serve.access` (Host and Origin rules),
:mod:`~lexiedge_runtime.serve.connections` (the bounded HTTP protocol),
:mod:`~lexiedge_runtime.serve.models`, :mod:`~lexiedge_runtime.serve.metrics`,
:mod:`~lexiedge_runtime.serve.cli`, :mod:`~lexiedge_runtime.serve.web`.
Importing this package imports nothing: Starlette loads with ``app``.
"""
