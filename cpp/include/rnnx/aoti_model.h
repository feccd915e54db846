// An rnnx pt2 export (model.pt2: torch.export + AOTInductor) run with libtorch's
// torch::inductor::AOTIModelPackageLoader. The package holds the compiled model and its weights;
// the rnnx metadata is the package's AOTInductor metadata. No TorchScript is involved. libtorch
// headers stay out of this header, so code using AotiModel compiles quickly and in C++17.
#pragma once

#include <memory>
#include <string>

#include "rnnx/model.h"

namespace rnnx {

struct AotiOptions {
  int threads = 0;     // intra-op threads (process-wide in libtorch); 0: its default
  // oneDNN kernels for the packages' aten::lstm/gru/rnn calls (AOTInductor runs them as ATen
  // fallback kernels), process-wide: as TorchOptions::onednn
  bool onednn = true;
};

class AotiModel : public Model {
 public:
  // Throws Error when the file is missing, is not an AOTInductor package for this machine's CPU,
  // or has no rnnx metadata.
  explicit AotiModel(const std::string& path, const AotiOptions& options = {});
  ~AotiModel() override;

  std::string backend() const override;

  struct Impl;  // the package loader (aoti_model.cpp)

 protected:
  TensorMap run_checked(const TensorMap& feeds) override;
  std::unique_ptr<Stream> make_stream(int64_t batch) override;

 private:
  AotiModel(const std::string& path, std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rnnx
