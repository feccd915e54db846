// node_worker.mjs: the "node" runtime's process (rnnx/runtimes/js_host.py starts it). Reads one
// JSON request a line on stdin, writes one JSON answer a line on stdout, in order.
// RNNX_NODE_MODULES names the node_modules folder holding onnxruntime-node.
import { createRequire } from "node:module";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { makeHost } from "./host.mjs";

const require = createRequire(join(process.env.RNNX_NODE_MODULES ?? ".", "rnnx-worker.cjs"));
const ort = require("onnxruntime-node");
const host = makeHost(ort);

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
let queue = Promise.resolve();
lines.on("line", (line) => {
  queue = queue.then(async () => {
    let answer;
    try {
      answer = await host.handle(JSON.parse(line));
    } catch (error) {
      answer = { id: null, error: `unreadable request: ${error.message}`, kind: "Error" };
    }
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  });
});
lines.on("close", () => queue.then(() => process.exit(0)));
process.stdout.write(`${JSON.stringify({ ready: true, versions: { node: process.versions.node, onnxruntime: ort.env?.versions?.node ?? "" } })}\n`);
