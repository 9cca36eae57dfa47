"""LiteRT exporters: a run's model as a LiteRT (TensorFlow Lite) flatbuffer (``model.tflite``).

Registered through ``[project.entry-points.lexiedge] litert = "lexiedge_litert.plugin"``. The converter
(litert-torch) runs in a virtual environment of its own (:mod:`lexiedge_litert.converter_env`); the
artifact runs with ``ai-edge-litert`` (``pip install 'lexiedge[litert]'``).
"""
