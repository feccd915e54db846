"""The Triton python-backend model of an rnnx repository (its model.py imports this class).

It runs inside Triton's python-backend stub: `triton_python_backend_utils` exists only there,
so it is imported when Triton calls `initialize`. Settings come from the `parameters` of
config.pbtxt (written by rnnx.serving.triton), so a repository is tuned without editing code.
"""

from __future__ import annotations

import ctypes
import json
from pathlib import Path
from typing import Any

import numpy as np

from rnnx.core.errors import RnnxError, first_line
from rnnx.formats import load
from rnnx.serving.sequences import Chunk, Sequences, check_servable

EXPORT_DIRECTORY = "export"  # the export, copied into the model's version directory


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        import triton_python_backend_utils as pb_utils

        from rnnx.exporter.checkpoint import LoadOptions

        self.pb = pb_utils
        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        export = Path(args["model_repository"]) / args["model_version"] / EXPORT_DIRECTORY
        threads = int(parameters.get("threads") or 0) or None
        # the trust `rnnx triton/serve --trust-checkpoint` gave (aoti runs the package's code)
        trust = LoadOptions(trust_checkpoint=parameters.get("trust_checkpoint") == "true")
        session = load(
            export,
            parameters.get("runtime", "onnxruntime"),
            provider=parameters.get("provider", "cpu"),
            threads=threads,
            trust=trust,
        )
        check_servable(session.signature, str(export))
        logger = pb_utils.Logger
        self.sequences = Sequences(
            session,
            float(parameters["model_idle_timeout_s"]),
            log=lambda message: logger.log_info(f"rnnx: {message}"),
        )
        self.inputs = [t.name for t in session.signature.data_inputs]
        logger.log_info(
            f"rnnx: serving {export} with {session.runtime} on {', '.join(session.providers)}"
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        pb = self.pb
        chunks, ready = [], set()
        for index, request in enumerate(requests):
            if not _flag(pb, request, "READY", default=True):
                continue  # an empty slot of the batch (the batcher's READY=0): nothing to run
            ready.add(index)
            chunks.append(
                Chunk(
                    sequence=int(_array(pb, request, "CORRID").ravel()[0]),
                    start=_flag(pb, request, "START"),
                    end=_flag(pb, request, "END"),
                    feeds={name: _array(pb, request, name) for name in self.inputs},
                )
            )
        results = iter(self.sequences.run(chunks) if chunks else [])
        responses = []
        for index in range(len(requests)):
            if index not in ready:
                responses.append(pb.InferenceResponse(output_tensors=[]))
                continue
            result = next(results)
            if isinstance(result, RnnxError):
                responses.append(pb.InferenceResponse(error=pb.TritonError(first_line(result))))
            else:
                tensors = [_tensor(pb, name, array) for name, array in result.items()]
                responses.append(pb.InferenceResponse(output_tensors=tensors))
        return responses

    def finalize(self) -> None:
        self.sequences.streams.clear()


# The stub's pybind11 predates numpy 2's ABI: pb.Tensor(name, numpy_array) reads the array's
# item size from a moved struct field and sends empty tensors. DLPack describes memory without
# numpy's structs, so tensors cross as DLPack both ways (inputs: np.from_dlpack).
_USED = ctypes.c_char_p(b"used_dltensor")  # alive as long as the module: capsules keep the name


def _tensor(pb: Any, name: str, array: np.ndarray) -> Any:
    capsule = array.__dlpack__()
    tensor = pb.Tensor.from_dlpack(name, capsule)
    # The backend renames a capsule it took to "used_dlpack" and frees it itself; numpy's
    # capsule destructor knows only DLPack's "used_dltensor" and would report an error.
    ctypes.pythonapi.PyCapsule_SetName(ctypes.py_object(capsule), _USED)
    return tensor


def _array(pb: Any, request: Any, name: str) -> np.ndarray:
    return np.from_dlpack(pb.get_input_tensor_by_name(request, name))


def _flag(pb: Any, request: Any, name: str, default: bool = False) -> bool:
    if pb.get_input_tensor_by_name(request, name) is None:
        return default
    return bool(_array(pb, request, name).ravel()[0])
