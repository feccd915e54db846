// Errors: every expected failure (a missing file, a model without rnnx metadata, an input of the
// wrong shape) is thrown as an rnnx::Error whose message is one line naming the file, input or
// expected shape. Library code never exits; applications catch rnnx::Error once.
#pragma once

#include <stdexcept>
#include <string>

namespace rnnx {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An input given to a model or stream does not match what the model expects.
class InputError : public Error {
 public:
  using Error::Error;
};

}  // namespace rnnx
