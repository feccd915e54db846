"""The exported graph's inputs and outputs, and how states flow from outputs back to inputs.

A `Signature` is what runtimes validate feeds against, what the verifier draws random inputs
from, and what travels inside the artifacts as metadata (so C++ and other consumers discover
names, layouts and state pairs without rnnx). Dimensions are ints or the symbolic names
"batch" and "time".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rnnx.core.errors import InputError, RnnxError
from rnnx.core.limits import MAX_DIM, check_elements, shown
from rnnx.core.spec import LayerSpec

Dim = int | str
# The element types a signature may name (numpy spellings): what the runtimes and the C++
# readers handle. Anything else is refused when the signature is read, not when allocating.
DTYPES = ("float32", "float16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str
    dims: tuple[Dim, ...]
    dtype: str = "float32"
    high: int | None = None  # integer inputs (token ids): valid values are [0, high)
    role: str | None = None  # "lengths": each sequence's length in a padded batch

    def shape_for(self, sizes: Mapping[str, int]) -> tuple[int, ...]:
        return tuple(sizes[d] if isinstance(d, str) else d for d in self.dims)

    @property
    def axis_names(self) -> tuple[str | None, ...]:
        """Per axis: "batch", "time" (or another symbolic name), or None for a fixed size."""
        return tuple(d if isinstance(d, str) else None for d in self.dims)

    def describe(self) -> str:
        return f"{self.name}[{', '.join(str(d) for d in self.dims)}]"


@dataclasses.dataclass(frozen=True)
class Axis:
    """A symbolic axis's valid sizes: minimum + k * multiple (a front end's kernel and stride)."""

    name: str
    min: int = 1
    multiple: int = 1

    def fit(self, size: int, limit: int | None = None) -> int:
        """The smallest valid size at least `size`; above `limit` (an artifact's most, as a pte
        program's --max-time), the largest valid size within it."""
        fitted = self.min if size <= self.min else (
            self.min + -(-(size - self.min) // self.multiple) * self.multiple
        )  # fmt: skip
        if limit is not None and fitted > limit >= self.min:
            return self.min + (limit - self.min) // self.multiple * self.multiple
        return fitted

    def accepts(self, size: int) -> bool:
        return size >= self.min and (size - self.min) % self.multiple == 0


@dataclasses.dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    # final-state output name -> initial-state input name
    state_pairs: tuple[tuple[str, str], ...] = ()
    # True when feeding a sequence chunk by chunk, carrying the states, equals one call on the
    # whole sequence: the model has states and no part of it looks ahead (no reverse direction).
    streamable: bool = False
    axes: tuple[Axis, ...] = ()  # constraints on symbolic axes (none: any size from 1)

    def fit(self, sizes: Mapping[str, int], limits: Mapping[str, int] = {}) -> dict[str, int]:
        """`sizes` moved up to sizes the model accepts (the verifier's and probes' sizes), and
        down within an artifact's `limits` (Session.limits)."""
        constraints = {a.name: a for a in self.axes}
        return {k: constraints[k].fit(v, limits.get(k)) if k in constraints
                else min(v, limits.get(k, v)) for k, v in sizes.items()}  # fmt: skip

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    @property
    def state_inputs(self) -> list[str]:
        return [i for _, i in self.state_pairs]

    @property
    def data_inputs(self) -> list[TensorSpec]:
        """The inputs that are not states (what a stream is fed)."""
        states = set(self.state_inputs)
        return [t for t in self.inputs if t.name not in states]

    def input(self, name: str) -> TensorSpec:
        return next(t for t in self.inputs if t.name == name)

    def output(self, name: str) -> TensorSpec:
        return next(t for t in self.outputs if t.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [_tensor_dict(t) for t in self.inputs],
            "outputs": [_tensor_dict(t) for t in self.outputs],
            "state_pairs": [list(p) for p in self.state_pairs],
            "streamable": self.streamable,
            **({"axes": [dataclasses.asdict(a) for a in self.axes]} if self.axes else {}),
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "signature") -> Signature:
        """Parse and check a signature (the contract's rules: see core/metadata.py)."""
        if not isinstance(data, Mapping):
            raise RnnxError(f"{source}: the signature is not a JSON object")
        inputs = _tensors(data, "inputs", source)
        outputs = _tensors(data, "outputs", source)
        pairs = data.get("state_pairs", [])
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(n, str) for n in p)
            for p in pairs
        ):
            raise RnnxError(f"{source}: state_pairs must be a list of [output, input] name pairs")
        streamable = data.get("streamable", False)
        if not isinstance(streamable, bool):
            raise RnnxError(f"{source}: streamable must be true or false")
        axes = _axes(data.get("axes", []), source)
        signature = cls(inputs, outputs, tuple((o, i) for o, i in pairs), streamable, axes)
        signature._check(source)
        return signature

    @property
    def fixed_shapes(self) -> bool:
        return all_fixed(t.dims for t in self.inputs)

    def labels(self, sizes: Mapping[str, int]) -> dict[str, int | None]:
        """`sizes` as a report names them: None for an axis no input has (a model written for
        one shape fixes it), where a size would claim a batch or length that never ran."""
        symbolic = {d for t in self.inputs for d in t.dims if isinstance(d, str)}
        return {axis: size if axis in symbolic else None for axis, size in sizes.items()}

    def _check(self, source: str) -> None:
        inputs = {t.name: t for t in self.inputs}
        outputs = {t.name for t in self.outputs}
        fixed = self.fixed_shapes  # no axis at all: the batch rules below do not apply
        for output, input in self.state_pairs:
            if output not in outputs or input not in inputs:
                unknown = f"output {output!r}" if output not in outputs else f"input {input!r}"
                raise RnnxError(f"{source}: state pair {output}:{input} names an unknown {unknown}")
            if fixed:
                continue
            state = inputs[input]
            if "batch" not in state.dims or "time" in state.dims:
                raise RnnxError(
                    f"{source}: state {state.describe()} must have a batch axis and no time axis"
                )
        for tensor in self.data_inputs if not fixed else ():
            if "batch" not in tensor.dims:
                raise RnnxError(f"{source}: input {tensor.describe()} has no batch axis")

    # --- feeds --------------------------------------------------------------------------------

    def check_feeds(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        """Named feeds checked against the inputs; state inputs left out start at zero.

        The one policy for a missing state, as in the C++ Model::run and nn.LSTM's hx=None.
        """
        import numpy as np

        check_names(feeds, self.input_names, optional=self.state_inputs)
        arrays = {name: np.asarray(feeds[name]) for name in self.input_names if name in feeds}
        sizes = validate([t for t in self.inputs if t.name in arrays], arrays, axes=self.axes)
        missing = [name for name in self.state_inputs if name not in arrays]
        if missing:
            zeros = zero_states(self, sizes.get("batch", 1))
            arrays.update({name: zeros[name] for name in missing})
        return {name: arrays[name] for name in self.input_names}

    @classmethod
    def for_layer(cls, spec: LayerSpec, *, stateless: bool = False) -> Signature:
        """input, h0[, c0] -> output, h_n[, c_n], mirroring nn.RNN/LSTM/GRU's forward."""
        seq: tuple[Dim, Dim] = ("batch", "time") if spec.batch_first else ("time", "batch")
        inputs = [TensorSpec("input", (*seq, spec.input_size))]
        outputs = [TensorSpec("output", (*seq, spec.num_directions * spec.output_size))]
        if stateless:
            return cls(tuple(inputs), tuple(outputs))
        stack = spec.num_layers * spec.num_directions
        for initial, final in zip(spec.state_names, spec.final_state_names):
            inputs.append(TensorSpec(initial, (stack, "batch", spec.state_size(initial))))
            outputs.append(TensorSpec(final, (stack, "batch", spec.state_size(initial))))
        pairs = tuple(zip(spec.final_state_names, spec.state_names))
        return cls(tuple(inputs), tuple(outputs), pairs, streamable=not spec.bidirectional)


def all_fixed(dims: Iterable[Sequence[Dim]]) -> bool:
    """No symbolic axis among the inputs' `dims`: a model whose forward takes the example's
    shapes only (`.view(1, 1, -1)`), exported as the stock exporters do, every axis fixed."""
    return not any(isinstance(d, str) for input_dims in dims for d in input_dims)


def time_layout(dim: Dim) -> tuple[str, ...] | None:
    """How an axis holds time: ("time",), a flattened product in memory order such as
    ("time", "batch") (`x.view(-1, n)` of a time-major (T, B, n)), or None (no time)."""
    if not isinstance(dim, str):
        return None
    factors = tuple(f.strip() for f in dim.split("*"))
    if "time" not in factors or not all(f in ("time", "batch") for f in factors):
        return None
    return factors


def _tensors(data: Mapping[str, Any], key: str, source: str) -> tuple[TensorSpec, ...]:
    items = data.get(key)
    if not isinstance(items, list) or not items:
        raise RnnxError(f"{source}: the signature needs a non-empty {key!r} list")
    tensors = []
    for item in items:
        name = item.get("name") if isinstance(item, Mapping) else None
        dims = item.get("dims") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not isinstance(dims, list):
            raise RnnxError(f"{source}: each of the signature's {key} needs a name and dims")
        for dim in dims:
            fixed = isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0
            if not fixed and not (isinstance(dim, str) and dim):
                raise RnnxError(
                    f"{source}: {key} {name!r} has dim {shown(dim)}, neither a size nor an axis "
                    "name"
                )
            if fixed and dim > MAX_DIM:
                raise RnnxError(
                    f"{source}: {key} {name!r} has dim {shown(dim)}, larger than {MAX_DIM}"
                )
        dtype = item.get("dtype", "float32")
        if not isinstance(dtype, str):
            raise RnnxError(f"{source}: {key} {name!r} has a dtype that is not a string")
        if dtype not in DTYPES:
            raise RnnxError(
                f"{source}: {key} {name!r} has dtype {shown(dtype)}, not one of {', '.join(DTYPES)}"
            )
        high, role = item.get("high"), item.get("role")
        if high is not None and not (isinstance(high, int) and not isinstance(high, bool)
                                     and 1 <= high <= 2**63 - 1):  # fmt: skip
            raise RnnxError(f"{source}: {key} {name!r} has 'high' {shown(high)}, not a count")
        if role is not None and not isinstance(role, str):
            raise RnnxError(f"{source}: {key} {name!r} has a 'role' that is not a string")
        tensors.append(TensorSpec(name, tuple(dims), dtype, high, role))
    names = [t.name for t in tensors]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RnnxError(f"{source}: the signature's {key} name {duplicates[0]!r} twice")
    return tuple(tensors)


def _axes(items: Any, source: str) -> tuple[Axis, ...]:
    if not isinstance(items, list):
        raise RnnxError(f"{source}: axes must be a list")
    axes = []
    for item in items:
        fields = (item.get("name"), item.get("min", 1), item.get("multiple", 1)) if isinstance(
            item, Mapping) else (None, 0, 0)  # fmt: skip
        name, minimum, multiple = fields
        if not isinstance(name, str) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (minimum, multiple)
        ):
            raise RnnxError(f"{source}: each axis needs a name and positive min and multiple")
        axes.append(Axis(name, minimum, multiple))
    return tuple(axes)


