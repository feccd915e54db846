// Streams an rnnx ONNX export chunk by chunk, the way a live application feeds audio frames:
//   rnnx-stream-example model.onnx [steps]
// The model's names, states and layout all come from its rnnx metadata.
#include <iostream>

#include "rnnx/error.h"
#include "rnnx/ort_model.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: rnnx-stream-example MODEL.onnx [steps]\n";
    return 1;
  }
  try {
    rnnx::OrtModel model(argv[1]);
    const rnnx::TensorSpec& input = *model.signature().data_inputs().front();
    auto stream = model.stream(/*batch=*/1);

    const int steps = argc > 2 ? std::stoi(argv[2]) : 10;
    rnnx::Tensor frame(input.shape_for(/*batch=*/1, /*time=*/1));  // one time step
    for (int t = 0; t < steps; ++t) {
      for (size_t i = 0; i < frame.data.size(); ++i)
        frame.data[i] = float((t + i) % 7) / 7.0f;
      const rnnx::TensorMap& out = stream->step(frame);  // states carried to the next step
      const rnnx::Tensor& y = out.begin()->second;
      std::cout << "step " << t << ": " << out.begin()->first << " " << rnnx::to_string(y.shape)
                << " first value " << y.data.front() << "\n";
    }
    rnnx::TensorMap saved = stream->state();  // h0 (and c0): resume later with set_state
    stream->reset();                          // zero states: a new sequence
    stream->set_state(saved);
  } catch (const rnnx::Error& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
