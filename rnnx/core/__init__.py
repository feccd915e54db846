"""The artifact contract: layer spec, signature, metadata and manifest. Imports nothing of rnnx
outside this package, so every other layer can build on it."""
