"""What a model is: config.json read once into an Architecture, a ModelSpec holding it with
its tensors, exact parameter counts, weight bytes per format, KV-cache bytes per token and
FLOPs per token.

Imports: nothing else in core.
"""
