#include "rnnx/torch_model.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/version.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "rnnx/error.h"
#include "torch_common.h"

namespace rnnx {

namespace {

using torch_common::first_line;

// The TorchScript extra file rnnx writes its metadata to (artifact contract v1), and the one
// rnnx wrote before it (recognised only to ask for a re-export).
const char kMetadataFile[] = "rnnx_metadata.json";
const char kOldMetadataFile[] = "rnnx.json";

torch::Device parse_device(const std::string& name) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    throw Error("device '" + name + "' is not a torch device (expected cpu, cuda or cuda:N)");
  }
  if (device.is_cuda() && !torch::cuda::is_available()) {
    throw Error("device '" + name + "' requested but this libtorch sees no CUDA device");
  }
  if (!device.is_cpu() && !device.is_cuda()) {
    throw Error("device '" + name + "' is not supported (expected cpu, cuda or cuda:N)");
  }
  return device;
}

}  // namespace

struct TorchModel::Impl {
  std::string path;
  torch::jit::Module module;
  torch::Device device{torch::kCPU};
  Signature signature;
  torch_common::Forward forward_function = [this](auto& inputs, auto& outputs) {
    forward(inputs, outputs);
  };

  static std::unique_ptr<Impl> load(const std::string& path, const TorchOptions& options);

  // Runs forward on inputs in signature order; returns the outputs in signature order.
  void forward(std::vector<torch::Tensor>& tensors, std::vector<torch::Tensor>& outputs) {
    std::vector<c10::IValue> inputs(tensors.begin(), tensors.end());
    c10::IValue result;
    try {
      result = module.forward(inputs);
    } catch (const c10::Error& error) {
      throw Error("libtorch failed running '" + path +
                  "': " + first_line(error.what_without_backtrace()));
    }
    outputs.clear();
    if (result.isTuple()) {
      for (const c10::IValue& item : result.toTupleRef().elements())
        outputs.push_back(item.toTensor());
    } else if (result.isTensor()) {
      outputs.push_back(result.toTensor());
    }
    if (outputs.size() != signature.outputs().size()) {
      throw Error("'" + path + "' returned " + std::to_string(outputs.size()) +
                  " tensors; its rnnx metadata lists " +
                  std::to_string(signature.outputs().size()));
    }
  }
};

std::unique_ptr<TorchModel::Impl> TorchModel::Impl::load(const std::string& path,
                                                         const TorchOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ignored;
  if (!fs::exists(path, ignored)) throw Error("model file '" + path + "' does not exist");
  if (fs::is_directory(path, ignored)) {
    throw Error("'" + path +
                "' is a directory; pass the TorchScript file "
                "(model.torchscript.pt in an rnnx export directory)");
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->device = parse_device(options.device);
  if (options.threads > 0) at::set_num_threads(options.threads);
  if (!options.onednn) at::globalContext().setUserEnabledMkldnn(false);
  torch::jit::ExtraFilesMap extra{{kMetadataFile, ""}, {kOldMetadataFile, ""}};
  try {
    impl->module = torch::jit::load(path, impl->device, extra);
  } catch (const c10::Error& error) {
    throw Error("libtorch cannot load '" + path +
                "': " + first_line(error.what_without_backtrace()));
  } catch (const std::exception& error) {
    throw Error("libtorch cannot load '" + path + "': " + first_line(error.what()));
  }
  impl->module.eval();
  const std::string& text = extra[kMetadataFile];
  if (text.empty() && !extra[kOldMetadataFile].empty()) {
    throw Error("'" + path + "' was written by an older rnnx (" + kOldMetadataFile +
                " extra file, no " + kMetadataFile + "): re-export it with this rnnx");
  }
  if (text.empty()) {
    throw Error("'" + path + "' has no rnnx metadata (no " + kMetadataFile +
                " extra file): export it with rnnx (rnnx export / rnnx.export)");
  }
  // A JSON object of metadata key -> string value: the same pairs as ONNX metadata_props.
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) {
    throw Error("'" + path + "': its " + kMetadataFile + " extra file is not a JSON object");
  }
  std::map<std::string, std::string> metadata;
  for (const auto& [key, value] : json.items()) {
    if (!value.is_string()) {
      throw Error("'" + path + "': " + kMetadataFile + " key '" + key + "' is not a string");
    }
    metadata[key] = value.get<std::string>();
  }
  impl->signature = Signature::from_metadata(metadata, path);
  require_float32(impl->signature, path);
  return impl;
}

TorchModel::TorchModel(const std::string& path, const TorchOptions& options)
    : TorchModel(path, Impl::load(path, options)) {}

TorchModel::TorchModel(const std::string& path, std::unique_ptr<Impl> impl)
    : Model(path, impl->signature), impl_(std::move(impl)) {}

TorchModel::~TorchModel() = default;

std::string TorchModel::backend() const {
  return "libtorch " + std::to_string(TORCH_VERSION_MAJOR) + "." +
         std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH) + " (" +
         impl_->device.str() + ")";
}

TensorMap TorchModel::run_checked(const TensorMap& feeds) {
  return torch_common::run(impl_->forward_function, signature(), feeds, impl_->device);
}

std::unique_ptr<Stream> TorchModel::make_stream(int64_t batch) {
  return torch_common::make_stream(impl_->forward_function, signature(), batch, impl_->device);
}

}  // namespace rnnx
