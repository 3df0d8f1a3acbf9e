// A plain TCP connection to the test server for byte-level tests (pipelining, broken or slow clients,
// plaintext on a TLS port, hand-made HTTP/2 frames). Every read gives up after 20 s, so a server that
// never answers or never closes fails the test instead of hanging it.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace callrec::testing {

class raw_socket {
 public:
  explicit raw_socket(std::uint16_t port) : sock_(ioc_) {
    sock_.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  }
  void send(const std::string& bytes) { boost::asio::write(sock_, boost::asio::buffer(bytes)); }

  // Reads until the peer closes (or `limit` bytes); returns what arrived.
  std::string read_all(std::size_t limit = 1 << 20) {
    return read_while([&](const std::string& out) { return out.size() < limit; }, "close the connection");
  }
  // Reads until `needle` has arrived (or the peer closed).
  std::string read_until(const std::string& needle) {
    return read_while([&](const std::string& out) { return out.find(needle) == std::string::npos; },
                      "send '" + needle + "'");
  }
  // Reads until `count` complete responses with bodies arrived (Content-Length framed).
  std::string read_responses(int count) {
    auto complete = [count](const std::string& out) {
      int seen = 0;
      std::size_t pos = 0;
      while (seen < count) {
        auto end = out.find("\r\n\r\n", pos);
        if (end == std::string::npos) return false;
        auto cl = out.find("Content-Length: ", pos);
        if (cl == std::string::npos || cl > end) return false;
        std::size_t len = std::stoul(out.substr(cl + 16));
        if (out.size() < end + 4 + len) return false;
        pos = end + 4 + len;
        ++seen;
      }
      return true;
    };
    return read_while([&](const std::string& out) { return !complete(out); },
                      "send " + std::to_string(count) + " responses");
  }

 private:
  // Appends what arrives while `more(out)` holds and the peer has not closed.
  std::string read_while(const std::function<bool(const std::string&)>& more, const std::string& what) {
    std::string out;
    char buf[8192];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (more(out)) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{sock_.native_handle(), POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        ADD_FAILURE() << "the server did not " << what << " within 20 s";
        break;
      }
      const ssize_t n = ::recv(sock_.native_handle(), buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket sock_;
};

}  // namespace callrec::testing
