"""Training: the fit loop around the models, checkpoints, callbacks and device strategies."""
