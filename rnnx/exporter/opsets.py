"""ONNX opsets the lowering supports (no heavy imports: the CLI reads them for --help)."""

MIN_OPSET = 18  # Split's num_outputs, used by the lowering, exists from opset 18 on.
DEFAULT_OPSET = 18
