"""What a model is: config.json read into a ModelSpec, its tensors, exact parameter counts,
weight bytes per format, KV-cache bytes per token and FLOPs per token.

Imports: nothing else in core.
"""
