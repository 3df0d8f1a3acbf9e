// A redis-server of a test's own, as a child process on 127.0.0.1 without persistence: tests that stop and
// start Redis cannot share the one the test command started.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace callrec::testing {

class redis_process {
 public:
  explicit redis_process(int port) : port_(port) { start(); }
  ~redis_process() { stop(); }
  redis_process(const redis_process&) = delete;
  redis_process& operator=(const redis_process&) = delete;
  void start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string p = std::to_string(port_);
      ::execlp("redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--loglevel", "warning", static_cast<char*>(nullptr));
      std::_Exit(127);
    }
  }
  // SIGSTOP / SIGCONT: the server keeps its connections but answers nothing until resumed.
  void pause() {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
  }
  void resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
  }
  void stop() {
    if (pid_ <= 0) return;
    resume();
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  pid_t pid_ = -1;
};

// A port for a test's redis-server: below the kernel's ephemeral range (32768 up, where clients' own ports
// come from), a range apart per process (by pid), the next one per call, and one that nothing listens on or
// holds now (a bind to it succeeds).
inline int free_port() {
  static int next = 20000 + static_cast<int>(::getpid() % 4000) * 3;
  for (;;) {
    const int port = next++;
    if (next >= 32000) next = 20000;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return port;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool taken = ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0;
    ::close(fd);
    if (!taken) return port;
  }
}

inline bool redis_installed() { return std::system("command -v redis-server >/dev/null 2>&1") == 0; }

}  // namespace callrec::testing
