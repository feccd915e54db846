"""The rnnx version, written into every manifest and artifact."""

__version__ = "0.2.0"
