// rnnx.mjs: an exported rnnx model in JavaScript, mirroring the Python API (rnnx.load,
// session.run, session.stream().step(), reset, state save/restore).
//
// It runs on whichever onnxruntime it is handed: onnxruntime-web in a browser (the bundle
// `rnnx web` writes, and the "web" runtime), onnxruntime-node in Node.js (the "node" runtime).
// Inputs are checked against the model's signature (rnnx.json) before onnxruntime sees them,
// with the messages the Python Session gives; state inputs left out start at zero; a NaN in a
// sequence's input gives that sequence NaN outputs and states, as eager PyTorch does, although
// onnxruntime's CPU LSTM/GRU kernels hide it (the "propagate" NaN policy, rnnx's default).
//
//   import * as ort from "./ort/ort.wasm.min.mjs";
//   import { load } from "./rnnx.mjs";
//   const model = await load(ort, "./model");          // fetches model/rnnx.json and the model
//   const { output } = await model.run({ input: new ort.Tensor("float32", data, [1, 100, 40]) });
//   const stream = model.stream(1);
//   const { output: y } = await stream.step(chunk);    // states carried between chunks
//   const saved = stream.save(); stream.reset(); stream.restore(saved);

export class RnnxError extends Error {
  constructor(message) {
    super(message);
    this.name = "RnnxError";
  }
}

export class InputError extends RnnxError {
  constructor(message) {
    super(message);
    this.name = "InputError";
  }
}

export const TYPED_ARRAYS = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

export const NON_FINITE_POLICIES = ["propagate", "error", "ignore"];

// ---- loading -------------------------------------------------------------------------------

/** Open the model of a folder written by `rnnx web` (its rnnx.json names the file). */
export async function load(ort, base, options = {}) {
  const root = String(base).replace(/\/+$/, "");
  const response = await fetch(`${root}/rnnx.json`);
  if (!response.ok) throw new RnnxError(`cannot read ${root}/rnnx.json: HTTP ${response.status}`);
  const description = await response.json();
  const model = await fetch(`${root}/${description.file}`);
  if (!model.ok) throw new RnnxError(`cannot read ${root}/${description.file}: HTTP ${model.status}`);
  const bytes = new Uint8Array(await model.arrayBuffer());
  return create(ort, bytes, description.signature, {
    hidesNan: Boolean(description.hides_nan),
    ...options,
  });
}

/**
 * A Model from the ONNX model (bytes, or a path where onnxruntime reads files: Node) and its
 * signature (the `signature` of rnnx.json). options: threads, nonFinite ("propagate", "error",
 * "ignore"), hidesNan (whether the graph's kernels hide a NaN: rnnx.json's hides_nan).
 */
export async function create(ort, model, signature, options = {}) {
  const nonFinite = options.nonFinite ?? "propagate";
  if (!NON_FINITE_POLICIES.includes(nonFinite)) {
    throw new RnnxError(`nonFinite must be one of ${NON_FINITE_POLICIES.join(", ")}, got ${nonFinite}`);
  }
  // no executionProviders: onnxruntime-web's wasm build runs WASM, onnxruntime-node its CPU
  const sessionOptions = {};
  if (options.executionProviders) sessionOptions.executionProviders = options.executionProviders;
  if (options.threads) sessionOptions.intraOpNumThreads = options.threads;
  let session;
  try {
    session = await ort.InferenceSession.create(model, sessionOptions);
  } catch (error) {
    throw new RnnxError(`onnxruntime cannot load the model: ${firstLine(error)}`);
  }
  const instance = new Model(ort, session, signature, { nonFinite, hidesNan: Boolean(options.hidesNan) });
  instance.checkMatches();
  return instance;
}

// ---- the model -------------------------------------------------------------------------------

export class Model {
  constructor(ort, session, signature, options) {
    this.ort = ort;
    this.session = session;
    this.signature = signature;
    this.nonFinite = options.nonFinite;
    this.hidesNan = options.hidesNan;
    this.statePairs = signature.state_pairs ?? []; // [final-state output, initial-state input]
    this.stateInputs = this.statePairs.map(([, input]) => input);
    this.dataInputs = signature.inputs.filter((t) => !this.stateInputs.includes(t.name));
  }

  get inputNames() {
    return this.signature.inputs.map((t) => t.name);
  }

  get outputNames() {
    return this.signature.outputs.map((t) => t.name);
  }

