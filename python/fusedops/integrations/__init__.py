"""Integrations of the PyTorch API with model libraries (:mod:`.transformers`)."""
