"""Shared building blocks for the model families: attention, activations, layers (Embedding, LayerNorm,
Dropout) and the packed-path Linear."""
