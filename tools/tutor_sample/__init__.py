"""The word lists and error patterns the bundled tutor sample set is generated from (see ../make_tutor_sample.py).

Tooling, not the plugin: the installed package ships only the JSONL they produce
(``lexiedge/samples/tutor_sample.jsonl``).
"""
