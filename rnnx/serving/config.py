"""Triton's model configuration, built as Triton's own ModelConfig protobuf (shipped in
tritonclient) and printed with protobuf's text format: only fields Triton knows can be written,
and config.pbtxt files are read back with the same message."""

from __future__ import annotations

import dataclasses
from typing import Any

from rnnx.core.errors import RnnxError
from rnnx.core.signature import TensorSpec

SERVE_HINT = "pip install 'rnnx[serve]'"

# numpy dtype name -> Triton data type
DATA_TYPES = {
    "float32": "TYPE_FP32", "float16": "TYPE_FP16", "float64": "TYPE_FP64",
    "int64": "TYPE_INT64", "int32": "TYPE_INT32", "int16": "TYPE_INT16", "int8": "TYPE_INT8",
    "uint8": "TYPE_UINT8", "bool": "TYPE_BOOL",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class TritonOptions:
    flavour: str = "python"
    model_name: str | None = None  # default: the export directory's name
    runtime: str = "onnxruntime"  # python flavour: the rnnx runtime inside the server
    provider: str = "cpu"
    threads: int | None = None  # per model instance
    instances: int = 1  # model instances (each its own process for the python backend)
    max_batch: int = 64  # sequences batched into one execute
    idle_timeout_s: float = 60.0  # a sequence without requests for this long is dropped
    max_queue_delay_us: int = 0  # how long the batcher waits to fill a batch
    max_sequences: int = 1024  # concurrent sequences per instance (more wait their turn)
    force: bool = False  # replace an existing repository
    # python flavour: let the server open a runtime whose artifact is native code (aoti), as
    # --trust-checkpoint does for rnnx.load; recorded in config.pbtxt for the server's rnnx
    trust_checkpoint: bool = False


def model_config_pb2() -> Any:
    try:
        from tritonclient.grpc import model_config_pb2 as pb
    except ImportError as error:
        raise RnnxError(f"writing a Triton repository needs tritonclient: {SERVE_HINT}") from error
    return pb


def parse_config(text: str) -> Any:
    """config.pbtxt text -> Triton's ModelConfig message (an error for what Triton rejects)."""
    from google.protobuf import text_format

    pb = model_config_pb2()
    try:
        return text_format.Parse(text, pb.ModelConfig())
    except text_format.ParseError as error:
        raise RnnxError(f"config.pbtxt does not parse as Triton's ModelConfig: {error}") from error


def base_config(name: str, backend: str, options: TritonOptions) -> Any:
    """The ModelConfig both flavours share: batching of sequences, instances, idle timeout."""
    pb = model_config_pb2()
    config = pb.ModelConfig(name=name, backend=backend, max_batch_size=options.max_batch)
    batching = config.sequence_batching
    batching.max_sequence_idle_microseconds = int(options.idle_timeout_s * 1e6)
    batching.oldest.max_candidate_sequences = options.max_sequences
    batching.oldest.preferred_batch_size.append(options.max_batch)
    batching.oldest.max_queue_delay_microseconds = options.max_queue_delay_us
    group = config.instance_group.add(count=options.instances)
    # the python backend's model picks its device itself (the rnnx provider); Triton places
    # the onnxruntime backend's instances
    gpu = backend != "python" and options.provider.startswith("cuda")
    group.kind = pb.ModelInstanceGroup.KIND_GPU if gpu else pb.ModelInstanceGroup.KIND_CPU
    return config


def add_control(config: Any, name: str, kind: str, data_type: str = "TYPE_INT32") -> None:
    pb = model_config_pb2()
    control = config.sequence_batching.control_input.add(name=name).control.add(
        kind=pb.ModelSequenceBatching.Control.Kind.Value(kind)
    )
    if kind == "CONTROL_SEQUENCE_CORRID":
        control.data_type = pb.DataType.Value(data_type)
    else:
        control.int32_false_true.extend([0, 1])


def add_tensor(field: Any, tensor: TensorSpec, dims: list[int] | None = None) -> None:
    """An input or output, without the batch axis (Triton's, always first, is implicit)."""
    pb = model_config_pb2()
    if tensor.dtype not in DATA_TYPES:
        raise RnnxError(f"tensor {tensor.name!r}: no Triton data type for {tensor.dtype}")
    if dims is None:
        dims = [d if isinstance(d, int) else -1 for d in tensor.dims if d != "batch"]
    field.add(name=tensor.name, data_type=pb.DataType.Value(DATA_TYPES[tensor.dtype]), dims=dims)
