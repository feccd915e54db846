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

namespace rnnx {

namespace {

// The TorchScript extra file rnnx writes its metadata to (artifact contract v1), and the one
// rnnx wrote before it (recognised only to ask for a re-export).
const char kMetadataFile[] = "rnnx_metadata.json";
const char kOldMetadataFile[] = "rnnx.json";

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

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

torch::Tensor to_torch(const Tensor& tensor, const torch::Device& device) {
  // from_blob wraps without copying; the module only reads its inputs.
  torch::Tensor wrapped = torch::from_blob(const_cast<float*>(tensor.data.data()), tensor.shape,
                                           torch::TensorOptions().dtype(torch::kFloat32));
  return wrapped.to(device);
}

// Copies into `out`, keeping its allocation when the size is unchanged.
void copy_out(const torch::Tensor& tensor, Tensor& out) {
  torch::Tensor host = tensor.to(torch::kCPU, torch::kFloat32).contiguous();
  auto sizes = host.sizes();
  if (!std::equal(sizes.begin(), sizes.end(), out.shape.begin(), out.shape.end())) {
    out.shape.assign(sizes.begin(), sizes.end());
  }
  out.data.resize(static_cast<size_t>(host.numel()));
  std::memcpy(out.data.data(), host.const_data_ptr<float>(), out.data.size() * sizeof(float));
}

}  // namespace

struct TorchModel::Impl {
  std::string path;
  torch::jit::Module module;
  torch::Device device{torch::kCPU};
  Signature signature;

  static std::unique_ptr<Impl> load(const std::string& path, const TorchOptions& options);

  // Runs forward on inputs in signature order; returns the outputs in signature order.
  void forward(std::vector<c10::IValue>& inputs, std::vector<torch::Tensor>& outputs) {
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

// States stay torch tensors on the model's device between steps; only the chunk goes in and the
// data outputs come out. The input/output vectors are reused across steps.
class TorchStream : public Stream {
 public:
  TorchStream(TorchModel::Impl& model, const Signature& signature, int64_t batch)
      : Stream(signature, batch), model_(model) {
    const auto& data = signature.data_inputs();
    const auto& states = signature.state_inputs();
    for (const TensorSpec& spec : signature.inputs()) {
      int index = -1;
      for (size_t i = 0; i < data.size(); ++i) {
        if (data[i]->name == spec.name) index = static_cast<int>(i);
      }
      for (size_t i = 0; index < 0 && i < states.size(); ++i) {
        if (states[i]->name == spec.name) index = static_cast<int>(data.size() + i);
      }
      input_slots_.push_back(index);
    }
    for (const TensorSpec& spec : signature.outputs()) {
      int state = -1;
      for (size_t i = 0; i < signature.state_pairs().size(); ++i) {
        if (signature.state_pairs()[i].output == spec.name) state = static_cast<int>(i);
      }
      output_states_.push_back(state);
      output_tensors_.push_back(state < 0 ? &outputs_.at(spec.name) : nullptr);
    }
    zero_state();
  }

 protected:
  void step_checked(const std::vector<const Tensor*>& chunk, TensorMap&) override {
    c10::InferenceMode guard;
    const size_t data_count = chunk.size();
    inputs_.clear();
    for (int slot : input_slots_) {
      if (static_cast<size_t>(slot) < data_count) {
        inputs_.emplace_back(to_torch(*chunk[slot], model_.device));
      } else {
        inputs_.emplace_back(states_[slot - data_count]);
      }
    }
    model_.forward(inputs_, results_);
    for (size_t i = 0; i < results_.size(); ++i) {
      if (output_states_[i] >= 0) {
        states_[output_states_[i]] = results_[i];
      } else {
        copy_out(results_[i], *output_tensors_[i]);
      }
    }
    inputs_.clear();  // drop references to the caller's chunk
  }

  void zero_state() override {
    c10::InferenceMode guard;
    states_.clear();
    for (const TensorSpec* spec : signature().state_inputs()) {
      states_.push_back(torch::zeros(
          state_shape(*spec), torch::TensorOptions().dtype(torch::kFloat32).device(model_.device)));
    }
  }

  void read_state(std::vector<Tensor*>& out) const override {
    for (size_t i = 0; i < out.size(); ++i)
      copy_out(states_[i], *out[i]);
  }

  void write_state(const std::vector<const Tensor*>& state) override {
    c10::InferenceMode guard;
    for (size_t i = 0; i < state.size(); ++i) {
      states_[i] = to_torch(*state[i], model_.device).clone();
    }
  }

 private:
  TorchModel::Impl& model_;
  std::vector<int> input_slots_;         // per signature input: chunk index, or data count + state
  std::vector<int> output_states_;       // per signature output: state index, or -1 for data
  std::vector<Tensor*> output_tensors_;  // per signature output: its buffer in outputs_ (data)
  std::vector<torch::Tensor> states_;    // in signature().state_inputs() order
  std::vector<c10::IValue> inputs_;
  std::vector<torch::Tensor> results_;
};

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
  c10::InferenceMode guard;
  std::vector<c10::IValue> inputs;
  for (const TensorSpec& spec : signature().inputs()) {
    inputs.emplace_back(to_torch(feeds.at(spec.name), impl_->device));
  }
  std::vector<torch::Tensor> outputs;
  impl_->forward(inputs, outputs);
  TensorMap result;
  for (size_t i = 0; i < outputs.size(); ++i)
    copy_out(outputs[i], result[signature().outputs()[i].name]);
  return result;
}

std::unique_ptr<Stream> TorchModel::make_stream(int64_t batch) {
  return std::make_unique<TorchStream>(*impl_, signature(), batch);
}

}  // namespace rnnx
