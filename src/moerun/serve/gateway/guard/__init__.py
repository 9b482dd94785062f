"""What the gateway refuses or hides at its edges: the front door's size and time limits
(`front_door`), requests providers would reject (`validate`), credentials and addresses in
upstream error texts (`redact`). Imports nothing else of the gateway."""
