"""The serving simulator: engine replicas, KV pool, router, discrete-event loop."""
