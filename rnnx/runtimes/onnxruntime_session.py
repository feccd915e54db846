"""onnxruntime backend: any execution provider, loud about which one actually runs."""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnx.core.errors import FallbackWarning, InputError, RnnxError, first_line
from rnnx.core.manifest import Manifest
from rnnx.core.signature import Signature
from rnnx.runtimes.base import Session
from rnnx.runtimes.non_finite import (
    check_policy,
    graph_hides_nan,
    nan_sequences,
    poison,
    refuse_non_finite,
)
from rnnx.runtimes.ort_worker import optimization_level

# Short provider names users type, and the execution provider each stands for. Any other
# installed provider is accepted by its full name (TensorrtExecutionProvider, ...).
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
}
# Device kind of OrtValues for providers whose inputs/outputs live in device memory.
_DEVICE = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "cuda"}
_OPTIMIZATION = ("disable", "basic", "extended", "all")


@dataclasses.dataclass(frozen=True)
class OnnxRuntimeOptions:
    threads: int | None = None  # intra-op threads (None: onnxruntime's default, all cores)
    inter_op_threads: int | None = None
    graph_optimization: str = "all"  # disable | basic | extended | all
    optimized_model_path: str | None = None  # save the graph onnxruntime actually runs
    provider_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    allow_fallback: bool = False  # run on CPU (with a warning) if the provider is unavailable
    # NaN inputs to LSTM/GRU/RNN kernels (non_finite.py): "propagate", "error" or "ignore"
    non_finite: str = "propagate"
    # run under qemu-user presenting this CPU class (emulated.py), to verify for it: "avx2"
    emulate_cpu: str | None = None
    # streams keep their states in onnxruntime-owned buffers bound with IO binding; None: on
    # providers with device memory only (on CPU a plain run is cheaper: no bind calls)
    io_binding: bool | None = None


def resolve_provider(provider: str) -> tuple[str, int | None]:
    """'cuda:1' -> ('CUDAExecutionProvider', 1); 'cpu' -> ('CPUExecutionProvider', None)."""
    name, _, device = provider.partition(":")
    ep = PROVIDER_ALIASES.get(name.lower(), name)
    if device and not device.isdigit():
        raise RnnxError(f"provider {provider!r}: device must be a number, as in cuda:0")
    return ep, int(device) if device else None


