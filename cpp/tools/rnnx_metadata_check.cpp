// rnnx-metadata-check FILE.json: reads a JSON object of rnnx metadata (key -> string value,
// exactly what an ONNX model's metadata_props hold) with Signature::from_metadata, the reader
// every C++ backend uses, and prints what it understood as one line of canonical JSON:
//   {"schema": 1, "version": "...", "signature": {"inputs": [{"name", "dims", "dtype"}, ...],
//    "outputs": [...], "state_pairs": [["h_n", "h0"]], "streamable": true}}
// or one "error: ..." line on stderr and exit status 1. The tests hold it against the Python
// reader on shared fixture files, so the two readers of the contract cannot drift apart.
// rnnx-metadata-check --npy FILE.npy: reads the file with the runners' .npy reader and prints
// {"shape": [...], "sum": ...}, so the tests hold that reader against numpy's too.
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "rnnx/error.h"
#include "rnnx/npy.h"
#include "rnnx/signature.h"

namespace {

using nlohmann::json;

std::map<std::string, std::string> read_metadata(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw rnnx::Error("cannot read '" + path + "'");
  std::stringstream text;
  text << file.rdbuf();
  const json parsed = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) {
    throw rnnx::Error("'" + path + "' is not a JSON object of metadata keys to strings");
  }
  std::map<std::string, std::string> metadata;
  for (const auto& [key, value] : parsed.items()) {
    if (!value.is_string()) {
      throw rnnx::Error("'" + path + "': metadata key '" + key + "' is not a string");
    }
    metadata[key] = value.get<std::string>();
  }
  return metadata;
}

json tensors(const std::vector<rnnx::TensorSpec>& specs) {
  json list = json::array();
  for (const rnnx::TensorSpec& spec : specs) {
    json dims = json::array();
    for (const rnnx::Dim& dim : spec.dims) {
      if (dim.symbolic()) {
        dims.push_back(dim.axis_name());
      } else {
        dims.push_back(dim.size);
      }
    }
    list.push_back({{"name", spec.name}, {"dims", dims}, {"dtype", spec.dtype}});
  }
  return list;
}

json canonical(const rnnx::Signature& signature) {
  json pairs = json::array();
  for (const rnnx::StatePair& pair : signature.state_pairs())
    pairs.push_back(json::array({pair.output, pair.input}));
  return {{"schema", signature.schema()},
          {"version", signature.version()},
          {"signature",
           {{"inputs", tensors(signature.inputs())},
            {"outputs", tensors(signature.outputs())},
            {"state_pairs", pairs},
            {"streamable", signature.streamable()}}}};
}

std::string one_line(std::string message) {
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return message;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string arg = argc == 2 ? argv[1] : "";
  if (arg == "-h" || arg == "--help") {
    std::cout << "usage: rnnx-metadata-check FILE.json | --npy FILE.npy\n"
                 "Parse a JSON object of rnnx metadata (metadata_props: key -> string) and print "
                 "the signature as one line of canonical JSON; or read a float32 .npy file and "
                 "print its shape.\n";
    return 0;
  }
  if (argc == 3 && std::string(argv[1]) == "--npy") {
    try {
      const rnnx::Tensor tensor = rnnx::read_npy(argv[2]);
      double sum = 0;
      for (float value : tensor.data)
        sum += value;
      std::cout << json{{"shape", tensor.shape}, {"sum", sum}}.dump() << "\n";
      return 0;
    } catch (const std::exception& error) {
      std::cerr << "error: " << one_line(error.what()) << "\n";
      return 1;
    }
  }
  if (argc != 2) {
    std::cerr << "error: expected one argument, FILE.json (see rnnx-metadata-check --help)\n";
    return 1;
  }
  try {
    const rnnx::Signature signature = rnnx::Signature::from_metadata(read_metadata(arg), arg);
    std::cout << canonical(signature).dump() << "\n";
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "error: " << one_line(error.what()) << "\n";
  }
  return 1;
}
