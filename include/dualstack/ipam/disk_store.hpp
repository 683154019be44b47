// The allocation store on disk, in host-local's layout so that host-local and dualstack-ipam can
// share a dataDir (and an operator can switch `type` without losing allocations):
//
//   <dataDir>/<network>/                 directories we create are mode 0700
//     lock                               flock(LOCK_EX) for a whole session (host-local's too)
//     <address>                          one file per allocated address, named by its canonical
//                                        text ("10.244.1.5", "fd00:10:244:1::5"), mode 0600,
//                                        content "<containerID>\r\n<ifname>" (no trailing newline);
//                                        files holding only "<containerID>" (host-local < 0.7)
//                                        are honoured
//     last_reserved_ip.<N>               the address handed out last from range set N (no newline)
//     .dualstack/                        our index by attachment, ignored by host-local
//       <containerID>@<ifname>           "# dualstack-ipam index entry v1\n"
//                                        "containerID <id>\n" "ifname <ifname>\n"
//                                        "address <address>\n"... (ifname line absent for the
//                                        entry of legacy ID-only files, named "<containerID>@");
//                                        names longer than 200 bytes become "~<fnv64 hex>.<n>"
//       state                            "# dualstack-ipam index state v2\n"
//                                        "dir <inode> <mtime s.ns> <ctime s.ns>\n"
//                                        "boot <kernel boot ID>\n" "complete yes|no\n", or
//                                        "changing\n" after the first line while a session
//                                        changes the directory
//       .tmp-<pid>-<n>                   only where O_TMPFILE is unsupported, during an ADD
//
// Every file is opened non-blocking, without following links, and kept only when it is a
// regular file: anything else planted under one of these names is an error naming it (a name
// planted in place of an allocation holds that address for nobody, see walk()). The lock is
// waited for at most sys::kLockWait (then Error(TryAgainLater) naming the lock and its holder).
//
// host-local's DEL walks the whole tree and deletes files whose trimmed content equals
// "<id>\r\n<ifname>" or "<id>"; index files start with '#', which no container ID can.
//
// The index saves every ADD/DEL/CHECK a walk of the directory. It is trusted only while the
// network directory's inode, mtime and ctime, and the kernel's boot ID, equal those recorded in
// `state` after our own last change (under the lock): host-local, a crash or a person changing
// the directory makes them differ, and the index is rebuilt from the per-IP files in one walk.
// Writes inside .dualstack/ do not touch the parent's times. An entry naming a file that is
// missing or has another owner triggers the rebuild too. Why no interleaving hands out an
// address twice or makes DEL miss one:
// - ADD never takes a free address from the index: isAllocated() stats the per-IP file (or
//   trusts a walk made under this lock), and reserve() creates the name with linkat(), which
//   fails on an existing name as O_EXCL does. Under the lock host-local adds nothing meanwhile.
// - A crash of ours between creating or removing a per-IP file and writing the index: before
//   its first such change a session replaces the stamp in `state` by "changing"
//   (markChanging()), and only commit() writes a stamp again. A session killed in between leaves
//   "changing", which matches no directory, so the next session rebuilds.
// - A crash of the machine: entries and state are rewritten in place without a flush, so after
//   a power loss any mix of old and new contents may be on disk. Within one boot every reader
//   sees the page cache, in the order we wrote it; the boot ID makes the first session after a
//   reboot rebuild.
// - host-local within a timestamp tick: before Linux 6.13 (multigrain timestamps), and on file
//   systems with coarse timestamps, a file host-local creates within the tick (~4 ms; 1 s with
//   second timestamps) of our last change leaves the directory's times as they were, and the
//   index trusts itself without that file. host-local takes the lock only after we wrote
//   `state`, so when the state file's ctime is later than the recorded directory ctime, any
//   change of its has later times too; otherwise the state is "racy" (git's word for the same
//   problem with its index), and until the next walk the index is not known to be complete
//   ("complete no" is carried forward by every session that did not walk). Even then the entry of
//   an attachment the index lists is complete: host-local refuses an attachment a second address
//   in a range where it holds one, and a runtime must not ADD an attachment twice without a DEL.
//   But an attachment the index does not list may hold an address host-local gave it, so
//   allAddressesOf(), which DEL uses, walks the directory before it answers "nothing" from an
//   index not known to be complete. Between walks, ADD of a new attachment reads its missing
//   entry as "nothing" safely (it allocates afresh) and CHECK may report a host-local address
//   as missing.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "dualstack/ipam/store.hpp"
#include "dualstack/sys/fd.hpp"
#include "dualstack/sys/lock.hpp"

struct stat;

