#include <gtest/gtest.h>

#include "config/config.h"

namespace callrec {
namespace {

constexpr const char* spec_example = R"(
listen = "127.0.0.1:8080"
store = "sqlite:./callrec-data/callrec.db"

[[apps]]
sdkappid = 1400000001
secret_key = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
admins = ["administrator"]
entitled = true
rate_limits = { get_record_by_callId = 20, get_records_by_filter = 200, events = 2000 }
retention_days = 7
heartbeat_sec = 60
)";

TEST(config, the_spec_example_parses) {
  auto c = parse_config(spec_example, "callrec.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->listen_host, "127.0.0.1");
  EXPECT_EQ(c->listen_port, 8080);
  EXPECT_EQ(c->store_url(), "sqlite:./callrec-data/callrec.db");
  ASSERT_EQ(c->apps.size(), 1u);
  EXPECT_EQ(c->apps[0].sdkappid, 1400000001u);
  EXPECT_EQ(c->apps[0].limits[limits::id("events")], 2000);
  EXPECT_TRUE(c->io_batch_scheduling);
  EXPECT_TRUE(validate(*c));
}

TEST(config, io_scheduling_batch_or_normal) {
  auto normal = parse_config(std::string("io_scheduling = \"normal\"\n") + spec_example, "f");
  ASSERT_TRUE(normal) << normal.error().message;
  EXPECT_FALSE(normal->io_batch_scheduling);
  auto batch = parse_config(std::string("io_scheduling = \"batch\"\n") + spec_example, "f");
  ASSERT_TRUE(batch) << batch.error().message;
  EXPECT_TRUE(batch->io_batch_scheduling);
}

TEST(config, errors_name_the_key) {
  struct tc {
    std::string text, key;
  } cases[] = {
      {"listen = 5", "listen"},
      {"listen = \"nohost\"", "listen"},
      {"threads = -1", "threads"},
      {"io_scheduling = \"fifo\"", "io_scheduling"},
      {"io_scheduling = 1", "io_scheduling"},
      {"bogus = 1", "bogus"},
      {"store = \"mysql://x\"", "store"},
      {"[[apps]]\nsecret_key = \"k\"", "apps[0].sdkappid"},
      {"[[apps]]\nsdkappid = 1", "apps[0].secret_key"},
      {"[[apps]]\nsdkappid = 1\nsecret_key = \"k\"\nadmins = []", "apps[0].admins"},
      {"[[apps]]\nsdkappid = 1\nsecret_key = \"k\"\nrate_limits = { events = 0 }", "apps[0].rate_limits.events"},
      {"[[apps]]\nsdkappid = 1\nsecret_key = \"k\"\nrate_limits = { get_record_by_callid = 5 }",
       "apps[0].rate_limits.get_record_by_callid"},
      {"[[apps]]\nsdkappid = 1\nsecret_key = \"k\"\n[[apps]]\nsdkappid = 1\nsecret_key = \"k\"", "apps[1].sdkappid"},
      {"[[apps]]\nsdkappid = 1\nsecret_key = \"k\"\nheartbeat_sec = \"x\"", "apps[0].heartbeat_sec"},
      {"[limits]\nmax_body_bytes = 1", "limits.max_body_bytes"},
      {"[limits]\nmax_header_count = 7", "limits.max_header_count"},
      {"[limits]\ntls_handshake_timeout_sec = 0", "limits.tls_handshake_timeout_sec"},
      {"[limits]\ntls_handshake_timeout_sec = 601", "limits.tls_handshake_timeout_sec"},
      {"[limits]\nh2_max_concurrent_streams = 0", "limits.h2_max_concurrent_streams"},
      {"[limits]\nh2_initial_window_bytes = 2147483648", "limits.h2_initial_window_bytes"},
      {"[limits]\nh2_max_frame_bytes = 16383", "limits.h2_max_frame_bytes"},
      {"[limits]\nh2_max_frame_bytes = 16777216", "limits.h2_max_frame_bytes"},
      {"[limits]\nh2_max_resets_per_10s = 0", "limits.h2_max_resets_per_10s"},
      {"[limits]\nh2_max_pings_per_10s = \"100\"", "limits.h2_max_pings_per_10s"},
      {"[limits]\nh2_max_settings_per_10s = -1", "limits.h2_max_settings_per_10s"},
      {"[limits]\nh2_stall_timeout_sec = 0", "limits.h2_stall_timeout_sec"},
      {"[limits]\nh2_idle_timeout_sec = 3601", "limits.h2_idle_timeout_sec"},
      {"[limits]\nh2_max_streams = 10", "h2_max_streams"},
      {"[tls]\ncert = \"c.pem\"", "tls.key"},
      {"[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nca = \"x\"", "tls.ca"},
      {"listen = ", "callrec.toml:1"},
  };
  for (const auto& c : cases) {
    auto r = parse_config(c.text, "callrec.toml");
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message.find(c.key), std::string::npos) << r.error().message;
  }
}

TEST(config, plain_http_only_on_loopback_unless_allowed) {
  auto c = parse_config(spec_example, "f");
  ASSERT_TRUE(c);
  ASSERT_TRUE(apply_listen(*c, "0.0.0.0:8080"));
  auto v = validate(*c);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("allow_plaintext"), std::string::npos);
  c->allow_plaintext = true;
  EXPECT_TRUE(validate(*c));
  ASSERT_TRUE(apply_listen(*c, "[::1]:0"));
  c->allow_plaintext = false;
  EXPECT_TRUE(validate(*c));
  EXPECT_FALSE(apply_listen(*c, "127.0.0.1:70000"));
}

