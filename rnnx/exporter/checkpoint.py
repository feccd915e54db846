"""Checkpoint files -> eval-mode nn.Module, and the `source` record to rebuild it later.

Accepted: a bare layer's state_dict (architecture inferred by LayerSpec.from_state_dict), a
training checkpoint nesting one, .safetensors weights, a user's module class (--model) to load
weights into, and - only when trusted - a fully pickled nn.Module.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnx.errors import CheckpointError
from rnnx.exporter.spec import LayerSpec

# Where training scripts commonly nest the state dict, in the order they are looked up.
NESTED_KEYS = (
    "state_dict",
    "model_state_dict",
    "model",
    "net",
    "network",
    "module",
    "weights",
    "params",
)


@dataclasses.dataclass(frozen=True)
class LoadOptions:
    model: str | None = None  # "package.module:Class" to build a user's own module
    init_args: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    nonlinearity: str = "tanh"  # bare nn.RNN state_dicts only: the weights cannot tell
    batch_first: bool = False  # bare-layer state_dicts only
    trust_checkpoint: bool = False  # allow unpickling a full nn.Module (runs code from the file)


@dataclasses.dataclass
class LoadedModel:
    module: nn.Module
    spec: LayerSpec | None  # set when the module is a bare nn.RNN/LSTM/GRU
    source: dict[str, Any]  # JSON-serialisable, for the manifest


def load_checkpoint(path: str | os.PathLike, options: LoadOptions = LoadOptions()) -> LoadedModel:
    path = Path(path)
    contents, fmt = _read(path, trust=options.trust_checkpoint)
    found, key = _find_model(contents, path)
    if isinstance(found, nn.Module):
        module, kind = found, "module"
    else:
        module = _build(found, path, options)
        kind = "nested_state_dict" if key else "state_dict"
    module.eval()
    source = {
        "path": str(path.resolve()),
        "sha256": _sha256(path),
        "format": fmt,
        "contents": kind,
        "key": key,
        "model": options.model,
        "init_args": dict(options.init_args),
        "nonlinearity": options.nonlinearity,
        "batch_first": options.batch_first,
        "trust_checkpoint": options.trust_checkpoint,
    }
    spec = LayerSpec.from_module(module) if isinstance(module, nn.RNNBase) else None
    return LoadedModel(module, spec, source)


def load_module_from_source(source: Mapping[str, Any]) -> nn.Module:
    """Rebuild the eager module a manifest's `source` describes (for `rnnx verify`)."""
    path = Path(source["path"])
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint '{path}' recorded at export is gone; "
            "pass --checkpoint with its new location"
        )
    if source.get("sha256") and _sha256(path) != source["sha256"]:
        raise CheckpointError(
            f"checkpoint '{path}' changed since export (sha256 differs); re-export, or pass "
            "--checkpoint to verify against it anyway"
        )
    options = LoadOptions(
        model=source.get("model"),
        init_args=source.get("init_args") or {},
        nonlinearity=source.get("nonlinearity", "tanh"),
        batch_first=bool(source.get("batch_first")),
        trust_checkpoint=bool(source.get("trust_checkpoint")),
    )
    return load_checkpoint(path, options).module


def _read(path: Path, *, trust: bool) -> tuple[Any, str]:
    if not path.exists():
        raise CheckpointError(f"checkpoint '{path}' not found")
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' is not a file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(path), "safetensors"
        except Exception as error:
            raise CheckpointError(f"'{path}' is not a valid safetensors file: {error}") from error
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust), "torch"
    except PermissionError as error:
        raise CheckpointError(f"checkpoint '{path}' is not readable: {error.strerror}") from error
    except Exception as error:
        # A pickled object the safe unpickler refuses names the class as an "Unsupported global";
        # garbage bytes fail the same unpickler with other messages.
        if "Unsupported global" in str(error):
            raise CheckpointError(
                f"'{path}' contains pickled Python objects (a whole nn.Module?); unpickling runs "
                "code from the file: pass --trust-checkpoint if you trust it"
            ) from error
        raise CheckpointError(f"'{path}' is not a PyTorch or safetensors checkpoint") from error


def _is_state_dict(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    )


def _find_model(contents: Any, path: Path) -> tuple[Any, str | None]:
    """The state dict (or module) in the file, and the key it was nested under."""
    if isinstance(contents, nn.Module) or _is_state_dict(contents):
        return _strip_data_parallel(contents), None
    if not isinstance(contents, Mapping):
        raise CheckpointError(
            f"'{path}' holds a {type(contents).__name__}, not a state dict or module"
        )
    candidates = [
        k
        for k in NESTED_KEYS
        if _is_state_dict(contents.get(k)) or isinstance(contents.get(k), nn.Module)
    ]
    if not candidates:
        keys = ", ".join(map(str, list(contents)[:10]))
        raise CheckpointError(f"'{path}' has no state dict under any known key (its keys: {keys})")
    if len(candidates) > 1:
        raise CheckpointError(
            f"'{path}' is ambiguous: keys {candidates[0]!r} and {candidates[1]!r} both hold models"
        )
    return _strip_data_parallel(contents[candidates[0]]), candidates[0]


def _strip_data_parallel(found: Any) -> Any:
    """nn.DataParallel saves every key as 'module.<name>'."""
    if isinstance(found, Mapping) and all(k.startswith("module.") for k in found):
        return {k[len("module.") :]: v for k, v in found.items()}
    return found


def _build(state_dict: Mapping[str, torch.Tensor], path: Path, options: LoadOptions) -> nn.Module:
    if options.model:
        module = _instantiate(options.model, options.init_args)
    else:
        spec = LayerSpec.from_state_dict(
            state_dict,
            nonlinearity=options.nonlinearity,
            batch_first=options.batch_first,
            source=f"'{path}'",
        )
        module = spec.build()
    module.float()  # float16/bfloat16/float64 weights are copied into float32 parameters
    try:
        result = module.load_state_dict(state_dict, strict=False)
    except RuntimeError as error:  # size mismatches raise even when not strict
        details = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
        raise CheckpointError(
            f"'{path}' does not fit {options.model or type(module).__name__}: "
            + (details[0] if details else str(error).splitlines()[0])
        ) from error
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"'{path}' does not fit {options.model or type(module).__name__}: missing keys "
            f"{_short(result.missing_keys)}, unexpected keys {_short(result.unexpected_keys)}"
        )
    return module


def _instantiate(target: str, init_args: Mapping[str, Any]) -> nn.Module:
    module_name, _, class_name = target.partition(":")
    if not module_name or not class_name:
        raise CheckpointError(f"--model must look like 'package.module:Class', got {target!r}")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as error:
        raise CheckpointError(
            f"--model {target}: cannot import {module_name!r}: {error}"
        ) from error
    except AttributeError:
        raise CheckpointError(f"--model {target}: {module_name!r} has no {class_name!r}") from None
    try:
        module = cls(**init_args)
    except TypeError as error:
        raise CheckpointError(f"--init-args do not fit {target}: {error}") from error
    if not isinstance(module, nn.Module):
        raise CheckpointError(f"--model {target} is not an nn.Module class")
    return module


def _short(keys: list[str], limit: int = 5) -> str:
    if not keys:
        return "none"
    shown = ", ".join(keys[:limit])
    return shown + (f" …and {len(keys) - limit} more" if len(keys) > limit else "")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
