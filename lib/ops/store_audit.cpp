#include "dualstack/ops/store_audit.hpp"

#include <sys/stat.h>

#include <ctime>
#include <map>
#include <set>

namespace dualstack::ops {

using ip::Address;
using ipam::DiskStore;
using ipam::Owner;
namespace disk = ipam::disk;

namespace {

using Dir = DiskStore::Dir;

std::string kindOf(mode_t type) {
  switch (type) {
    case S_IFDIR:
      return "directory";
    case S_IFLNK:
      return "symlink";
    case S_IFREG:
      return "file";
    default:
      return "special file";
  }
}

class Audit {
 public:
  Audit(DiskStore& store, std::chrono::seconds tempAge) : store_(store), tempAge_(tempAge) {}

  std::vector<std::string> run() {
    if (networkDirectory()) {
      index();
      missingFromIndex();
    }
    return std::move(problems_);
  }

 private:
  void problem(const std::string& path, const std::string& what) {
    problems_.push_back(path + ": " + what);
  }
  std::string fileIn(Dir dir, const std::string& name) const {
    return store_.pathOf(dir) + "/" + name;
  }

  // The network directory: per-IP files, last_reserved_ip.N, lock, .dualstack, nothing else.
  // Whether it has an index directory.
  bool networkDirectory() {
    bool hasIndex = false;
    for (const auto& e : store_.files(Dir::Network)) {
      const std::string file = fileIn(Dir::Network, e.name);
      if (e.name == disk::kIndexDir) {
        if (e.type == S_IFDIR) {
          hasIndex = true;
        } else {
          problem(file, "is a " + kindOf(e.type) + ", expected the index directory");
        }
      } else if (e.name == disk::kLockFile) {
        if (e.type != S_IFREG) problem(file, "the lock is a " + kindOf(e.type));
      } else if (disk::isLastReservedName(e.name)) {
        const auto text = e.type == S_IFREG ? store_.readFile(Dir::Network, e.name) : std::nullopt;
        if (!text || !disk::parseLastReserved(*text)) problem(file, "does not hold an address");
      } else {
        allocation(e);
      }
    }
    return hasIndex;
  }

  void allocation(const DiskStore::File& e) {
    const std::string file = fileIn(Dir::Network, e.name);
    const auto a = Address::parse(e.name);
    if (!a || e.type != S_IFREG) {
      problem(file, "not an allocation (stray " + kindOf(e.type) + ")");
      return;
    }
    if (a->str() != e.name) {
      problem(file, "not an allocation: the address is not in canonical form (" + a->str() +
                        "), so no plugin ever looks it up");
      return;
    }
    const auto content = store_.readFile(Dir::Network, e.name);
    if (!content) return;
    const auto owner = ipam::parseOwnerFile(*content);
    if (!owner) {
      problem(file, "names no owner (the address is held by nobody; gc releases it)");
      return;
    }
    owners_.emplace(*a, *owner);
  }

  // The index: every entry parses and lists only files its attachment holds.
  void index() {
    const auto now = std::time(nullptr);
    for (const auto& e : store_.files(Dir::Index)) {
      const std::string file = fileIn(Dir::Index, e.name);
      if (e.name == disk::kStateFile) continue;
      if (e.name.compare(0, disk::kTempPrefix.size(), disk::kTempPrefix) == 0) {
        if (now - e.mtime >= tempAge_.count()) {
          problem(file, "temp file of an ADD that did not finish (gc removes it)");
        }
        continue;
      }
      if (e.type != S_IFREG) {
        problem(file, "not an index entry (stray " + kindOf(e.type) + ")");
        continue;
      }
      const auto text = store_.readFile(Dir::Index, e.name);
      const auto parsed = text ? disk::parseIndexEntry(*text) : std::nullopt;
      if (!parsed ||
          (!disk::isHashedEntryName(e.name) && disk::entryKey(parsed->owner) != e.name)) {
        problem(file, "not a valid index entry");
        continue;
      }
      entry(file, *parsed);
    }
  }

  void entry(const std::string& file, const disk::IndexEntry& parsed) {
    const Owner& expected = parsed.owner;
    for (const auto& a : parsed.addresses) {
      indexed_[disk::entryKey(expected)].insert(a);
      const auto it = owners_.find(a);
      if (it == owners_.end()) {
        problem(file, "lists " + a.str() + " for " + expected.str() + ", but " +
                          fileIn(Dir::Network, a.str()) + " does not hold an allocation");
      } else if (!(it->second == expected)) {
        problem(file, "lists " + a.str() + " for " + expected.str() +
                          ", but the address belongs to " + it->second.str());
      }
    }
  }

  // Every per-IP file is listed by its attachment's entry.
  void missingFromIndex() {
    for (const auto& [a, owner] : owners_) {
      const auto it = indexed_.find(disk::entryKey(owner));
      if (it == indexed_.end() || it->second.count(a) == 0) {
        problem(fileIn(Dir::Network, a.str()),
                "held by " + owner.str() + " but missing from the index (a GC rewrites the index)");
      }
    }
  }

  DiskStore& store_;
  std::chrono::seconds tempAge_;
  std::vector<std::string> problems_;
  std::map<Address, Owner> owners_;
  std::map<std::string, std::set<Address>> indexed_;
};

}  // namespace

std::vector<std::string> auditStore(DiskStore& store, std::chrono::seconds tempAge) {
  return Audit(store, tempAge).run();
}

}  // namespace dualstack::ops
