// A redis-server of a test's own, as a child process on 127.0.0.1 without persistence: tests that stop and
// start Redis cannot share the one the test command started.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "support/free_port.h"

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

inline bool redis_installed() { return std::system("command -v redis-server >/dev/null 2>&1") == 0; }

}  // namespace callrec::testing
