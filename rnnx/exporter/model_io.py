"""How a whole model's forward maps onto graph inputs and outputs.

A bare nn.LSTM's I/O is known (signature.Signature.for_layer). A whole model's is declared
(a `ModelIO` passed to export, or a model's `rnnx_io` attribute) or inferred from forward's
parameter names, the example inputs and the first recurrent layer's batch_first, which covers
models shaped like the zoo's: features (or token ids) in, recurrent states in and out.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils import _pytree as pytree

from rnnx.core.errors import UnsupportedModelError, warn_user
from rnnx.core.signature import Axis, Dim, Signature, TensorSpec

_STATE_NAME = re.compile(r"^(h|c|hx|cx|h0|c0|h_0|c_0|hidden|cell|state|states|memory)(_\w+)?$")


@dataclasses.dataclass(frozen=True)
class ModelIO:
    inputs: tuple[str, ...]
    # per input, per axis: "batch", "time" or None (fixed at the example's size)
    dims: Mapping[str, tuple[str | None, ...]]
    outputs: tuple[str, ...]
    state_pairs: tuple[tuple[str, str], ...] = ()  # (output, input) carried between calls
    # integer inputs (token ids): values drawn in [0, high) when verifying
    int_ranges: Mapping[str, int] = dataclasses.field(default_factory=dict)
    # sequence lengths of a padded batch (for pack_padded_sequence)
    lengths: tuple[str, ...] = ()
    # the smallest size and the step between sizes an axis takes (a conv front end's kernel
    # and stride): {"time": 8}; found by running the model when its I/O is inferred
    min_sizes: Mapping[str, int] = dataclasses.field(default_factory=dict)
    multiples: Mapping[str, int] = dataclasses.field(default_factory=dict)

    @property
    def axes(self) -> tuple[Axis, ...]:
        names = sorted(set(self.min_sizes) | set(self.multiples))
        return tuple(Axis(n, self.min_sizes.get(n, 1), self.multiples.get(n, 1)) for n in names)


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One tensor of forward's (possibly nested) arguments: a graph input."""

    name: str  # "x", or "hidden.0" for the first tensor of a tuple/list argument `hidden`
    argument: str  # forward's parameter it belongs to
    tensor: torch.Tensor


# Python values forward may take among its arguments (a flag, a ratio, None for an optional
# state): bound into the artifacts at the example's value, as the stock exporters bind them.
_CONSTANT_TYPES = (type(None), bool, int, float, str)


@dataclasses.dataclass(frozen=True)
class InputStructure:
    """How forward's arguments are rebuilt from the graph inputs: their nesting (a torch pytree
    spec) and the places that hold a Python value (None for an optional argument, a flag or a
    ratio) rather than a tensor, with that value."""

    tree: pytree.TreeSpec
    constants: tuple[tuple[int, Any], ...] = ()  # (position among the tree's leaves, value)

    def rebuild(self, inputs: Sequence[torch.Tensor]) -> Any:
        values, constants = iter(inputs), dict(self.constants)
        leaves = [constants[i] if i in constants else next(values)
                  for i in range(self.tree.num_leaves)]  # fmt: skip
        return pytree.tree_unflatten(leaves, self.tree)

    def to_json(self) -> str:
        return json.dumps({"tree": pytree.treespec_dumps(self.tree),
                           "constants": [list(c) for c in self.constants]})  # fmt: skip

    @classmethod
    def from_json(cls, text: str | None) -> InputStructure | None:
        if not text:
            return None
        data = json.loads(text)
        constants = [(i, None) for i in data.get("absent", [])]  # rnnx 0.2.0 kept only None
        constants += [(i, value) for i, value in data.get("constants", [])]
        return cls(pytree.treespec_loads(data["tree"]), tuple(constants))


def flatten_inputs(
    model: nn.Module, example_inputs: Sequence[Any]
) -> tuple[list[Leaf], InputStructure | None]:
    """forward's arguments (tensors, or tuples/lists of them, nested) as named graph inputs.

    Published models pass states as `hidden=(h, c)` or as a list of per-layer states; the graph
    takes each tensor as its own input, named after its place: hidden.0, hidden.1, states.2.1.
    A Python value (None for an optional part, `teacher_forcing_ratio=0`) is no input: it is
    bound at the example's value, said once in a warning unless it is None. The structure is
    None when every argument is one tensor.
    """
    parameters = _parameter_names(model)
    if len(example_inputs) > len(parameters):
        raise UnsupportedModelError(
            f"{type(model).__name__}.forward takes {len(parameters)} arguments but "
            f"{len(example_inputs)} example inputs were given"
        )
    with_paths, tree = pytree.tree_flatten_with_path(tuple(example_inputs))
    leaves, constants = [], []
    for position, (path, value) in enumerate(with_paths):
        argument = parameters[path[0].idx]  # type: ignore[attr-defined]
        name = argument + "".join(f".{getattr(k, 'idx', getattr(k, 'key', k))}" for k in path[1:])
        if isinstance(value, _CONSTANT_TYPES):
            constants.append((position, value))
            if value is not None:
                warn_user(
                    f"example input {name!r} is a Python {type(value).__name__} ({value!r}): "
                    f"the artifacts run forward with {name}={value!r} (pass a tensor to make it "
                    "an input)"
                )
            continue
        if not isinstance(value, torch.Tensor):
            raise UnsupportedModelError(
                f"example input {name!r} is {type(value).__name__}; rnnx exports tensor "
                "inputs, and binds Python numbers, strings and None at their value"
            )
        leaves.append(Leaf(name, argument, value))
    if not leaves:
        raise UnsupportedModelError("the example inputs hold no tensor: rnnx exports tensor inputs")
    plain = tree.num_leaves == tree.num_children and not constants
    return leaves, None if plain else InputStructure(tree, tuple(constants))


