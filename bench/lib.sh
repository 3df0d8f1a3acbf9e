# Shared by bench/run and bench/tls (sourced, not run): the benchmark app, callrec's configuration, wrk.
# Expects $out (the output directory) to be set.

key=5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e
appid=1400000001

# write_callrec_config FILE PORT THREADS [EXTRA_TOML]: callrec on 127.0.0.1:PORT over $out/data, access log
# off, the benchmark app with rate limits out of the way. EXTRA_TOML (e.g. a [tls] section) goes before the app.
write_callrec_config() {
  cat > "$1" <<TOML
listen = "127.0.0.1:$2"
threads = $3
data_dir = "$out/data"
access_log = "off"
${4:-}
[[apps]]
sdkappid = $appid
secret_key = "$key"
rate_limits = { get_record_by_callId = 1e8, get_records_by_filter = 1e8, events = 1e8 }
TOML
}

# run_wrk LABEL URL SCRIPT -> "rps p99" on stdout, a line for the reader on stderr. wrk's full output goes to
# $out/${WRK_FILES:-wrk}-<label>.txt. $PIN prefixes the command (e.g. "taskset -c 1"); $CONNECTIONS,
# $DURATION and $WRK_THREADS (default 1) set the load.
run_wrk() {
  local file="$out/${WRK_FILES:-wrk}-$(echo "$1" | tr -c 'a-zA-Z0-9_\n' '-').txt"
  ${PIN:-} wrk -t"${WRK_THREADS:-1}" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$out/$3.lua" "$2" > "$file" 2>&1
  local rps p99
  rps=$(awk '/Requests\/sec/{print $2}' "$file")
  p99=$(awk '$1=="99%"{print $2}' "$file")
  printf '%-56s %12s req/s   p99 %s\n' "$1" "$rps" "$p99" >&2
  echo "$rps $p99"
}
