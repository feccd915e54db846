// rnnx-ort-run: run an rnnx ONNX export with ONNX Runtime (see runner.h).
#include "rnnx/ort_model.h"
#include "runner.h"

int main(int argc, char** argv) {
  rnnx::tools::Backend backend;
  backend.program = "rnnx-ort-run";
  backend.format = "onnx";
  backend.tuned_runtime = "onnxruntime";
  backend.tuned_formats = {"onnx", "onnx-int8", "onnx-folded"};
  backend.summary = "Run an rnnx ONNX export with ONNX Runtime (CPU).";
  backend.open = [](const std::string& path, const rnnx::tools::RunnerOptions& options) {
    rnnx::OrtOptions ort;
    ort.intra_op_threads = options.threads;
    return std::unique_ptr<rnnx::Model>(new rnnx::OrtModel(path, ort));
  };
  return rnnx::tools::runner_main(argc, argv, backend);
}
