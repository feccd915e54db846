#include "rnnx/ort_model.h"

#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "rnnx/error.h"

namespace rnnx {

namespace {

std::string first_line(const char* message) {
  std::string text(message);
  return text.substr(0, text.find('\n'));
}

// One environment per process, as ONNX Runtime recommends; sessions share its thread pools.
Ort::Env& environment() {
  static Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "rnnx");
  return env;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names)
    out += (out.empty() ? "" : ", ") + name;
  return out;
}

Ort::Value wrap(const Ort::MemoryInfo& memory, Tensor& tensor) {
  return Ort::Value::CreateTensor<float>(memory, tensor.data.data(), tensor.data.size(),
                                         tensor.shape.data(), tensor.shape.size());
}

}  // namespace

struct OrtModel::Impl {
  std::string path;
  Ort::Session session{nullptr};
  Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  Ort::RunOptions run_options;
  Signature signature;
  // Names in the signature's order, cached once at load: Run takes C strings.
  std::vector<const char*> input_names, output_names;

  static std::unique_ptr<Impl> load(const std::string& path, const OrtOptions& options);
};

std::unique_ptr<OrtModel::Impl> OrtModel::Impl::load(const std::string& path,
                                                     const OrtOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ignored;
  if (!fs::exists(path, ignored)) throw Error("model file '" + path + "' does not exist");
  if (fs::is_directory(path, ignored)) {
    throw Error("'" + path +
                "' is a directory; pass the .onnx file (model.onnx in an rnnx "
                "export directory)");
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  std::map<std::string, std::string> metadata;
  std::vector<std::string> graph_inputs;
  std::vector<ONNXTensorElementDataType> graph_types;
  try {
    Ort::SessionOptions session_options;
    if (options.intra_op_threads > 0)
      session_options.SetIntraOpNumThreads(options.intra_op_threads);
    if (options.inter_op_threads > 0)
      session_options.SetInterOpNumThreads(options.inter_op_threads);
    session_options.SetGraphOptimizationLevel(options.optimize
                                                  ? GraphOptimizationLevel::ORT_ENABLE_ALL
                                                  : GraphOptimizationLevel::ORT_DISABLE_ALL);
    impl->session = Ort::Session(environment(), fs::path(path).c_str(), session_options);

    Ort::AllocatorWithDefaultOptions allocator;
    Ort::ModelMetadata model_metadata = impl->session.GetModelMetadata();
    for (const auto& key : model_metadata.GetCustomMetadataMapKeysAllocated(allocator)) {
      auto value = model_metadata.LookupCustomMetadataMapAllocated(key.get(), allocator);
      metadata[key.get()] = value ? value.get() : "";
    }
    for (size_t i = 0; i < impl->session.GetInputCount(); ++i) {
      graph_inputs.push_back(impl->session.GetInputNameAllocated(i, allocator).get());
      graph_types.push_back(
          impl->session.GetInputTypeInfo(i).GetTensorTypeAndShapeInfo().GetElementType());
    }
  } catch (const Ort::Exception& error) {
    throw Error("onnxruntime cannot load '" + path + "': " + first_line(error.what()));
  }
  impl->signature = Signature::from_metadata(metadata, path);
  require_float32(impl->signature, path);
  for (size_t i = 0; i < graph_inputs.size(); ++i) {
    if (graph_types[i] != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
      throw Error("'" + path + "': graph input '" + graph_inputs[i] +
                  "' is not float32; rnnx C++ runs float32 models");
    }
  }

  std::vector<std::string> declared;
  for (const TensorSpec& spec : impl->signature.inputs())
    declared.push_back(spec.name);
  std::vector<std::string> sorted_graph = graph_inputs, sorted_declared = declared;
  std::sort(sorted_graph.begin(), sorted_graph.end());
  std::sort(sorted_declared.begin(), sorted_declared.end());
  if (sorted_graph != sorted_declared) {
    throw Error("'" + path + "': the graph's inputs (" + joined(graph_inputs) +
                ") differ from its rnnx metadata (" + joined(declared) + ")");
  }
  // The signature owns the strings; its specs never move after this point (impl is on the heap).
  for (const TensorSpec& spec : impl->signature.inputs())
    impl->input_names.push_back(spec.name.c_str());
  for (const TensorSpec& spec : impl->signature.outputs())
    impl->output_names.push_back(spec.name.c_str());
  return impl;
}

// Streams keep their states in two pre-allocated sets of buffers wrapped as Ort::Values once:
// each step reads one set and ONNX Runtime writes the final states straight into the other,
// then the roles swap. No state is copied and nothing is allocated per step, except when the
// chunk length changes (the chunk and output buffers are then re-wrapped).
class OrtStream : public Stream {
 public:
  OrtStream(OrtModel::Impl& model, const Signature& signature, int64_t batch)
      : Stream(signature, batch), model_(model) {
    for (const TensorSpec* spec : signature.data_inputs())
      input_names_.push_back(spec->name.c_str());
    for (const TensorSpec* spec : signature.state_inputs())
      input_names_.push_back(spec->name.c_str());
    for (const TensorSpec* spec : signature.data_outputs()) {
      output_names_.push_back(spec->name.c_str());
      data_outputs_.push_back(&outputs_.at(spec->name));
    }
    for (const StatePair& pair : signature.state_pairs())
      output_names_.push_back(pair.output.c_str());
    for (auto& states : states_) {
      for (const TensorSpec* spec : signature.state_inputs())
        states.emplace_back(state_shape(*spec));
    }
    chunk_.resize(signature.data_inputs().size());
    time_axis_ = signature.data_inputs().front()->axis(Dim::Kind::Time);
  }

 protected:
  void step_checked(const std::vector<const Tensor*>& chunk, TensorMap&) override {
    const int64_t time = time_axis_ >= 0 ? chunk.front()->shape[time_axis_] : 1;
    if (time != bound_time_) bind(time);
    for (size_t i = 0; i < chunk.size(); ++i) {
      std::copy(chunk[i]->data.begin(), chunk[i]->data.end(), chunk_[i].data.begin());
    }
    auto& in = inputs_[current_];
    auto& out = outputs_bound_[current_];
    try {
      model_.session.Run(model_.run_options, input_names_.data(), in.data(), in.size(),
                         output_names_.data(), out.data(), out.size());
    } catch (const Ort::Exception& error) {
      throw Error("onnxruntime failed running '" + model_.path + "': " + first_line(error.what()));
    }
    current_ ^= 1;
  }

  void zero_state() override {
    for (Tensor& state : states_[current_])
      std::fill(state.data.begin(), state.data.end(), 0.0f);
  }

  void read_state(std::vector<Tensor*>& out) const override {
    for (size_t i = 0; i < out.size(); ++i)
      *out[i] = states_[current_][i];
  }

  void write_state(const std::vector<const Tensor*>& state) override {
    for (size_t i = 0; i < state.size(); ++i) {
      std::copy(state[i]->data.begin(), state[i]->data.end(), states_[current_][i].data.begin());
    }
  }

 private:
  // Sizes the chunk and output buffers for `time` steps and wraps every buffer as an Ort::Value.
  void bind(int64_t time) {
    const Signature& sig = signature();
    for (size_t i = 0; i < chunk_.size(); ++i)
      chunk_[i].reshape(sig.data_inputs()[i]->shape_for(batch(), time));
    for (size_t i = 0; i < data_outputs_.size(); ++i) {
      data_outputs_[i]->reshape(sig.data_outputs()[i]->shape_for(batch(), time));
    }
    for (int parity = 0; parity < 2; ++parity) {
      auto& in = inputs_[parity];
      auto& out = outputs_bound_[parity];
      in.clear();
      out.clear();
      for (Tensor& tensor : chunk_)
        in.push_back(wrap(model_.memory, tensor));
      for (Tensor& state : states_[parity])
        in.push_back(wrap(model_.memory, state));
      for (Tensor* tensor : data_outputs_)
        out.push_back(wrap(model_.memory, *tensor));
      for (Tensor& state : states_[parity ^ 1])
        out.push_back(wrap(model_.memory, state));
    }
    bound_time_ = time;
  }

  OrtModel::Impl& model_;
  std::vector<const char*> input_names_, output_names_;   // run order: data, then states
  std::vector<Tensor*> data_outputs_;                     // in outputs_, owned by Stream
  std::vector<Tensor> states_[2];                         // ping-pong state buffers
  std::vector<Tensor> chunk_;                             // the chunk, copied in
  std::vector<Ort::Value> inputs_[2], outputs_bound_[2];  // per parity of current_
  int current_ = 0;
  int time_axis_ = -1;
  int64_t bound_time_ = -1;
};

OrtModel::OrtModel(const std::string& path, const OrtOptions& options)
    : OrtModel(path, Impl::load(path, options)) {}

OrtModel::OrtModel(const std::string& path, std::unique_ptr<Impl> impl)
    : Model(path, impl->signature), impl_(std::move(impl)) {}

OrtModel::~OrtModel() = default;

std::string OrtModel::backend() const {
  return "onnxruntime " + Ort::GetVersionString();
}

TensorMap OrtModel::run_checked(const TensorMap& feeds) {
  const Signature& sig = signature();
  std::vector<Ort::Value> inputs;
  inputs.reserve(sig.inputs().size());
  for (const TensorSpec& spec : sig.inputs()) {
    // ONNX Runtime only reads inputs; the const_cast is what its C API asks for.
    Tensor& tensor = const_cast<Tensor&>(feeds.at(spec.name));
    inputs.push_back(wrap(impl_->memory, tensor));
  }
  std::vector<Ort::Value> outputs;
  try {
    outputs =
        impl_->session.Run(impl_->run_options, impl_->input_names.data(), inputs.data(),
                           inputs.size(), impl_->output_names.data(), impl_->output_names.size());
  } catch (const Ort::Exception& error) {
    throw Error("onnxruntime failed running '" + path() + "': " + first_line(error.what()));
  }
  TensorMap result;
  for (size_t i = 0; i < outputs.size(); ++i) {
    Shape shape = outputs[i].GetTensorTypeAndShapeInfo().GetShape();
    const float* data = outputs[i].GetTensorData<float>();
    Tensor& tensor = result[sig.outputs()[i].name];
    tensor.shape = shape;
    tensor.data.assign(data, data + element_count(shape));
  }
  return result;
}

std::unique_ptr<Stream> OrtModel::make_stream(int64_t batch) {
  return std::make_unique<OrtStream>(*impl_, signature(), batch);
}

}  // namespace rnnx
