#include "rnnx/signature.h"

#include <sstream>

#include "rnnx/error.h"
#include "rnnx/json.h"

namespace rnnx {

namespace {

const char kPrefix[] = "rnnx.";

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  if (text.empty()) return parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, separator))
    parts.push_back(part);
  return parts;
}

const std::string& required(const std::map<std::string, std::string>& metadata,
                            const std::string& key, const std::string& source) {
  auto found = metadata.find(kPrefix + key);
  if (found == metadata.end()) {
    throw Error("'" + source + "' has no rnnx metadata (key '" + kPrefix + key +
                "' is missing): export it with rnnx (rnnx export / rnnx.export)");
  }
  return found->second;
}

Dim parse_dim(const Json& value, const std::string& tensor, const std::string& source) {
  Dim dim;
  if (value.is_number()) {
    dim.size = static_cast<int64_t>(value.as_number());
    return dim;
  }
  if (value.is_string() && value.as_string() == "batch") {
    dim.kind = Dim::Kind::Batch;
    return dim;
  }
  if (value.is_string() && value.as_string() == "time") {
    dim.kind = Dim::Kind::Time;
    return dim;
  }
  throw Error("'" + source + "': rnnx.signature gives " + tensor +
              " a dimension that is neither a size nor \"batch\"/\"time\"");
}

std::vector<TensorSpec> parse_tensors(const Json& signature, const char* key,
                                      const std::string& source) {
  const Json* list = signature.find(key);
  if (list == nullptr || !list->is_array()) {
    throw Error("'" + source + "': rnnx.signature has no '" + key + "' list");
  }
  std::vector<TensorSpec> tensors;
  for (const Json& item : list->items()) {
    const Json* name = item.find("name");
    const Json* dims = item.find("dims");
    if (name == nullptr || !name->is_string() || dims == nullptr || !dims->is_array()) {
      throw Error("'" + source + "': rnnx.signature " + key + " entries need a name and dims");
    }
    const Json* dtype = item.find("dtype");
    if (dtype != nullptr && dtype->is_string() && dtype->as_string() != "float32") {
      throw Error("'" + source + "': " + name->as_string() + " is " + dtype->as_string() +
                  "; rnnx C++ runs float32 models");
    }
    TensorSpec spec{name->as_string(), {}};
    for (const Json& dim : dims->items())
      spec.dims.push_back(parse_dim(dim, spec.name, source));
    tensors.push_back(std::move(spec));
  }
  return tensors;
}

std::string join_names(const std::vector<TensorSpec>& specs) {
  std::string out;
  for (const TensorSpec& spec : specs)
    out += (out.empty() ? "" : ",") + spec.name;
  return out;
}

}  // namespace

std::string Dim::to_string() const {
  switch (kind) {
    case Kind::Batch:
      return "batch";
    case Kind::Time:
      return "time";
    case Kind::Fixed:
      break;
  }
  return std::to_string(size);
}

std::string TensorSpec::describe() const {
  std::string out = name + "[";
  for (size_t i = 0; i < dims.size(); ++i)
    out += (i ? ", " : "") + dims[i].to_string();
  return out + "]";
}

int TensorSpec::axis(Dim::Kind kind) const {
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i].kind == kind) return static_cast<int>(i);
  }
  return -1;
}

Shape TensorSpec::shape_for(int64_t batch, int64_t time) const {
  Shape shape;
  shape.reserve(dims.size());
  for (const Dim& dim : dims) {
    shape.push_back(dim.kind == Dim::Kind::Batch  ? batch
                    : dim.kind == Dim::Kind::Time ? time
                                                  : dim.size);
  }
  return shape;
}

Signature::Signature(const Signature& other)
    : inputs_(other.inputs_),
      outputs_(other.outputs_),
      state_pairs_(other.state_pairs_),
      streamable_(other.streamable_),
      version_(other.version_) {
  index();
}

Signature& Signature::operator=(const Signature& other) {
  if (this != &other) {
    inputs_ = other.inputs_;
    outputs_ = other.outputs_;
    state_pairs_ = other.state_pairs_;
    streamable_ = other.streamable_;
    version_ = other.version_;
    index();
  }
  return *this;
}

