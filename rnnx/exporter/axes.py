"""A whole model's dynamic axes, found by running it, with their minimum sizes and strides.

Names tell the layout of conventional inputs ((time, batch, features) into a time-major
LSTM), but published models take raw audio (batch, samples), conv layouts (batch, channels,
time) and images (batch, 1, height, width) whose width is time. So each axis of a data input
is tried at other sizes: the axes forward accepts at other sizes are dynamic; the one that
moves with the states' batch (or, without states, whose new size every output shows) is the
batch, the next is time; the others stay fixed. The smallest time forward accepts, and the
step between accepted sizes (a front end that subsamples by 4 may need multiples of 4), are
recorded, so verification, streaming and runtimes use only sizes the model takes.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping, Sequence

import torch

from rnnx.core.signature import TensorSpec, sequence_lengths

Dims = tuple[str | None, ...]
# Sizes tried for each axis: one more than the example's and about twice it (odd, so a fixed
# size that a stride maps to the same length shows as fixed); an axis forward accepts at both
# is dynamic. If not, multiples of the example's size: an axis that takes only multiples of a
# step (frames stacked by 4) is dynamic too.
_TRIES = ((lambda size: size + 1, lambda size: 2 * size + 1),
          (lambda size: 2 * size, lambda size: 3 * size))  # fmt: skip
_LINEAR_SCAN = 64  # minimum time: sizes up to this are each tried, beyond it a binary search
_MAX_MULTIPLE = 16


@dataclasses.dataclass(frozen=True)
class Probed:
    dims: dict[str, Dims]  # per input
    axes: dict[str, tuple[int, int]]  # axis name -> (minimum size, multiple)
    static: bool = False  # forward took no data input at any other size


@dataclasses.dataclass(frozen=True)
class Tensors:
    """Named example inputs with their dims, resized along named axes on demand."""

    names: tuple[str, ...]
    tensors: tuple[torch.Tensor, ...]
    dims: Mapping[str, Dims]
    lengths: frozenset[str] = frozenset()  # inputs holding sequence lengths

    @classmethod
    def of(cls, specs: Sequence[TensorSpec], tensors: Sequence[torch.Tensor]) -> Tensors:
        """The example inputs of a plan, named and laid out by their specs."""
        return cls(
            tuple(s.name for s in specs),
            tuple(tensors),
            {s.name: s.axis_names for s in specs},
            frozenset(s.name for s in specs if s.role == "lengths"),
        )

    def sizes(self) -> dict[str, int]:
        """The size of each named axis in these tensors."""
        sizes: dict[str, int] = {}
        for name, tensor in zip(self.names, self.tensors):
            for axis, dim in enumerate(self.dims[name]):
                if dim:
                    sizes.setdefault(dim, int(tensor.shape[axis]))
        return sizes

    def resized(self, sizes: Mapping[str, int]) -> list[torch.Tensor]:
        """Each input with its named axes at `sizes` (values repeated), lengths kept valid."""
        out = []
        for name, tensor in zip(self.names, self.tensors):
            if name in self.lengths:
                time = sizes.get("time", int(tensor.max()))
                out.append(torch.from_numpy(sequence_lengths(sizes["batch"], time)))
                continue
            for axis, dim in enumerate(self.dims[name]):
                if dim in sizes and tensor.shape[axis] != sizes[dim]:
                    tensor = resize(tensor, axis, sizes[dim])
            out.append(tensor)
        return out


def resize(tensor: torch.Tensor, axis: int, size: int) -> torch.Tensor:
    repeats = -(-size // tensor.shape[axis])
    return torch.cat([tensor] * repeats, dim=axis).narrow(axis, 0, size)


def probe(
    forward: Callable[..., Sequence[torch.Tensor]],
    example: Tensors,
    data: Sequence[str],
    layer_batch: int | None = None,
) -> Probed:
    """Find the dynamic axes of the `data` inputs (states and lengths keep `example.dims`);
    `layer_batch`: the batch size the first recurrent layer was fed, if known."""
    run = _runner(forward)
    dims = dict(example.dims)
    batch = example.sizes().get("batch")
    moving = False
    for name in data:
        tensor = example.tensors[example.names.index(name)]
        dynamic, follows_states = [], None
        for axis, size in enumerate(tensor.shape):
            moved = _try_axis(run, example, name, axis, int(size), batch)
            if moved is not None:
                dynamic.append((axis, moved))
                if moved == "with-states":
                    follows_states = axis
        moving = moving or bool(dynamic)
        found = _name_axes(tensor, dynamic, follows_states, example.dims[name])
        # Fewer dynamic axes than the layout by name has means a size baked into forward, not
        # another layout: the guess stays, for the doctor and the verifier to report; unless
        # the batch found is another axis than the guess's, and the recurrent layer's batch
        # size says so (a fixed window of a (B, T, F) input into a time-major layer, LSTNet's:
        # the guess's batch is the window).
        guessed = example.dims[name]
        moved = "batch" in found and "batch" in guessed and layer_batch is not None
        if moved:
            new, old = found.index("batch"), guessed.index("batch")
            sizes = tensor.shape
            moved = new != old and sizes[new] == layer_batch and sizes[old] != layer_batch
        if sum(map(bool, found)) >= sum(map(bool, guessed)) or moved:
            dims[name] = found
    probed = Tensors(example.names, example.tensors, dims, example.lengths)
    axes = {}
    if any("time" in d for d in dims.values()):
        axes["time"] = _minimum(run, probed, "time")
    return Probed(dims, axes, static=bool(data) and not moving)


def _runner(forward: Callable[..., Sequence[torch.Tensor]]):
    def run(inputs: list[torch.Tensor]) -> list[torch.Tensor] | None:
        try:
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return list(forward(*inputs))
        except Exception:  # any failure means "not at this size"
            return None

    return run


def _try_axis(run, example: Tensors, name: str, axis: int, size: int, batch: int | None):
    """How forward takes input `name` at other sizes on `axis`: "alone" (a dynamic axis of
    its own, with the outputs it gives), "with-states" (dynamic when the states' batch moves
    too: the batch axis), or None (fixed)."""
    index = example.names.index(name)

    def attempt(with_states: bool) -> list | None:
        for tries in _TRIES:
            results = []
            for grow in tries:
                new = grow(size)
                inputs = example.resized({"batch": new}) if with_states else list(example.tensors)
                inputs[index] = resize(example.tensors[index], axis, new)
                outputs = run(inputs)
                if outputs is None:
                    break
                results.append((new, outputs))
            else:
                return results
        return None

    alone = attempt(False)
    if alone is not None:
        return alone
    if batch == size and attempt(True) is not None:
        return "with-states"
    return None


def _name_axes(
    tensor: torch.Tensor, dynamic: list, follows_states: int | None, guessed: Dims
) -> Dims:
    """batch and time among the dynamic axes; the rest fixed."""
    axes = [axis for axis, _ in dynamic]
    if not axes:
        return (None,) * tensor.dim()
    # The batch moves with the states' batch; without states, every output shows its new size
    # (time may not: a front end that subsamples). A guess by name decides between equals.
    followed = [axis for axis, moved in dynamic if moved != "with-states" and all(
        any(int(d) == new for d in output.shape) for new, outputs in moved for output in outputs
    )]  # fmt: skip
    named = len(guessed) == tensor.dim()
    guessed_batch = [a for a in axes if named and guessed[a] == "batch"]
    if follows_states is not None:
        batch = follows_states
    elif guessed_batch and (not followed or guessed_batch[0] in followed):
        batch = guessed_batch[0]
    else:
        batch = (followed or axes)[0]
    rest = [a for a in axes if a != batch]
    guess_time = [a for a in rest if named and guessed[a] == "time"]
    time = (guess_time or rest or [None])[0]
    return tuple("batch" if a == batch else "time" if a == time else None
                 for a in range(tensor.dim()))  # fmt: skip


def _minimum(run, example: Tensors, axis: str) -> tuple[int, int]:
    """(smallest size, multiple) forward accepts on `axis`: sizes minimum + k * multiple."""
    size = example.sizes()[axis]

    def works(n: int) -> bool:
        return run(example.resized({**example.sizes(), axis: n})) is not None

    minimum = next((n for n in range(1, min(size, _LINEAR_SCAN) + 1) if works(n)), None)
    if minimum is None:  # beyond the scan: assume larger always works (a receptive field)
        low, high = _LINEAR_SCAN, size
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if works(middle) else (middle, high)
        minimum = high
    if all(works(minimum + k) for k in (1, 2, 3)):
        return minimum, 1
    for multiple in range(2, _MAX_MULTIPLE + 1):
        if works(minimum + multiple) and works(minimum + 2 * multiple):
            return minimum, multiple
    return minimum, 1