class OnnxRuntimeSession(Session):
    runtime = "onnxruntime"

    def __init__(
        self,
        path: str | os.PathLike,
        signature: Signature,
        *,
        provider: str = "cpu",
        options: OnnxRuntimeOptions = OnnxRuntimeOptions(),
    ) -> None:
        import onnxruntime as ort

        super().__init__(signature)
        ep, device_id = resolve_provider(provider)
        available = ort.get_available_providers()
        if ep not in available:
            ep, device_id = self._fall_back(provider, ep, available, options)
        provider_options = dict(options.provider_options)
        if device_id is not None:
            provider_options["device_id"] = device_id
        self._emulated = options.emulate_cpu is not None
        if self._emulated and ep != "CPUExecutionProvider":
            raise RnnxError(f"--emulate-cpu emulates a CPU: provider {provider!r} is not one")
        self._session = self._create(path, options, ep, provider_options)
        on_device = self._session.get_providers()[0] in _DEVICE
        self._bound = not self._emulated and (
            on_device if options.io_binding is None else options.io_binding
        )
        if ep not in self._session.get_providers():
            # onnxruntime itself falls back to CPU when a listed provider fails to initialise
            # (no driver, no device): that must not pass silently either.
            self._fall_back(provider, ep, self._session.get_providers(), options)
        self.device = _DEVICE.get(self._session.get_providers()[0], "cpu")
        self.device_id = device_id or 0
        self._output_names = [o.name for o in self._session.get_outputs()]
        self._final_states = dict(signature.state_pairs)  # final-state output -> its input
        self._path = path
        self._check_matches(signature)
        self._non_finite = check_policy(options.non_finite)
        self._hides_nan: bool | None = None  # found out on the first NaN input

    def _nan_guard(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """non_finite="error": refuse; "propagate": the sequences to give NaN, if the graph's
        kernels would hide it (None when nothing needs doing)."""
        if self._non_finite == "error":
            refuse_non_finite(feeds)
            return None
        if self._non_finite == "ignore":
            return None
        mask = nan_sequences(self.signature, feeds)
        if mask is None:
            return None
        if self._hides_nan is None:
            self._hides_nan = graph_hides_nan(self._path)
        return mask if self._hides_nan else None

    def _check_matches(self, signature: Signature) -> None:
        """The graph's input and output names are those its manifest lists."""
        graph_inputs = [i.name for i in self._session.get_inputs()]
        for kind, graph, listed in (
            ("inputs", graph_inputs, signature.input_names),
            ("outputs", self._output_names, signature.output_names),
        ):
            if sorted(graph) != sorted(listed):
                raise RnnxError(
                    f"artifact '{self._path}' does not match its manifest: its {kind} are "
                    f"{', '.join(graph)}, the manifest lists {', '.join(listed)}"
                )

    def _failed(self, error: Exception) -> InputError:
        """onnxruntime's binding and shape errors, as one line naming the artifact."""
        return InputError(
            f"onnxruntime cannot run '{self._path}' (does it match its manifest?): "
            f"{first_line(error)}"
        )

    @staticmethod
    def _fall_back(
        requested: str, ep: str, available: list[str], options: OnnxRuntimeOptions
    ) -> tuple[str, None]:
        if not options.allow_fallback:
            raise RnnxError(
                f"provider {requested!r} ({ep}) is not available; available: {', '.join(available)}"
            )
        warnings.warn(
            f"provider {requested!r} ({ep}) is not available; running on CPUExecutionProvider",
            FallbackWarning,
            stacklevel=3,
        )
        return "CPUExecutionProvider", None

    @staticmethod
    def _create(
        path: Any, options: OnnxRuntimeOptions, ep: str, provider_options: dict[str, Any]
    ) -> Any:
        import onnxruntime as ort

        session_options = _session_options(options)
        try:
            if options.emulate_cpu is not None:
                from rnnx.runtimes.emulated import EmulatedInferenceSession

                settings = {
                    "threads": options.threads,
                    "inter_op_threads": options.inter_op_threads,
                    "graph_optimization": options.graph_optimization,
                }
                return EmulatedInferenceSession(path, options.emulate_cpu, settings)
            return ort.InferenceSession(
                os.fspath(path), session_options, providers=[(ep, provider_options)]
            )
        except RnnxError:
            raise
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise RnnxError(f"onnxruntime cannot load '{path}': {first_line(error)}") from error

    @property
    def providers(self) -> list[str]:
        return self._session.get_providers()

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        mask = self._nan_guard(feeds)
        try:
            outputs = dict(zip(self._output_names, self._session.run(self._output_names, feeds)))
        except Exception as error:  # onnxruntime's own InvalidArgument/Fail/... types
            raise self._failed(error) from error
        return outputs if mask is None else poison(self.signature, outputs, mask)

    # Streaming keeps states as OrtValues in the provider's memory and binds them with IO
    # binding: on CUDA the state never crosses to the host between chunks, only the chunk in
    # and the outputs out. On CPU a plain run with numpy states is cheaper (measured by
    # benchmarks/stream_overhead.py) and is the default; io_binding=True runs this code there
    # (OrtValues in host memory), which is how CI exercises it.
    def _state_from_numpy(self, state: dict[str, np.ndarray]) -> Any:
        if not self._bound:  # states as numpy arrays, fed back by a plain run
            return super()._state_from_numpy(state)
        import onnxruntime as ort

        def on_device(array: np.ndarray | None, like: np.ndarray) -> Any:
            # Memory onnxruntime owns: an OrtValue made from a numpy array only borrows it.
            value = ort.OrtValue.ortvalue_from_shape_and_type(
                like.shape, like.dtype, self.device, self.device_id
            )
            if array is not None:
                value.update_inplace(np.ascontiguousarray(array))
            return value

        values = {name: on_device(a, a) for name, a in state.items()}
        spare = {name: on_device(None, a) for name, a in state.items()}
        return _BoundState(values, spare)

    def _state_to_numpy(self, state: Any) -> dict[str, np.ndarray]:
        if not self._bound:
            return super()._state_to_numpy(state)
        # OrtValue.numpy() copies device memory to the host in CUDA/ROCm builds.
        return {name: value.numpy() for name, value in state.values.items()}

    def _step(self, feeds: dict[str, np.ndarray], state: Any) -> tuple[dict, Any]:
        if not self._bound:
            return super()._step(feeds, state)
        mask = self._nan_guard(feeds)
        if state.binding is None:
            state.binding = self._session.io_binding()
        binding = state.binding
        for name, array in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array))
        for name, value in state.values.items():
            binding.bind_ortvalue_input(name, value)
        final_states = self._final_states
        for name in self._output_names:
            if name in final_states:  # written into the spare buffers: no allocation
                binding.bind_ortvalue_output(name, state.spare[final_states[name]])
            else:
                binding.bind_output(name, "cpu")
        try:
            self._session.run_with_iobinding(binding)
        except Exception as error:  # onnxruntime's own InvalidArgument/Fail/... types
            raise self._failed(error) from error
        values = dict(zip(self._output_names, binding.get_outputs()))
        state.values, state.spare = state.spare, state.values
        # Copied: the binding reuses its output buffers at the next step of this stream.
        outputs = {n: v.numpy().copy() for n, v in values.items() if n not in final_states}
        if mask is not None:  # rare: the states come to the host to take their NaN, and go back
            states = {o: state.values[i].numpy() for o, i in final_states.items()}
            poisoned = poison(self.signature, {**outputs, **states}, mask)
            for o, i in final_states.items():
                state.values[i].update_inplace(np.ascontiguousarray(poisoned[o]))
            outputs = {name: poisoned[name] for name in outputs}
        return outputs, state