def check_names(feeds: Iterable[str], names: Sequence[str], optional: Sequence[str] = ()) -> None:
    given = list(feeds)
    unknown = [n for n in given if n not in names]
    if unknown:
        raise InputError(f"unknown input {unknown[0]!r}; the model's inputs are {', '.join(names)}")
    missing = [n for n in names if n not in given and n not in optional]
    if missing:
        raise InputError(f"missing input {missing[0]!r}; the model's inputs are {', '.join(names)}")


def validate(
    specs: Iterable[TensorSpec],
    feeds: Mapping[str, Any],
    sizes: Mapping[str, int] = {},
    axes: Iterable[Axis] = (),
) -> dict[str, int]:
    """Check dtype, rank, fixed sizes, that symbolic dims (batch, time) agree across inputs, and
    that they are sizes the model takes (`axes`: "audio needs at least 400 ...").

    `sizes` pins symbolic dims in advance (a stream's batch). Returns the symbolic sizes seen.
    """
    import numpy as np

    seen = {dim: (size, "the stream") for dim, size in sizes.items()}
    for spec in specs:
        array = feeds[spec.name]
        expected = spec.describe()
        if array.dtype != np.dtype(spec.dtype):
            raise InputError(f"input {spec.name!r} has dtype {array.dtype}, expected {spec.dtype}")
        if array.ndim != len(spec.dims):
            raise InputError(
                f"input {spec.name!r} has shape {list(array.shape)} (rank {array.ndim}), "
                f"expected {expected}"
            )
        for axis, (dim, size) in enumerate(zip(spec.dims, array.shape)):
            if isinstance(dim, int) and size != dim:
                raise InputError(
                    f"input {spec.name!r} has size {size} on axis {axis}, expected {dim} "
                    f"(shape {expected})"
                )
            if isinstance(dim, str):
                if size < 1:
                    raise InputError(f"input {spec.name!r} has an empty {dim} axis")
                first = seen.setdefault(dim, (size, repr(spec.name)))
                if first[0] != size:
                    raise InputError(
                        f"input {spec.name!r} has {dim} size {size} but {first[1]} "
                        f"has {dim} size {first[0]}"
                    )
    for axis in axes:
        size, where = seen.get(axis.name, (axis.min, ""))
        if not axis.accepts(size):
            steps = f" + a multiple of {axis.multiple}" if axis.multiple > 1 else ""
            raise InputError(
                f"input {where} needs a {axis.name} size of at least {axis.min}{steps}, got {size}"
            )
    return {dim: size for dim, (size, _) in seen.items()}


