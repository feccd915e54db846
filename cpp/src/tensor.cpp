#include "rnnx/tensor.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <sstream>

#include "rnnx/error.h"

namespace rnnx {

Tensor::Tensor(Shape shape) : shape(std::move(shape)) {
  data.assign(static_cast<size_t>(element_count(this->shape)), 0.0f);
}

Tensor::Tensor(Shape shape, std::vector<float> data)
    : shape(std::move(shape)), data(std::move(data)) {
  if (element_count(this->shape) != numel()) {
    throw Error("tensor of shape " + to_string(this->shape) + " needs " +
                std::to_string(element_count(this->shape)) + " values, got " +
                std::to_string(numel()));
  }
}

void Tensor::reshape(const Shape& new_shape) {
  if (shape != new_shape) shape = new_shape;
  data.resize(static_cast<size_t>(element_count(new_shape)));
}

int64_t element_count(const Shape& shape) {
  int64_t count = 1;
  for (int64_t size : shape) {
    if (size < 0) throw Error("shape " + to_string(shape) + " has a negative size");
    if (size != 0 && count > std::numeric_limits<int64_t>::max() / size) {
      throw Error("shape " + to_string(shape) + " has more elements than an int64 counts");
    }
    count *= size;
  }
  return count;
}

std::string to_string(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i)
    out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

namespace {

// Sizes of the axes before `axis` (outer) and after it (inner, in elements).
void split_at(const Shape& shape, size_t axis, int64_t& outer, int64_t& inner) {
  outer = 1;
  inner = 1;
  for (size_t i = 0; i < axis; ++i)
    outer *= shape[i];
  for (size_t i = axis + 1; i < shape.size(); ++i)
    inner *= shape[i];
}

}  // namespace

void slice_into(const Tensor& tensor, size_t axis, int64_t start, int64_t length, Tensor& out) {
  if (axis >= tensor.shape.size() || start < 0 || length < 0 ||
      start + length > tensor.shape[axis]) {
    throw Error("cannot slice " + std::to_string(length) + " entries at " + std::to_string(start) +
                " on axis " + std::to_string(axis) + " of a tensor of shape " +
                to_string(tensor.shape));
  }
  int64_t outer = 0, inner = 0;
  split_at(tensor.shape, axis, outer, inner);
  Shape shape = tensor.shape;
  shape[axis] = length;
  out.reshape(shape);
  const int64_t block = length * inner;
  for (int64_t o = 0; o < outer; ++o) {
    const float* from = tensor.data.data() + (o * tensor.shape[axis] + start) * inner;
    std::copy(from, from + block, out.data.data() + o * block);
  }
}

Tensor slice(const Tensor& tensor, size_t axis, int64_t start, int64_t length) {
  Tensor out;
  slice_into(tensor, axis, start, length, out);
  return out;
}

Tensor concat(const std::vector<Tensor>& parts, size_t axis) {
  if (parts.empty()) throw Error("concat needs at least one tensor");
  Shape shape = parts.front().shape;
  if (axis >= shape.size()) throw Error("concat axis " + std::to_string(axis) + " out of range");
  shape[axis] = 0;
  for (const Tensor& part : parts) {
    bool same = part.shape.size() == shape.size();
    for (size_t i = 0; same && i < shape.size(); ++i) {
      same = i == axis || part.shape[i] == parts.front().shape[i];
    }
    if (!same) {
      throw Error("cannot concatenate tensors of shapes " + to_string(parts.front().shape) +
                  " and " + to_string(part.shape) + " on axis " + std::to_string(axis));
    }
    shape[axis] += part.shape[axis];
  }
  int64_t outer = 0, inner = 0;
  split_at(shape, axis, outer, inner);
  Tensor out(shape);
  float* to = out.data.data();
  for (int64_t o = 0; o < outer; ++o) {
    for (const Tensor& part : parts) {
      const int64_t block = part.shape[axis] * inner;
      const float* from = part.data.data() + o * block;
      to = std::copy(from, from + block, to);
    }
  }
  return out;
}

}  // namespace rnnx
