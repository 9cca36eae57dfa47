"""ExecuTorch exporters: a run's model as an ExecuTorch program (``model.pte``) delegated to XNNPACK.

Registered through ``[project.entry-points.lexiedge] executorch = "lexiedge_executorch.plugin"``; needs
the ``executorch`` extra (``pip install 'lexiedge[executorch]'``), imported only when a target runs.
"""
