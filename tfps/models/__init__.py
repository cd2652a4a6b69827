"""The autoregressive models and what checks them: the PixelCNN family, MADE, causal Conv1D, the
Transformer, their layers, the learned forecasting heads, the registry of architectures
(`arms`), the causality check and the discrete autoencoder. Imports only `tfps.sampling`.
"""
