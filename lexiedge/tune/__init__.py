"""`lexiedge tune`: hyperparameter search over a profile's settings with Optuna.

- :mod:`lexiedge.tune.space`: the search space (what a model plugin declares, what a ``--space`` file says)
- :mod:`lexiedge.tune.folder`: the tune folder's layout (``runs/<profile>/<model>/tune-<time>/``)
- :mod:`lexiedge.tune.search`: the study: trials trained by the training pipeline, pruning, resume
- :mod:`lexiedge.tune.report`: one line per trial, the study plot, the best trial as a profile

Nothing is imported here: the plugin contract (:mod:`lexiedge.api`) imports the space's value types, and
loading it must not import Optuna.
"""
