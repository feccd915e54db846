#include "rnnx/signature.h"

#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "rnnx/error.h"

namespace rnnx {

namespace {

using nlohmann::json;

// The contract's bounds, as rnnx/core/signature.py has them: a fixed dim fits in int32 (as ONNX
// runtimes index), and a dtype is one of the numpy names the runtimes handle.
constexpr int64_t kMaxDim = 2147483647;
const std::set<std::string> kDtypes = {"float32", "float16", "float64", "int64", "int32",
                                       "int16",   "int8",    "uint8",   "bool"};

[[noreturn]] void fail(const std::string& source, const std::string& message) {
  throw Error("'" + source + "': " + message);
}

// The schema version: a decimal integer string. Anything else, or a version above ours, was
// written by a newer rnnx; this reader cannot guess what changed.
int parse_schema(const std::string& text, const std::string& source) {
  const bool digits = !text.empty() && text.size() <= 9 &&
                      text.find_first_not_of("0123456789") == std::string::npos;
  const int schema = digits ? std::stoi(text) : -1;
  if (!digits || schema > kMetadataSchema) {
    throw Error("'" + source + "' was written by a newer rnnx (schema " + text +
                "); this reader supports schema " + std::to_string(kMetadataSchema));
  }
  if (schema < 1) {
    fail(source, "rnnx.schema '" + text +
                     "' is not a schema version; this reader supports schema " +
                     std::to_string(kMetadataSchema));
  }
  return schema;
}

Dim parse_dim(const json& value, const std::string& where, size_t index,
              const std::string& source) {
  Dim dim;
  if (value.is_number_unsigned() || (value.is_number_integer() && value.get<int64_t>() >= 0)) {
    const auto size = value.get<uint64_t>();
    if (size <= static_cast<uint64_t>(kMaxDim)) {
      dim.size = static_cast<int64_t>(size);
      return dim;
    }
    fail(source, "rnnx.signature gives " + where + " dim " + std::to_string(index) + " = " +
                     value.dump() + ", larger than " + std::to_string(kMaxDim));
  } else if (value.is_string() && !value.get<std::string>().empty()) {
    const std::string& name = value.get_ref<const std::string&>();
    if (name == "batch") {
      dim.kind = Dim::Kind::Batch;
    } else if (name == "time") {
      dim.kind = Dim::Kind::Time;
    } else {
      dim.kind = Dim::Kind::Named;
      dim.name = name;
    }
    return dim;
  }
  fail(source, "rnnx.signature gives " + where + " dim " + std::to_string(index) + " = " +
                   value.dump() + ": neither a non-negative integer nor a non-empty axis name");
}

std::vector<TensorSpec> parse_tensors(const json& signature, const char* key,
                                      const std::string& source) {
  auto list = signature.find(key);
  if (list == signature.end() || !list->is_array()) {
    fail(source, std::string("rnnx.signature has no '") + key + "' list");
  }
  if (list->empty()) fail(source, std::string("rnnx.signature lists no ") + key);
  const std::string kind = std::string(key) == "inputs" ? "input" : "output";
  std::vector<TensorSpec> tensors;
  std::set<std::string> names;
  for (size_t i = 0; i < list->size(); ++i) {
    const json& item = (*list)[i];
    const std::string where = std::string(key) + "[" + std::to_string(i) + "]";
    if (!item.is_object() || !item.contains("name") || !item["name"].is_string()) {
      fail(source, "rnnx.signature " + where + " has no string 'name'");
    }
    TensorSpec spec;
    spec.name = item["name"].get<std::string>();
    const std::string tensor = kind + " '" + spec.name + "'";
    if (!names.insert(spec.name).second) {
      fail(source, "rnnx.signature lists " + kind + " '" + spec.name + "' twice");
    }
    if (!item.contains("dims") || !item["dims"].is_array()) {
      fail(source, "rnnx.signature " + tensor + " has no 'dims' list");
    }
    const json& dims = item["dims"];
    for (size_t d = 0; d < dims.size(); ++d)
      spec.dims.push_back(parse_dim(dims[d], tensor, d, source));
    if (item.contains("dtype")) {
      if (!item["dtype"].is_string()) {
        fail(source, "rnnx.signature " + tensor +
                         " has a dtype that is not a string: " + item["dtype"].dump());
      }
      spec.dtype = item["dtype"].get<std::string>();
      if (kDtypes.count(spec.dtype) == 0) {
        fail(source, "rnnx.signature " + tensor + " has dtype " + item["dtype"].dump() +
                         ", not one of float32, float16, float64, int64, int32, int16, int8, "
                         "uint8, bool");
      }
    }
    tensors.push_back(std::move(spec));
  }
  return tensors;
}

std::vector<StatePair> parse_state_pairs(const json& signature, const std::string& source) {
  std::vector<StatePair> pairs;
  auto list = signature.find("state_pairs");
  if (list == signature.end()) return pairs;  // stateless
  const std::string expected =
      "rnnx.signature state_pairs must be a list of [output, input] "
      "name pairs";
  if (!list->is_array()) fail(source, expected + ", got " + list->dump());
  for (const json& pair : *list) {
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string()) {
      fail(source, expected + ", got " + pair.dump());
    }
    pairs.push_back({pair[0].get<std::string>(), pair[1].get<std::string>()});
  }
  return pairs;
}

std::string join_names(const std::vector<TensorSpec>& specs) {
  std::string out;
  for (const TensorSpec& spec : specs)
    out += (out.empty() ? "" : ",") + spec.name;
  return out;
}

}  // namespace

