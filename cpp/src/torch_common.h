// Shared by the two libtorch backends, TorchModel (TorchScript) and AotiModel (AOTInductor
// packages): rnnx tensors to and from torch tensors, and a stream that keeps its states as torch
// tensors on the model's device. Private to the library (src/), so libtorch headers stay out of
// the public ones.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rnnx/model.h"

namespace rnnx::torch_common {

std::string first_line(const std::string& text);

// Wraps without copying when `device` is the CPU (the models only read their inputs).
at::Tensor to_torch(const Tensor& tensor, const c10::Device& device);

// Copies into `out`, keeping its allocation when the size is unchanged.
void copy_out(const at::Tensor& tensor, Tensor& out);

// A model's forward: inputs in signature order in, outputs in signature order out. Throws Error.
using Forward = std::function<void(std::vector<at::Tensor>& inputs,
                                   std::vector<at::Tensor>& outputs)>;

// Model::run_checked of a libtorch backend.
TensorMap run(const Forward& forward, const Signature& signature, const TensorMap& feeds,
              const c10::Device& device);

// Model::make_stream of a libtorch backend; `forward` must outlive the stream.
std::unique_ptr<Stream> make_stream(const Forward& forward, const Signature& signature,
                                    int64_t batch, const c10::Device& device);

}  // namespace rnnx::torch_common
