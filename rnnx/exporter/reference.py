"""The eager reference of an export: the module every artifact is compared with.

It is rebuilt from the checkpoint the export came from (the manifest's `source`), or, for a bare
layer exported from memory, from the weights the export carries (`reference.safetensors`: data
only, nothing is unpickled) and the layer spec.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from rnnx.core.errors import RnnxError, first_line
from rnnx.core.manifest import Manifest, inside
from rnnx.exporter.checkpoint import LoadOptions, load_module_from_source
from rnnx.exporter.layer_module import wrap_layer
from rnnx.exporter.model_io import FlatIO, InputStructure

REFERENCE_FILE = "reference.safetensors"


def write_reference(layer: nn.RNNBase, path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous() for k, v in layer.state_dict().items()}, path)


def load_reference(
    export_dir: str | os.PathLike,
    manifest: Manifest,
    checkpoint: str | os.PathLike | None = None,
    trust: LoadOptions | None = None,
) -> nn.Module:
    """The user's module as exported, from `checkpoint` (a moved file), the recorded source, or
    the weights inside the export. Only `trust` (the caller's --model / --trust-checkpoint)
    lets code run; the manifest never does."""
    trust = trust or LoadOptions()
    if checkpoint is not None:
        # The same rules as export: the new file, hashed now, with the caller's trust only.
        source = {**(manifest.source or {}), "path": str(Path(checkpoint).resolve())}
        return load_module_from_source(source, trust, moved=True)
    if manifest.source:
        return load_module_from_source(manifest.source, trust)
    if manifest.reference and manifest.spec is not None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = inside(export_dir, manifest.reference)
        layer = manifest.spec.build()
        try:
            layer.load_state_dict(load_file(path))
        except (OSError, SafetensorError, RuntimeError) as error:
            first = first_line(error, 200)
            raise RnnxError(f"cannot load the reference weights '{path}': {first}") from error
        return layer
    raise RnnxError(
        f"'{export_dir}' was exported from an in-memory {manifest.class_path or 'model'}: pass "
        "the model (reference=, rnnx.verify(dir, model)) or its checkpoint (--checkpoint)"
    )


def reference_module(manifest: Manifest, module: nn.Module) -> nn.Module:
    """The eager module whose forward matches the export's graph I/O, from the user's module."""
    if manifest.model == "layer":
        return wrap_layer(module, stateless=manifest.stateless)
    return FlatIO(module, InputStructure.from_json(manifest.input_structure)).eval()
