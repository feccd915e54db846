"""The onnxruntime-backend flavour: the exported ONNX graph rewritten for Triton's implicit state.

With implicit state Triton itself keeps each sequence's states between requests and feeds
them back. For that the graph must be reshaped to Triton's rules:
- every tensor batch-first: data inputs and outputs, and the states ([B, layers*dirs, H]
  instead of rnnx's [layers*dirs, B, H]);
- a START control input ([B, 1] int32) that zeroes a sequence's states inside the graph, so the
  first request never sees what the slot held before (initial_state zero_data does it too, in
  Triton; the graph does not rely on it);
- state inputs and outputs named so that both lists sort in the same order: Triton pairs them
  by their sorted positions (triton-inference-server/server#8586), so "rnnx_state_<i>_in" goes
  with "rnnx_state_<i>_out".
The rewrite wraps the original graph between two small graphs (onnx.compose), leaving the
recurrent ops untouched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from rnnx.core.errors import RnnxError, first_line
from rnnx.core.signature import Signature, TensorSpec
from rnnx.serving.config import (
    DATA_TYPES,
    TritonOptions,
    add_control,
    add_tensor,
    base_config,
    model_config_pb2,
)

START = "START"
INNER = "rnnx/"  # prefix of the original graph's names inside the rewritten one
ONNX_TYPES = {"float32": 1, "float16": 10, "float64": 11, "int64": 7, "int32": 6}


def state_names(signature: Signature) -> list[tuple[str, str, str]]:
    """(rnnx state input, Triton state input, Triton state output) for each state pair; the
    index is zero-padded so that the two name lists sort alike for any number of states."""
    width = len(str(len(signature.state_pairs) - 1))
    return [(i, f"rnnx_state_{n:0{width}d}_in", f"rnnx_state_{n:0{width}d}_out")
            for n, (_, i) in enumerate(signature.state_pairs)]  # fmt: skip


def batch_first(tensor: TensorSpec) -> tuple[list[Any], list[int]]:
    """The tensor's dims with the batch axis first, and the Transpose perm original -> that."""
    axis = tensor.dims.index("batch")
    order = [axis] + [i for i in range(len(tensor.dims)) if i != axis]
    return [tensor.dims[i] for i in order], order


def rewrite(model: Any, signature: Signature) -> Any:
    """The exported ONNX model with Triton's batch-first tensors, START reset, implicit states."""
    import onnx
    from onnx import compose, helper

    opsets = list(model.opset_import)
    pre_nodes, pre_inputs, pre_outputs, io_in = [], [], [], []
    states = {i: (tin, tout) for i, tin, tout in state_names(signature)}
    start = helper.make_tensor_value_info(START, onnx.TensorProto.INT32, ["batch", 1])
    pre_inputs.append(start)
    pre_nodes += [
        helper.make_node("Cast", [START], ["pre/start_bool"], to=onnx.TensorProto.BOOL),
    ]
    for tensor in signature.inputs:
        dims, order = batch_first(tensor)
        inverse = [order.index(i) for i in range(len(order))]
        source = states[tensor.name][0] if tensor.name in states else tensor.name
        pre_inputs.append(_value_info(source, tensor.dtype, dims))
        value = source
        if tensor.name in states:
            # zero the states of the sequences that START in this batch
            rank = len(dims)
            pre_nodes += [
                _constant(f"pre/{source}/shape", np.array([-1] + [1] * (rank - 1), np.int64)),
                helper.make_node("Reshape", ["pre/start_bool", f"pre/{source}/shape"],
                                 [f"pre/{source}/starts"]),
                _constant(f"pre/{source}/zero", np.zeros((), np.dtype(tensor.dtype))),
                helper.make_node("Where", [f"pre/{source}/starts", f"pre/{source}/zero", source],
                                 [f"pre/{source}/reset"]),
            ]  # fmt: skip
            value = f"pre/{source}/reset"
        pre_nodes.append(helper.make_node("Transpose", [value], [f"pre/{tensor.name}"],
                                          perm=inverse))  # fmt: skip
        pre_outputs.append(_value_info(f"pre/{tensor.name}", tensor.dtype, list(tensor.dims)))
        io_in.append((f"pre/{tensor.name}", tensor.name))
    pre = helper.make_model(
        helper.make_graph(pre_nodes, "triton_inputs", pre_inputs, pre_outputs),
        opset_imports=opsets, ir_version=model.ir_version,
    )  # fmt: skip
    inner = compose.merge_models(pre, model, io_map=io_in, prefix2=INNER)

    post_nodes, post_inputs, post_outputs, io_out = [], [], [], []
    outputs_to_states = {o: states[i][1] for o, i in signature.state_pairs}
    for tensor in signature.outputs:
        dims, order = batch_first(tensor)
        name = outputs_to_states.get(tensor.name, tensor.name)
        post_inputs.append(_value_info(f"post/{tensor.name}", tensor.dtype, list(tensor.dims)))
        post_nodes.append(helper.make_node("Transpose", [f"post/{tensor.name}"], [name],
                                           perm=order))  # fmt: skip
        post_outputs.append(_value_info(name, tensor.dtype, dims))
        io_out.append((INNER + tensor.name, f"post/{tensor.name}"))
    post = helper.make_model(
        helper.make_graph(post_nodes, "triton_outputs", post_inputs, post_outputs),
        opset_imports=opsets, ir_version=model.ir_version,
    )  # fmt: skip
    rewritten = compose.merge_models(inner, post, io_map=io_out)
    # rnnx's metadata describes the graph before the rewrite: it would mislead a reader
    kept = [p for p in rewritten.metadata_props if not p.key.startswith("rnnx.")]
    del rewritten.metadata_props[:]
    rewritten.metadata_props.extend(kept)
    rewritten.doc_string = "rnnx export rewritten for Triton's onnxruntime backend, implicit state"
    onnx.checker.check_model(rewritten)
    return rewritten


