"""Checkpoint file -> eval-mode nn.Module, plus its LayerSpec when it is a bare recurrent layer.

Reads flat and nested state dicts (torch.load or .safetensors), builds a user's own module
class with --model, and unpickles a full nn.Module only when the caller trusts the file. The
`source` dict says how to do it all again, so `rnnx verify` can rebuild the eager model later.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnx.core.errors import CheckpointError
from rnnx.core.spec import LayerSpec

# Where training scripts nest the weights, in the order we look for them.
STATE_DICT_KEYS = (
    "state_dict",
    "model_state_dict",
    "model",
    "net",
    "network",
    "module",
    "weights",
    "params",
)
_MAX_LISTED = 5
# torch's weights_only unpickler names the first class it refused to import.
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    model: str | None = None  # "package.module:Class" to build a user's own module
    init_args: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    nonlinearity: str = "tanh"  # only for bare nn.RNN state dicts; the weights cannot tell
    batch_first: bool = False  # only for bare-layer state dicts
    trust_checkpoint: bool = False  # allow unpickling a full nn.Module (runs code!)


@dataclasses.dataclass
class LoadedModel:
    module: nn.Module  # in eval() mode
    spec: LayerSpec | None  # set when the module is a bare nn.RNN/LSTM/GRU
    source: dict[str, Any]  # JSON-serialisable; how to load it again (see load_module_from_source)


def load_checkpoint(path: str | os.PathLike, options: LoadOptions = LoadOptions()) -> LoadedModel:
    """Load a checkpoint file into an eval-mode module; CheckpointError for every bad input."""
    path = Path(path)
    return _load(path, options, _sha256(path))


def load_module_from_source(
    source: Mapping[str, Any], trust: LoadOptions = LoadOptions(), *, moved: bool = False
) -> nn.Module:
    """Rebuild the eager module a manifest's `source` describes, refusing a changed file.

    The manifest is data: it may say where the weights are and how they are laid out, never
    grant trust. Code runs only when the caller passes it again in `trust` (--model, or
    --trust-checkpoint for a pickled module). `moved`: `source` is a file given now instead of
    the recorded one, so there is no recorded sha256 to check it against.
    """
    path = Path(str(source.get("path") or ""))
    if not path.exists():
        raise CheckpointError(
            f"checkpoint '{path}' recorded in the manifest not found; pass --checkpoint if it moved"
        )
    digest = _sha256(path)
    # Hash before loading: a changed file must not be loaded on the strength of the export.
    if not moved and source.get("sha256") and digest != source["sha256"]:
        raise CheckpointError(
            f"checkpoint '{path}' changed since export (sha256 differs); export it again"
        )
    recorded_model = source.get("model")
    if recorded_model and trust.model is None:
        raise CheckpointError(
            f"checkpoint '{path}' was exported with --model {recorded_model}: pass --model "
            "again to rebuild it (the manifest cannot ask rnnx to import code)"
        )
    recorded_args = source.get("init_args")
    options = LoadOptions(
        model=trust.model,
        init_args=trust.init_args or (recorded_args if isinstance(recorded_args, Mapping) else {}),
        nonlinearity="relu" if source.get("nonlinearity") == "relu" else "tanh",
        batch_first=source.get("batch_first") is True,
        trust_checkpoint=trust.trust_checkpoint,
    )
    return _load(path, options, digest).module


def _load(path: Path, options: LoadOptions, digest: str) -> LoadedModel:
    found, key = _find_weights(_read(path, options.trust_checkpoint), path)
    if isinstance(found, nn.Module) and options.model is None:
        module = found
    else:
        state_dict = found.state_dict() if isinstance(found, nn.Module) else found
        module = _build(state_dict, options, path)
    module.eval()
    if isinstance(found, nn.Module):
        contents = "module"
    else:
        contents = "state_dict" if key is None else "nested_state_dict"
    source = {
        "path": str(path.resolve()),
        "sha256": digest,
        "format": "safetensors" if _is_safetensors(path) else "torch",
        "contents": contents,
        "key": key,
        "model": options.model,
        "init_args": dict(options.init_args),
        "nonlinearity": options.nonlinearity,
        "batch_first": options.batch_first,
        "trust_checkpoint": options.trust_checkpoint,
    }
    spec = LayerSpec.from_module(module) if isinstance(module, nn.RNNBase) else None
    return LoadedModel(module, spec, source)


def _sha256(path: Path) -> str:
    """Stream the file through sha256; this is also where a missing or unreadable file shows."""
    if path.is_dir():
        raise CheckpointError(f"checkpoint '{path}' is a directory, not a file")
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint '{path}' not found") from None
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint '{path}': {error.strerror}") from error
    return digest.hexdigest()


def _is_safetensors(path: Path) -> bool:
    return path.suffix.lower() == ".safetensors"


def _read(path: Path, trusted: bool) -> Any:
    # Loaders fail in many ways on foreign files (pickle, zip, EOF, KeyError ...): all of them
    # mean "not a checkpoint" to the user, so the raw traceback stays behind `from error`.
    try:
        if _is_safetensors(path):
            from safetensors.torch import load_file

            return load_file(path, device="cpu")
        return torch.load(path, map_location="cpu", weights_only=not trusted)
    except Exception as error:
        refused = _REFUSED_GLOBAL.search(str(error))
        if refused and not trusted:
            message = (
                f"'{path}' contains a pickled module or other Python object "
                f"({refused.group(1)}), not only weights; unpickling runs code from the file: "
                "pass --trust-checkpoint if you trust it"
            )
        elif trusted and isinstance(error, (ImportError, AttributeError)):
            message = f"'{path}' pickles a class that cannot be imported here ({error})"
        else:
            message = f"'{path}' is not a PyTorch or safetensors checkpoint ({_describe(error)})"
        raise CheckpointError(message) from error


def _find_weights(contents: Any, path: Path) -> tuple[Mapping[str, Any] | nn.Module, str | None]:
    """The state dict (or trusted module) in the file, and the key it was nested under."""
    if isinstance(contents, nn.Module):
        return contents, None
    if _is_state_dict(contents):
        return _strip_prefix(contents), None
    if not isinstance(contents, Mapping):
        raise CheckpointError(
            f"'{path}' holds a {type(contents).__name__}, not a state dict or module"
        )
    found = [
        (key, value if isinstance(value, nn.Module) else _strip_prefix(value))
        for key, value in ((k, contents.get(k)) for k in STATE_DICT_KEYS)
        if isinstance(value, nn.Module) or _is_state_dict(value)
    ]
    if not found:
        raise CheckpointError(
            f"'{path}' holds no state dict under any of the keys {', '.join(STATE_DICT_KEYS)}; "
            f"its top-level keys are: {_listed(map(repr, contents))}"
        )
    (key, value), *others = found
    for other_key, other in others:
        if not _same_weights(value, other):
            raise CheckpointError(
                f"'{path}' is ambiguous: keys {key!r} and {other_key!r} both hold state dicts, "
                "with different weights"
            )
    return value, key


def _is_state_dict(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    )


def _strip_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # nn.DataParallel and DistributedDataParallel save the wrapped module's keys as "module.*".
    prefix = "module."
    if all(key.startswith(prefix) for key in state_dict):
        return {key[len(prefix) :]: value for key, value in state_dict.items()}
    return dict(state_dict)


def _same_weights(a: Mapping[str, Any] | nn.Module, b: Mapping[str, Any] | nn.Module) -> bool:
    a, b = (x.state_dict() if isinstance(x, nn.Module) else x for x in (a, b))
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _build(state_dict: Mapping[str, torch.Tensor], options: LoadOptions, path: Path) -> nn.Module:
    if options.model is None:
        spec = LayerSpec.from_state_dict(
            state_dict,
            nonlinearity=options.nonlinearity,
            batch_first=options.batch_first,
            source=f"'{path}'",
        )
        module = spec.build()
    else:
        module = _instantiate(options.model, options.init_args)
    expected = module.state_dict()
    missing, unexpected = expected.keys() - state_dict.keys(), state_dict.keys() - expected.keys()
    name = type(module).__name__
    if missing or unexpected:
        raise CheckpointError(
            f"'{path}' does not fit {name}: missing keys {_listed(sorted(missing))}; "
            f"unexpected keys {_listed(sorted(unexpected))}"
        )
    wrong = [
        f"{key} {list(state_dict[key].shape)} (model: {list(value.shape)})"
        for key, value in expected.items()
        if state_dict[key].shape != value.shape
    ]
    if wrong:
        raise CheckpointError(f"'{path}' does not fit {name}: size mismatch for {_listed(wrong)}")
    # load_state_dict copies into the module's own float32 parameters, so float16, bfloat16
    # and float64 checkpoints come out as the float32 model rnnx exports.
    module.load_state_dict(state_dict, strict=True)
    return module


def _instantiate(class_path: str, init_args: Mapping[str, Any]) -> nn.Module:
    module_name, colon, attribute = class_path.partition(":")
    if not (module_name and colon and attribute):
        raise CheckpointError(f"--model must be 'package.module:Class', got {class_path!r}")
    try:
        target = importlib.import_module(module_name)
    except Exception as error:  # importing runs the user's code, which may raise anything
        raise CheckpointError(
            f"--model {class_path}: cannot import {module_name!r} ({_describe(error)})"
        ) from error
    cls = getattr(target, attribute, None)
    if cls is None:
        raise CheckpointError(f"--model {class_path}: {module_name!r} has no {attribute!r}")
    # Checked before calling: --model os:system must never run.
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise CheckpointError(f"--model {class_path} is not an nn.Module subclass")
    try:
        module = cls(**init_args)
    except Exception as error:
        raise CheckpointError(
            f"--model {class_path} cannot be built with --init-args "
            f"{json.dumps(dict(init_args), default=repr)}: {_describe(error)}"
        ) from error
    if not isinstance(module, nn.Module):
        raise CheckpointError(f"--model {class_path} is a {type(module).__name__}, not nn.Module")
    return module


def _listed(items: Iterable[str]) -> str:
    items = list(items)
    shown = ", ".join(items[:_MAX_LISTED]) or "none"
    more = len(items) - _MAX_LISTED
    return f"{shown} …and {more} more" if more > 0 else shown


def _describe(error: BaseException) -> str:
    """The error's type and the first line of its message, kept short for a one-line error."""
    # torch's weights_only errors open with generic advice; the cause follows this marker.
    lines = str(error).split("WeightsUnpickler error:")[-1].strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:160]}" if lines else type(error).__name__
