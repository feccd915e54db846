"""Serving rnnx exports on NVIDIA Triton Inference Server: model repositories and `rnnx serve`."""
