#include "torch_common.h"

#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cstring>

namespace rnnx::torch_common {

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

at::Tensor to_torch(const Tensor& tensor, const c10::Device& device) {
  at::Tensor wrapped = at::from_blob(const_cast<float*>(tensor.data.data()), tensor.shape,
                                     at::TensorOptions().dtype(at::kFloat));
  return wrapped.to(device);
}

void copy_out(const at::Tensor& tensor, Tensor& out) {
  at::Tensor host = tensor.to(at::kCPU, at::kFloat).contiguous();
  auto sizes = host.sizes();
  if (!std::equal(sizes.begin(), sizes.end(), out.shape.begin(), out.shape.end())) {
    out.shape.assign(sizes.begin(), sizes.end());
  }
  out.data.resize(static_cast<size_t>(host.numel()));
  std::memcpy(out.data.data(), host.const_data_ptr<float>(), out.data.size() * sizeof(float));
}

TensorMap run(const Forward& forward, const Signature& signature, const TensorMap& feeds,
              const c10::Device& device) {
  c10::InferenceMode guard;
  std::vector<at::Tensor> inputs;
  for (const TensorSpec& spec : signature.inputs()) {
    inputs.push_back(to_torch(feeds.at(spec.name), device));
  }
  std::vector<at::Tensor> outputs;
  forward(inputs, outputs);
  TensorMap result;
  for (size_t i = 0; i < outputs.size(); ++i)
    copy_out(outputs[i], result[signature.outputs()[i].name]);
  return result;
}

namespace {

// States stay torch tensors on the model's device between steps; only the chunk goes in and the
// data outputs come out. The input/output vectors are reused across steps.
class TorchStream : public Stream {
 public:
  TorchStream(const Forward& forward, const Signature& signature, int64_t batch,
              const c10::Device& device)
      : Stream(signature, batch), forward_(forward), device_(device) {
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
        inputs_.push_back(to_torch(*chunk[slot], device_));
      } else {
        inputs_.push_back(states_[slot - data_count]);
      }
    }
    forward_(inputs_, results_);
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
      states_.push_back(
          at::zeros(state_shape(*spec), at::TensorOptions().dtype(at::kFloat).device(device_)));
    }
  }

  void read_state(std::vector<Tensor*>& out) const override {
    for (size_t i = 0; i < out.size(); ++i)
      copy_out(states_[i], *out[i]);
  }

  void write_state(const std::vector<const Tensor*>& state) override {
    c10::InferenceMode guard;
    for (size_t i = 0; i < state.size(); ++i) {
      states_[i] = to_torch(*state[i], device_).clone();
    }
  }

 private:
  const Forward& forward_;
  c10::Device device_;
  std::vector<int> input_slots_;         // per signature input: chunk index, or data count + state
  std::vector<int> output_states_;       // per signature output: state index, or -1 for data
  std::vector<Tensor*> output_tensors_;  // per signature output: its buffer in outputs_ (data)
  std::vector<at::Tensor> states_;       // in signature().state_inputs() order
  std::vector<at::Tensor> inputs_;
  std::vector<at::Tensor> results_;
};

}  // namespace

std::unique_ptr<Stream> make_stream(const Forward& forward, const Signature& signature,
                                    int64_t batch, const c10::Device& device) {
  return std::make_unique<TorchStream>(forward, signature, batch, device);
}

}  // namespace rnnx::torch_common