def _parameter_names(model: nn.Module) -> list[str]:
    """forward's positional parameter names. A recurrent layer whose forward is wrapped as
    forward(*args, **kwargs) (weight-drop wrappers do this) takes nn.LSTM's: input, hx."""
    parameters = inspect.signature(model.forward).parameters.values()
    named = [p.name for p in parameters
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]  # fmt: skip
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        defaults = ["input", "hx"] if isinstance(model, nn.RNNBase) else []
        named = named or defaults
        named += [f"input_{i}" for i in range(len(named), 16)]
    return named


def resolve_io(
    model: nn.Module,
    leaves: Sequence[Leaf],
    outputs: Sequence[torch.Tensor],
    io: ModelIO | None,
) -> ModelIO:
    """`io`, else the model's `rnnx_io`, else inferred; `outputs` is forward's flat result."""
    declared = io or getattr(model, "rnnx_io", None)
    if isinstance(declared, Mapping):
        declared = ModelIO(**declared)
    if declared is not None:
        if len(declared.inputs) != len(leaves):
            names = ", ".join(leaf.name for leaf in leaves)
            raise UnsupportedModelError(
                f"{type(model).__name__}: its ModelIO names {len(declared.inputs)} inputs but "
                f"the example inputs hold {len(leaves)} tensors ({names})"
            )
        return declared
    return _infer(model, leaves, outputs)


def _infer(model: nn.Module, leaves: Sequence[Leaf], outputs: Sequence[torch.Tensor]) -> ModelIO:
    batch_first = _batch_first(model)
    named = [leaf for leaf in leaves if _STATE_NAME.match(leaf.argument)]
    states = _returned_states(named, outputs)
    pairs = [(_output_name(leaf.name), leaf.name) for leaf in states]
    # when some states are returned, the state-named inputs that are not are data
    as_state = {leaf.name for leaf in (states or named)}
    dims = {leaf.name: _guess_dims(leaf, batch_first, leaf.name in as_state) for leaf in leaves}
    data_outputs = len(outputs) - len(pairs)
    names = ["output"] if data_outputs == 1 else [f"output_{i}" for i in range(data_outputs)]
    lengths = tuple(
        leaf.name for leaf in leaves
        if leaf.tensor.dim() == 1 and not leaf.tensor.is_floating_point()
        and re.search("len", leaf.name)
    )  # fmt: skip
    return ModelIO(
        inputs=tuple(leaf.name for leaf in leaves),
        dims=dims,
        outputs=tuple(names + [o for o, _ in pairs]),
        state_pairs=tuple(pairs),
        lengths=lengths,
    )


def _returned_states(named: Sequence[Leaf], outputs: Sequence[torch.Tensor]) -> list[Leaf]:
    """The state-named inputs a step model returns anew: its last outputs, in the order it
    takes them (nested or not). The most of them that match the outputs' shapes: an input
    named like a state that is not returned (an attention decoder's encoder `memory`) is data.
    """
    for count in range(len(named), 0, -1):
        if count >= len(outputs):
            continue
        tail = outputs[-count:]
        for chosen in itertools.combinations(named, count):
            if all(o.shape == leaf.tensor.shape for o, leaf in zip(tail, chosen)):
                return list(chosen)
    return []


def _output_name(state: str) -> str:
    """The final-state output of state input `state`: h0 -> h0_out, hidden.1 -> hidden_out.1."""
    argument, dot, rest = state.partition(".")
    return f"{argument}_out{dot}{rest}"


def _guess_dims(leaf: Leaf, batch_first: bool | None, state: bool) -> tuple[str | None, ...]:
    tensor = leaf.tensor
    sequence: tuple[str | None, ...] = ("batch", "time") if batch_first else ("time", "batch")
    if state:
        # (layers*directions, batch, size) for layers, (batch, size) for cells
        return (None, "batch", None) if tensor.dim() == 3 else ("batch", None)
    if tensor.dim() == 3:
        return (*sequence, None)
    if tensor.dim() == 2:
        # token ids (batch, time) / (time, batch), or one step of features (batch, features)
        return sequence if not tensor.is_floating_point() else ("batch", None)
    if tensor.dim() == 1:
        return ("batch",)
    return (None,) * tensor.dim()  # images, conv layouts: found by running the model (axes.py)


