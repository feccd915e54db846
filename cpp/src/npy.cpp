#include "rnnx/npy.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

#include "rnnx/error.h"

namespace rnnx {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

bool host_is_little_endian() {
  const uint16_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

// The value of `key` in the header's Python dict literal, e.g. "'<f4'" or "(2, 3)".
std::string header_value(const std::string& header, const std::string& key,
                         const std::string& path) {
  const std::string quoted = "'" + key + "'";
  size_t at = header.find(quoted);
  if (at == std::string::npos) throw Error("'" + path + "': .npy header has no " + quoted);
  at = header.find(':', at + quoted.size());
  if (at == std::string::npos) throw Error("'" + path + "': malformed .npy header");
  ++at;
  while (at < header.size() && header[at] == ' ')
    ++at;
  size_t end = at;
  if (at < header.size() && header[at] == '(') {
    end = header.find(')', at);
    if (end == std::string::npos) throw Error("'" + path + "': malformed .npy shape");
    ++end;
  } else {
    while (end < header.size() && header[end] != ',' && header[end] != '}')
      ++end;
  }
  std::string value = header.substr(at, end - at);
  while (!value.empty() && value.back() == ' ')
    value.pop_back();
  return value;
}

Shape parse_shape(const std::string& text, const std::string& path) {
  // "(2, 3)", "(5,)" or "()"
  Shape shape;
  std::string inner = text.substr(1, text.size() - 2);
  std::stringstream parts(inner);
  std::string part;
  while (std::getline(parts, part, ',')) {
    size_t begin = part.find_first_not_of(' ');
    if (begin == std::string::npos) continue;
    size_t end = part.find_last_not_of(' ');
    part = part.substr(begin, end - begin + 1);
    try {
      size_t used = 0;
      long long size = std::stoll(part, &used);
      if (used != part.size() || size < 0) throw std::invalid_argument(part);
      shape.push_back(size);
    } catch (const std::exception&) {
      throw Error("'" + path + "': malformed .npy shape " + text);
    }
  }
  return shape;
}

}  // namespace

Tensor read_npy(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error("cannot open '" + path + "': no such file or not readable");
  char magic[kMagicSize + 2] = {};
  file.read(magic, kMagicSize + 2);
  if (!file || std::memcmp(magic, kMagic, kMagicSize) != 0) {
    throw Error("'" + path + "' is not a .npy file (no \\x93NUMPY magic)");
  }
  const int major = static_cast<unsigned char>(magic[kMagicSize]);
  uint32_t header_size = 0;
  if (major == 1) {
    unsigned char bytes[2] = {};
    file.read(reinterpret_cast<char*>(bytes), 2);
    header_size = bytes[0] | (bytes[1] << 8);
  } else if (major == 2 || major == 3) {
    unsigned char bytes[4] = {};
    file.read(reinterpret_cast<char*>(bytes), 4);
    header_size = bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (uint32_t(bytes[3]) << 24);
  } else {
    throw Error("'" + path + "': unsupported .npy format version " + std::to_string(major));
  }
  std::string header(header_size, '\0');
  file.read(header.data(), header_size);
  if (!file) throw Error("'" + path + "': truncated .npy header");

  const std::string descr = header_value(header, "descr", path);
  if (descr != "'<f4'" && !(descr == "'=f4'" && host_is_little_endian())) {
    throw Error("'" + path + "' holds dtype " + descr +
                "; expected float32 little endian ('<f4'): save it with "
                "numpy.save(path, array.astype(numpy.float32))");
  }
  if (header_value(header, "fortran_order", path) != "False") {
    throw Error("'" + path +
                "' is in Fortran order; save a C-order array "
                "(numpy.ascontiguousarray)");
  }
  if (!host_is_little_endian()) throw Error("reading .npy files needs a little-endian host");

  Tensor tensor(parse_shape(header_value(header, "shape", path), path));
  const auto bytes = static_cast<std::streamsize>(tensor.data.size() * sizeof(float));
  file.read(reinterpret_cast<char*>(tensor.data.data()), bytes);
  if (file.gcount() != bytes) {
    throw Error("'" + path + "' is truncated: shape " + to_string(tensor.shape) + " needs " +
                std::to_string(bytes) + " bytes of data, found " + std::to_string(file.gcount()));
  }
  return tensor;
}

void write_npy(const std::string& path, const Tensor& tensor) {
  if (element_count(tensor.shape) != tensor.numel()) {
    throw Error("cannot write '" + path + "': shape " + to_string(tensor.shape) +
                " does not match " + std::to_string(tensor.numel()) + " values");
  }
  if (!host_is_little_endian()) throw Error("writing .npy files needs a little-endian host");
  std::string shape = "(";
  for (size_t i = 0; i < tensor.shape.size(); ++i) {
    shape += std::to_string(tensor.shape[i]) + (tensor.shape.size() == 1 ? "," : "");
    if (i + 1 < tensor.shape.size()) shape += ", ";
  }
  shape += ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
  const size_t unpadded = kMagicSize + 2 + 2 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';

  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) throw Error("cannot write '" + path + "'");
  file.write(kMagic, kMagicSize);
  const char version[2] = {1, 0};
  file.write(version, 2);
  const unsigned char length[2] = {static_cast<unsigned char>(header.size() & 0xFF),
                                   static_cast<unsigned char>(header.size() >> 8)};
  file.write(reinterpret_cast<const char*>(length), 2);
  file.write(header.data(), static_cast<std::streamsize>(header.size()));
  file.write(reinterpret_cast<const char*>(tensor.data.data()),
             static_cast<std::streamsize>(tensor.data.size() * sizeof(float)));
  if (!file) throw Error("cannot write '" + path + "': write failed");
}

}  // namespace rnnx