  /** The graph's input and output names are those its signature lists. */
  checkMatches() {
    for (const [kind, graph, listed] of [
      ["inputs", this.session.inputNames, this.inputNames],
      ["outputs", this.session.outputNames, this.outputNames],
    ]) {
      if ([...graph].sort().join() !== [...listed].sort().join()) {
        throw new RnnxError(
          `the model does not match its signature: its ${kind} are ${graph.join(", ")}, ` +
            `the signature lists ${listed.join(", ")}`,
        );
      }
    }
  }

  /** Run on named inputs; states left out start at zero. Returns {name: ort.Tensor}. */
  async run(feeds) {
    return this.runChecked(this.checkFeeds(feeds));
  }

  /** A stateful stream over this model (many streams may share one model). */
  stream(batch = 1) {
    return new Stream(this, batch);
  }

  async release() {
    await this.session.release?.();
  }

  checkFeeds(feeds) {
    checkNames(Object.keys(feeds), this.inputNames, this.stateInputs);
    const tensors = {};
    for (const name of this.inputNames) {
      if (name in feeds) tensors[name] = this.tensor(name, feeds[name]);
    }
    const specs = this.signature.inputs.filter((t) => t.name in tensors);
    const sizes = validate(specs, tensors, {}, this.signature.axes ?? []);
    for (const name of this.stateInputs) {
      if (!(name in tensors)) tensors[name] = this.zeros(name, sizes.batch ?? 1);
    }
    return tensors;
  }

  tensor(name, value) {
    if (value === null || typeof value !== "object" || !("data" in value) || !("dims" in value)) {
      throw new InputError(`input '${name}' is not a tensor ({data: TypedArray, dims: [...]})`);
    }
    const dtype = dtypeOf(value);
    if (dtype === undefined) throw new InputError(`input '${name}' has data of an unknown type`);
    const expected = this.spec(name).dtype ?? "float32";
    if (dtype !== expected) {
      throw new InputError(`input '${name}' has dtype ${dtype}, expected ${expected}`);
    }
    const count = value.dims.reduce((a, b) => a * b, 1);
    if (value.data.length !== count) {
      throw new InputError(
        `input '${name}' has ${value.data.length} values for shape [${value.dims.join(", ")}]`,
      );
    }
    return value instanceof this.ort.Tensor ? value : new this.ort.Tensor(dtype, value.data, value.dims);
  }

  spec(name) {
    return this.signature.inputs.find((t) => t.name === name);
  }

  outputSpec(name) {
    return this.signature.outputs.find((t) => t.name === name);
  }

  zeros(name, batch) {
    const dims = this.spec(name).dims.map((d) => (d === "batch" ? batch : d));
    const count = dims.reduce((a, b) => a * b, 1);
    return new this.ort.Tensor("float32", new Float32Array(count), dims);
  }

  async runChecked(feeds) {
    let mask = null;
    if (this.nonFinite === "error") refuseNonFinite(feeds);
    else if (this.nonFinite === "propagate" && this.hidesNan) mask = this.nanSequences(feeds);
    let results;
    try {
      results = await this.session.run(feeds);
    } catch (error) {
      throw new InputError(`onnxruntime cannot run the model: ${firstLine(error)}`);
    }
    const outputs = {};
    for (const name of this.outputNames) outputs[name] = results[name];
    return mask === null ? outputs : this.poison(outputs, mask);
  }

  /** Which sequences of the batch hold a NaN in an input or state (null when none does). */
  nanSequences(feeds) {
    let mask = null;
    for (const [name, tensor] of Object.entries(feeds)) {
      if (tensor.type !== "float32" && tensor.type !== "float64") continue;
      if (!tensor.data.some(Number.isNaN)) continue;
      const axis = this.spec(name).dims.indexOf("batch");
      const hit = axis < 0 ? [true] : new Array(tensor.dims[axis]).fill(false);
      if (axis >= 0) forEachIndex(tensor.dims, axis, (flat, b) => {
        if (Number.isNaN(tensor.data[flat])) hit[b] = true;
      });
      mask = mask === null ? hit : either(mask, hit);
    }
    return mask;
  }

