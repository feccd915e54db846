// host.mjs: the requests the Python "web" and "node" runtimes send (rnnx/runtimes/js_host.py),
// answered with rnnx.mjs. One protocol for both: JSON objects in and out, tensors as base64
// (encodeTensor); the Node worker reads them as lines on stdin, the browser page is handed
// them by Playwright. Each answer carries the milliseconds the call spent in onnxruntime's
// run (and rnnx.mjs's checks), without the transport, for `rnnx bench`.
import { InputError, create, decodeTensor, encodeTensor } from "./rnnx.mjs";

export function makeHost(ort) {
  const models = new Map();
  const streams = new Map();
  let next = 1;

  const decodeAll = (encoded) =>
    Object.fromEntries(Object.entries(encoded).map(([name, t]) => [name, decodeTensor(t)]));
  const encodeAll = (tensors) =>
    Object.fromEntries(Object.entries(tensors).map(([name, t]) => [name, encodeTensor(t)]));
  const find = (map, key, what) => {
    if (!map.has(key)) throw new InputError(`no ${what} ${key} (released?)`);
    return map.get(key);
  };

  const operations = {
    async load({ model, signature, options }) {
      const handle = next++;
      models.set(handle, await create(ort, model, signature, options ?? {}));
      return { handle };
    },
    async run({ handle, feeds }) {
      const model = find(models, handle, "model");
      const start = performance.now();
      const outputs = await model.run(decodeAll(feeds));
      return { outputs: encodeAll(outputs), ms: performance.now() - start };
    },
    async stream({ handle, batch, state }) {
      const stream = find(models, handle, "model").stream(batch);
      if (state) stream.setState(decodeAll(state));
      const id = next++;
      streams.set(id, stream);
      return { stream: id };
    },
    async step({ stream, chunk }) {
      const found = find(streams, stream, "stream");
      const start = performance.now();
      const outputs = await found.step(decodeAll(chunk));
      return { outputs: encodeAll(outputs), ms: performance.now() - start };
    },
    async state({ stream }) {
      return { state: encodeAll(find(streams, stream, "stream").state) };
    },
    async release({ models: handles = [], streams: ids = [] }) {
      for (const id of ids) streams.delete(id);
      for (const handle of handles) {
        await models.get(handle)?.release();
        models.delete(handle);
      }
      return {};
    },
  };

  return {
    async handle(request) {
      const operation = operations[request.op];
      try {
        if (!operation) throw new Error(`unknown operation ${request.op}`);
        return { id: request.id, ...(await operation(request)) };
      } catch (error) {
        const kind = error?.name === "InputError" || error?.name === "RnnxError" ? error.name : "Error";
        return { id: request.id, error: String(error?.message ?? error), kind };
      }
    },
  };
}
