// Test support: a loopback TCP port for a server a test starts itself (a child process, a redis-server).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace callrec::testing {

// Below the kernel's ephemeral range (32768 up, where clients' own ports come from), a range apart per process
// (by pid), the next one per call, and one that nothing listens on or holds now (a bind to it succeeds).
inline std::uint16_t free_port() {
  static int next = 20000 + static_cast<int>(::getpid() % 4000) * 3;
  for (;;) {
    const int port = next++;
    if (next >= 32000) next = 20000;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return static_cast<std::uint16_t>(port);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool taken = ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0;
    ::close(fd);
    if (!taken) return static_cast<std::uint16_t>(port);
  }
}

}  // namespace callrec::testing
