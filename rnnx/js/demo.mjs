// The demo page of `rnnx web`: a generated signal, streamed through the model chunk by chunk
// (rnnx.mjs's Stream), plotted. What it computed is left in window.demo (the tests compare it
// with eager PyTorch).
import * as ort from "./ort/ort.wasm.min.mjs";
import { encodeTensor, load } from "./rnnx.mjs";

const STEPS = 200;
const CHUNK = 10;
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"];
ort.env.wasm.numThreads = 1; // more need cross-origin isolation headers from the server

const status = document.querySelector("#status");

/** A deterministic signal for one input: sines per feature (token ids for integer inputs). */
function signal(spec, steps) {
  const dims = spec.dims.map((d) => (d === "time" ? steps : typeof d === "number" ? d : 1));
  const timeAxis = spec.dims.indexOf("time");
  const inner = dims.slice(timeAxis + 1).reduce((a, b) => a * b, 1);
  const count = dims.reduce((a, b) => a * b, 1);
  const integer = spec.dtype !== "float32";
  const data = integer ? new BigInt64Array(count) : new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const t = Math.floor(i / inner) % steps;
    const f = (i % inner) + Math.floor(i / (inner * steps)) * inner;
    if (integer) data[i] = BigInt((t * 7 + f) % (spec.high ?? 2));
    else data[i] = 0.8 * Math.sin((2 * Math.PI * t * (f + 1)) / 50) + 0.2 * Math.cos(0.37 * t + f);
  }
  if (integer && spec.dtype === "int32") return new ort.Tensor("int32", Int32Array.from(data, Number), dims);
  return new ort.Tensor(spec.dtype ?? "float32", data, dims);
}

/** Steps [start, stop) of a tensor along `axis`. */
function slice(tensor, axis, start, stop) {
  const dims = tensor.dims.slice();
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const Kind = tensor.data.constructor;
  const data = new Kind(outer * (stop - start) * inner);
  for (let o = 0; o < outer; o++) {
    const from = (o * dims[axis] + start) * inner;
    data.set(tensor.data.subarray(from, from + (stop - start) * inner), o * (stop - start) * inner);
  }
  dims[axis] = stop - start;
  return new ort.Tensor(tensor.type, data, dims);
}

/** Tensors joined along `axis`. */
function concat(tensors, axis) {
  const dims = tensors[0].dims.slice();
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  dims[axis] = tensors.reduce((n, t) => n + t.dims[axis], 0);
  const data = new tensors[0].data.constructor(outer * dims[axis] * inner);
  let offset = 0;
  for (let o = 0; o < outer; o++) {
    for (const t of tensors) {
      const size = t.dims[axis] * inner;
      data.set(t.data.subarray(o * size, (o + 1) * size), offset);
      offset += size;
    }
  }
  return new ort.Tensor(tensors[0].type, data, dims);
}

/** Up to four channels of a (batch 1) tensor over time. */
function plot(canvas, tensor, timeAxis) {
  const context = canvas.getContext("2d");
  const steps = tensor.dims[timeAxis];
  const channels = tensor.data.length / steps;
  const values = Array.from(tensor.data, Number);
  const high = Math.max(1e-6, ...values.map(Math.abs));
  context.clearRect(0, 0, canvas.width, canvas.height);
  for (let c = 0; c < Math.min(4, channels); c++) {
    context.strokeStyle = COLOURS[c];
    context.beginPath();
    for (let t = 0; t < steps; t++) {
      const x = (t / (steps - 1)) * canvas.width;
      const y = canvas.height / 2 - (values[t * channels + c] / high) * (canvas.height / 2 - 4);
      if (t === 0) context.moveTo(x, y);
      else context.lineTo(x, y);
    }
    context.stroke();
  }
}

async function main() {
  const model = await load(ort, "./model");
  const signature = model.signature;
  document.querySelector("#model").textContent =
    `${signature.inputs.map((t) => `${t.name}[${t.dims.join(", ")}]`).join(", ")} → ` +
    signature.outputs.map((t) => t.name).join(", ");
  const inputs = Object.fromEntries(model.dataInputs.map((s) => [s.name, signal(s, STEPS)]));
  const timed = model.dataInputs.every((s) => s.dims.includes("time"));
  const streaming = signature.streamable && timed;
  const outputs = {};
  const start = performance.now();
  let calls = 1;
  if (streaming) {
    const stream = model.stream(1);
    const pieces = [];
    for (let from = 0; from < STEPS; from += CHUNK) {
      const chunk = Object.fromEntries(model.dataInputs.map((s) =>
        [s.name, slice(inputs[s.name], s.dims.indexOf("time"), from, Math.min(from + CHUNK, STEPS))]));
      pieces.push(await stream.step(chunk));
      if (from === STEPS / 2) {
        // the state survives a save and restore (a page could keep it in localStorage)
        const saved = stream.save();
        stream.reset();
        stream.restore(saved);
      }
    }
    calls = pieces.length;
    for (const name of Object.keys(pieces[0])) {
      const axis = model.outputSpec(name).dims.indexOf("time");
      outputs[name] = axis < 0 ? pieces.at(-1)[name] : concat(pieces.map((p) => p[name]), axis);
    }
  } else {
    const all = await model.run(inputs);
    const states = new Set(model.statePairs.map(([output]) => output));
    for (const [name, tensor] of Object.entries(all)) if (!states.has(name)) outputs[name] = tensor;
  }
  const ms = performance.now() - start;
  const first = model.dataInputs[0];
  plot(document.querySelector("#input"), inputs[first.name], first.dims.indexOf("time"));
  const shown = signature.outputs.find((t) => t.name in outputs && t.dims.includes("time"));
  if (shown) plot(document.querySelector("#output"), outputs[shown.name], shown.dims.indexOf("time"));
  status.textContent = streaming
    ? `${STEPS} steps streamed in ${calls} chunks of ${CHUNK}: ${(ms / calls).toFixed(3)} ms a chunk ` +
      `(onnxruntime-web ${ort.env.versions?.web ?? ""}, WASM, 1 thread)`
    : `${STEPS} steps in one call (this model does not stream): ${ms.toFixed(3)} ms`;
  window.demo = {
    inputs: Object.fromEntries(Object.entries(inputs).map(([n, t]) => [n, encodeTensor(t)])),
    outputs: Object.fromEntries(Object.entries(outputs).map(([n, t]) => [n, encodeTensor(t)])),
    streaming, chunk: CHUNK, steps: STEPS, calls, ms,
  };
}

main().catch((error) => {
  status.textContent = `error: ${error.message}`;
  window.demoError = String(error.message ?? error);
});
