// callrec: the command line (SPEC section 7). The only file not linked into the tests.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "node/node.h"
#include "auth/usersig.h"
#include "config/config.h"
#include "core/clock.h"
#include "sim/simulate.h"

namespace {

using namespace callrec;

constexpr std::uint32_t demo_sdkappid = 1400000001;

// The demo app's key lives in the data directory so restarts keep the same credentials.
std::string demo_key(const std::string& data_dir) {
  std::filesystem::create_directories(data_dir);
  const auto path = std::filesystem::path(data_dir) / "demo-secret-key";
  if (std::ifstream in(path); in) {
    std::string key;
    in >> key;
    if (key.size() == 64) return key;
  }
  std::random_device rd;
  static constexpr char hex[] = "0123456789abcdef";
  std::string key;
  for (int i = 0; i < 64; ++i) key += hex[rd() & 15];
  std::ofstream(path) << key << "\n";
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return key;
}

int serve(const std::string& config_path, const std::string& listen, const std::string& data_dir) {
  server_config cfg;
  const bool demo = config_path.empty();
  if (!demo) {
    auto loaded = load_config_file(config_path);
    if (!loaded) {
      std::fprintf(stderr, "callrec: %s\n", loaded.error().message.c_str());
      return 2;
    }
    cfg = std::move(*loaded);
  }
  if (!data_dir.empty()) cfg.data_dir = data_dir;
  if (!listen.empty()) {
    if (auto r = apply_listen(cfg, listen); !r) {
      std::fprintf(stderr, "callrec: %s\n", r.error().message.c_str());
      return 2;
    }
  }
  if (demo) {
    app_config app;
    app.sdkappid = demo_sdkappid;
    try {
      app.secret_key = demo_key(cfg.data_dir);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "callrec: data_dir %s: %s\n", cfg.data_dir.c_str(), e.what());
      return 2;
    }
    cfg.apps.push_back(app);
  }
  if (cfg.store_url().starts_with("sqlite:")) {
    std::error_code ec;
    std::filesystem::create_directories(cfg.data_dir, ec);
  }

  // Signals are taken synchronously by this thread; the I/O threads inherit the blocked mask. SIGHUP reloads
  // the TLS certificate.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  system_clock clk;
  node svc(cfg, clk);
  if (auto r = svc.start(); !r) {
    std::fprintf(stderr, "callrec: %s%s%s\n", r.error().message.c_str(), r.error().detail.empty() ? "" : ": ",
                 r.error().detail.c_str());
    return 1;
  }
  const std::string host = cfg.listen_host.find(':') != std::string::npos ? "[" + cfg.listen_host + "]" : cfg.listen_host;
  const std::string base = std::string(cfg.tls ? "https" : "http") + "://" + host + ":" + std::to_string(svc.port());
  std::fprintf(stderr, "callrec: listening on %s (store %s, %zu app%s)\n", base.c_str(), redact_url(cfg.store_url()).c_str(),
               cfg.apps.size(), cfg.apps.size() == 1 ? "" : "s");
  if (demo) {
    const auto& app = cfg.apps.front();
    std::string sig = auth::make_usersig(app.secret_key, app.sdkappid, "administrator", clk.now_s(), 86400 * 180);
    std::printf(
        "\ncallrec demo app (no --config given)\n"
        "  sdkappid:   %u\n"
        "  secret key: %s\n"
        "  admin:      administrator\n"
        "  usersig:    %s\n\n"
        "Try it:\n"
        "  curl -s -X POST '%s/v1/records/get_records_by_filter?sdkappid=%u&identifier=administrator&usersig=%s"
        "&random=1&contenttype=json' -d '{\"startTimestamp\": 0}'\n\n",
        app.sdkappid, app.secret_key.c_str(), sig.c_str(), base.c_str(), app.sdkappid, sig.c_str());
    std::fflush(stdout);
  }
  int sig = 0;
  for (;;) {
    sigwait(&set, &sig);
    if (sig != SIGHUP) break;
    if (!cfg.tls) {
      std::fprintf(stderr, "callrec: SIGHUP received; no [tls] configured, nothing to reload\n");
    } else if (auto r = svc.reload_tls(); !r) {
      std::fprintf(stderr, "callrec: SIGHUP: TLS certificate NOT reloaded, still serving the previous one: %s\n",
                   r.error().message.c_str());
    } else {
      std::fprintf(stderr, "callrec: SIGHUP: TLS certificate reloaded from %s and %s (new connections use it)\n",
                   cfg.tls->cert.c_str(), cfg.tls->key.c_str());
    }
  }
  std::fprintf(stderr, "callrec: %s received, finishing in-flight requests\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  svc.stop();
  std::fprintf(stderr, "callrec: stopped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"callrec: self-hosted call records, speaking the TRTC Call (TUICallKit) REST API"};
  app.require_subcommand(1);

  auto* serve_cmd = app.add_subcommand("serve", "Run the server (no --config: demo mode on 127.0.0.1:8080)");
  std::string config_path, listen, data_dir;
  serve_cmd->add_option("--config", config_path, "TOML configuration file")->check(CLI::ExistingFile);
  serve_cmd->add_option("--listen", listen, "HOST:PORT to listen on (overrides the file)");
  serve_cmd->add_option("--data-dir", data_dir, "Directory of the embedded store (overrides the file)");

  auto* sig_cmd = app.add_subcommand("usersig", "Print a UserSig (TLSSigAPIv2) for an identifier");
  std::uint32_t sdkappid = 0;
  std::string key, identifier;
  std::int64_t expire = 86400 * 180;
  sig_cmd->add_option("--sdkappid", sdkappid, "App id")->required();
  sig_cmd->add_option("--key", key, "The app's secret key")->required();
  sig_cmd->add_option("--identifier", identifier, "User id (e.g. administrator)")->required();
  sig_cmd->add_option("--expire", expire, "Validity in seconds (default 180 days)")->check(CLI::Range(1LL, 1LL << 40));

  sim::options sim_opts;
  auto* sim_cmd = app.add_subcommand("simulate", "Drive realistic call traffic through the HTTP API");
  sim::add_options(*sim_cmd, sim_opts);

  CLI11_PARSE(app, argc, argv);

  if (*serve_cmd) return serve(config_path, listen, data_dir);
  if (*sig_cmd) {
    system_clock clk;
    std::printf("%s\n", auth::make_usersig(key, sdkappid, identifier, clk.now_s(), expire).c_str());
    return 0;
  }
  if (*sim_cmd) return sim::run(sim_opts);
  return 0;
}
