// The command-line runner shared by rnnx-ort-run and rnnx-torch-run: read an input .npy, run the
// whole sequence or stream it --chunk N steps at a time, write every output as <name>.npy, and
// optionally time N calls (--bench N). Each backend's main() only says how to open a model and
// which format it runs; an export directory's manifest (rnnx.json) names that format's file.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rnnx/model.h"

namespace rnnx::tools {

struct RunnerOptions {
  std::string model;  // a model file, or an rnnx export directory
  std::string input;  // .npy of the data input
  std::vector<std::pair<std::string, std::string>> states;  // --state NAME=FILE.npy
  int64_t chunk = 0;                                        // 0: whole sequence
  std::string output_dir;
  int bench = 0;
  int warmup = 10;
  int threads = 0;
  std::string device = "cpu";
  bool onednn = true;         // resolved after parsing: off for streams unless --onednn
  bool onednn_given = false;  // --onednn or --no-onednn was on the command line
  bool tuned = false;  // --tuned: the artifact and threads `rnnx tune` recorded
};

struct Backend {
  std::string program;         // rnnx-ort-run
  std::string format;          // its artifact in an export directory's manifest: "onnx"
  std::string summary;         // one line for --help
  bool torch_options = false;  // accepts --device and --[no-]onednn
  bool onednn_option = false;  // accepts --[no-]onednn (libtorch's RNN kernels)
  // --tuned: the runtime name `rnnx tune` records for this runner, and the formats it reads
  // (f32 only). Empty: the runner takes no --tuned.
  std::string tuned_runtime;
  std::vector<std::string> tuned_formats;
  std::function<std::unique_ptr<Model>(const std::string& path, const RunnerOptions&)> open;
};

// Returns the process exit status: 0, or 1 after printing one "error: ..." line to stderr.
int runner_main(int argc, char** argv, const Backend& backend);

}  // namespace rnnx::tools
