// An rnnx ONNX export run with the ONNX Runtime C++ API. Names, states and layout come from the
// model's rnnx metadata, read once at load; ONNX Runtime headers stay out of this header.
#pragma once

#include <memory>
#include <string>

#include "rnnx/model.h"

namespace rnnx {

struct OrtOptions {
  int intra_op_threads = 0;  // 0: ONNX Runtime's default (all cores)
  int inter_op_threads = 0;
  bool optimize = true;  // graph optimizations (ORT_ENABLE_ALL); false disables them
};

class OrtModel : public Model {
 public:
  // Throws Error when the file is missing, ONNX Runtime cannot load it, or it has no rnnx
  // metadata.
  explicit OrtModel(const std::string& path, const OrtOptions& options = {});
  ~OrtModel() override;

  std::string backend() const override;

  struct Impl;  // ONNX Runtime session and cached names (ort_model.cpp)

 protected:
  TensorMap run_checked(const TensorMap& feeds) override;
  std::unique_ptr<Stream> make_stream(int64_t batch) override;

 private:
  OrtModel(const std::string& path, std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rnnx