namespace dualstack::ipam {

// The names of the layout above and the format of its index entries, shared by DiskStore and
// the operators' audit (ops::auditStore).
namespace disk {
inline constexpr const char* kIndexDir = ".dualstack";
inline constexpr const char* kStateFile = "state";
inline constexpr const char* kLockFile = "lock";
inline constexpr std::string_view kTempPrefix = ".tmp-";

// "last_reserved_ip.<N>"
bool isLastReservedName(std::string_view name);
// The address such a file holds (surrounding whitespace ignored), if any.
std::optional<ip::Address> parseLastReserved(std::string_view text);
// Index entries whose "<containerID>@<ifname>" is too long for a file name: "~<fnv64 hex>.<n>".
bool isHashedEntryName(std::string_view name);
// The name of an owner's index entry (unless hashed): "<containerID>@<ifname>", or
// "<containerID>@" for a legacy ID-only owner.
std::string entryKey(const Owner& owner);

struct IndexEntry {
  Owner owner;
  std::vector<ip::Address> addresses;
};
// nullopt for anything but a whole entry (torn, foreign, or naming no container).
std::optional<IndexEntry> parseIndexEntry(std::string_view text);

}  // namespace disk

class DiskStore final : public Store {
 public:
  enum class Mode {
    Create,    // create missing directories
    Existing,  // open() returns nullptr when the network directory does not exist
    ReadOnly,  // like Existing, and never writes (STATUS)
  };
  static std::unique_ptr<DiskStore> open(const std::string& dataDir, const std::string& network,
                                         Mode mode);
  ~DiskStore() override;
  DiskStore(const DiskStore&) = delete;
  DiskStore& operator=(const DiskStore&) = delete;

  // Writes the per-IP file content for `a` into an unnamed temp file before the lock is taken,
  // so that part of an ADD overlaps with other ADDs. reserve() publishes it under each address
  // with linkat(), which fails on an existing name like O_EXCL. Optional: reserve() prepares on
  // demand. Nothing is flushed to disk (see commit()).
  void prepare(const cni::Attachment& a);
  // Takes the store lock, waiting at most `wait` while another process holds it
  // (Error(TryAgainLater) naming the lock file and, when /proc/locks tells, its holder), and
  // checks whether the index can be trusted.
  void lock(std::chrono::milliseconds wait = sys::kLockWait);

  bool isAllocated(const ip::Address& a) override;
  std::optional<Owner> ownerOf(const ip::Address& a) override;
  std::vector<ip::Address> addressesOf(const cni::Attachment& a) override;
  std::vector<ip::Address> allAddressesOf(const cni::Attachment& a) override;
  std::optional<ip::Address> lastReserved(std::size_t rangeSetId) override;
  bool reserve(const ip::Address& addr, const cni::Attachment& a) override;
  void setLastReserved(std::size_t rangeSetId, const ip::Address& addr) override;
  void release(const ip::Address& addr) override;
  std::vector<std::pair<ip::Address, std::optional<Owner>>> list() override;
  // Writes the index entries and state and unlocks.
  void commit() override;

  // GC: removes temp files of crashed ADDs older than `age`; returns how many.
  std::size_t removeStaleTemps(std::chrono::seconds age);

  // Read-only access to the files of the layout above, for the operators' audit
  // (ops::auditStore). Needs the lock; creates nothing.
  enum class Dir { Network, Index };
  struct File {
    std::string name;
    mode_t type;  // S_IFREG, S_IFDIR, S_IFLNK, ...
    std::int64_t mtime;
  };
  // The entries of the directory, types and times as they were when it was read (without
  // following links); Error(IoFailure) naming it when it cannot be read or does not exist.
  std::vector<File> files(Dir dir);
  // The content of a file of the directory (nullopt when it does not exist; empty past 64 KiB),
  // or Error(IoFailure) naming it when it is not a regular file or cannot be read.
  std::optional<std::string> readFile(Dir dir, const std::string& name);
  std::string pathOf(Dir dir) const;
  // When the per-IP file of `a` was last written (seconds since the epoch), if it exists.
  std::optional<std::int64_t> allocatedAt(const ip::Address& a);
  // Tests: use the named temp files of filesystems without O_TMPFILE.
  void useNamedTemps() { namedTemps_ = true; }
  // Whether this session rebuilt the index from the per-IP files (for tests).
  bool rebuiltIndex() const { return rebuilt_; }
  const std::string& path() const { return path_; }

 private:
  DiskStore(std::string path, int dirFd, Mode mode);
  void openIndexDir();
  int indexForReading();
  void ensureIndex();
  void rebuild();
  std::vector<std::pair<ip::Address, std::optional<Owner>>> walk();
  std::vector<ip::Address>& entry(const std::string& key);
  std::optional<std::vector<ip::Address>> readEntry(const std::string& key, bool* consistent);
  void writeEntry(const std::string& key, const std::vector<ip::Address>& addrs);
  void removeEntry(const std::string& key);
  void rewriteIndex();
  std::string stamp(struct stat* dirStat = nullptr) const;
  void markChanging();
  void requireLocked(const char* what) const;
  void unlock();

  using Fd = sys::Fd;

  std::string path_;
  Fd dir_;
  Fd index_;  // .dualstack
  Fd lock_;
  Mode mode_;
  bool locked_ = false;
  bool trusted_ = false;     // state matched the directory when we locked it
  bool complete_ = false;    // ... lacked no allocation since the last walk, and was not racy
  bool changing_ = false;    // the state says "changing" until commit
  bool full_ = false;        // entries_ holds every attachment (after a walk)
  bool rewriteAll_ = false;  // commit rewrites the whole index
  bool rebuilt_ = false;
  bool namedTemps_ = false;
  std::string recordedState_;

  // Prepared per-IP content: an O_TMPFILE, or a named temp in .dualstack/.
  Fd temp_;
  std::string tempName_;
  std::optional<cni::Attachment> tempOwner_;

  std::map<std::string, std::vector<ip::Address>> entries_;  // key "<id>@<ifname>" / "<id>@"
  std::set<std::string> dirty_;
  std::map<ip::Address, std::optional<Owner>> owners_;
};

}  // namespace dualstack::ipam
