// rnnx-aoti-run: run an rnnx pt2 export (AOTInductor package) with libtorch (see runner.h).
#include "rnnx/aoti_model.h"
#include "runner.h"

int main(int argc, char** argv) {
  rnnx::tools::Backend backend;
  backend.program = "rnnx-aoti-run";
  backend.format = "pt2";
  backend.summary = "Run an rnnx pt2 export (AOTInductor package) with libtorch.";
  backend.onednn_option = true;
  backend.open = [](const std::string& path, const rnnx::tools::RunnerOptions& options) {
    rnnx::AotiOptions aoti;
    aoti.threads = options.threads;
    aoti.onednn = options.onednn;
    return std::unique_ptr<rnnx::Model>(new rnnx::AotiModel(path, aoti));
  };
  return rnnx::tools::runner_main(argc, argv, backend);
}
