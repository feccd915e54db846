// stream_npy MODEL.onnx IN.npy OUT.npy: feeds IN (batch 1) one time step at a time through an
// rnnx export, the hidden state carried by the stream, and writes the first data output of all
// steps, joined along time, to OUT. Everything about the model comes from its rnnx metadata.
#include <algorithm>
#include <iostream>

#include "rnnx/error.h"
#include "rnnx/npy.h"
#include "rnnx/ort_model.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: stream_npy MODEL.onnx IN.npy OUT.npy\n";
    return 1;
  }
  try {
    rnnx::OrtModel model(argv[1]);
    const rnnx::TensorSpec& in_spec = *model.signature().data_inputs().front();
    const rnnx::TensorSpec& out_spec = *model.signature().data_outputs().front();
    const rnnx::Tensor input = rnnx::read_npy(argv[2]);
    const int64_t steps = input.shape.at(in_spec.axis(rnnx::Dim::Kind::Time));

    // With batch 1, each time step is one contiguous frame, whichever of batch/time comes first.
    rnnx::Tensor frame(in_spec.shape_for(/*batch=*/1, /*time=*/1));
    const size_t frame_size = frame.data.size();
    rnnx::Tensor output(out_spec.shape_for(/*batch=*/1, steps));
    auto stream = model.stream(/*batch=*/1);
    for (int64_t t = 0; t < steps; ++t) {
      std::copy_n(input.data.begin() + t * frame_size, frame_size, frame.data.begin());
      const rnnx::Tensor& y = stream->step(frame).at(out_spec.name);
      std::copy(y.data.begin(), y.data.end(), output.data.begin() + t * y.data.size());
    }
    rnnx::write_npy(argv[3], output);
  } catch (const rnnx::Error& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