std::string Dim::axis_name() const {
  switch (kind) {
    case Kind::Batch:
      return "batch";
    case Kind::Time:
      return "time";
    case Kind::Named:
      return name;
    case Kind::Fixed:
      break;
  }
  return "";
}

std::string Dim::to_string() const {
  return kind == Kind::Fixed ? std::to_string(size) : axis_name();
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

int TensorSpec::axis(const std::string& axis_name) const {
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i].symbolic() && dims[i].axis_name() == axis_name) return static_cast<int>(i);
  }
  return -1;
}

Shape TensorSpec::shape_for(int64_t batch, int64_t time) const {
  Shape shape;
  shape.reserve(dims.size());
  for (const Dim& dim : dims) {
    if (dim.kind == Dim::Kind::Named) {
      throw Error(describe() + " has a named axis '" + dim.name +
                  "' whose size is not known from batch and time");
    }
    shape.push_back(dim.kind == Dim::Kind::Batch  ? batch
                    : dim.kind == Dim::Kind::Time ? time
                                                  : dim.size);
  }
  return shape;
}

int64_t AxisSizes::size(const std::string& axis) const {
  auto found = seen_.find(axis);
  return found == seen_.end() ? -1 : found->second.size;
}

const std::string& AxisSizes::from(const std::string& axis) const {
  static const std::string none;
  auto found = seen_.find(axis);
  return found == seen_.end() ? none : found->second.from;
}

void AxisSizes::set(const std::string& axis, int64_t size, std::string from) {
  seen_[axis] = Seen{size, std::move(from)};
}

Signature::Signature(const Signature& other)
    : schema_(other.schema_),
      inputs_(other.inputs_),
      outputs_(other.outputs_),
      state_pairs_(other.state_pairs_),
      streamable_(other.streamable_),
      axes_(other.axes_),
      version_(other.version_) {
  index();
}

Signature& Signature::operator=(const Signature& other) {
  if (this != &other) {
    schema_ = other.schema_;
    inputs_ = other.inputs_;
    outputs_ = other.outputs_;
    state_pairs_ = other.state_pairs_;
    streamable_ = other.streamable_;
    axes_ = other.axes_;
    version_ = other.version_;
    index();
  }
  return *this;
}

