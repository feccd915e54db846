// An rnnx TorchScript export run with libtorch (torch::jit::load). The rnnx metadata travels in
// the archive's rnnx_metadata.json extra file. libtorch headers stay out of this header, so code
// using TorchModel compiles quickly and in C++17.
#pragma once

#include <memory>
#include <string>

#include "rnnx/model.h"

namespace rnnx {

struct TorchOptions {
  std::string device = "cpu";  // a torch device: "cpu", "cuda", "cuda:1"
  int threads = 0;             // intra-op threads (process-wide in libtorch); 0: its default
  // oneDNN (mkldnn) kernels for aten::lstm/gru/rnn, process-wide like `threads`. They are about
  // twice as fast on whole sequences but several times slower per call on one-step chunks at
  // batch 1 (LSTM 80->256 x2: ~360 us vs ~140 us), where false is the better choice (the
  // runners choose it for --chunk unless given --onednn).
  bool onednn = true;
};

class TorchModel : public Model {
 public:
  // Throws Error when the file is missing, libtorch cannot load it, or it has no rnnx metadata.
  explicit TorchModel(const std::string& path, const TorchOptions& options = {});
  ~TorchModel() override;

  std::string backend() const override;

  struct Impl;  // the torch::jit::Module and device (torch_model.cpp)

 protected:
  TensorMap run_checked(const TensorMap& feeds) override;
  std::unique_ptr<Stream> make_stream(int64_t batch) override;

 private:
  TorchModel(const std::string& path, std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rnnx
