"""`lexiedge bench`: latency of artifacts across backends (PyTorch, ONNX Runtime, its int8/int4 graphs),
measured in one run on the same inputs.

    run       what is timed and how (interleaved rounds, the settings, the report's data)
    backends  each backend: load, one classifier forward, one greedy generation
    report    bench.json, bench.md and bench.png (--plot), and the console table
    formats   --all-formats: every format and backend the artifacts run on, one table with verification
    formats_report  formats.json, formats.md, formats.png and the console table of --all-formats

Not the top-level ``bench/`` folder, which holds the project's benchmark scripts (they use this package).
"""
