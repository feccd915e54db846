// A small JSON reader: enough for the rnnx metadata (TorchScript's rnnx.json extra file and the
// rnnx.signature key). Not a general-purpose library: numbers are doubles, no writer.
#pragma once

#include <string>
#include <vector>

namespace rnnx {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  // Throws Error("<what>: invalid JSON at offset N: ...") on malformed text.
  static Json parse(const std::string& text, const std::string& what = "JSON");

  Type type() const { return type_; }
  bool is_string() const { return type_ == Type::String; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  // Accessors throw Error when the value has another type.
  bool as_bool() const;
  double as_number() const;
  const std::string& as_string() const;
  const std::vector<Json>& items() const;          // array elements
  const std::vector<std::string>& keys() const;    // object keys, in document order
  const std::vector<Json>& values() const;         // object values, parallel to keys()
  const Json* find(const std::string& key) const;  // nullptr when absent (or not an object)

 private:
  friend class JsonParser;
  Type type_ = Type::Null;
  bool boolean_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<std::string> keys_;
  std::vector<Json> values_;  // array items or object values
};

}  // namespace rnnx
