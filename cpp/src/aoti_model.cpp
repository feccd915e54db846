#include "rnnx/aoti_model.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/version.h>

#include <filesystem>
#include <map>

#include "rnnx/error.h"
#include "torch_common.h"

namespace rnnx {

using torch_common::first_line;

struct AotiModel::Impl {
  std::string path;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader;
  Signature signature;
  torch_common::Forward forward_function = [this](auto& inputs, auto& outputs) {
    forward(inputs, outputs);
  };

  static std::unique_ptr<Impl> load(const std::string& path, const AotiOptions& options);

  void forward(std::vector<at::Tensor>& inputs, std::vector<at::Tensor>& outputs) {
    try {
      outputs = loader->run(inputs);
    } catch (const c10::Error& error) {
      throw Error("AOTInductor failed running '" + path +
                  "': " + first_line(error.what_without_backtrace()));
    } catch (const std::exception& error) {
      throw Error("AOTInductor failed running '" + path + "': " + first_line(error.what()));
    }
    if (outputs.size() != signature.outputs().size()) {
      throw Error("'" + path + "' returned " + std::to_string(outputs.size()) +
                  " tensors; its rnnx metadata lists " +
                  std::to_string(signature.outputs().size()));
    }
  }
};

std::unique_ptr<AotiModel::Impl> AotiModel::Impl::load(const std::string& path,
                                                       const AotiOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ignored;
  if (!fs::exists(path, ignored)) throw Error("model file '" + path + "' does not exist");
  if (fs::is_directory(path, ignored)) {
    throw Error("'" + path +
                "' is a directory; pass the AOTInductor package "
                "(model.pt2 in an rnnx export directory)");
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  if (options.threads > 0) at::set_num_threads(options.threads);
  if (!options.onednn) at::globalContext().setUserEnabledMkldnn(false);
  std::unordered_map<std::string, std::string> metadata;
  try {
    impl->loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(path);
    metadata = impl->loader->get_metadata();
  } catch (const c10::Error& error) {
    throw Error("libtorch cannot load the AOTInductor package '" + path +
                "': " + first_line(error.what_without_backtrace()));
  } catch (const std::exception& error) {
    throw Error("libtorch cannot load the AOTInductor package '" + path +
                "': " + first_line(error.what()));
  }
  // AOTInductor adds keys of its own (AOTI_PLATFORM, ...); the reader looks at rnnx.* only.
  impl->signature = Signature::from_metadata(
      std::map<std::string, std::string>(metadata.begin(), metadata.end()), path);
  require_float32(impl->signature, path);
  return impl;
}

AotiModel::AotiModel(const std::string& path, const AotiOptions& options)
    : AotiModel(path, Impl::load(path, options)) {}

AotiModel::AotiModel(const std::string& path, std::unique_ptr<Impl> impl)
    : Model(path, impl->signature), impl_(std::move(impl)) {}

AotiModel::~AotiModel() = default;

std::string AotiModel::backend() const {
  return "AOTInductor, libtorch " + std::to_string(TORCH_VERSION_MAJOR) + "." +
         std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH) +
         " (cpu)";
}

TensorMap AotiModel::run_checked(const TensorMap& feeds) {
  return torch_common::run(impl_->forward_function, signature(), feeds, at::kCPU);
}

std::unique_ptr<Stream> AotiModel::make_stream(int64_t batch) {
  return torch_common::make_stream(impl_->forward_function, signature(), batch, at::kCPU);
}

}  // namespace rnnx