TEST(config, tls_allows_a_non_loopback_listener_and_has_a_handshake_timeout) {
  auto c = parse_config(std::string(spec_example) + "\n[tls]\ncert = \"s.crt\"\nkey = \"s.key\"\n", "f");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_TRUE(c->tls);
  EXPECT_EQ(c->tls->cert, "s.crt");
  EXPECT_EQ(c->tls->key, "s.key");
  EXPECT_EQ(c->limits.tls_handshake_timeout_sec, 10u);
  ASSERT_TRUE(apply_listen(*c, "0.0.0.0:8443"));
  EXPECT_TRUE(validate(*c));
  auto l = parse_config("[limits]\ntls_handshake_timeout_sec = 3", "f");
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ(l->limits.tls_handshake_timeout_sec, 3u);
}

TEST(config, h2_limits_have_defaults_and_can_be_set) {
  auto d = parse_config("", "f");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->limits.h2_max_concurrent_streams, 128u);
  EXPECT_EQ(d->limits.h2_initial_window_bytes, 256u * 1024);
  EXPECT_EQ(d->limits.h2_max_frame_bytes, 16u * 1024);
  EXPECT_EQ(d->limits.h2_max_resets_per_10s, 200u);
  EXPECT_EQ(d->limits.h2_max_pings_per_10s, 100u);
  EXPECT_EQ(d->limits.h2_max_settings_per_10s, 100u);
  EXPECT_EQ(d->limits.h2_stall_timeout_sec, 10u);
  EXPECT_FALSE(d->limits.h2_idle_timeout_sec);  // idle_timeout_sec applies

  auto c = parse_config(
      "[limits]\nh2_max_concurrent_streams = 16\nh2_initial_window_bytes = 4194304\nh2_max_frame_bytes = 65536\n"
      "h2_max_resets_per_10s = 50\nh2_max_pings_per_10s = 20\nh2_max_settings_per_10s = 10\n"
      "h2_stall_timeout_sec = 5\nh2_idle_timeout_sec = 120\n",
      "f");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->limits.h2_max_concurrent_streams, 16u);
  EXPECT_EQ(c->limits.h2_initial_window_bytes, 4194304u);
  EXPECT_EQ(c->limits.h2_max_frame_bytes, 65536u);
  EXPECT_EQ(c->limits.h2_max_resets_per_10s, 50u);
  EXPECT_EQ(c->limits.h2_max_pings_per_10s, 20u);
  EXPECT_EQ(c->limits.h2_max_settings_per_10s, 10u);
  EXPECT_EQ(c->limits.h2_stall_timeout_sec, 5u);
  EXPECT_EQ(c->limits.h2_idle_timeout_sec, 120u);
}

TEST(config, no_apps_is_an_error) {
  auto c = parse_config("listen = \"127.0.0.1:1\"", "f");
  ASSERT_TRUE(c);
  EXPECT_FALSE(validate(*c));
}

TEST(config, store_urls_in_logs_hide_their_password) {
  EXPECT_EQ(redact_url("postgresql://app:s3cret@db.internal:5432/callrec"), "postgresql://app:***@db.internal:5432/callrec");
  EXPECT_EQ(redact_url("postgresql://app@db/callrec?sslmode=require&password=s3cret"),
            "postgresql://app@db/callrec?sslmode=require&password=***");
  EXPECT_EQ(redact_url("host=db user=app password=s3cret dbname=callrec"), "host=db user=app password=*** dbname=callrec");
  EXPECT_EQ(redact_url("postgresql://db/callrec"), "postgresql://db/callrec");
  EXPECT_EQ(redact_url("sqlite:/var/lib/callrec/callrec.db"), "sqlite:/var/lib/callrec/callrec.db");
  EXPECT_EQ(redact_url("redis://:pw@127.0.0.1:6379"), "redis://:***@127.0.0.1:6379");
}

}  // namespace
}  // namespace callrec
