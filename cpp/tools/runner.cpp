#include "runner.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <tuple>

#include "rnnx/error.h"
#include "rnnx/latency.h"
#include "rnnx/npy.h"

namespace rnnx::tools {

namespace {

namespace fs = std::filesystem;

void print_usage(const Backend& backend, std::ostream& out) {
  out << "usage: " << backend.program << " MODEL INPUT.npy [options]\n"
      << backend.summary << "\n\n"
      << "  MODEL                  the model file, or an rnnx export directory (runs the "
      << backend.format << " artifact its rnnx.json lists)\n"
      << "  INPUT.npy              the data input: float32, C order\n"
      << "  --state NAME=FILE.npy  an initial state (h0, c0); states not given start at zero\n"
      << "  --chunk N              stream N time steps at a time, carrying the states\n"
      << "  --output-dir DIR       write <output name>.npy for every output, final states "
         "included\n"
      << "  --bench N              time N calls (with --chunk: N steps) and print p50/p90/p99 "
         "latency in microseconds;\n"
      << "                         the last line of stdout is then one JSON object, "
         "{\"bench\": {...}}\n"
      << "  --warmup N             untimed calls before --bench (default 10)\n"
      << "  --threads N            intra-op threads (default: the backend's default)\n";
  if (!backend.tuned_runtime.empty()) {
    out << "  --tuned                MODEL is an export directory: run the artifact and threads "
           "`rnnx tune` recorded\n"
        << "                         for the input's batch (the nearest batch tuned), among "
           "its " << backend.tuned_runtime << " records\n";
  }
  if (backend.torch_options) out << "  --device DEVICE        cpu (default), cuda, cuda:N\n";
  if (backend.torch_options || backend.onednn_option) {
    out << "  --onednn, --no-onednn  oneDNN's RNN kernels or libtorch's own (default: oneDNN for "
           "whole sequences,\n"
        << "                         libtorch's own with --chunk: oneDNN costs ~1 ms a one-step "
           "call, they ~0.08)\n";
  }
  out << "  -h, --help             show this help\n";
}

// Thrown for a bad command line: reported like any error, with a pointer to --help.
struct UsageError : Error {
  using Error::Error;
};

// As rnnx/core/limits.py: more threads than this is a typo or a hostile manifest.
constexpr int64_t kMaxThreads = 1024;

int64_t parse_count(const std::string& option, const std::string& value, int64_t minimum,
                    int64_t maximum = std::numeric_limits<int>::max()) {
  size_t used = 0;
  long long number = 0;
  try {
    number = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size() || number < minimum || number > maximum) {
    throw UsageError(option + " expects an integer from " + std::to_string(minimum) + " to " +
                     std::to_string(maximum) + ", got '" + value + "'");
  }
  return number;
}

// Returns false when --help was asked for.
bool parse_arguments(int argc, char** argv, const Backend& backend, RunnerOptions& options) {
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") return false;
    if ((arg == "--no-onednn" || arg == "--onednn") &&
        (backend.torch_options || backend.onednn_option)) {
      options.onednn = arg == "--onednn";
      options.onednn_given = true;
      continue;
    }
    if (arg == "--tuned" && !backend.tuned_runtime.empty()) {
      options.tuned = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0 || arg == "--") {
      positional.push_back(arg);
      continue;
    }
    std::string value;
    const size_t equals = arg.find('=');
    if (equals != std::string::npos) {
      value = arg.substr(equals + 1);
      arg = arg.substr(0, equals);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      throw UsageError(arg + " needs a value");
    }
    if (arg == "--state") {
      const size_t at = value.find('=');
      if (at == std::string::npos || at == 0)
        throw UsageError("--state expects NAME=FILE.npy, got '" + value + "'");
      options.states.emplace_back(value.substr(0, at), value.substr(at + 1));
    } else if (arg == "--chunk") {
      options.chunk = parse_count(arg, value, 1);
    } else if (arg == "--output-dir") {
      options.output_dir = value;
    } else if (arg == "--bench") {
      options.bench = static_cast<int>(parse_count(arg, value, 1));
    } else if (arg == "--warmup") {
      options.warmup = static_cast<int>(parse_count(arg, value, 0));
    } else if (arg == "--threads") {
      options.threads = static_cast<int>(parse_count(arg, value, 1, kMaxThreads));
    } else if (arg == "--device" && backend.torch_options) {
      options.device = value;
    } else {
      throw UsageError("unknown option " + arg);
    }
  }
  if (positional.size() != 2) {
    throw UsageError("expected MODEL and INPUT.npy, got " + std::to_string(positional.size()) +
                     " positional argument(s)");
  }
  options.model = positional[0];
  options.input = positional[1];
  // Streams take libtorch's own kernels unless told otherwise: oneDNN's RNN primitives are
  // faster over whole sequences but set up per call (~1 ms a one-step chunk at batch 1).
  if (!options.onednn_given) options.onednn = options.chunk == 0;
  std::error_code ignored;
  if (options.tuned && !fs::is_directory(options.model, ignored)) {
    throw UsageError("--tuned needs an export directory as MODEL (its rnnx.json has the tuning), "
                     "got '" + options.model + "'");
  }
  return true;
}

// Whether `path` is `root` or below it (both canonical: no '..', no symlinks).
bool is_within(const fs::path& path, const fs::path& root) {
  auto mismatch = std::mismatch(root.begin(), root.end(), path.begin(), path.end());
  return mismatch.first == root.end();
}

// `path` resolved (symlinks included) must stay inside `directory` (rnnx.core.paths.inside).
void check_inside(const fs::path& path, const std::string& directory) {
  std::error_code failed;
  const fs::path real = fs::canonical(path, failed);
  const fs::path root = fs::canonical(directory, failed);
  if (failed || !is_within(real, root)) {
    throw Error("'" + path.string() + "' points outside the export directory '" + directory + "'");
  }
}

// As rnnx.core.manifest: a manifest is a few kB.
constexpr std::uintmax_t kMaxManifestBytes = 64 << 20;

// The export directory's manifest, rnnx.json: {"schema": 1, "artifacts": {"onnx": "model.onnx",
// ...}, ...}, its schema checked.
struct Manifest {
  std::string directory;
  std::string name;  // the rnnx.json path, for messages
  nlohmann::json data;
};

Manifest read_manifest(const std::string& directory) {
  const fs::path manifest_path = fs::path(directory) / "rnnx.json";
  const std::string manifest_name = manifest_path.string();
  std::error_code ignored;
  if (fs::exists(fs::symlink_status(manifest_path, ignored))) {
    check_inside(manifest_path, directory);  // a link to /dev/zero is no manifest
    if (!fs::is_regular_file(manifest_path, ignored)) {
      throw Error("'" + manifest_name + "' is not a regular file");
    }
    if (fs::file_size(manifest_path, ignored) > kMaxManifestBytes) {
      throw Error("'" + manifest_name + "' is larger than " + std::to_string(kMaxManifestBytes) +
                  " bytes");
    }
  }
  std::ifstream file(manifest_path, std::ios::binary);
  if (!file) {
    throw Error("export directory '" + directory +
                "' has no rnnx.json manifest: export it with rnnx, or pass the model file");
  }
  std::stringstream text;
  text << file.rdbuf();
  const nlohmann::json manifest = nlohmann::json::parse(text.str(), nullptr, false);
  if (!manifest.is_object()) throw Error("'" + manifest_name + "' is not a JSON object");
  auto schema = manifest.find("schema");
  if (schema == manifest.end()) {
    throw Error("'" + manifest_name +
                "' was written by an older rnnx (no schema): re-export it with this rnnx");
  }
  if (!schema->is_number_integer() || schema->get<int64_t>() != kMetadataSchema) {
    if (schema->is_number_integer() && schema->get<int64_t>() < kMetadataSchema) {
      throw Error("'" + manifest_name + "': schema " + schema->dump() +
                  " is not a schema version; this runner supports schema " +
                  std::to_string(kMetadataSchema));
    }
    throw Error("'" + manifest_name + "' was written by a newer rnnx (schema " + schema->dump() +
                "); this runner supports schema " + std::to_string(kMetadataSchema));
  }
  return {directory, manifest_name, manifest};
}

// A tensor name as one file name (rnnx.core.paths.file_name): [A-Za-z0-9_.-] kept, every other
// byte as %XX and a leading '.' as %2E, so a name from an artifact ("../x", "/etc/passwd", "..")
// never becomes a path component; the empty name is "%".
std::string file_name(const std::string& name) {
  static const char* hex = "0123456789ABCDEF";
  std::string encoded;
  for (size_t i = 0; i < name.size(); ++i) {
    const auto byte = static_cast<unsigned char>(name[i]);
    const bool plain = std::isalnum(byte) || byte == '_' || byte == '-' || (byte == '.' && i > 0);
    if (plain && byte < 0x80) {
      encoded += static_cast<char>(byte);
    } else {
      encoded += {'%', hex[byte >> 4], hex[byte & 0xF]};
    }
  }
  return encoded.empty() ? "%" : encoded;
}

// The path of `format`'s file inside the export directory, as its manifest lists it.
std::string artifact_path(const Manifest& m, const std::string& format) {
  const std::string& directory = m.directory;
  const std::string& manifest_name = m.name;
  const nlohmann::json& manifest = m.data;
  auto artifacts = manifest.find("artifacts");
  if (artifacts != manifest.end() && !artifacts->is_object()) {
    throw Error("'" + manifest_name + "': 'artifacts' is not an object of format -> file name");
  }
  if (artifacts == manifest.end() || !artifacts->contains(format)) {
    throw Error("export directory '" + directory + "' has no " + format +
                " artifact (export with --format " + format + ")");
  }
  const nlohmann::json& entry = (*artifacts)[format];
  if (!entry.is_string() || entry.get<std::string>().empty()) {
    throw Error("'" + manifest_name + "': artifacts." + format +
                " is not a file name: " + entry.dump());
  }
  // A plain relative path inside the directory: the manifest must not point the runner
  // anywhere else.
  const fs::path relative(entry.get<std::string>());
  bool escapes =
      relative.is_absolute() || relative.has_root_name() || relative.has_root_directory();
  for (const fs::path& part : relative)
    escapes |= part == "..";
  if (escapes) {
    throw Error("'" + manifest_name + "': artifacts." + format + " '" + relative.string() +
                "' is not a relative path inside the export directory");
  }
  const fs::path path = fs::path(directory) / relative;
  std::error_code ignored;
  if (!fs::is_regular_file(path, ignored)) {
    throw Error("export directory '" + directory + "' lists " + format + " artifact '" +
                relative.string() + "' but it is missing");
  }
  check_inside(path, directory);  // resolved, symlinks included, it stays inside
  return path.string();
}

std::string resolve_model(const std::string& path, const Backend& backend) {
  std::error_code ignored;
  if (!fs::is_directory(path, ignored)) return path;
  return artifact_path(read_manifest(path), backend.format);
}

// A `tuned` record of the manifest, checked as strictly as rnnx.load(dir, "auto") does (the
// manifest is input): {"batch", "time", "threads": integers >= 1, "target", "runtime": strings,
// "options": {"format"?, "precision"?: strings}}.
struct TunedRecord {
  std::string target, runtime, format, precision;
  int64_t batch = 0, time = 0, threads = 0;
};

TunedRecord tuned_record(const nlohmann::json& record, const Manifest& manifest) {
  const auto malformed = [&] {
    return Error("'" + manifest.name + "': a 'tuned' record is malformed: re-tune (rnnx tune " +
                 manifest.directory + ")");
  };
  if (!record.is_object()) throw malformed();
  TunedRecord parsed;
  for (auto [key, field] : {std::pair{"target", &parsed.target}, {"runtime", &parsed.runtime}}) {
    if (!record.contains(key) || !record[key].is_string()) throw malformed();
    *field = record[key].get<std::string>();
  }
  for (auto [key, field, maximum] : {std::tuple{"batch", &parsed.batch, int64_t{2147483647}},
                                     {"time", &parsed.time, int64_t{2147483647}},
                                     {"threads", &parsed.threads, kMaxThreads}}) {
    if (!record.contains(key) || !record.at(key).is_number_integer() ||
        (record.at(key).is_number_unsigned() &&
         record.at(key).get<uint64_t>() > static_cast<uint64_t>(maximum)) ||
        record.at(key).get<int64_t>() < 1 || record.at(key).get<int64_t>() > maximum) {
      throw Error("'" + manifest.name + "': a 'tuned' record's '" + key +
                  "' must be an integer from 1 to " + std::to_string(maximum) + ", got " +
                  (record.contains(key) ? record.at(key).dump().substr(0, 40) : "nothing") +
                  ": re-tune (rnnx tune " + manifest.directory + ")");
    }
    *field = record.at(key).get<int64_t>();
  }
  nlohmann::json options = record.value("options", nlohmann::json::object());
  if (options.is_null()) options = nlohmann::json::object();
  if (!options.is_object()) throw malformed();
  for (const auto& [key, value] : options.items()) {
    if ((key != "format" && key != "precision") || !value.is_string()) throw malformed();
    (key == "format" ? parsed.format : parsed.precision) = value.get<std::string>();
  }
  return parsed;
}

// --tuned: the record for the input's batch that this runner can run, picked by the rule of
// rnnx.load(dir, "auto", batch=N): the nearest batch tuned, then the longest time, then the first.
// Returns its artifact's path and sets options.threads from it unless --threads was given.
std::string tuned_model(RunnerOptions& options, const Backend& backend) {
  const Manifest manifest = read_manifest(options.model);
  const nlohmann::json& data = manifest.data;
  if (!data.contains("tuned") || !data["tuned"].is_array() || data["tuned"].empty()) {
    throw Error("'" + options.model + "' has no tuning: run `rnnx tune " + options.model +
                "` first, or pass no --tuned");
  }
  if (!data.contains("signature")) throw Error("'" + manifest.name + "' has no signature");
  // The manifest's signature is the one the artifacts carry as rnnx.signature metadata.
  const Signature signature =
      Signature::from_metadata({{"rnnx.schema", std::to_string(kMetadataSchema)},
                                {"rnnx.signature", data["signature"].dump()}},
                               manifest.name);
  if (signature.data_inputs().size() != 1) {
    throw Error("'" + manifest.name + "': the model takes " +
                std::to_string(signature.data_inputs().size()) +
                " data inputs; this runner feeds one");
  }
  const TensorSpec& spec = *signature.data_inputs().front();
  const Tensor input = read_npy(options.input);  // read again to run: the batch picks the model
  AxisSizes sizes;
  try {
    Signature::validate(spec, input.shape, sizes);
  } catch (const InputError& error) {
    throw InputError("'" + options.input + "': " + error.what());
  }
  const int batch_axis = spec.axis(Dim::Kind::Batch);
  const int64_t batch = batch_axis >= 0 ? input.shape[batch_axis] : 1;

  const auto closer = [batch](const TunedRecord& a, const TunedRecord& b) {
    return std::pair{std::llabs(a.batch - batch), -a.time} <
           std::pair{std::llabs(b.batch - batch), -b.time};
  };
  // The choice for this batch is the one rnnx.load(dir, "auto") would open; when another
  // runtime won it, this runner has no tuned choice (tune records only the winner of a shape).
  std::optional<TunedRecord> chosen;
  for (const nlohmann::json& record : data["tuned"]) {
    const TunedRecord parsed = tuned_record(record, manifest);
    if (!chosen || closer(parsed, *chosen)) chosen = parsed;
  }
  const std::string format = chosen->format.empty() ? backend.format : chosen->format;
  const auto& formats = backend.tuned_formats;
  const bool runs = chosen->runtime == backend.tuned_runtime &&
                    (chosen->precision.empty() || chosen->precision == "f32") &&
                    std::find(formats.begin(), formats.end(), format) != formats.end();
  if (!runs) {
    throw Error("'" + options.model + "': rnnx tune chose " + chosen->target + " for batch " +
                std::to_string(chosen->batch) + ", which " + backend.program +
                " cannot run: run it in Python with rnnx.load(dir, \"auto\"), or pass no --tuned");
  }
  const std::string path = artifact_path(manifest, format);
  if (options.threads == 0) options.threads = static_cast<int>(chosen->threads);
  std::cerr << "tuned: " << chosen->target << ", " << options.threads
            << (options.threads == 1 ? " thread" : " threads") << " (tuned for batch "
            << chosen->batch << " x time " << chosen->time << ")\n";
  return path;
}

using Clock = std::chrono::steady_clock;

double microseconds_since(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

struct Run {
  TensorMap outputs;           // by output name, final states included
  std::vector<Tensor> chunks;  // the input split for streaming (empty for a whole run)
};

Run run_whole(Model& model, const TensorMap& feeds) {
  return {model.run(feeds), {}};
}

Run run_stream(Model& model, const TensorSpec& input_spec, const Tensor& input,
               const TensorMap& states, int64_t chunk) {
  const Signature& signature = model.signature();
  const int batch_axis = input_spec.axis(Dim::Kind::Batch);
  const int time_axis = input_spec.axis(Dim::Kind::Time);
  if (time_axis < 0) throw Error("input " + input_spec.describe() + " has no time axis to chunk");
  auto stream = model.stream(input.shape[batch_axis]);
  if (!states.empty()) {
    TensorMap initial = stream->state();  // zeros for the states not given
    for (const auto& [name, tensor] : states)
      initial[name] = tensor;
    stream->set_state(initial);
  }
  Run run;
  const int64_t steps = input.shape[time_axis];
  for (int64_t start = 0; start < steps; start += chunk) {
    run.chunks.push_back(slice(input, time_axis, start, std::min(chunk, steps - start)));
  }
  std::map<std::string, std::vector<Tensor>> pieces;
  for (const Tensor& piece : run.chunks) {
    for (const auto& [name, tensor] : stream->step(piece))
      pieces[name].push_back(tensor);
  }
  for (auto& [name, parts] : pieces) {
    run.outputs[name] = concat(parts, signature.output(name).axis(Dim::Kind::Time));
  }
  TensorMap final_states = stream->state();
  for (const StatePair& pair : signature.state_pairs()) {
    run.outputs[pair.output] = std::move(final_states.at(pair.input));
  }
  return run;
}

// The machine-readable twin of the human bench line: the last line of stdout, one JSON object.
void print_bench_json(const LatencySummary& summary, int64_t chunk) {
  nlohmann::ordered_json stats = {{"calls", summary.calls},   {"chunk", nullptr},
                                  {"p50_us", summary.p50_us}, {"p90_us", summary.p90_us},
                                  {"p99_us", summary.p99_us}, {"mean_us", summary.mean_us},
                                  {"min_us", summary.min_us}, {"max_us", summary.max_us}};
  if (chunk > 0) stats["chunk"] = chunk;
  std::cout << nlohmann::ordered_json{{"bench", stats}}.dump() << "\n";
}

void bench_whole(Model& model, const TensorMap& feeds, const RunnerOptions& options) {
  for (int i = 0; i < options.warmup; ++i)
    model.run(feeds);
  std::vector<double> latencies;
  latencies.reserve(options.bench);
  for (int i = 0; i < options.bench; ++i) {
    const auto start = Clock::now();
    model.run(feeds);
    latencies.push_back(microseconds_since(start));
  }
  const LatencySummary summary = summarize_latency(std::move(latencies));
  std::cout << "bench: " << options.bench << " whole-sequence calls: " << summary.to_string()
            << "\n";
  print_bench_json(summary, 0);
}

void bench_stream(Model& model, const TensorSpec& input_spec, const Tensor& input,
                  const std::vector<Tensor>& chunks, const RunnerOptions& options) {
  auto stream = model.stream(input.shape[input_spec.axis(Dim::Kind::Batch)]);
  size_t next = 0;
  auto chunk = [&]() -> const Tensor& {
    if (next == chunks.size()) {  // start the sequence again (untimed)
      next = 0;
      stream->reset();
    }
    return chunks[next++];
  };
  for (int i = 0; i < options.warmup; ++i)
    stream->step(chunk());
  std::vector<double> latencies;
  latencies.reserve(options.bench);
  for (int i = 0; i < options.bench; ++i) {
    const Tensor& piece = chunk();
    const auto start = Clock::now();
    stream->step(piece);
    latencies.push_back(microseconds_since(start));
  }
  const LatencySummary summary = summarize_latency(std::move(latencies));
  std::cout << "bench: " << options.bench << " stream steps of chunk " << options.chunk << ": "
            << summary.to_string() << "\n";
  print_bench_json(summary, options.chunk);
}

void run_command(RunnerOptions options, const Backend& backend) {
  const std::string path =
      options.tuned ? tuned_model(options, backend) : resolve_model(options.model, backend);
  std::unique_ptr<Model> model = backend.open(path, options);
  const Signature& signature = model->signature();
  if (signature.data_inputs().size() != 1) {
    throw Error("'" + path + "' takes " + std::to_string(signature.data_inputs().size()) +
                " data inputs; this runner feeds one");
  }
  const TensorSpec& input_spec = *signature.data_inputs().front();
  if (options.chunk > 0) {  // refuse before reading any input
    try {
      model->check_streamable();
    } catch (const Error& error) {
      throw Error(std::string(error.what()) + " (run it without --chunk)");
    }
  }

  const Tensor input = read_npy(options.input);
  AxisSizes sizes;
  try {
    Signature::validate(input_spec, input.shape, sizes);
  } catch (const InputError& error) {
    throw InputError("'" + options.input + "': " + error.what());
  }
  TensorMap feeds{{input_spec.name, input}};
  TensorMap states;
  for (const auto& [name, file] : options.states) {
    if (!signature.is_state_input(name)) {
      std::string names;
      for (const TensorSpec* spec : signature.state_inputs())
        names += (names.empty() ? "" : ", ") + spec->name;
      throw UsageError("--state " + name + ": not a state input of this model (its states: " +
                       (names.empty() ? "none" : names) + ")");
    }
    Tensor state = read_npy(file);
    AxisSizes state_sizes = sizes;
    try {
      Signature::validate(signature.input(name), state.shape, state_sizes);
    } catch (const InputError& error) {
      throw InputError("'" + file + "': " + error.what());
    }
    states[name] = state;
    feeds[name] = std::move(state);
  }

  std::cout << backend.program << ": " << path << " (" << model->backend() << "), "
            << input_spec.name << " " << to_string(input.shape)
            << (options.chunk > 0 ? ", streaming chunks of " + std::to_string(options.chunk)
                                  : std::string(", whole sequence"))
            << (backend.torch_options || backend.onednn_option
                    ? std::string(options.onednn ? ", oneDNN on" : ", oneDNN off")
                    : std::string())
            << "\n";
  const Run run = options.chunk > 0 ? run_stream(*model, input_spec, input, states, options.chunk)
                                    : run_whole(*model, feeds);

  if (!options.output_dir.empty()) fs::create_directories(options.output_dir);
  for (const TensorSpec& spec : signature.outputs()) {
    const Tensor& tensor = run.outputs.at(spec.name);
    std::cout << spec.name << " " << to_string(tensor.shape);
    if (!options.output_dir.empty()) {
      const std::string file =
          (fs::path(options.output_dir) / (file_name(spec.name) + ".npy")).string();
      write_npy(file, tensor);
      std::cout << " -> " << file;
    }
    std::cout << "\n";
  }
  if (options.bench > 0) {
    if (options.chunk > 0) {
      bench_stream(*model, input_spec, input, run.chunks, options);
    } else {
      bench_whole(*model, feeds, options);
    }
  }
}

// One line for the terminal: newlines as spaces, other control characters (an escape sequence
// in a tensor name from an artifact) as \xNN.
std::string one_line(const std::string& message) {
  static const char* hex = "0123456789abcdef";
  std::string line;
  for (char c : message) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\r') {
      line += ' ';
    } else if (byte < 0x20 || byte == 0x7f) {
      line += {'\\', 'x', hex[byte >> 4], hex[byte & 0xF]};
    } else {
      line += c;
    }
  }
  return line;
}

}  // namespace

int runner_main(int argc, char** argv, const Backend& backend) {
  RunnerOptions options;
  try {
    if (!parse_arguments(argc, argv, backend, options)) {
      print_usage(backend, std::cout);
      return 0;
    }
    run_command(options, backend);
    return 0;
  } catch (const UsageError& error) {
    std::cerr << "error: " << one_line(error.what()) << " (see " << backend.program << " --help)\n";
  } catch (const std::exception& error) {
    std::cerr << "error: " << one_line(error.what()) << "\n";
  }
  return 1;
}

}  // namespace rnnx::tools
