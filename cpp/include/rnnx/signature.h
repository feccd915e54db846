// What an rnnx model takes and returns, read from the metadata rnnx stores in every artifact
// (ONNX metadata_props, TorchScript's rnnx.json extra file): input/output names, their dims
// (fixed sizes or the symbolic "batch"/"time"), which final-state output feeds which initial-state
// input, and whether the model may stream. Read once at load; nothing is hard-coded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "rnnx/tensor.h"

namespace rnnx {

// One dimension: a fixed size, or a symbolic "batch" / "time" axis.
struct Dim {
  enum class Kind { Fixed, Batch, Time };
  Kind kind = Kind::Fixed;
  int64_t size = 0;  // when Fixed

  std::string to_string() const;
};

struct TensorSpec {
  std::string name;
  std::vector<Dim> dims;

  std::string describe() const;    // "input[time, batch, 4]"
  int axis(Dim::Kind kind) const;  // index of the batch/time axis, -1 when absent
  Shape shape_for(int64_t batch, int64_t time) const;
};

struct StatePair {
  std::string output;  // final state, e.g. h_n
  std::string input;   // initial state it feeds next time, e.g. h0
};

// The sizes of the symbolic axes seen so far while validating several tensors together.
struct AxisSizes {
  int64_t batch = -1;
  int64_t time = -1;
  std::string batch_from;  // who fixed it, for messages
  std::string time_from;
};

class Signature {
 public:
  Signature() = default;
  // Copies re-point the cached views (data_inputs() ...) at their own specs.
  Signature(const Signature& other);
  Signature& operator=(const Signature& other);

  // Keys are the full metadata keys ("rnnx.inputs", ...). `source` names the artifact in errors.
  // Throws Error when the rnnx keys are missing or inconsistent.
  static Signature from_metadata(const std::map<std::string, std::string>& metadata,
                                 const std::string& source);

  const std::vector<TensorSpec>& inputs() const { return inputs_; }
  const std::vector<TensorSpec>& outputs() const { return outputs_; }
  const std::vector<StatePair>& state_pairs() const { return state_pairs_; }
  bool streamable() const { return streamable_; }
  const std::string& version() const { return version_; }  // rnnx version that exported it

  const TensorSpec& input(const std::string& name) const;  // throws InputError when unknown
  const TensorSpec& output(const std::string& name) const;
  bool has_input(const std::string& name) const;
  bool is_state_input(const std::string& name) const;
  bool is_state_output(const std::string& name) const;
  const std::vector<const TensorSpec*>& data_inputs() const { return data_inputs_; }
  const std::vector<const TensorSpec*>& data_outputs() const { return data_outputs_; }
  const std::vector<const TensorSpec*>& state_inputs() const { return state_inputs_; }

  // Checks rank, fixed sizes and that batch/time agree with `sizes` (and records them there).
  // Throws InputError: "input 'input' has shape [5, 2] (rank 2), expected input[time, batch, 4]".
  static void validate(const TensorSpec& spec, const Shape& shape, AxisSizes& sizes);

 private:
  void index();

  std::vector<TensorSpec> inputs_;
  std::vector<TensorSpec> outputs_;
  std::vector<StatePair> state_pairs_;
  bool streamable_ = false;
  std::string version_;
  std::vector<const TensorSpec*> data_inputs_, data_outputs_, state_inputs_;
};

}  // namespace rnnx
