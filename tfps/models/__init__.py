"""The autoregressive models and what checks them: the PixelCNN family, MADE, causal Conv1D, the
Transformer, their layers, the learned forecasting heads, the registry of architectures
(`arms`), the causality check, the orderings and families of orderings and the discrete
autoencoders. How any of them is sampled is `tfps.sampling`'s job: imports only its protocol,
event checks and the Transformer's key/value cache (`tests/test_structure.py`).
"""