def _batch_first(model: nn.Module) -> bool | None:
    for module in model.modules():
        if isinstance(module, nn.RNNBase):
            return module.batch_first
    return None


def flatten_outputs(result: Any) -> list[torch.Tensor]:
    """forward's result (a tensor, or nested tuples/lists of them) in graph output order.

    None inside a tuple or list (a block without state, as among the inputs) is no output.
    """
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (tuple, list)):
        return [t for item in result if item is not None for t in flatten_outputs(item)]
    raise UnsupportedModelError(
        f"forward returns a {type(result).__name__}; rnnx exports tensors and tuples of them"
    )


class FlatIO(nn.Module):
    """The user's model with flat I/O: one tensor per graph input and output.

    forward takes the graph inputs in order and rebuilds forward's nested arguments from them
    (`structure`, when any argument is a tuple/list); nested results become one flat tuple.
    What is exported, and what runs as the eager reference of a whole model.
    """

    def __init__(self, model: nn.Module, structure: InputStructure | None = None) -> None:
        super().__init__()
        self.model = model
        self.structure = structure

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        arguments = self.structure.rebuild(inputs) if self.structure else inputs
        return tuple(flatten_outputs(self.model(*arguments)))


def input_signature(io: ModelIO, example_inputs: Sequence[torch.Tensor]) -> list[TensorSpec]:
    specs = []
    for name, tensor in zip(io.inputs, example_inputs):
        axes = io.dims.get(name, (None,) * tensor.dim())
        if len(axes) != tensor.dim():
            raise UnsupportedModelError(
                f"input {name!r}: {len(axes)} axes declared, example has {tensor.dim()}"
            )
        dims: tuple[Dim, ...] = tuple(a if a else int(size) for a, size in zip(axes, tensor.shape))
        dtype = str(tensor.dtype).removeprefix("torch.")
        role = "lengths" if name in io.lengths else None
        specs.append(TensorSpec(name, dims, dtype, io.int_ranges.get(name), role))
    return specs


def not_streamable(io: ModelIO, bidirectional_run: Sequence[str] = ()) -> str | None:
    """Why a model cannot stream, naming only what it has (None: it may; the pipeline also
    runs it in chunks: doctor.check_streaming). Streams need carried states and nothing that
    looks ahead in time: `bidirectional_run` names the bidirectional layers forward ran; a
    lengths input describes whole padded sequences, not chunks of them."""
    if not io.state_pairs:
        return "it has no state inputs carried from one call to the next"
    if bidirectional_run:
        return f"its bidirectional layer {bidirectional_run[0]!r} reads the sequence backwards"
    if io.lengths:
        return f"it takes a lengths input ({io.lengths[0]!r}), which describes whole sequences"
    return None


@dataclasses.dataclass
class LayersRun:
    """What one run of forward shows of its recurrent layers."""

    bidirectional: list[str]  # the bidirectional layers forward calls, by name
    batch: int | None  # the batch size the first layer called is fed (None: no layer)


def layers_run(model: nn.Module, run: Any) -> LayersRun:
    """The recurrent layers `run()` calls: the bidirectional ones (a layer the forward does not
    use, such as an encoder held by a decoder step, is no reason not to stream) and the batch
    size the first one sees (which tells the batch axis of an input when names cannot)."""
    names = {id(m): n or type(m).__name__ for n, m in model.named_modules()
             if isinstance(m, nn.RNNBase)}  # fmt: skip
    seen = LayersRun([], None)

    def record(layer: nn.Module, args: tuple) -> None:
        if layer.bidirectional:  # type: ignore[union-attr]
            seen.bidirectional.append(names[id(layer)])
        data = args[0] if args else None
        if seen.batch is None and isinstance(data, torch.Tensor) and data.dim() == 3:
            seen.batch = int(data.shape[0 if layer.batch_first else 1])  # type: ignore[union-attr]

    hooks = [m.register_forward_pre_hook(record) for m in model.modules() if id(m) in names]
    try:
        run()
    finally:
        for hook in hooks:
            hook.remove()
    seen.bidirectional = list(dict.fromkeys(seen.bidirectional))
    return seen


def whole_model_signature(
    io: ModelIO,
    inputs: Sequence[TensorSpec],
    output_dims: Sequence[tuple[Dim, ...]],
    output_dtypes: Sequence[str],
    is_streamable: bool,
) -> Signature:
    outputs = tuple(TensorSpec(n, d, t) for n, d, t in zip(io.outputs, output_dims, output_dtypes))
    return Signature(tuple(inputs), outputs, io.state_pairs, is_streamable, io.axes)
