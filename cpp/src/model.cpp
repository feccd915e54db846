#include "rnnx/model.h"

#include "rnnx/error.h"

namespace rnnx {

namespace {

std::string names_of(const std::vector<const TensorSpec*>& specs) {
  std::string out;
  for (const TensorSpec* spec : specs)
    out += (out.empty() ? "" : ", ") + spec->name;
  return out;
}

}  // namespace

Model::Model(std::string path, Signature signature)
    : path_(std::move(path)), signature_(std::move(signature)) {}

void require_float32(const Signature& signature, const std::string& path) {
  for (const auto* specs : {&signature.inputs(), &signature.outputs()}) {
    for (const TensorSpec& spec : *specs) {
      if (spec.dtype != "float32") {
        throw Error("'" + path + "': " + (specs == &signature.inputs() ? "input" : "output") +
                    " '" + spec.name + "' is " + spec.dtype + "; rnnx C++ runs float32 models");
      }
    }
  }
}

Model::~Model() = default;

TensorMap Model::run(const TensorMap& feeds) {
  for (const auto& [name, tensor] : feeds) {
    if (!signature_.has_input(name)) {
      signature_.input(name);  // throws, listing the model's inputs
    }
  }
  AxisSizes sizes;
  for (const TensorSpec* spec : signature_.data_inputs()) {
    auto found = feeds.find(spec->name);
    if (found == feeds.end()) {
      throw InputError("missing input '" + spec->name + "' (" + spec->describe() + ")");
    }
    Signature::validate(*spec, found->second.shape, sizes);
  }
  signature_.check_axes(sizes);
  // State inputs left out start at zero, as a fresh stream does.
  TensorMap with_states;
  bool zeros_added = false;
  for (const TensorSpec* spec : signature_.state_inputs()) {
    auto found = feeds.find(spec->name);
    if (found != feeds.end()) {
      Signature::validate(*spec, found->second.shape, sizes);
      continue;
    }
    if (!zeros_added) with_states = feeds;
    zeros_added = true;
    with_states.emplace(spec->name, Tensor(spec->shape_for(sizes.batch(), 1)));
  }
  return run_checked(zeros_added ? with_states : feeds);
}

TensorMap Model::run(const Tensor& input) {
  const auto& data = signature_.data_inputs();
  if (data.size() != 1) {
    throw InputError("this model takes several inputs (" + names_of(data) + "): pass a TensorMap");
  }
  return run(TensorMap{{data.front()->name, input}});
}

std::unique_ptr<Stream> Model::stream(int64_t batch) {
  check_streamable();
  if (batch < 1) throw InputError("stream batch must be at least 1, got " + std::to_string(batch));
  return make_stream(batch);
}

void Model::check_streamable() const {
  if (signature_.state_pairs().empty()) {
    throw Error("'" + path_ + "' has no state inputs (exported stateless?); it cannot stream");
  }
  if (!signature_.streamable()) {
    throw Error("'" + path_ + "' cannot stream: a bidirectional layer needs the whole sequence");
  }
}

Stream::Stream(const Signature& signature, int64_t batch) : signature_(signature), batch_(batch) {
  for (const TensorSpec* spec : signature.data_outputs())
    outputs_[spec->name] = Tensor();
  chunk_.reserve(signature.data_inputs().size());
}

Stream::~Stream() = default;

const TensorMap& Stream::step(const Tensor& chunk) {
  const auto& data = signature_.data_inputs();
  if (data.size() != 1) {
    throw InputError("this model takes several inputs (" + names_of(data) + "): pass a TensorMap");
  }
  AxisSizes sizes;
  sizes.set("batch", batch_, "the stream");
  Signature::validate(*data.front(), chunk.shape, sizes);
  signature_.check_axes(sizes);
  chunk_.assign(1, &chunk);
  step_checked(chunk_, outputs_);
  return outputs_;
}

const TensorMap& Stream::step(const TensorMap& chunk) {
  AxisSizes sizes;
  sizes.set("batch", batch_, "the stream");
  chunk_.clear();
  for (const TensorSpec* spec : signature_.data_inputs()) {
    auto found = chunk.find(spec->name);
    if (found == chunk.end()) {
      throw InputError("missing input '" + spec->name + "'; a stream step takes " +
                       names_of(signature_.data_inputs()));
    }
    Signature::validate(*spec, found->second.shape, sizes);
    chunk_.push_back(&found->second);
  }
  signature_.check_axes(sizes);
  if (chunk.size() != chunk_.size()) {
    for (const auto& [name, tensor] : chunk) {
      if (signature_.is_state_input(name)) {
        throw InputError("'" + name + "' is a state: a stream carries it (use set_state)");
      }
      if (!signature_.has_input(name)) {
        throw InputError("unknown input '" + name + "'; a stream step takes " +
                         names_of(signature_.data_inputs()));
      }
    }
  }
  step_checked(chunk_, outputs_);
  return outputs_;
}

void Stream::reset() {
  zero_state();
}

TensorMap Stream::state() const {
  TensorMap state;
  std::vector<Tensor*> out;
  for (const TensorSpec* spec : signature_.state_inputs())
    out.push_back(&state[spec->name]);
  read_state(out);
  return state;
}

void Stream::set_state(const TensorMap& state) {
  std::vector<const Tensor*> in;
  for (const TensorSpec* spec : signature_.state_inputs()) {
    auto found = state.find(spec->name);
    if (found == state.end()) {
      throw InputError("missing state '" + spec->name + "'; the stream's states are " +
                       names_of(signature_.state_inputs()));
    }
    AxisSizes sizes;
    sizes.set("batch", batch_, "the stream");
    Signature::validate(*spec, found->second.shape, sizes);
    in.push_back(&found->second);
  }
  if (in.size() != state.size()) {
    for (const auto& [name, tensor] : state) {
      if (!signature_.is_state_input(name)) {
        throw InputError("unknown state '" + name + "'; the stream's states are " +
                         names_of(signature_.state_inputs()));
      }
    }
  }
  write_state(in);
}

}  // namespace rnnx
