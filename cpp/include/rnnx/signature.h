// What an rnnx model takes and returns, read from the metadata rnnx stores in every artifact
// (ONNX metadata_props, TorchScript's rnnx_metadata.json extra file), following artifact
// contract v1: `rnnx.schema` (the version, "1"), `rnnx.version` (the rnnx that wrote it) and
// `rnnx.signature`, a JSON object with the inputs and outputs (names, dims: fixed sizes or
// symbolic axes such as "batch" and "time", dtypes), the state pairs (which final-state output
// feeds which initial-state input) and whether the model may stream. Read once at load; nothing
// is hard-coded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "rnnx/tensor.h"

namespace rnnx {

// The metadata schema this reader understands; newer artifacts are refused.
inline constexpr int kMetadataSchema = 1;

// One dimension: a fixed size, or a symbolic axis: "batch", "time", or another named axis
// (a derived output axis such as "time*batch").
struct Dim {
  enum class Kind { Fixed, Batch, Time, Named };
  Kind kind = Kind::Fixed;
  int64_t size = 0;  // when Fixed
  std::string name;  // when Named

  bool symbolic() const { return kind != Kind::Fixed; }
  // The axis name ("batch", "time", or the Named name); "" for a fixed size.
  std::string axis_name() const;
  std::string to_string() const;  // the axis name, or the size
};

struct TensorSpec {
  std::string name;
  std::vector<Dim> dims;
  std::string dtype = "float32";  // numpy spelling: float32, int64, ...

  std::string describe() const;                  // "input[time, batch, 4]"
  int axis(Dim::Kind kind) const;                // index of the batch/time axis, -1 when absent
  int axis(const std::string& axis_name) const;  // index of a symbolic axis by name, -1 when absent
  // Throws Error for a named axis other than batch/time (its size is not given here).
  Shape shape_for(int64_t batch, int64_t time) const;
};

struct StatePair {
  std::string output;  // final state, e.g. h_n
  std::string input;   // initial state it feeds next time, e.g. h0
};

// The sizes of the symbolic axes seen so far while validating several tensors together, by axis
// name ("batch", "time", ...), with who fixed each one (for messages).
class AxisSizes {
 public:
  int64_t size(const std::string& axis) const;  // -1 when not seen yet
  int64_t batch() const { return size("batch"); }
  const std::string& from(const std::string& axis) const;  // "" when not seen yet
  // Records an axis size; `from` names its origin in messages ("'h0'", "the stream").
  void set(const std::string& axis, int64_t size, std::string from);

 private:
  struct Seen {
    int64_t size;
    std::string from;
  };
  std::map<std::string, Seen> seen_;
};

// The sizes a symbolic axis takes: min + k * multiple (a conv front end's kernel and stride).
struct AxisRange {
  std::string name;
  int64_t min = 1;
  int64_t multiple = 1;
};

class Signature {
 public:
  Signature() = default;
  // Copies re-point the cached views (data_inputs() ...) at their own specs.
  Signature(const Signature& other);
  Signature& operator=(const Signature& other);

  // Keys are the full metadata keys ("rnnx.schema", "rnnx.signature", ...). `source` names the
  // artifact in errors. Throws Error, one line naming `source`, when the model has no rnnx
  // metadata, was written with another schema, or its signature breaks a rule of the contract.
  // A dtype is one of the contract's numpy names; the model loaders refuse what they cannot run.
  static Signature from_metadata(const std::map<std::string, std::string>& metadata,
                                 const std::string& source);

  int schema() const { return schema_; }  // the metadata schema version (1)
  const std::vector<TensorSpec>& inputs() const { return inputs_; }
  const std::vector<TensorSpec>& outputs() const { return outputs_; }
  const std::vector<StatePair>& state_pairs() const { return state_pairs_; }
  bool streamable() const { return streamable_; }
  const std::string& version() const { return version_; }  // rnnx version that exported it

  const TensorSpec& input(const std::string& name) const;  // throws InputError when unknown
  const TensorSpec& output(const std::string& name) const;
  bool has_input(const std::string& name) const;
  bool has_output(const std::string& name) const;
  bool is_state_input(const std::string& name) const;
  bool is_state_output(const std::string& name) const;
  const std::vector<const TensorSpec*>& data_inputs() const { return data_inputs_; }
  const std::vector<const TensorSpec*>& data_outputs() const { return data_outputs_; }
  const std::vector<const TensorSpec*>& state_inputs() const { return state_inputs_; }

  // Checks rank, fixed sizes and that every symbolic axis agrees with `sizes` by name (and
  // records them there).
  // Throws InputError: "input 'input' has shape [5, 2] (rank 2), expected input[time, batch, 4]".
  static void validate(const TensorSpec& spec, const Shape& shape, AxisSizes& sizes);
  // Checks the sizes seen against axes(). Throws InputError:
  // "input 'audio' needs a time size of at least 16, got 8".
  void check_axes(const AxisSizes& sizes) const;
  const std::vector<AxisRange>& axes() const { return axes_; }

 private:
  void index();

  int schema_ = kMetadataSchema;
  std::vector<TensorSpec> inputs_;
  std::vector<TensorSpec> outputs_;
  std::vector<StatePair> state_pairs_;
  bool streamable_ = false;
  std::vector<AxisRange> axes_;
  std::string version_;
  std::vector<const TensorSpec*> data_inputs_, data_outputs_, state_inputs_;
};

}  // namespace rnnx
