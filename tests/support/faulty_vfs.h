// Test support: a storage environment that fails on purpose, in the spirit of LevelDB's Env. An SQLite VFS
// ("callrec_faulty") in front of the default one: files whose path starts with a chosen prefix (a test's
// data directory) get the fault of the moment, every other file passes straight through.
//
//   disk_full    writes fail with SQLITE_FULL (ENOSPC)
//   fsync_fails  syncs fail with SQLITE_IOERR_FSYNC
//   short_write  a write stores half its bytes, then fails (SQLITE_IOERR_WRITE): a torn write
//   slow         writes and syncs take `delay` each (a saturated or failing disk)
//
// The store is opened on it with node::sqlite_vfs = faulty_vfs::name (store_settings::sqlite_vfs).
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace callrec::testing {

class faulty_vfs {
 public:
  enum class fault : int { none, disk_full, fsync_fails, short_write, slow };
  static constexpr const char* name = "callrec_faulty";

  // Registers the VFS once (not as the default) and returns the controller.
  static faulty_vfs& instance() {
    static faulty_vfs* self = [] {
      auto* v = new faulty_vfs;
      v->install();
      return v;
    }();
    return *self;
  }

  // Files under `prefix` get `f` from now on (until clear()). Counts the faults injected.
  void inject(fault f, const std::string& prefix, std::chrono::milliseconds delay = std::chrono::milliseconds(0)) {
    {
      std::lock_guard lk(mu_);
      prefix_ = prefix;
    }
    delay_ms_ = static_cast<int>(delay.count());
    fault_ = f;
  }
  void clear() { fault_ = fault::none; }
  int injected() const { return injected_.load(); }

 private:
  struct file {
    sqlite3_file base;
    sqlite3_file* real;  // the default VFS's file, in the memory right after this struct
    const char* path;    // SQLite keeps it valid until xClose; null for temporary files
  };
  static_assert(sizeof(file) % 8 == 0, "the real file object that follows must be aligned");

  static file* self_of(sqlite3_file* f) { return reinterpret_cast<file*>(f); }
  static sqlite3_file* real(sqlite3_file* f) { return self_of(f)->real; }
  static faulty_vfs& ctl() { return instance(); }

  // The fault for this file now (files under the prefix only).
  fault now_for(sqlite3_file* f) {
    const fault current = fault_.load();
    if (current == fault::none || !self_of(f)->path) return fault::none;
    std::lock_guard lk(mu_);
    return std::string_view(self_of(f)->path).starts_with(prefix_) ? current : fault::none;
  }

  static int x_write(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
    switch (ctl().now_for(f)) {
      case fault::disk_full:
        ++ctl().injected_;
        return SQLITE_FULL;
      case fault::short_write:
        ++ctl().injected_;
        if (amount > 1) real(f)->pMethods->xWrite(real(f), data, amount / 2, offset);
        return SQLITE_IOERR_WRITE;
      case fault::slow:
        ++ctl().injected_;
        std::this_thread::sleep_for(std::chrono::milliseconds(ctl().delay_ms_.load()));  // the fault is the wait
        break;
      default:
        break;
    }
    return real(f)->pMethods->xWrite(real(f), data, amount, offset);
  }
  static int x_sync(sqlite3_file* f, int flags) {
    switch (ctl().now_for(f)) {
      case fault::fsync_fails:
        ++ctl().injected_;
        return SQLITE_IOERR_FSYNC;
      case fault::slow:
        ++ctl().injected_;
        std::this_thread::sleep_for(std::chrono::milliseconds(ctl().delay_ms_.load()));
        break;
      default:
        break;
    }
    return real(f)->pMethods->xSync(real(f), flags);
  }
  static int x_close(sqlite3_file* f) { return real(f)->pMethods->xClose(real(f)); }
  static int x_read(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
    return real(f)->pMethods->xRead(real(f), out, amount, offset);
  }
  static int x_truncate(sqlite3_file* f, sqlite3_int64 size) { return real(f)->pMethods->xTruncate(real(f), size); }
  static int x_file_size(sqlite3_file* f, sqlite3_int64* size) { return real(f)->pMethods->xFileSize(real(f), size); }
  static int x_lock(sqlite3_file* f, int level) { return real(f)->pMethods->xLock(real(f), level); }
  static int x_unlock(sqlite3_file* f, int level) { return real(f)->pMethods->xUnlock(real(f), level); }
  static int x_check_reserved(sqlite3_file* f, int* out) { return real(f)->pMethods->xCheckReservedLock(real(f), out); }
  static int x_file_control(sqlite3_file* f, int op, void* arg) {
    return real(f)->pMethods->xFileControl(real(f), op, arg);
  }
  static int x_sector_size(sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); }
  static int x_device(sqlite3_file* f) { return real(f)->pMethods->xDeviceCharacteristics(real(f)); }
  static int x_shm_map(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
    return real(f)->pMethods->xShmMap(real(f), page, size, extend, out);
  }
  static int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
    return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
  }
  static void x_shm_barrier(sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); }
  static int x_shm_unmap(sqlite3_file* f, int del) { return real(f)->pMethods->xShmUnmap(real(f), del); }
  static int x_fetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
    return real(f)->pMethods->xFetch(real(f), offset, amount, out);
  }
  static int x_unfetch(sqlite3_file* f, sqlite3_int64 offset, void* p) {
    return real(f)->pMethods->xUnfetch(real(f), offset, p);
  }

  static int x_open(sqlite3_vfs* vfs, const char* path, sqlite3_file* out, int flags, int* out_flags) {
    auto* base = static_cast<sqlite3_vfs*>(vfs->pAppData);
    file* f = self_of(out);
    f->real = reinterpret_cast<sqlite3_file*>(f + 1);
    f->base.pMethods = nullptr;
    f->path = path;
    const int rc = base->xOpen(base, path, f->real, flags, out_flags);
    if (rc == SQLITE_OK) f->base.pMethods = &ctl().methods_;
    return rc;
  }
  static int x_delete(sqlite3_vfs* v, const char* p, int sync) {
    auto* b = static_cast<sqlite3_vfs*>(v->pAppData);
    return b->xDelete(b, p, sync);
  }
  static int x_access(sqlite3_vfs* v, const char* p, int flags, int* out) {
    auto* b = static_cast<sqlite3_vfs*>(v->pAppData);
    return b->xAccess(b, p, flags, out);
  }
  static int x_full_pathname(sqlite3_vfs* v, const char* p, int n, char* out) {
    auto* b = static_cast<sqlite3_vfs*>(v->pAppData);
    return b->xFullPathname(b, p, n, out);
  }
  static int x_randomness(sqlite3_vfs* v, int n, char* out) {
    auto* b = static_cast<sqlite3_vfs*>(v->pAppData);
    return b->xRandomness(b, n, out);
  }
  static int x_sleep(sqlite3_vfs* v, int us) {
    auto* b = static_cast<sqlite3_vfs*>(v->pAppData);
    return b->xSleep(b, us);
  }
  static int x_current_time(sqlite3_vfs* v, double* out) {
    auto* b = static_cast<sqlite3_vfs*>(v->pAppData);
    return b->xCurrentTime(b, out);
  }
  static int x_last_error(sqlite3_vfs* v, int n, char* out) {
    auto* b = static_cast<sqlite3_vfs*>(v->pAppData);
    return b->xGetLastError(b, n, out);
  }
  static int x_current_time64(sqlite3_vfs* v, sqlite3_int64* out) {
    auto* b = static_cast<sqlite3_vfs*>(v->pAppData);
    return b->xCurrentTimeInt64(b, out);
  }

  void install() {
    sqlite3_initialize();
    sqlite3_vfs* base = sqlite3_vfs_find(nullptr);
    std::memset(&vfs_, 0, sizeof vfs_);
    vfs_.iVersion = 2;
    vfs_.szOsFile = static_cast<int>(sizeof(file)) + base->szOsFile;
    vfs_.mxPathname = base->mxPathname;
    vfs_.zName = name;
    vfs_.pAppData = base;
    vfs_.xOpen = &x_open;
    vfs_.xDelete = &x_delete;
    vfs_.xAccess = &x_access;
    vfs_.xFullPathname = &x_full_pathname;
    vfs_.xRandomness = &x_randomness;
    vfs_.xSleep = &x_sleep;
    vfs_.xCurrentTime = &x_current_time;
    vfs_.xGetLastError = &x_last_error;
    vfs_.xCurrentTimeInt64 = &x_current_time64;
    std::memset(&methods_, 0, sizeof methods_);
    methods_.iVersion = 3;
    methods_.xClose = &x_close;
    methods_.xRead = &x_read;
    methods_.xWrite = &x_write;
    methods_.xTruncate = &x_truncate;
    methods_.xSync = &x_sync;
    methods_.xFileSize = &x_file_size;
    methods_.xLock = &x_lock;
    methods_.xUnlock = &x_unlock;
    methods_.xCheckReservedLock = &x_check_reserved;
    methods_.xFileControl = &x_file_control;
    methods_.xSectorSize = &x_sector_size;
    methods_.xDeviceCharacteristics = &x_device;
    methods_.xShmMap = &x_shm_map;
    methods_.xShmLock = &x_shm_lock;
    methods_.xShmBarrier = &x_shm_barrier;
    methods_.xShmUnmap = &x_shm_unmap;
    methods_.xFetch = &x_fetch;
    methods_.xUnfetch = &x_unfetch;
    sqlite3_vfs_register(&vfs_, 0);
  }

  sqlite3_vfs vfs_{};
  sqlite3_io_methods methods_{};
  std::atomic<fault> fault_{fault::none};
  std::atomic<int> delay_ms_{0};
  std::atomic<int> injected_{0};
  std::mutex mu_;
  std::string prefix_;
};

}  // namespace callrec::testing