Signature Signature::from_metadata(const std::map<std::string, std::string>& metadata,
                                   const std::string& source) {
  Signature signature;
  const std::string& names_in = required(metadata, "inputs", source);
  const std::string& names_out = required(metadata, "outputs", source);
  const std::string& pairs = required(metadata, "state_pairs", source);
  const std::string& streamable = required(metadata, "streamable", source);
  const Json json =
      Json::parse(required(metadata, "signature", source), source + ": rnnx.signature");
  auto version = metadata.find(std::string(kPrefix) + "version");
  signature.version_ = version == metadata.end() ? "" : version->second;

  signature.inputs_ = parse_tensors(json, "inputs", source);
  signature.outputs_ = parse_tensors(json, "outputs", source);
  // The flat keys and the JSON signature are written together; disagreement means a damaged or
  // hand-edited file, which must not run with guessed names.
  if (join_names(signature.inputs_) != names_in || join_names(signature.outputs_) != names_out) {
    throw Error("'" + source + "': rnnx.inputs/rnnx.outputs disagree with rnnx.signature");
  }
  if (signature.inputs_.empty() || signature.outputs_.empty()) {
    throw Error("'" + source + "': rnnx metadata lists no inputs or no outputs");
  }
  for (const std::string& pair : split(pairs, ',')) {
    size_t colon = pair.find(':');
    if (colon == std::string::npos) {
      throw Error("'" + source + "': malformed rnnx.state_pairs entry '" + pair + "'");
    }
    signature.state_pairs_.push_back({pair.substr(0, colon), pair.substr(colon + 1)});
  }
  signature.streamable_ = streamable == "1";
  signature.index();

  for (const StatePair& pair : signature.state_pairs_) {
    if (!signature.has_input(pair.input)) {
      throw Error("'" + source + "': state pair " + pair.output + ":" + pair.input +
                  " names an unknown input");
    }
    bool known_output = false;
    for (const TensorSpec& spec : signature.outputs_)
      known_output |= spec.name == pair.output;
    if (!known_output) {
      throw Error("'" + source + "': state pair " + pair.output + ":" + pair.input +
                  " names an unknown output");
    }
    const TensorSpec& state = signature.input(pair.input);
    if (state.axis(Dim::Kind::Time) >= 0 || state.axis(Dim::Kind::Batch) < 0) {
      throw Error("'" + source + "': state " + state.describe() +
                  " must have a batch axis and no time axis");
    }
  }
  for (const TensorSpec* spec : signature.data_inputs_) {
    if (spec->axis(Dim::Kind::Batch) < 0) {
      throw Error("'" + source + "': input " + spec->describe() + " has no batch axis");
    }
  }
  return signature;
}

void Signature::index() {
  data_inputs_.clear();
  data_outputs_.clear();
  state_inputs_.clear();
  for (const TensorSpec& spec : inputs_) {
    if (!is_state_input(spec.name)) data_inputs_.push_back(&spec);
  }
  for (const TensorSpec& spec : outputs_) {
    if (!is_state_output(spec.name)) data_outputs_.push_back(&spec);
  }
  for (const StatePair& pair : state_pairs_) {
    for (const TensorSpec& spec : inputs_) {
      if (spec.name == pair.input) state_inputs_.push_back(&spec);
    }
  }
}

const TensorSpec& Signature::input(const std::string& name) const {
  for (const TensorSpec& spec : inputs_) {
    if (spec.name == name) return spec;
  }
  throw InputError("unknown input '" + name + "'; the model's inputs are " + join_names(inputs_));
}

const TensorSpec& Signature::output(const std::string& name) const {
  for (const TensorSpec& spec : outputs_) {
    if (spec.name == name) return spec;
  }
  throw InputError("unknown output '" + name + "'; the model's outputs are " +
                   join_names(outputs_));
}

bool Signature::has_input(const std::string& name) const {
  for (const TensorSpec& spec : inputs_) {
    if (spec.name == name) return true;
  }
  return false;
}

bool Signature::is_state_input(const std::string& name) const {
  for (const StatePair& pair : state_pairs_) {
    if (pair.input == name) return true;
  }
  return false;
}

bool Signature::is_state_output(const std::string& name) const {
  for (const StatePair& pair : state_pairs_) {
    if (pair.output == name) return true;
  }
  return false;
}

void Signature::validate(const TensorSpec& spec, const Shape& shape, AxisSizes& sizes) {
  if (shape.size() != spec.dims.size()) {
    throw InputError("input '" + spec.name + "' has shape " + to_string(shape) + " (rank " +
                     std::to_string(shape.size()) + "), expected " + spec.describe());
  }
  for (size_t axis = 0; axis < shape.size(); ++axis) {
    const Dim& dim = spec.dims[axis];
    const int64_t size = shape[axis];
    if (dim.kind == Dim::Kind::Fixed) {
      if (size != dim.size) {
        throw InputError("input '" + spec.name + "' has size " + std::to_string(size) +
                         " on axis " + std::to_string(axis) + ", expected " +
                         std::to_string(dim.size) + " (shape " + spec.describe() + ")");
      }
      continue;
    }
    if (size < 1) {
      throw InputError("input '" + spec.name + "' has an empty " + dim.to_string() + " axis");
    }
    int64_t& seen = dim.kind == Dim::Kind::Batch ? sizes.batch : sizes.time;
    std::string& from = dim.kind == Dim::Kind::Batch ? sizes.batch_from : sizes.time_from;
    if (seen < 0) {
      seen = size;
      from = "'" + spec.name + "'";
    } else if (seen != size) {
      throw InputError("input '" + spec.name + "' has " + dim.to_string() + " size " +
                       std::to_string(size) + " but " + from + " has " + dim.to_string() +
                       " size " + std::to_string(seen));
    }
  }
}

}  // namespace rnnx
