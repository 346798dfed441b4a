// Noticing that an HTTP client went away while its request is still generating, so that the
// request is cancelled and its KV blocks freed within one step.
//
// A streamed response finds out when a write fails. A non-streamed one writes nothing until the
// end, and cpp-httplib 0.11 gives a handler neither its socket nor a way to ask whether the peer
// is still there. So the socket is found by its addresses (the request's local and remote
// address and port name exactly one TCP connection of this process) and polled.
#pragma once

#include <string>

namespace slm::server {

// The four addresses of the request's connection, as cpp-httplib reports them.
struct ConnectionAddresses {
  std::string local_address;
  int local_port = -1;
  std::string remote_address;
  int remote_port = -1;
};

class ClientConnection {
 public:
  // Looks the connection's socket up among this process's descriptors; when none matches (a
  // socket that is not TCP, or a test double), closed() is always false.
  explicit ClientConnection(const ConnectionAddresses& addresses);

  bool found() const { return socket_ >= 0; }
  // True once the peer has closed or reset the connection. Data the client sent after its
  // request (a pipelined next request) is left unread.
  bool closed() const;

 private:
  int socket_ = -1;  // owned by cpp-httplib, which closes it only after the handler returns
};

}  // namespace slm::server
