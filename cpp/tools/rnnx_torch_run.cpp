// rnnx-torch-run: run an rnnx TorchScript export with libtorch (see runner.h).
#include "rnnx/torch_model.h"
#include "runner.h"

int main(int argc, char** argv) {
  rnnx::tools::Backend backend;
  backend.program = "rnnx-torch-run";
  backend.format = "torchscript";
  backend.summary = "Run an rnnx TorchScript export with libtorch.";
  backend.torch_options = true;
  backend.open = [](const std::string& path, const rnnx::tools::RunnerOptions& options) {
    rnnx::TorchOptions torch;
    torch.device = options.device;
    torch.threads = options.threads;
    torch.onednn = options.onednn;
    return std::unique_ptr<rnnx::Model>(new rnnx::TorchModel(path, torch));
  };
  return rnnx::tools::runner_main(argc, argv, backend);
}
