// A tiny .npy reader and writer for float32 tensors in C order, little endian (what
// numpy.save writes for a float32 array). Anything else is a clear Error, never a guess.
#pragma once

#include <string>

#include "rnnx/tensor.h"

namespace rnnx {

Tensor read_npy(const std::string& path);
void write_npy(const std::string& path, const Tensor& tensor);

}  // namespace rnnx
