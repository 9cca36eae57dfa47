"""lexiedge: train small models on small GPUs and ship them to phones and desktops.

The core package holds no model code: models, datasets, trainers and exporters are plugins
(see :mod:`lexiedge.hookspecs`), chosen per hardware profile (see :mod:`lexiedge.profile`).
"""

__version__ = "0.1.0"
