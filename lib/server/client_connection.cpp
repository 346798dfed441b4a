#include "lib/server/client_connection.hpp"

#include <dirent.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdlib>

namespace slm::server {

namespace {

// Address and port as cpp-httplib writes them (getnameinfo with NI_NUMERICHOST).
bool address_matches(const sockaddr_storage& address, socklen_t length, const std::string& host, int port) {
  char host_text[NI_MAXHOST], port_text[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&address), length, host_text, sizeof host_text, port_text,
                  sizeof port_text, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return false;
  return std::atoi(port_text) == port && host == host_text;
}

bool is_connection(int fd, const ConnectionAddresses& addresses) {
  sockaddr_storage local{}, remote{};
  socklen_t local_length = sizeof local, remote_length = sizeof remote;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_length) != 0) return false;  // not a socket
  if (local.ss_family != AF_INET && local.ss_family != AF_INET6) return false;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &remote_length) != 0) return false;  // a listener
  return address_matches(local, local_length, addresses.local_address, addresses.local_port) &&
         address_matches(remote, remote_length, addresses.remote_address, addresses.remote_port);
}

}  // namespace

ClientConnection::ClientConnection(const ConnectionAddresses& addresses) {
  if (addresses.local_port < 0 || addresses.remote_port < 0) return;
  DIR* descriptors = opendir("/proc/self/fd");
  if (descriptors == nullptr) return;
  while (const dirent* entry = readdir(descriptors)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == dirfd(descriptors)) continue;
    if (is_connection(int(fd), addresses)) {
      socket_ = int(fd);
      break;
    }
  }
  closedir(descriptors);
}

bool ClientConnection::closed() const {
  if (socket_ < 0) return false;
  pollfd watched{socket_, POLLIN | POLLRDHUP, 0};
  if (poll(&watched, 1, 0) <= 0) return false;
  if (watched.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
  char byte;
  // Readable: either data (alive) or the end of the stream (closed).
  return recv(socket_, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

}  // namespace slm::server
