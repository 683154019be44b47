// The operators' check of an address store (`dualstack-ipam verify`): what the per-IP files, the
// index and anything else in the network directory say, compared. It only reads, through
// ipam::DiskStore's read-only view of its layout, under the store lock.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "dualstack/ipam/disk_store.hpp"

namespace dualstack::ops {

// Every disagreement between the per-IP files and the index, files that are not part of the
// store, unreadable records and temp files older than `tempAge`, one line each naming the file.
// `store` must be locked. A store without an index (only host-local has used it) is checked for
// stray files only.
std::vector<std::string> auditStore(ipam::DiskStore& store, std::chrono::seconds tempAge);

}  // namespace dualstack::ops