  /** NaN for the masked sequences, in every float output (states included). */
  poison(outputs, mask) {
    const result = {};
    for (const [name, tensor] of Object.entries(outputs)) {
      if (tensor.type !== "float32" && tensor.type !== "float64") {
        result[name] = tensor;
        continue;
      }
      const data = tensor.data.slice();
      const axis = this.outputSpec(name).dims.indexOf("batch");
      if (axis >= 0 && mask.length === tensor.dims[axis]) {
        forEachIndex(tensor.dims, axis, (flat, b) => {
          if (mask[b]) data[flat] = NaN;
        });
      } else if (mask.some(Boolean)) {
        data.fill(NaN);
      }
      result[name] = new this.ort.Tensor(tensor.type, data, tensor.dims);
    }
    return result;
  }
}

// ---- streaming -------------------------------------------------------------------------------

export class Stream {
  constructor(model, batch = 1) {
    if (model.statePairs.length === 0) {
      throw new RnnxError("this model has no state inputs (exported --stateless?); it cannot stream");
    }
    if (!model.signature.streamable) {
      throw new RnnxError(
        "this model cannot stream: it needs whole sequences (a bidirectional layer, a lengths " +
          "input, or a front end that sees several steps at once); run complete sequences with run",
      );
    }
    if (!Number.isInteger(batch) || batch < 1) {
      throw new InputError(`stream batch must be at least 1, got ${batch}`);
    }
    this.model = model;
    this.batch = batch;
    this.reset();
  }

  /** Back to zero states, as at the start of a new sequence. */
  reset() {
    this.states = {};
    for (const name of this.model.stateInputs) this.states[name] = this.model.zeros(name, this.batch);
  }

  /** A copy of the current states, by state input name (h0, c0). */
  get state() {
    const copy = {};
    for (const [name, t] of Object.entries(this.states)) {
      copy[name] = new this.model.ort.Tensor(t.type, t.data.slice(), t.dims);
    }
    return copy;
  }

  /** Resume from states (as returned by `state`). */
  setState(state) {
    checkNames(Object.keys(state), this.model.stateInputs);
    const tensors = {};
    for (const name of this.model.stateInputs) tensors[name] = this.model.tensor(name, state[name]);
    const specs = this.model.stateInputs.map((name) => this.model.spec(name));
    validate(specs, tensors, { batch: this.batch });
    this.states = tensors;
  }

  /** The states as a JSON string (to keep in localStorage, or send to a server). */
  save() {
    const saved = {};
    for (const [name, t] of Object.entries(this.states)) saved[name] = encodeTensor(t);
    return JSON.stringify({ rnnx_stream_state: 1, batch: this.batch, states: saved });
  }

  /** Resume from a string written by `save`. */
  restore(text) {
    let saved;
    try {
      saved = JSON.parse(text);
    } catch (error) {
      throw new RnnxError(`cannot read stream state: ${firstLine(error)}`);
    }
    if (!saved || saved.rnnx_stream_state !== 1 || typeof saved.states !== "object") {
      throw new RnnxError("cannot read stream state: not a state written by Stream.save");
    }
    const state = {};
    for (const [name, encoded] of Object.entries(saved.states)) state[name] = decodeTensor(encoded);
    this.setState(state);
  }

  /** Run one chunk (any number of time steps); returns the data outputs. */
  async step(chunk) {
    const specs = this.model.dataInputs;
    if (chunk !== null && typeof chunk === "object" && "data" in chunk && "dims" in chunk) {
      if (specs.length !== 1) {
        const names = specs.map((s) => s.name).join(", ");
        throw new InputError(`this model takes several inputs (${names}): pass a mapping`);
      }
      chunk = { [specs[0].name]: chunk };
    }
    checkNames(Object.keys(chunk), specs.map((s) => s.name));
    const feeds = {};
    for (const spec of specs) feeds[spec.name] = this.model.tensor(spec.name, chunk[spec.name]);
    validate(specs, feeds, { batch: this.batch }, this.model.signature.axes ?? []);
    const outputs = await this.model.runChecked({ ...feeds, ...this.states });
    const next = {};
    for (const [output, input] of this.model.statePairs) {
      next[input] = outputs[output];
      delete outputs[output];
    }
    this.states = next;
    return outputs;
  }
}

// ---- checks (the Python Signature's rules and messages) ---------------------------------------

export function checkNames(given, names, optional = []) {
  const unknown = given.filter((n) => !names.includes(n));
  if (unknown.length) {
    throw new InputError(`unknown input '${unknown[0]}'; the model's inputs are ${names.join(", ")}`);
  }
  const missing = names.filter((n) => !given.includes(n) && !optional.includes(n));
  if (missing.length) {
    throw new InputError(`missing input '${missing[0]}'; the model's inputs are ${names.join(", ")}`);
  }
}

