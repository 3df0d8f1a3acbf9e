#!/usr/bin/env bash
# HTTP/2 with the tools an operator uses: the real callrec binary, a certificate from scripts/make-cert,
# curl over h2c (prior knowledge) and over TLS (ALPN h2), and a short bounded h2load run over TLS.
#
#   tests/scripts/h2_curl_test.sh CALLREC_BINARY MAKE_CERT      (run by ctest; exit 77: a tool is missing)
set -euo pipefail

callrec=${1:?usage: h2_curl_test.sh CALLREC_BINARY MAKE_CERT}
make_cert=${2:?usage: h2_curl_test.sh CALLREC_BINARY MAKE_CERT}
sdkappid=1400000001
key=5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e

for tool in curl h2load python3 openssl timeout; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (scripts/bootstrap installs it)"; exit 77; }
done
curl -V | grep -qw HTTP2 || { echo "SKIP: this curl has no HTTP/2"; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/callrec-h2-curl.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || continue
    # A graceful stop takes well under 10 s; then it is killed.
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
  echo "FAIL: $*" >&2
  for log in "$work"/*.log; do [[ -e $log ]] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }; done
  exit 1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start NAME PORT [EXTRA_TOML]: a server with its own data directory; waits until /healthz answers (10 s).
start() {
  local name=$1 port=$2 extra=${3:-} scheme=http opts=()
  mkdir -p "$work/$name"
  cat >"$work/$name/callrec.toml" <<EOF
listen = "127.0.0.1:$port"
threads = 2
data_dir = "$work/$name"
access_log = "off"
$extra
[[apps]]
sdkappid = $sdkappid
secret_key = "$key"
EOF
  "$callrec" serve --config "$work/$name/callrec.toml" >"$work/$name.log" 2>&1 &
  pids+=($!)
  if [[ -n $extra ]]; then scheme=https; opts=(--cacert "$work/tls/server.crt"); fi
  for _ in $(seq 100); do
    curl -sf --max-time 1 "${opts[@]}" "$scheme://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || fail "$name server exited at start"
    sleep 0.1
  done
  fail "$name server did not answer /healthz within 10 s"
}

"$make_cert" --dir "$work/tls" >/dev/null || fail "make-cert"
plain_port=$(free_port)
tls_port=$(free_port)
start plain "$plain_port"
start tls "$tls_port" "$(printf '[tls]\ncert = "%s"\nkey = "%s"' "$work/tls/server.crt" "$work/tls/server.key")"

sig=$("$callrec" usersig --sdkappid "$sdkappid" --key "$key" --identifier administrator)
api="v1/records/get_records_by_filter?sdkappid=$sdkappid&identifier=administrator&usersig=$sig&random=1&contenttype=json"

# 1. h2c with prior knowledge: /healthz and an API call.
out=$(curl -s --max-time 10 --http2-prior-knowledge -w '\n%{http_version} %{http_code}' \
  "http://127.0.0.1:$plain_port/healthz") || fail "h2c /healthz: curl failed"
[[ $(tail -n1 <<<"$out") == "2 200" ]] || fail "h2c /healthz: expected HTTP/2 200, got: $out"
echo "ok: h2c /healthz"
out=$(curl -s --max-time 10 --http2-prior-knowledge -w '\n%{http_version} %{http_code} %{content_type}' \
  -X POST -H 'content-type: application/json' -d '{"startTimestamp":0}' "http://127.0.0.1:$plain_port/$api") ||
  fail "h2c API: curl failed"
[[ $(tail -n1 <<<"$out") == "2 200 application/json" ]] || fail "h2c API: expected HTTP/2 200 JSON, got: $out"
grep -q '"errorCode":0' <<<"$out" || fail "h2c API: expected errorCode 0, got: $out"
echo "ok: h2c API call"

# 2. TLS: curl --http2 negotiates HTTP/2 through ALPN and verifies the certificate.
out=$(curl -s --max-time 10 --http2 --cacert "$work/tls/server.crt" -w '\n%{http_version} %{http_code}' \
  "https://127.0.0.1:$tls_port/healthz") || fail "h2 over TLS /healthz: curl failed"
[[ $(tail -n1 <<<"$out") == "2 200" ]] || fail "h2 over TLS: expected HTTP/2 200, got: $out"
out=$(curl -s --max-time 10 --http2 --cacert "$work/tls/server.crt" -w '\n%{http_version} %{http_code}' \
  -X POST -H 'content-type: application/json' -d '{"startTimestamp":0}' "https://127.0.0.1:$tls_port/$api") ||
  fail "h2 over TLS API: curl failed"
[[ $(tail -n1 <<<"$out") == "2 200" ]] && grep -q '"errorCode":0' <<<"$out" ||
  fail "h2 over TLS API: expected HTTP/2 200 errorCode 0, got: $out"
echo "ok: HTTP/2 over TLS (ALPN)"

# 3. A small bounded load over TLS h2: every request must succeed.
h2load_out=$(timeout 60 h2load -n 2000 -c 4 -m 16 "https://127.0.0.1:$tls_port/healthz" 2>&1) ||
  fail "h2load exited with an error: $h2load_out"
grep -q 'Application protocol: h2' <<<"$h2load_out" || fail "h2load did not negotiate h2: $h2load_out"
grep -Eq '^requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout' \
  <<<"$h2load_out" || fail "h2load reported failures: $h2load_out"
grep -q '^status codes: 2000 2xx' <<<"$h2load_out" || fail "h2load: not every status was 2xx: $h2load_out"
echo "ok: h2load 2000 requests over TLS h2, 0 failed"

# 4. The metrics saw HTTP/2.
metrics=$(curl -s --max-time 10 --http2 --cacert "$work/tls/server.crt" "https://127.0.0.1:$tls_port/metrics")
grep -Eq '^callrec_h2_connections_total [1-9]' <<<"$metrics" || fail "no h2 connections counted"
grep -Eq '^callrec_h2_streams_total [0-9]{4,}' <<<"$metrics" || fail "fewer than 1000 h2 streams counted"
echo "ok: h2 metrics"
echo "PASS"
