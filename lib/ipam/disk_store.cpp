#include "dualstack/ipam/disk_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <ctime>

#include "dualstack/cni/error.hpp"
#include "dualstack/sys/file.hpp"
#include "dualstack/sys/hash.hpp"
#include "dualstack/sys/io.hpp"
#include "dualstack/sys/lock.hpp"

namespace dualstack::ipam {

using cni::Code;
using cni::Error;
using ip::Address;
using sys::Fd;

namespace {

using disk::kIndexDir;
using disk::kLockFile;
using disk::kStateFile;
using disk::kTempPrefix;

constexpr std::string_view kEntryMagic = "# dualstack-ipam index entry v1";
constexpr std::string_view kStateMagic = "# dualstack-ipam index state v2";
constexpr std::string_view kComplete = "complete yes\n";
constexpr std::string_view kIncomplete = "complete no\n";
constexpr std::size_t kMaxEntryName = 200;
constexpr std::size_t kMaxSmallFile = std::size_t{64} << 10;

std::string join(const std::string& dir, const std::string& name) {
  std::string path = dir;
  path += '/';
  path += name;
  return path;
}

std::string keyOf(const std::string& containerId, const std::string& ifname) {
  return containerId + "@" + ifname;
}
std::string keyOf(const cni::Attachment& a) { return keyOf(a.containerId, a.ifname); }
std::string keyOf(const Owner& o) { return keyOf(o.containerId, o.ifname); }
Owner ownerOfKey(const std::string& key) {
  const auto at = key.find('@');
  return Owner{key.substr(0, at), key.substr(at + 1)};
}

std::string hashedName(const std::string& key, int n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "~%016llx.%d", static_cast<unsigned long long>(sys::fnv1a64(key)),
                n);
  return buf;
}

Error ioError(std::string_view what, const std::string& path, int err) {
  if (err == ELOOP) {  // every open in the store is O_NOFOLLOW
    return Error(Code::IoFailure, "cannot " + std::string(what) + " " + path +
                                      ": it is a symbolic link, and the store never follows " +
                                      "links; remove it (the plugin recreates what it needs)");
  }
  return cni::errnoError(Code::IoFailure, std::string(what) + " " + path, err);
}

// A file of the store that could not be opened as a regular file: for something planted under
// one of the store's names, what it is and what to do about it.
Error fileError(std::string_view what, const std::string& path, const sys::FileProblem& p) {
  if (p.type == S_IFLNK) return ioError(what, path, ELOOP);
  if (p.type != 0) {
    return Error(Code::IoFailure, "cannot " + std::string(what) + " " + path + ": it is " +
                                      sys::fileTypeName(p.type) + ", not a regular file; remove " +
                                      "it (the plugin recreates what it needs)");
  }
  if (p.err == EFBIG) return Error(Code::IoFailure, path + " " + p.describe());
  return ioError(what, path, p.err);
}

// Reads a small file relative to dirFd; nullopt when it does not exist. `st`, when given,
// receives its fstat.
std::optional<std::string> readSmall(int dirFd, const std::string& name, const std::string& dirPath,
                                     struct stat* st = nullptr) {
  std::string data;
  const sys::FileProblem p =
      sys::readRegularFileAt(dirFd, name, kMaxSmallFile, sys::Links::Refuse, data, st);
  if (!p) return data;
  if (p.err == ENOENT) return std::nullopt;
  // Past kMaxSmallFile the content is garbage to its parser anyway, and empty text names nobody.
  if (p.err == EFBIG) return std::string();
  throw fileError("read", join(dirPath, name), p);
}

void writeAll(int fd, std::string_view data, const std::string& path) {
  if (const int err = sys::writeAll(fd, data); err != 0) throw ioError("write", path, err);
}

// Rewrites a small file in place. Readers hold the lock, and a torn file after a crash is
// detected (unparsable), so no temp file is needed. No O_TRUNC: on ext4, truncating a file with
// data to zero queues its pages for writeback at close (auto_da_alloc), and the next truncate
// waits for that I/O, milliseconds spent under the store lock.
void writeSmall(int dirFd, const std::string& name, std::string_view data,
                const std::string& dirPath) {
  const std::string path = join(dirPath, name);
  Fd fd;
  struct stat st {};
  if (const sys::FileProblem p =
          sys::openRegularAt(dirFd, name, O_WRONLY | O_CREAT, 0600, sys::Links::Refuse, fd, &st)) {
    throw fileError("create", path, p);
  }
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n =
        ::pwrite(fd.get(), data.data() + off, data.size() - off, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ioError("write", path, errno);
    off += static_cast<std::size_t>(n);
  }
  if (static_cast<std::size_t>(st.st_size) > data.size() &&
      ::ftruncate(fd.get(), static_cast<off_t>(data.size())) != 0) {
    throw ioError("truncate", path, errno);
  }
}

std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string durationText(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

bool before(const timespec& a, const timespec& b) {
  return a.tv_sec != b.tv_sec ? a.tv_sec < b.tv_sec : a.tv_nsec < b.tv_nsec;
}

// This boot of the kernel: within one boot every reader sees the page cache, so writes that were
// never flushed are as good as flushed; only a reboot can lose them.
const std::string& bootId() {
  static const std::string id = [] {
    std::string text;
    if (sys::readRegularFileAt(AT_FDCWD, "/proc/sys/kernel/random/boot_id", 64, sys::Links::Follow,
                               text)) {
      return std::string("unknown");
    }
    return std::string(trim(text));
  }();
  return id;
}

// Addresses in address order, whatever order they came in: an ADD and a later rebuild of the
// index write the same bytes, so a GC that releases nothing rewrites nothing.
std::string formatEntry(const std::string& key, std::vector<Address> addrs) {
  std::sort(addrs.begin(), addrs.end());
  const auto at = key.find('@');
  std::string s(kEntryMagic);
  s += "\ncontainerID " + key.substr(0, at) + "\n";
  if (at + 1 < key.size()) s += "ifname " + key.substr(at + 1) + "\n";
  for (const auto& a : addrs) s += "address " + a.str() + "\n";
  return s;
}

// The directory fd for dataDir, creating missing components (0700) when asked.
int openDataDir(const std::string& dataDir, bool create) {
  int fd = ::open(dataDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0 || errno != ENOENT || !create) return fd;
  if (const int err = sys::makeDirs(dataDir, 0700); err != 0) {
    errno = err;
    return -1;
  }
  return ::open(dataDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

}  // namespace

// ---- the layout ----

namespace disk {

bool isLastReservedName(std::string_view name) {
  constexpr std::string_view prefix = "last_reserved_ip.";
  if (name.substr(0, prefix.size()) != prefix || name.size() == prefix.size()) return false;
  return name.find_first_not_of("0123456789", prefix.size()) == std::string_view::npos;
}

std::optional<Address> parseLastReserved(std::string_view text) {
  return Address::parse(trim(text));
}

bool isHashedEntryName(std::string_view name) { return !name.empty() && name.front() == '~'; }

std::string entryKey(const Owner& owner) { return keyOf(owner); }

std::optional<IndexEntry> parseIndexEntry(std::string_view text) {
  std::string containerId, ifname;
  std::vector<Address> addrs;
  bool first = true;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;  // torn write
    const auto line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    if (first) {
      if (line != kEntryMagic) return std::nullopt;
      first = false;
      continue;
    }
    const auto sp = line.find(' ');
    if (sp == std::string_view::npos) return std::nullopt;
    const auto k = line.substr(0, sp);
    const auto v = line.substr(sp + 1);
    if (k == "containerID") {
      containerId = v;
    } else if (k == "ifname") {
      ifname = v;
    } else if (k == "address") {
      auto a = Address::parse(v);
      if (!a) return std::nullopt;
      addrs.push_back(*a);
    } else {
      return std::nullopt;
    }
  }
  if (first || containerId.empty()) return std::nullopt;
  return IndexEntry{Owner{std::move(containerId), std::move(ifname)}, std::move(addrs)};
}

}  // namespace disk

// ---- opening and locking ----

std::unique_ptr<DiskStore> DiskStore::open(const std::string& dataDir, const std::string& network,
                                           Mode mode) {
  const bool create = mode == Mode::Create;
  const std::string path = dataDir + (dataDir.back() == '/' ? "" : "/") + network;
  const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  // The common case in one call; O_NOFOLLOW guards the network directory itself.
  int fd = ::open(path.c_str(), flags);
  if (fd >= 0) return std::unique_ptr<DiskStore>(new DiskStore(path, fd, mode));
  Fd data(openDataDir(dataDir, create));
  if (!data) {
    if (errno == ENOENT && !create) return nullptr;
    throw ioError("open data directory", dataDir, errno);
  }
  fd = ::openat(data.get(), network.c_str(), flags);
  if (fd < 0 && errno == ENOENT) {
    if (!create) return nullptr;
    if (::mkdirat(data.get(), network.c_str(), 0700) != 0 && errno != EEXIST) {
      throw ioError("create", path, errno);
    }
    fd = ::openat(data.get(), network.c_str(), flags);
  }
  if (fd < 0) {
    if (errno == ELOOP || errno == ENOTDIR) {
      throw Error(Code::IoFailure, path + " is not a directory (a symlink or a file?)");
    }
    throw ioError("open", path, errno);
  }
  return std::unique_ptr<DiskStore>(new DiskStore(path, fd, mode));
}

DiskStore::DiskStore(std::string path, int dirFd, Mode mode)
    : path_(std::move(path)), dir_(dirFd), mode_(mode) {}

DiskStore::~DiskStore() {
  if (!tempName_.empty() && index_) ::unlinkat(index_.get(), tempName_.c_str(), 0);
}

void DiskStore::prepare(const cni::Attachment& a) {
  if (mode_ == Mode::ReadOnly) throw Error(Code::Internal, "prepare on a read-only store");
  if (tempOwner_ && *tempOwner_ == a) return;
  openIndexDir();  // one syscall less under the lock
  if (!tempName_.empty()) ::unlinkat(index_.get(), tempName_.c_str(), 0);
  temp_.reset();
  tempName_.clear();
  tempOwner_.reset();

  // An O_TMPFILE has no name until linkat() gives it one: never half-written under a name, never
  // left behind by a crash, invisible to host-local's walk.
  int fd = namedTemps_ ? -1 : ::openat(dir_.get(), ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (namedTemps_ || (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL))) {
    openIndexDir();
    static std::atomic<int> counter{0};
    tempName_ =
        std::string(kTempPrefix) + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    fd = ::openat(index_.get(), tempName_.c_str(),
                  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      const int err = errno;
      tempName_.clear();
      throw ioError("create temp file in", path_ + "/" + kIndexDir, err);
    }
  } else if (fd < 0) {
    throw ioError("create temp file in", path_, errno);
  }
  temp_ = Fd(fd);
  writeAll(fd, ownerFileContent(a), path_ + " (temp file)");
  tempOwner_ = a;
}

void DiskStore::lock(std::chrono::milliseconds wait) {
  const std::string lockPath = join(path_, kLockFile);
  Fd fd;
  if (const sys::FileProblem p = sys::openRegularAt(dir_.get(), kLockFile, O_RDONLY | O_CREAT, 0600,
                                                    sys::Links::Refuse, fd)) {
    throw fileError("open", lockPath, p);
  }
  if (const int err = sys::lockExclusive(fd.get(), wait); err != 0) {
    if (err != ETIMEDOUT) throw ioError("lock", lockPath, err);
    const std::string holder = sys::lockHolder(fd.get());
    throw Error(Code::TryAgainLater, "the store lock " + lockPath + " is held by " +
                                         (holder.empty() ? "another process" : holder) +
                                         " and was not released within " + durationText(wait) +
                                         "; try again later (a process that stays stuck holding " +
                                         "it must be ended)");
  }
  lock_ = std::move(fd);
  locked_ = true;
  changing_ = false;
  if (mode_ == Mode::ReadOnly) return;
  openIndexDir();
  struct stat stateSt {};
  const auto state = readSmall(index_.get(), kStateFile, join(path_, kIndexDir), &stateSt);
  recordedState_ = state.value_or("");
  struct stat dirSt {};
  const std::string now = stamp(&dirSt);
  const std::string_view rest = state && state->compare(0, now.size(), now) == 0
                                    ? std::string_view(*state).substr(now.size())
                                    : std::string_view();
  trusted_ = rest == kComplete || rest == kIncomplete;
  // Racy: the state was written within the timestamp tick of the directory's last change, so a
  // change by host-local right after ours may have left the times as they were.
  const bool racy = !before(dirSt.st_ctim, stateSt.st_ctim);
  complete_ = trusted_ && rest == kComplete && !racy;
}

void DiskStore::openIndexDir() {
  if (index_) return;
  const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  int fd = ::openat(dir_.get(), kIndexDir, flags);
  if (fd < 0 && errno == ENOENT) {
    if (::mkdirat(dir_.get(), kIndexDir, 0700) != 0 && errno != EEXIST) {
      throw ioError("create", path_ + "/" + kIndexDir, errno);
    }
    fd = ::openat(dir_.get(), kIndexDir, flags);
  }
  if (fd < 0) throw ioError("open", path_ + "/" + kIndexDir, errno);
  index_ = Fd(fd);
}

void DiskStore::unlock() {
  lock_.reset();  // closing the last fd drops the flock
  locked_ = false;
}

void DiskStore::requireLocked(const char* what) const {
  if (!locked_) throw Error(Code::Internal, std::string(what) + " on an unlocked store");
}

std::string DiskStore::stamp(struct stat* dirStat) const {
  struct stat own {};
  struct stat& st = dirStat != nullptr ? *dirStat : own;
  if (::fstat(dir_.get(), &st) != 0) throw ioError("stat", path_, errno);
  char buf[224];
  std::snprintf(buf, sizeof buf, "%s\ndir %llu %lld.%09ld %lld.%09ld\nboot %s\n",
                kStateMagic.data(), static_cast<unsigned long long>(st.st_ino),
                static_cast<long long>(st.st_mtim.tv_sec), st.st_mtim.tv_nsec,
                static_cast<long long>(st.st_ctim.tv_sec), st.st_ctim.tv_nsec, bootId().c_str());
  return buf;
}

void DiskStore::markChanging() {
  // Only a state that matches the directory needs it: a stale one stays stale, as a directory's
  // times never return to earlier values.
  if (!trusted_ || changing_ || mode_ == Mode::ReadOnly) return;
  const std::string text = std::string(kStateMagic) + "\nchanging\n";
  writeSmall(index_.get(), kStateFile, text, join(path_, kIndexDir));
  recordedState_ = text;
  changing_ = true;
}

// ---- the index ----

void DiskStore::ensureIndex() {
  if (!trusted_ && !full_) rebuild();
}

void DiskStore::rebuild() {
  walk();
  rebuilt_ = true;
}

std::vector<std::pair<Address, std::optional<Owner>>> DiskStore::walk() {
  requireLocked("walk");
  std::vector<sys::DirEntry> listed;
  if (const int err = sys::listDirAt(dir_.get(), listed); err != 0) {
    throw ioError("read directory", path_, err);
  }
  std::vector<std::pair<Address, std::optional<Owner>>> found;
  // Regular files are allocations; anything else under an address's name (a symlink, a
  // directory, planted by someone) holds that address too, with nobody as its owner: it is
  // never opened, never handed out, and GC removes the name itself.
  std::vector<std::pair<std::string, bool>> names;  // name, regular file
  for (const auto& e : listed) {
    if (e.name[0] == '.' || e.type == DT_DIR) continue;
    bool regular = e.type == DT_REG;
    if (e.type == DT_UNKNOWN) {
      struct stat st {};
      regular = ::fstatat(dir_.get(), e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISREG(st.st_mode);
    }
    names.emplace_back(e.name, regular);
  }

  entries_.clear();
  owners_.clear();
  for (const auto& [name, regular] : names) {
    // Only canonical names count, as host-local only ever looks up those.
    const auto a = Address::parse(name);
    if (!a || a->str() != name) continue;
    std::optional<Owner> owner;
    if (regular) {
      const auto content = readSmall(dir_.get(), name, path_);
      if (!content) continue;  // raced with nothing (we hold the lock), but be tolerant
      owner = parseOwnerFile(*content);
    }
    owners_[*a] = owner;
    if (owner) entries_[keyOf(*owner)].push_back(*a);
    found.emplace_back(*a, std::move(owner));
  }
  full_ = true;
  rewriteAll_ = true;
  dirty_.clear();
  return found;
}

std::optional<std::vector<Address>> DiskStore::readEntry(const std::string& key, bool* consistent) {
  const std::string dirPath = path_ + "/" + kIndexDir;
  if (key.size() <= kMaxEntryName) {
    const auto text = readSmall(index_.get(), key, dirPath);
    if (!text) return std::nullopt;
    auto parsed = disk::parseIndexEntry(*text);
    if (!parsed || keyOf(parsed->owner) != key) {
      *consistent = false;
      return std::nullopt;
    }
    return std::move(parsed->addresses);
  }
  for (int n = 0;; ++n) {
    const auto text = readSmall(index_.get(), hashedName(key, n), dirPath);
    if (!text) return std::nullopt;
    auto parsed = disk::parseIndexEntry(*text);
    if (!parsed) {
      *consistent = false;
      return std::nullopt;
    }
    if (keyOf(parsed->owner) == key) return std::move(parsed->addresses);
  }
}

std::vector<Address>& DiskStore::entry(const std::string& key) {
  if (auto it = entries_.find(key); it != entries_.end() || full_) return entries_[key];
  bool consistent = true;
  auto addrs = readEntry(key, &consistent);
  if (consistent && addrs) {
    // The entry must agree with the per-IP files it names.
    const Owner expected = ownerOfKey(key);
    for (const auto& a : *addrs) {
      if (ownerOf(a) != expected) {
        consistent = false;
        break;
      }
    }
  }
  if (!consistent) {
    rebuild();
    return entries_[key];
  }
  return entries_[key] = addrs.value_or(std::vector<Address>{});
}

void DiskStore::writeEntry(const std::string& key, const std::vector<Address>& addrs) {
  if (addrs.empty()) {
    removeEntry(key);
    return;
  }
  const std::string dirPath = path_ + "/" + kIndexDir;
  if (key.size() <= kMaxEntryName) {
    writeSmall(index_.get(), key, formatEntry(key, addrs), dirPath);
    return;
  }
  for (int n = 0;; ++n) {
    const std::string name = hashedName(key, n);
    const auto text = readSmall(index_.get(), name, dirPath);
    const auto parsed = text ? disk::parseIndexEntry(*text) : std::nullopt;
    if (!text || !parsed || keyOf(parsed->owner) == key) {
      writeSmall(index_.get(), name, formatEntry(key, addrs), dirPath);
      return;
    }
  }
}

void DiskStore::removeEntry(const std::string& key) {
  const std::string dirPath = path_ + "/" + kIndexDir;
  if (key.size() <= kMaxEntryName) {
    if (::unlinkat(index_.get(), key.c_str(), 0) != 0 && errno != ENOENT) {
      throw ioError("remove", dirPath + "/" + key, errno);
    }
    return;
  }
  // Hashed names form a chain ~h.0, ~h.1, ...; keep it without holes by moving its last
  // member into the removed slot.
  int found = -1, last = -1;
  for (int n = 0;; ++n) {
    const auto text = readSmall(index_.get(), hashedName(key, n), dirPath);
    if (!text) break;
    last = n;
    const auto parsed = disk::parseIndexEntry(*text);
    if (found < 0 && parsed && keyOf(parsed->owner) == key) found = n;
  }
  if (found < 0) return;
  const std::string hole = hashedName(key, found);
  if (last != found) {
    const std::string tail = hashedName(key, last);
    if (::renameat(index_.get(), tail.c_str(), index_.get(), hole.c_str()) != 0) {
      throw ioError("rename", dirPath + "/" + tail, errno);
    }
  } else if (::unlinkat(index_.get(), hole.c_str(), 0) != 0 && errno != ENOENT) {
    throw ioError("remove", dirPath + "/" + hole, errno);
  }
}

void DiskStore::rewriteIndex() {
  const std::string dirPath = path_ + "/" + kIndexDir;
  std::set<std::string> keep{kStateFile};
  std::map<std::uint64_t, int> chains;
  for (const auto& [key, addrs] : entries_) {
    if (addrs.empty()) continue;
    std::string name = key;
    if (key.size() > kMaxEntryName) name = hashedName(key, chains[sys::fnv1a64(key)]++);
    // Reading is cheaper than writing: most entries are unchanged after host-local's visit.
    const std::string text = formatEntry(key, addrs);
    if (readSmall(index_.get(), name, dirPath) != text) {
      writeSmall(index_.get(), name, text, dirPath);
    }
    keep.insert(name);
  }
  std::vector<sys::DirEntry> listed;
  if (const int err = sys::listDirAt(index_.get(), listed); err != 0) {
    throw ioError("read directory", dirPath, err);
  }
  std::vector<std::string> stale;
  for (const auto& e : listed) {
    if (keep.count(e.name) != 0 || e.name.compare(0, kTempPrefix.size(), kTempPrefix) == 0)
      continue;
    stale.push_back(e.name);
  }
  for (const auto& name : stale) {
    if (::unlinkat(index_.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
      if (errno == EISDIR) throw fileError("remove", join(dirPath, name), {0, S_IFDIR});
      throw ioError("remove", join(dirPath, name), errno);
    }
  }
}

// ---- Store ----

bool DiskStore::isAllocated(const Address& a) {
  requireLocked("isAllocated");
  if (owners_.count(a) != 0) return true;
  if (full_) return false;  // a walk under this lock saw every file
  struct stat st {};
  if (::fstatat(dir_.get(), a.str().c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return true;
  if (errno == ENOENT) return false;
  throw ioError("stat", path_ + "/" + a.str(), errno);
}

std::optional<Owner> DiskStore::ownerOf(const Address& a) {
  requireLocked("ownerOf");
  if (auto it = owners_.find(a); it != owners_.end()) return it->second;
  if (full_) return std::nullopt;
  struct stat st {};
  if (::fstatat(dir_.get(), a.str().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return std::nullopt;
    throw ioError("stat", path_ + "/" + a.str(), errno);
  }
  if (!S_ISREG(st.st_mode)) return owners_[a] = std::nullopt;  // planted: held by nobody
  const auto content = readSmall(dir_.get(), a.str(), path_);
  if (!content) return std::nullopt;
  return owners_[a] = parseOwnerFile(*content);
}

std::vector<Address> DiskStore::addressesOf(const cni::Attachment& a) {
  requireLocked("addressesOf");
  ensureIndex();
  const bool wasFull = full_;
  std::vector<Address> out = entry(keyOf(a));
  const std::vector<Address> legacy = entry(keyOf(a.containerId, ""));
  if (!wasFull && full_) out = entries_[keyOf(a)];  // the second lookup rebuilt the index
  out.insert(out.end(), legacy.begin(), legacy.end());
  return out;
}

std::vector<Address> DiskStore::allAddressesOf(const cni::Attachment& a) {
  requireLocked("allAddressesOf");
  ensureIndex();
  // An attachment the index lists is complete (see the header); one it does not list may hold an
  // address host-local gave it unseen, unless the index is known complete.
  if (!complete_ && !full_) {
    std::vector<Address> indexed = addressesOf(a);
    if (!indexed.empty() || full_) return indexed;
    rebuild();
  }
  return addressesOf(a);
}

std::optional<Address> DiskStore::lastReserved(std::size_t rangeSetId) {
  requireLocked("lastReserved");
  const auto text = readSmall(dir_.get(), "last_reserved_ip." + std::to_string(rangeSetId), path_);
  if (!text) return std::nullopt;
  return disk::parseLastReserved(*text);
}

bool DiskStore::reserve(const Address& addr, const cni::Attachment& a) {
  requireLocked("reserve");
  if (mode_ == Mode::ReadOnly) throw Error(Code::Internal, "reserve on a read-only store");
  ensureIndex();
  prepare(a);
  const Owner owner{a.containerId, a.ifname};
  // Looked up before linking: a rebuild it may trigger must not see the new file yet.
  auto& addrs = entry(keyOf(owner));
  const std::string name = addr.str();
  markChanging();
  int rc = 0;
  if (tempName_.empty()) {
    // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; without it the kernel answers ENOENT and the
    // /proc/self/fd link does the same job.
    rc = ::linkat(temp_.get(), "", dir_.get(), name.c_str(), AT_EMPTY_PATH);
    if (rc != 0 && errno == ENOENT) {
      const std::string proc = "/proc/self/fd/" + std::to_string(temp_.get());
      rc = ::linkat(AT_FDCWD, proc.c_str(), dir_.get(), name.c_str(), AT_SYMLINK_FOLLOW);
    }
  } else {
    rc = ::linkat(index_.get(), tempName_.c_str(), dir_.get(), name.c_str(), 0);
  }
  if (rc != 0) {
    if (errno == EEXIST) return false;
    throw ioError("create", path_ + "/" + name, errno);
  }
  owners_[addr] = owner;
  addrs.push_back(addr);
  dirty_.insert(keyOf(owner));
  return true;
}

void DiskStore::setLastReserved(std::size_t rangeSetId, const Address& addr) {
  requireLocked("setLastReserved");
  writeSmall(dir_.get(), "last_reserved_ip." + std::to_string(rangeSetId), addr.str(), path_);
}

void DiskStore::release(const Address& addr) {
  requireLocked("release");
  if (mode_ == Mode::ReadOnly) throw Error(Code::Internal, "release on a read-only store");
  ensureIndex();
  const auto owner = ownerOf(addr);
  const std::string name = addr.str();
  markChanging();
  // A release lost in a crash leaves the address held by a gone attachment (GC frees it), never
  // handed out twice.
  if (::unlinkat(dir_.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
    throw ioError("remove", path_ + "/" + name, errno);
  }
  owners_.erase(addr);
  if (owner) {
    auto& e = entry(keyOf(*owner));
    std::erase(e, addr);
    dirty_.insert(keyOf(*owner));
  }
}

std::vector<std::pair<Address, std::optional<Owner>>> DiskStore::list() {
  auto all = walk();
  rebuilt_ = true;
  return all;
}

void DiskStore::commit() {
  if (!locked_) return;
  // A session that changed nothing and learnt nothing new (no walk) leaves the state as it is:
  // a failed DEL must not touch the store, not even to mark the state less trusted.
  const bool learnt = changing_ || !dirty_.empty() || rewriteAll_ || full_;
  if (mode_ != Mode::ReadOnly && index_ && (trusted_ || full_) && learnt) {
    if (rewriteAll_) {
      rewriteIndex();
    } else {
      for (const auto& key : dirty_) writeEntry(key, entries_[key]);
    }
    dirty_.clear();
    const std::string now = stamp() + std::string(full_ || complete_ ? kComplete : kIncomplete);
    if (now != recordedState_ || rewriteAll_) {
      writeSmall(index_.get(), kStateFile, now, join(path_, kIndexDir));
      recordedState_ = now;
    }
    changing_ = false;
  }
  if (!tempName_.empty() && index_) ::unlinkat(index_.get(), tempName_.c_str(), 0);
  tempName_.clear();
  unlock();
  // Nothing is flushed to disk. A killed plugin loses nothing (its writes are in the page cache),
  // and what a power loss or kernel crash can lose or tear belongs to pods that died with the
  // node: a lost name frees an address nobody uses any more, and a name whose content was lost
  // still holds its address, owned by nobody, until GC releases it. The index is checked against
  // the per-IP files and rebuilt from them when they disagree. host-local never flushes either.
}

std::size_t DiskStore::removeStaleTemps(std::chrono::seconds age) {
  requireLocked("removeStaleTemps");
  if (!index_) return 0;
  // Temps are written before the lock is taken, so a young one may belong to a running ADD.
  std::size_t removed = 0;
  if (const int err = sys::removeStaleFilesAt(index_.get(), kTempPrefix, age, tempName_, removed);
      err != 0) {
    throw ioError("read directory", join(path_, kIndexDir), err);
  }
  return removed;
}

// ---- read-only access for the audit ----

std::string DiskStore::pathOf(Dir dir) const {
  return dir == Dir::Network ? path_ : join(path_, kIndexDir);
}

int DiskStore::indexForReading() {
  if (!index_) {
    index_ = Fd(::openat(dir_.get(), kIndexDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!index_) throw ioError("open", pathOf(Dir::Index), errno);
  }
  return index_.get();
}

std::vector<DiskStore::File> DiskStore::files(Dir dir) {
  requireLocked("files");
  const int fd = dir == Dir::Network ? dir_.get() : indexForReading();
  std::vector<sys::DirEntry> listed;
  if (const int err = sys::listDirAt(fd, listed); err != 0) {
    throw ioError("read directory", pathOf(dir), err);
  }
  std::vector<File> out;
  for (const auto& e : listed) {
    struct stat st {};
    if (::fstatat(fd, e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone
    out.push_back({e.name, st.st_mode & S_IFMT, static_cast<std::int64_t>(st.st_mtime)});
  }
  return out;
}

std::optional<std::string> DiskStore::readFile(Dir dir, const std::string& name) {
  requireLocked("readFile");
  const int fd = dir == Dir::Network ? dir_.get() : indexForReading();
  return readSmall(fd, name, pathOf(dir));
}

std::optional<std::int64_t> DiskStore::allocatedAt(const Address& a) {
  struct stat st {};
  if (::fstatat(dir_.get(), a.str().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return std::nullopt;
    throw ioError("stat", path_ + "/" + a.str(), errno);
  }
  return static_cast<std::int64_t>(st.st_mtime);
}

}  // namespace dualstack::ipam