Signature Signature::from_metadata(const std::map<std::string, std::string>& metadata,
                                   const std::string& source) {
  // Artifact contract v1: rnnx.schema, rnnx.version and rnnx.signature (the single source of
  // names, dims, dtypes, state pairs and streamability). rnnx.spec is not needed here.
  auto text = metadata.find("rnnx.signature");
  if (text == metadata.end()) {
    throw Error("'" + source +
                "' has no rnnx metadata (no rnnx.signature key): export it with rnnx "
                "(rnnx export / rnnx.export)");
  }
  auto schema = metadata.find("rnnx.schema");
  if (schema == metadata.end()) {
    throw Error("'" + source +
                "' was written by an older rnnx (no rnnx.schema key): re-export it with this "
                "rnnx");
  }
  Signature signature;
  signature.schema_ = parse_schema(schema->second, source);
  auto version = metadata.find("rnnx.version");
  signature.version_ = version == metadata.end() ? "" : version->second;

  json parsed;
  try {
    parsed = json::parse(text->second);
  } catch (const json::parse_error& error) {
    fail(source, "rnnx.signature is not valid JSON (at byte " + std::to_string(error.byte) + ")");
  }
  if (!parsed.is_object()) fail(source, "rnnx.signature is not a JSON object");
  signature.inputs_ = parse_tensors(parsed, "inputs", source);
  signature.outputs_ = parse_tensors(parsed, "outputs", source);
  signature.state_pairs_ = parse_state_pairs(parsed, source);
  auto streamable = parsed.find("streamable");
  if (streamable != parsed.end()) {
    if (!streamable->is_boolean()) {
      fail(source, "rnnx.signature 'streamable' is not true or false: " + streamable->dump());
    }
    signature.streamable_ = streamable->get<bool>();
  }
  auto axes = parsed.find("axes");
  if (axes != parsed.end()) {
    if (!axes->is_array()) fail(source, "rnnx.signature 'axes' is not a list");
    for (const json& item : *axes) {
      auto positive = [&](const char* key) -> int64_t {
        if (!item.contains(key)) return 1;
        const json& value = item.at(key);
        if (!value.is_number_integer() || value.get<int64_t>() < 1) {
          fail(source, "rnnx.signature axes need a name and positive min and multiple");
        }
        return value.get<int64_t>();
      };
      if (!item.is_object() || !item.contains("name") || !item.at("name").is_string()) {
        fail(source, "rnnx.signature axes need a name and positive min and multiple");
      }
      signature.axes_.push_back({item.at("name").get<std::string>(), positive("min"),
                                 positive("multiple")});
    }
  }
  signature.index();

  // A fixed-shape model (no input has a symbolic axis: forward takes one shape) has no batch
  // axis to require; every other model has one on each data input and state.
  bool fixed_shapes = true;
  for (const TensorSpec& spec : signature.inputs_) {
    for (const Dim& dim : spec.dims) fixed_shapes = fixed_shapes && dim.kind == Dim::Kind::Fixed;
  }
  for (const StatePair& pair : signature.state_pairs_) {
    const std::string named = "state pair [" + pair.output + ", " + pair.input + "] names ";
    if (!signature.has_output(pair.output)) fail(source, named + "an unknown output");
    if (!signature.has_input(pair.input)) fail(source, named + "an unknown input");
    const TensorSpec& state = signature.input(pair.input);
    if (fixed_shapes) continue;
    if (state.axis(Dim::Kind::Time) >= 0 || state.axis(Dim::Kind::Batch) < 0) {
      fail(source, "state " + state.describe() + " must have a batch axis and no time axis");
    }
  }
  for (const TensorSpec* spec : signature.data_inputs_) {
    if (!fixed_shapes && spec->axis(Dim::Kind::Batch) < 0) {
      fail(source, "input " + spec->describe() + " has no batch axis");
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

bool Signature::has_output(const std::string& name) const {
  for (const TensorSpec& spec : outputs_) {
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

void Signature::check_axes(const AxisSizes& sizes) const {
  for (const AxisRange& axis : axes_) {
    const int64_t size = sizes.size(axis.name);
    if (size < 0) continue;
    if (size >= axis.min && (size - axis.min) % axis.multiple == 0) continue;
    std::string steps =
        axis.multiple > 1 ? " + a multiple of " + std::to_string(axis.multiple) : std::string();
    throw InputError("input " + sizes.from(axis.name) + " needs a " + axis.name +
                     " size of at least " + std::to_string(axis.min) + steps + ", got " +
                     std::to_string(size));
  }
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
    const std::string axis_name = dim.axis_name();
    if (size < 1) {
      throw InputError("input '" + spec.name + "' has an empty " + axis_name + " axis");
    }
    const int64_t seen = sizes.size(axis_name);
    if (seen < 0) {
      sizes.set(axis_name, size, "'" + spec.name + "'");
    } else if (seen != size) {
      throw InputError("input '" + spec.name + "' has " + axis_name + " size " +
                       std::to_string(size) + " but " + sizes.from(axis_name) + " has " +
                       axis_name + " size " + std::to_string(seen));
    }
  }
}

}  // namespace rnnx
