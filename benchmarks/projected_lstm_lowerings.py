"""Projected LSTM: rnnx's Scan lowering against the folded native op, onnxruntime and OpenVINO.

The measurement behind the choice in rnnx/exporter/lowering.py. The folded graph computes
m_t = o_t * tanh(c_t) with a native ONNX LSTM of the full hidden size whose recurrent weight is
W_hh @ W_hr, lifts h0 to m0 = pinv(W_hr) h0 (exact when W_hr has full row rank) and projects
the outputs with W_hr afterwards. It is built here with onnx.helper, from the module's weights,
because rnnx does not ship it (it measured slower at the shapes that matter); only this script
needs it. Every variant is checked against eager before it is timed; rounds are interleaved,
one thread each, ratios to eager in the same rounds.

    python benchmarks/projected_lstm_lowerings.py --hidden 1024 --proj 256 --shapes 1x100,16x100
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import openvino as ov
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from rnnx.pipeline import ExportOptions, export

OUTPUTS = ("output", "h_n", "c_n")


def folded_graph(lstm: nn.LSTM, path: Path) -> None:
    """The folded lowering of a unidirectional, biased, projected nn.LSTM, saved to `path`."""
    layers, hidden, proj = lstm.num_layers, lstm.hidden_size, lstm.proj_size
    initializers: list[TensorProto] = []

    def constant(name: str, array: np.ndarray, dtype: type = np.float32) -> str:
        initializers.append(numpy_helper.from_array(array.astype(dtype), name))
        return name

    def onnx_gates(a: np.ndarray) -> np.ndarray:  # PyTorch i, f, g, o -> ONNX i, o, f, c
        i, f, g, o = np.split(a, 4, axis=0)
        return np.concatenate([i, o, f, g], axis=0)

    split = dict(axis=0, num_outputs=layers) if layers > 1 else None
    nodes = [
        helper.make_node(
            "Split" if split else "Identity",
            [name],
            [f"{name}_{n}" for n in range(layers)],
            **(split or {}),
        )  # fmt: skip
        for name in ("h0", "c0")
    ]
    x, finals_h, finals_c = "input", [], []
    for n in range(layers):
        w = {k: getattr(lstm, f"{k}_l{n}").detach().double().numpy()
             for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")}  # fmt: skip
        bias = np.concatenate([onnx_gates(w["bias_ih"]), onnx_gates(w["bias_hh"])])
        nodes += [
            helper.make_node(
                "MatMul",
                [f"h0_{n}", constant(f"lift{n}", np.linalg.pinv(w["weight_hr"]).T)],
                [f"m0_{n}"],
            ),  # fmt: skip
            helper.make_node(
                "LSTM",
                [
                    x,
                    constant(f"W{n}", onnx_gates(w["weight_ih"])[None]),
                    constant(f"R{n}", onnx_gates(w["weight_hh"] @ w["weight_hr"])[None]),
                    constant(f"B{n}", bias[None]),
                    "",
                    f"m0_{n}",
                    f"c0_{n}",
                ],
                [f"Y{n}", f"Yh{n}", f"c_n{n}"],
                hidden_size=hidden,
            ),  # fmt: skip
            helper.make_node(
                "Squeeze", [f"Y{n}", constant(f"axis{n}", np.array([1]), np.int64)], [f"Ys{n}"]
            ),  # fmt: skip
            helper.make_node("MatMul", [f"Ys{n}", constant(f"P{n}", w["weight_hr"].T)], [f"y{n}"]),
            helper.make_node("MatMul", [f"Yh{n}", f"P{n}"], [f"h_n{n}"]),
        ]
        x = f"y{n}"
        finals_h.append(f"h_n{n}")
        finals_c.append(f"c_n{n}")
    nodes += [
        helper.make_node("Identity", [x], ["output"]),
        helper.make_node("Concat", finals_h, ["h_n"], axis=0),
        helper.make_node("Concat", finals_c, ["c_n"], axis=0),
    ]
    inputs = [("input", ["time", "batch", lstm.input_size]), ("h0", [layers, "batch", proj]),
              ("c0", [layers, "batch", hidden])]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "folded",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, dims) for name, dims in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in OUTPUTS],
        initializers,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=int, default=80)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--proj", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--shapes", default="1x100,16x100", help="BATCHxTIME,...")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    lstm = nn.LSTM(args.input, args.hidden, args.layers, proj_size=args.proj).eval()
    work = Path(tempfile.mkdtemp())
    scan = export(lstm, work / "export", ExportOptions(formats=("onnx",), verify=False))
    scan_path, folded_path = scan.output_dir / "model.onnx", work / "folded.onnx"
    folded_graph(lstm, folded_path)

    def onnxruntime(path: Path):
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return lambda feeds: session.run(None, feeds)

    def openvino(path: Path, precision: str):
        config = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": 1}
        request = ov.Core().compile_model(path, "CPU", config).create_infer_request()
        return lambda feeds: [np.array(v) for v in request.infer(feeds).values()]

    def eager(feeds):
        with torch.no_grad():
            x, h0, c0 = (torch.from_numpy(feeds[k]) for k in ("input", "h0", "c0"))
            y, (h_n, c_n) = lstm(x, (h0, c0))
        return [y.numpy(), h_n.numpy(), c_n.numpy()]

    runs = {"eager": eager}
    for name, path in (("scan", scan_path), ("folded", folded_path)):
        runs[f"onnxruntime {name}"] = onnxruntime(path)
        runs[f"openvino f32 {name}"] = openvino(path, "f32")
        runs[f"openvino bf16 {name}"] = openvino(path, "bf16")
    rng = np.random.default_rng(0)
    for shape in args.shapes.split(","):
        batch, steps = (int(v) for v in shape.split("x"))
        sizes = {"input": (steps, batch, args.input), "h0": (args.layers, batch, args.proj),
                 "c0": (args.layers, batch, args.hidden)}  # fmt: skip
        feeds = {k: rng.standard_normal(s).astype(np.float32) for k, s in sizes.items()}
        expected = eager(feeds)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                start = time.perf_counter()
                run(feeds)
                times[name].append(time.perf_counter() - start)
        base = float(np.median(times["eager"]))
        print(f"\nLSTM {args.hidden} proj {args.proj} x{args.layers}, batch {batch}, time {steps}:"
              f" eager {base * 1e3:.1f} ms (1 thread, median of {args.rounds} rounds)")  # fmt: skip
        print("| variant | × eager | max abs error (output, h_n, c_n) |\n|---|---|---|")
        for name, run in runs.items():
            error = max(float(np.abs(a - b).max()) for a, b in zip(run(feeds), expected))
            print(f"| {name} | {np.median(times[name]) / base:.2f} | {error:.1e} |")


if __name__ == "__main__":
    main()
