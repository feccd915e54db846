#include "rnnx/npy.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

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

// numpy.load's own limit on a header (numpy.lib.format, max_header_size): a longer one is
// refused before it is read, so a header length of 4 GB allocates nothing.
constexpr uint32_t kMaxHeaderSize = 10000;

// The header's Python dict literal, parsed as numpy parses it (ast.literal_eval, then checks):
// exactly the keys 'descr' (a string), 'fortran_order' (True or False) and 'shape' (a tuple of
// non-negative integers: "(2, 3)", "(5,)", "()"; "(5)" is an int, not a tuple). Anything else,
// or anything after the closing brace but whitespace, is an error: no key is taken from text
// that merely contains it.
struct Header {
  std::string descr;
  bool fortran_order = false;
  Shape shape;
};

class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& path) : text_(text), path_(path) {}

  Header parse() {
    Header header;
    std::set<std::string> seen;
    expect('{');
    skip_space();
    while (peek() != '}') {
      const std::string key = string_literal();
      if (!seen.insert(key).second) fail("key '" + key + "' given twice");
      expect(':');
      skip_space();
      if (key == "descr") {
        header.descr = string_literal();
      } else if (key == "fortran_order") {
        header.fortran_order = boolean();
      } else if (key == "shape") {
        header.shape = shape();
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++at_;
        skip_space();
      } else if (peek() != '}') {
        fail("expected ',' or '}'");
      }
    }
    ++at_;
    skip_space();
    if (at_ != text_.size()) fail("text after the dictionary");
    if (seen.size() != 3) fail("it needs the keys 'descr', 'fortran_order' and 'shape'");
    return header;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error("'" + path_ + "': malformed .npy header (" + why + ")");
  }
  char peek() const {
    if (at_ >= text_.size()) fail("it ends early");
    return text_[at_];
  }
  void skip_space() {
    while (at_ < text_.size() &&
           (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' || text_[at_] == '\r'))
      ++at_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++at_;
  }
  std::string string_literal() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    const size_t end = text_.find(quote, at_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string value = text_.substr(at_ + 1, end - at_ - 1);
    if (value.find('\\') != std::string::npos) fail("escape in a string");
    at_ = end + 1;
    return value;
  }
  bool boolean() {
    for (const auto& [word, value] : {std::pair{"True", true}, {"False", false}}) {
      const std::string literal = word;
      if (text_.compare(at_, literal.size(), literal) == 0) {
        at_ += literal.size();
        return value;
      }
    }
    fail("fortran_order is not True or False");
  }
  int64_t integer() {
    const size_t begin = at_;
    while (at_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[at_])))
      ++at_;
    const std::string digits = text_.substr(begin, at_ - begin);
    if (digits.empty()) fail("a shape entry is not a non-negative integer");
    if (digits.size() > 1 && digits[0] == '0') fail("a shape entry has a leading zero");
    if (digits.size() > 18) fail("a shape entry is too large");
    return std::stoll(digits);
  }
  Shape shape() {
    expect('(');
    Shape shape;
    bool trailing_comma = false;
    skip_space();
    while (peek() != ')') {
      shape.push_back(integer());
      skip_space();
      trailing_comma = false;
      if (peek() == ',') {
        ++at_;
        trailing_comma = true;
        skip_space();
      } else if (peek() != ')') {
        fail("expected ',' or ')' in the shape");
      }
    }
    ++at_;
    if (shape.size() == 1 && !trailing_comma) fail("shape (n) is an integer, not a tuple");
    return shape;
  }

  const std::string& text_;
  const std::string& path_;
  size_t at_ = 0;
};

}  // namespace

Tensor read_npy(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error("cannot open '" + path + "': no such file or not readable");
  file.seekg(0, std::ios::end);
  const auto file_size = static_cast<uint64_t>(std::max<std::streamoff>(file.tellg(), 0));
  file.seekg(0, std::ios::beg);
  char magic[kMagicSize + 2] = {};
  file.read(magic, kMagicSize + 2);
  if (!file || std::memcmp(magic, kMagic, kMagicSize) != 0) {
    throw Error("'" + path + "' is not a .npy file (no \\x93NUMPY magic)");
  }
  const int major = static_cast<unsigned char>(magic[kMagicSize]);
  const int minor = static_cast<unsigned char>(magic[kMagicSize + 1]);
  uint32_t header_size = 0;
  if (minor != 0 || major < 1 || major > 3) {
    throw Error("'" + path + "': unsupported .npy format version " + std::to_string(major) + "." +
                std::to_string(minor));
  }
  if (major == 1) {
    unsigned char bytes[2] = {};
    file.read(reinterpret_cast<char*>(bytes), 2);
    header_size = bytes[0] | (bytes[1] << 8);
  } else {
    unsigned char bytes[4] = {};
    file.read(reinterpret_cast<char*>(bytes), 4);
    header_size = bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (uint32_t(bytes[3]) << 24);
  }
  if (!file) throw Error("'" + path + "': truncated .npy header");
  if (header_size > kMaxHeaderSize) {
    throw Error("'" + path + "': .npy header of " + std::to_string(header_size) +
                " bytes, more than numpy reads (" + std::to_string(kMaxHeaderSize) + ")");
  }
  std::string text(header_size, '\0');
  file.read(text.data(), header_size);
  if (!file) throw Error("'" + path + "': truncated .npy header");
  const Header header = HeaderParser(text, path).parse();

  if (header.descr != "<f4" && !(header.descr == "=f4" && host_is_little_endian())) {
    throw Error("'" + path + "' holds dtype '" + header.descr +
                "'; expected float32 little endian ('<f4'): save it with "
                "numpy.save(path, array.astype(numpy.float32))");
  }
  if (header.fortran_order) {
    throw Error("'" + path +
                "' is in Fortran order; save a C-order array "
                "(numpy.ascontiguousarray)");
  }
  if (!host_is_little_endian()) throw Error("reading .npy files needs a little-endian host");

  // The data the shape declares must be in the file before anything is allocated for it; the
  // product is checked against overflow on the way.
  const uint64_t available = file_size - static_cast<uint64_t>(file.tellg());
  uint64_t count = 1;
  for (int64_t size : header.shape) {
    const auto dim = static_cast<uint64_t>(size);
    if (dim != 0 && count > std::numeric_limits<uint64_t>::max() / sizeof(float) / dim) {
      throw Error("'" + path + "': .npy shape " + to_string(header.shape) + " is too large");
    }
    count *= dim;
  }
  if (count * sizeof(float) > available) {
    throw Error("'" + path + "' is truncated: shape " + to_string(header.shape) + " needs " +
                std::to_string(count * sizeof(float)) + " bytes of data, found " +
                std::to_string(available));
  }
  Tensor tensor(header.shape);
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
