"""The `classifier` trainer: cross-entropy training of any model that maps a batch to class logits.

Scored per epoch on train and val by UAR (macro recall), WAR (accuracy) and macro-F1; the best
checkpoint is chosen by validation UAR; the test split is evaluated with the best weights at the end.
"""
