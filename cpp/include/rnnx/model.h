// The backend-independent model and stream: rnnx::OrtModel (ONNX Runtime) and rnnx::TorchModel
// (libtorch) implement them. Validation of names and shapes lives here, once, so every backend
// reports the same clear errors before any backend code runs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rnnx/signature.h"
#include "rnnx/tensor.h"

namespace rnnx {

class Stream;

// Throws Error naming `path` when an input or output of `signature` is not float32: the metadata
// may describe any dtype (token ids, lengths), but the C++ backends run float32 models only.
// The model loaders call it right after reading the signature.
void require_float32(const Signature& signature, const std::string& path);

class Model {
 public:
  virtual ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const Signature& signature() const { return signature_; }
  const std::string& path() const { return path_; }
  virtual std::string backend() const = 0;  // "onnxruntime 1.32.0", "libtorch 2.13.0 (cpu)"

  // One call on whole sequences. Feeds are by input name; state inputs left out start at zero.
  // Returns every output (data outputs and final states) by name.
  TensorMap run(const TensorMap& feeds);
  // The same for a model with one data input.
  TensorMap run(const Tensor& input);

  // A stateful stream of `batch` sequences over this model (which must outlive it). Throws Error
  // when the model cannot stream (no state inputs, or a bidirectional layer). Many streams may
  // share one model; use each stream from one thread at a time.
  std::unique_ptr<Stream> stream(int64_t batch = 1);
  // Throws the Error stream() would throw for a model that cannot stream.
  void check_streamable() const;

 protected:
  Model(std::string path, Signature signature);
  // `feeds` holds every input, validated. Returns every output.
  virtual TensorMap run_checked(const TensorMap& feeds) = 0;
  virtual std::unique_ptr<Stream> make_stream(int64_t batch) = 0;

 private:
  std::string path_;
  Signature signature_;
};

// Feeds a sequence chunk by chunk, carrying the final states of each chunk into the next, so that
// (for a streamable model) the concatenated outputs equal one Model::run on the whole sequence.
class Stream {
 public:
  virtual ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  int64_t batch() const { return batch_; }
  const Signature& signature() const { return signature_; }

  // Runs one chunk (any number of time steps >= 1) from the current states; returns the data
  // outputs (not the states). The returned tensors belong to the stream and are overwritten by
  // the next step: copy what you keep.
  const TensorMap& step(const Tensor& chunk);  // a model with one data input
  const TensorMap& step(const TensorMap& chunk);

  // Back to zero states, as at the start of a new sequence.
  void reset();
  // A copy of the current states by state input name (h0, c0): save it to resume later.
  TensorMap state() const;
  // Resume from saved states (every state input, shape [layers*directions, batch, size]).
  void set_state(const TensorMap& state);

 protected:
  Stream(const Signature& signature, int64_t batch);
  // `chunk` holds the data inputs in signature().data_inputs() order, validated; fills `outputs`
  // (pre-seeded with every data output name) and keeps the final states.
  virtual void step_checked(const std::vector<const Tensor*>& chunk, TensorMap& outputs) = 0;
  virtual void zero_state() = 0;
  // States in signature().state_inputs() order.
  virtual void read_state(std::vector<Tensor*>& out) const = 0;
  virtual void write_state(const std::vector<const Tensor*>& state) = 0;

  // The zero-state shape of a state input for this stream's batch.
  Shape state_shape(const TensorSpec& spec) const { return spec.shape_for(batch_, 1); }
  TensorMap outputs_;

 private:
  const Signature& signature_;
  int64_t batch_;
  std::vector<const Tensor*> chunk_;  // reused by step() to avoid per-step allocations
};

}  // namespace rnnx
