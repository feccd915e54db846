// A dense float32 tensor in C order (row major), owned by value: what goes into and comes out of
// every model. Backends wrap its buffer without copying where they can.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rnnx {

using Shape = std::vector<int64_t>;

struct Tensor {
  Shape shape;
  std::vector<float> data;

  Tensor() = default;
  explicit Tensor(Shape shape);                  // zeros
  Tensor(Shape shape, std::vector<float> data);  // throws Error if the sizes disagree

  int64_t numel() const { return static_cast<int64_t>(data.size()); }
  // Reshapes in place, keeping the allocation when it is large enough (contents unspecified).
  void reshape(const Shape& new_shape);
};

// Tensors by name: feeds and outputs. Iteration is by name; the model's Signature gives order.
using TensorMap = std::map<std::string, Tensor>;

int64_t element_count(const Shape& shape);
std::string to_string(const Shape& shape);  // "[5, 2, 4]"

// `length` entries starting at `start` along `axis`, written into `out` (reusing its buffer).
void slice_into(const Tensor& tensor, size_t axis, int64_t start, int64_t length, Tensor& out);
Tensor slice(const Tensor& tensor, size_t axis, int64_t start, int64_t length);
// Tensors of equal rank joined along `axis` (all other sizes must agree).
Tensor concat(const std::vector<Tensor>& parts, size_t axis);

}  // namespace rnnx
