"""Shared math for the model families: attention, activations."""
