// slm's one error style: every library function reports failure by throwing
// slm::Error (a std::runtime_error). The message is one line and carries its
// context: the file, the key or tensor, the byte offset, and what was expected.
// Tools catch it at main(), print "error: <message>" and exit non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace slm {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace slm