class _BoundState:
    """A stream's states in the provider's memory (on CUDA they never visit the host), a second
    set of buffers the next step writes its final states into (the two then swap), and the
    stream's own IO binding: a step allocates nothing for its states."""

    def __init__(self, values: dict[str, Any], spare: dict[str, Any]) -> None:
        self.values = values
        self.spare = spare
        self.binding: Any = None


def open_onnxruntime(
    path: Path,
    manifest: Manifest,
    *,
    provider: str = "cpu",
    allow_fallback: bool = False,
    threads: int | None = None,
    **options: Any,
) -> OnnxRuntimeSession:
    """The "onnxruntime" runtime's opener (rnnx/formats.py); `options` are OnnxRuntimeOptions."""
    known = {f.name for f in dataclasses.fields(OnnxRuntimeOptions)} - {"threads", "allow_fallback"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise RnnxError(
            f"unknown onnxruntime option {unknown[0]!r}; known: {', '.join(sorted(known))}"
        )
    settings = OnnxRuntimeOptions(threads=threads, allow_fallback=allow_fallback, **options)
    return OnnxRuntimeSession(path, manifest.signature, provider=provider, options=settings)


def _session_options(options: OnnxRuntimeOptions) -> Any:
    import onnxruntime as ort

    if options.graph_optimization not in _OPTIMIZATION:
        raise RnnxError(
            f"graph optimization must be one of {', '.join(_OPTIMIZATION)}, "
            f"got {options.graph_optimization!r}"
        )
    session_options = ort.SessionOptions()
    # a failed run raises with onnxruntime's message (the session maps it to one line): its
    # own log would print it again, and shape warnings, on stderr
    session_options.log_severity_level = 4
    if options.threads:
        session_options.intra_op_num_threads = options.threads
    if options.inter_op_threads:
        session_options.inter_op_num_threads = options.inter_op_threads
    session_options.graph_optimization_level = optimization_level(options.graph_optimization)
    if options.optimized_model_path:
        session_options.optimized_model_filepath = os.fspath(options.optimized_model_path)
    return session_options
