#include "ops/core.h"

#include <algorithm>

namespace callrec::ops {

bool app::is_admin(std::string_view identifier) const noexcept {
  return std::find(cfg.admins.begin(), cfg.admins.end(), identifier) != cfg.admins.end();
}

app_registry::app_registry(const std::vector<app_config>& apps) {
  apps_.reserve(apps.size());
  for (const auto& a : apps) {
    index_.insert_or_assign(a.sdkappid, apps_.size());
    apps_.push_back(app{a});
  }
}

const app* app_registry::find(std::uint32_t sdkappid) const noexcept {
  auto it = index_.find(sdkappid);
  return it == index_.end() ? nullptr : &apps_[it->second];
}

}  // namespace callrec::ops
