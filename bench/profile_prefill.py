"""Where a GenAI int4 decoder's prefill time goes: ONNX Runtime's per-op profile of fresh prompts.

    python bench/profile_prefill.py ARTIFACT [ARTIFACT ...] --tokens 256 1024 [--json out.json]

Each artifact's graph (``model.onnx`` of a ``lexiedge export --target onnx-int4`` or
bench/bench_tutor_latency.py build) runs in an ONNX Runtime session set up like GenAI's (the
artifact's decoder session options, ``--threads`` intra-op threads, idle workers sleeping) with
profiling on: one untimed warm-up prefill, then ``--runs`` prefills of each prompt length from an
empty KV cache, the way a fresh prompt reaches the model. Reported per prompt length: each op type's
share of the summed node time, and MatMulNBits split by the projection it computes (q/k/v, o,
MLP gate/up, down, LM head) with its M (rows: prompt tokens; 1 for a pruned LM head). Shares stay
meaningful on a busy machine (every op is slowed alike); the seconds do not, so none are printed
as a result.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

# the projection a MatMulNBits node computes, from the builder's node names (/model/layers.3/mlp/down_proj/..)
PROJECTIONS = (("lm_head", "LM head"), ("qkv_proj", "attention q/k/v"), ("q_proj", "attention q/k/v"),
               ("k_proj", "attention q/k/v"), ("v_proj", "attention q/k/v"), ("o_proj", "attention o"),
               ("gate_up_proj", "MLP gate/up"), ("gate_proj", "MLP gate/up"), ("up_proj", "MLP gate/up"),
               ("down_proj", "MLP down"))


def projection(node_name: str) -> str:
    return next((label for key, label in PROJECTIONS if f"/{key}/" in node_name or node_name.startswith(key)),
                "other")


def session(artifact: Path, threads: int, profile_prefix: str) -> Any:
    import onnxruntime as ort

    config = json.loads((artifact / "genai_config.json").read_text())
    decoder = config["model"]["decoder"]
    options = ort.SessionOptions()
    for key, value in decoder.get("session_options", {}).items():
        if key.startswith("session."):  # GenAI passes unknown keys to ORT as config entries
            options.add_session_config_entry(key, str(value))
    if "session.intra_op.allow_spinning" not in decoder.get("session_options", {}):
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(artifact / decoder.get("filename", "model.onnx")), options,
                                providers=["CPUExecutionProvider"])


def feeds(sess: Any, tokens: int, decoder: dict[str, Any], vocab: int) -> dict[str, np.ndarray]:
    """A fresh prompt of ``tokens`` ids: no past (sequence length 0), every position attended."""
    rng = np.random.default_rng(tokens)
    out: dict[str, np.ndarray] = {}
    for value in sess.get_inputs():
        dtype = np.int32 if "int32" in value.type else np.int64 if "int64" in value.type else np.float32
        if value.name == "input_ids":
            out[value.name] = rng.integers(0, vocab, (1, tokens)).astype(dtype)
        elif value.name == "attention_mask":
            out[value.name] = np.ones((1, tokens), dtype=dtype)
        elif value.name == "position_ids":
            out[value.name] = np.arange(tokens, dtype=dtype)[None]
        elif value.name.startswith("past_key_values"):
            shape = (1, decoder["num_key_value_heads"], 0, decoder["head_size"])
            out[value.name] = np.zeros(shape, dtype=dtype)
        else:
            raise SystemExit(f"{value.name}: an input this profiler does not know how to feed")
    return out


def profile(artifact: Path, lengths: list[int], threads: int, runs: int) -> dict[str, Any]:
    config = json.loads((artifact / "genai_config.json").read_text())
    vocab, decoder = int(config["model"]["vocab_size"]), config["model"]["decoder"]
    with tempfile.TemporaryDirectory(prefix="lexiedge-profile-") as tmp:
        sess = session(artifact, threads, str(Path(tmp) / "ort"))
        sess.run(None, feeds(sess, 16, decoder, vocab))  # warm-up: allocations, prepacked weights, threads
        windows: list[tuple[int, float, float]] = []  # (tokens, start us, end us) of the measured runs
        for tokens in lengths:
            batch = feeds(sess, tokens, decoder, vocab)
            for _ in range(runs):
                sess.run(None, batch)
        events = json.loads(Path(sess.end_profiling()).read_text())
    model_runs = [e for e in events if e.get("name") == "model_run"]
    measured = model_runs[1:]  # the first is the warm-up
    index = 0
    for tokens in lengths:
        for _ in range(runs):
            run = measured[index]
            windows.append((tokens, run["ts"], run["ts"] + run["dur"]))
            index += 1
    result: dict[str, Any] = {"artifact": str(artifact), "threads": threads, "runs": runs, "by_tokens": {}}
    nodes = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
    for tokens in lengths:
        spans = [(start, end) for t, start, end in windows if t == tokens]
        by_op: dict[str, float] = defaultdict(float)
        by_projection: dict[str, float] = defaultdict(float)
        rows: dict[str, set[int]] = defaultdict(set)
        run_us = sum(end - start for start, end in spans)
        for event in nodes:
            if not any(start <= event["ts"] <= end for start, end in spans):
                continue
            op = event["args"].get("op_name", "?")
            by_op[op] += event["dur"]
            if op == "MatMulNBits":
                name = re.sub(r"_kernel_time$", "", event["name"])
                label = projection(name)
                by_projection[label] += event["dur"]
                shape = (event["args"].get("input_type_shape") or [{}])[0]
                dims = next(iter(shape.values()), []) if shape else []
                if len(dims) >= 2:
                    rows[label].add(int(np.prod(dims[:-1])))
        total = sum(by_op.values())
        result["by_tokens"][str(tokens)] = {
            "op_share": {op: round(us / total, 4) for op, us in sorted(by_op.items(), key=lambda kv: -kv[1])},
            "matmulnbits_share_by_projection": {
                label: round(us / total, 4)
                for label, us in sorted(by_projection.items(), key=lambda kv: -kv[1])},
            "matmulnbits_rows": {label: sorted(m) for label, m in rows.items()},
            "node_time_share_of_run": round(total / run_us, 3) if run_us else None,
        }
    return result


def print_profile(result: dict[str, Any]) -> None:
    print(f"{result['artifact']} ({result['threads']} threads, {result['runs']} runs per length)")
    for tokens, numbers in result["by_tokens"].items():
        shares = ", ".join(f"{op} {share:.1%}" for op, share in list(numbers["op_share"].items())[:8])
        print(f"  {tokens} tokens: {shares}")
        split = ", ".join(f"{label} {share:.1%} (M={numbers['matmulnbits_rows'].get(label)})"
                          for label, share in numbers["matmulnbits_share_by_projection"].items())
        print(f"    MatMulNBits by projection: {split}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", type=Path, nargs="+", help="GenAI artifact folders (genai_config.json)")
    parser.add_argument("--tokens", type=int, nargs="+", default=[256, 1024], help="prompt lengths")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2, help="profiled prefills per length")
    parser.add_argument("--json", type=Path, help="write the shares here")
    args = parser.parse_args()
    for artifact in args.artifacts:
        if not (artifact / "genai_config.json").is_file():
            print(f"{artifact}: no genai_config.json (expected a GenAI artifact folder)", file=sys.stderr)
            raise SystemExit(2)
    report = {"load_average_1m_at_start": os.getloadavg()[0], "profiles": []}
    for artifact in args.artifacts:
        result = profile(artifact, args.tokens, args.threads, args.runs)
        print_profile(result)
        report["profiles"].append(result)
    report["load_average_1m_at_end"] = os.getloadavg()[0]
    print(f"load average (1 min): {report['load_average_1m_at_start']:.2f} at start, "
          f"{report['load_average_1m_at_end']:.2f} at end")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
