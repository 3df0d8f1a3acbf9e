// Expected failures as values: one project error enum mapped once to the v1 wire codes (SPEC section 1).
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace callrec {

// What went wrong, as the project names it. The v1 wire code of each is wire_code(); most values are the
// wire codes themselves. Three internal failures answer 101001 ("retry") alike but are told apart in logs and
// metrics: internal (a bug or corrupt data), unavailable (the store cannot be reached or refused the write:
// disk full, I/O error, connection lost) and timeout (the request deadline passed first).
enum class errc : int {
  ok = 0,
  not_entitled = 50001,
  invalid_param = 70001,
  usersig_invalid = 70002,
  usersig_expired = 70003,
  not_admin = 70004,
  rate_limited = 70005,
  bad_body = 70009,
  internal = 101001,
  not_found = 101050,
  unavailable = 1101001,
  timeout = 2101001,
};

constexpr int wire_code(errc e) noexcept {
  switch (e) {
    case errc::unavailable:
    case errc::timeout:
      return 101001;
    default:
      return static_cast<int>(e);
  }
}

// A failure with a message for the caller: says precisely what was wrong, never internal detail. `detail`
// holds what only the operator may see (a database's own error text, a file name): the access log keeps it,
// the answer never carries it.
struct error {
  errc code = errc::internal;
  std::string message;
  std::string detail;
};

inline error make_error(errc code, std::string message, std::string detail = {}) {
  return error{code, std::move(message), std::move(detail)};
}

// Either a T or an error. Small on purpose: has_value / value / error / operator->.
template <class T>
class [[nodiscard]] result {
 public:
  // An error until assigned: for the containers that need a default (a coroutine's result slot).
  result() : v_(std::in_place_index<1>, make_error(errc::internal, "internal error: no result")) {}
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  result(callrec::error e) : v_(std::in_place_index<1>, std::move(e)) {}      // NOLINT: implicit by design

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const callrec::error& error() const& { return std::get<1>(v_); }
  callrec::error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, callrec::error> v_;
};

// result<void>: success or an error.
template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(callrec::error e) : err_(std::move(e)), failed_(true) {}  // NOLINT: implicit by design
  bool has_value() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return !failed_; }
  const callrec::error& error() const& { return err_; }

 private:
  callrec::error err_;
  bool failed_ = false;
};

}  // namespace callrec