def _value_info(name: str, dtype: str, dims: list[Any]) -> Any:
    from onnx import helper

    if dtype not in ONNX_TYPES:
        raise RnnxError(f"tensor {name!r}: {dtype} is not supported by the Triton rewrite")
    return helper.make_tensor_value_info(name, ONNX_TYPES[dtype], dims)


def _constant(name: str, value: np.ndarray) -> Any:
    from onnx import helper, numpy_helper

    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))


def write_onnx_model(
    export_dir: str | os.PathLike, manifest: Any, version: Path, name: str, options: TritonOptions
) -> str:
    """model.onnx (rewritten) into `version`; returns config.pbtxt for the onnxruntime backend."""
    import onnx
    from google.protobuf import text_format

    path = manifest.artifact_paths(export_dir).get("onnx")
    if path is None or not path.is_file():
        raise RnnxError(f"'{export_dir}' has no ONNX artifact (export with --format onnx)")
    signature: Signature = manifest.signature
    model = onnx.load(path)
    graph_names = {v.name for v in (*model.graph.input, *model.graph.output)}
    missing = [n for n in (*signature.input_names, *signature.output_names)
               if n not in graph_names]  # fmt: skip
    if missing:
        raise RnnxError(
            f"'{path}': the manifest's tensor {missing[0]!r} is not an input or output of the "
            "graph (the manifest does not describe this model): re-export it"
        )
    try:
        rewritten = rewrite(model, signature)
    except (ValueError, onnx.checker.ValidationError) as error:
        raise RnnxError(f"'{path}': the Triton rewrite failed: {first_line(error)}") from None
    onnx.save(rewritten, version / "model.onnx")
    pb = model_config_pb2()
    config = base_config(name, "onnxruntime", options)
    for tensor in signature.data_inputs:
        add_tensor(config.input, tensor)
    states = dict(signature.state_pairs)
    for tensor in signature.outputs:
        if tensor.name not in states:
            add_tensor(config.output, tensor)
    add_control(config, START, "CONTROL_SEQUENCE_START")
    data_type = pb.DataType.Value
    for rnnx_input, state_in, state_out in state_names(signature):
        tensor = signature.input(rnnx_input)
        dims = [d for d in tensor.dims if d != "batch"]
        if not all(isinstance(d, int) for d in dims):
            raise RnnxError(f"state {tensor.describe()} has a symbolic size besides the batch")
        state = config.sequence_batching.state.add(
            input_name=state_in, output_name=state_out,
            data_type=data_type(DATA_TYPES[tensor.dtype]), dims=dims,
        )  # fmt: skip
        state.initial_state.add(
            data_type=data_type(DATA_TYPES[tensor.dtype]), dims=dims, zero_data=True,
            name=f"{rnnx_input}_zeros",
        )  # fmt: skip
    return text_format.MessageToString(config)