def _tensor_dict(tensor: TensorSpec) -> dict[str, Any]:
    data: dict[str, Any] = {"name": tensor.name, "dims": list(tensor.dims), "dtype": tensor.dtype}
    if tensor.high is not None:
        data["high"] = tensor.high
    if tensor.role is not None:
        data["role"] = tensor.role
    return data


def random_inputs(
    signature: Signature, sizes: Mapping[str, int], *, seed: int = 0, zero_state: bool = False
) -> dict[str, Any]:
    """Unit-scale random float32 inputs for `signature` at the given batch/time sizes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    states = set(signature.state_inputs)
    feeds = {}
    for tensor in signature.inputs:
        shape = tensor.shape_for(sizes)
        check_elements(shape, f"input {tensor.name!r}")
        if tensor.role == "lengths":
            feeds[tensor.name] = sequence_lengths(shape[0], sizes["time"]).astype(tensor.dtype)
        elif tensor.dtype != "float32":
            feeds[tensor.name] = rng.integers(0, tensor.high or 2, shape).astype(tensor.dtype)
        elif zero_state and tensor.name in states:
            feeds[tensor.name] = np.zeros(shape, dtype=np.float32)
        else:
            feeds[tensor.name] = rng.standard_normal(shape, dtype=np.float32)
    return feeds


def zero_states(signature: Signature, batch: int) -> dict[str, Any]:
    """Initial states of zeros, as a stream or a call without given states starts."""
    import numpy as np

    shapes = {name: signature.input(name).shape_for({"batch": batch})
              for name in signature.state_inputs}  # fmt: skip
    for name, shape in shapes.items():
        check_elements(shape, f"state {name!r}")
    return {name: np.zeros(shape, np.float32) for name, shape in shapes.items()}


def sequence_lengths(batch: int, time: int) -> Any:
    """Valid lengths for a padded batch, sorted descending as pack_padded_sequence(
    enforce_sorted=True) requires. From 1 step up to `time` - 1 when the batch is padded beyond
    its longest sequence (as batches often are), so that what a model does past the longest
    sequence is checked too: pad_packed_sequence without total_length ends there."""
    import numpy as np

    longest = time - 1 if time > 2 else time
    return np.round(np.linspace(longest, 1, batch)).astype(np.int64)