/** Rank, fixed sizes, symbolic sizes that agree across inputs, and the axes' constraints. */
export function validate(specs, tensors, sizes = {}, axes = []) {
  const seen = {};
  for (const [dim, size] of Object.entries(sizes)) seen[dim] = [size, "the stream"];
  for (const spec of specs) {
    const dims = tensors[spec.name].dims;
    const expected = `${spec.name}[${spec.dims.join(", ")}]`;
    if (dims.length !== spec.dims.length) {
      throw new InputError(
        `input '${spec.name}' has shape [${dims.join(", ")}] (rank ${dims.length}), expected ${expected}`,
      );
    }
    spec.dims.forEach((dim, axis) => {
      const size = dims[axis];
      if (typeof dim === "number" && size !== dim) {
        throw new InputError(
          `input '${spec.name}' has size ${size} on axis ${axis}, expected ${dim} (shape ${expected})`,
        );
      }
      if (typeof dim === "string") {
        if (size < 1) throw new InputError(`input '${spec.name}' has an empty ${dim} axis`);
        if (!(dim in seen)) seen[dim] = [size, `'${spec.name}'`];
        if (seen[dim][0] !== size) {
          throw new InputError(
            `input '${spec.name}' has ${dim} size ${size} but ${seen[dim][1]} has ${dim} size ${seen[dim][0]}`,
          );
        }
      }
    });
  }
  for (const axis of axes) {
    const [size, where] = seen[axis.name] ?? [axis.min ?? 1, ""];
    const min = axis.min ?? 1;
    const multiple = axis.multiple ?? 1;
    if (size < min || (size - min) % multiple !== 0) {
      const steps = multiple > 1 ? ` + a multiple of ${multiple}` : "";
      throw new InputError(`input ${where} needs a ${axis.name} size of at least ${min}${steps}, got ${size}`);
    }
  }
  const result = {};
  for (const [dim, [size]] of Object.entries(seen)) result[dim] = size;
  return result;
}

/** Elementwise or, a one-element mask standing for the whole batch (numpy's broadcast). */
function either(a, b) {
  const at = (m, i) => m[m.length === 1 ? 0 : i];
  return Array.from({ length: Math.max(a.length, b.length) }, (_, i) => Boolean(at(a, i) || at(b, i)));
}

function refuseNonFinite(feeds) {
  for (const [name, tensor] of Object.entries(feeds)) {
    if (tensor.type !== "float32" && tensor.type !== "float64") continue;
    if (!tensor.data.every(Number.isFinite)) {
      throw new InputError(`input '${name}' holds NaN or infinity (non_finite='error')`);
    }
  }
}

function dtypeOf(value) {
  if (typeof value.type === "string") return value.type;
  for (const [name, kind] of Object.entries(TYPED_ARRAYS)) {
    if (value.data instanceof kind) return name;
  }
  return undefined;
}

/** Calls fn(flat index, index along `axis`) for every element of a row-major array. */
function forEachIndex(dims, axis, fn) {
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const size = dims[axis];
  const count = dims.reduce((a, b) => a * b, 1);
  for (let flat = 0; flat < count; flat++) fn(flat, Math.floor(flat / inner) % size);
}

function firstLine(error) {
  return (String(error?.message ?? error).trim().split("\n")[0] || "error").slice(0, 300);
}

// ---- tensors as JSON (base64 of the little-endian bytes): the runtimes' wire format ----------

export function encodeTensor(tensor) {
  const data = tensor.data;
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { dtype: tensor.type ?? dtypeOf(tensor), dims: Array.from(tensor.dims), data: toBase64(bytes) };
}

export function decodeTensor(encoded) {
  const Kind = TYPED_ARRAYS[encoded.dtype];
  if (Kind === undefined) throw new InputError(`unknown dtype ${encoded.dtype}`);
  const bytes = fromBase64(encoded.data);
  const data = new Kind(bytes.buffer, bytes.byteOffset, bytes.byteLength / Kind.BYTES_PER_ELEMENT);
  return { type: encoded.dtype, data, dims: encoded.dims };
}

function toBase64(bytes) {
  if (typeof Buffer !== "undefined") return Buffer.from(bytes).toString("base64");
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function fromBase64(text) {
  if (typeof Buffer !== "undefined") {
    const buffer = Buffer.from(text, "base64");
    return new Uint8Array(buffer).slice(); // a copy: aligned, its own ArrayBuffer
  }
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
