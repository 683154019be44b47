#include "dualstack/sys/elf.hpp"

#include <elf.h>
#include <link.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

namespace dualstack::sys {

namespace {

constexpr std::size_t kMaxNotes = 64 << 10;  // real note segments are a few hundred bytes
constexpr std::size_t kMaxHeaders = 256;

std::size_t align4(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

// The NT_GNU_BUILD_ID note's descriptor among the notes in `notes`; empty when there is none.
std::string findBuildId(std::string_view notes) {
  while (notes.size() >= sizeof(Elf64_Nhdr)) {
    Elf64_Nhdr h;
    std::memcpy(&h, notes.data(), sizeof h);
    notes.remove_prefix(sizeof h);
    const std::size_t nameLen = align4(h.n_namesz);
    const std::size_t descLen = align4(h.n_descsz);
    if (nameLen > notes.size() || descLen > notes.size() - nameLen) break;
    const std::string_view name = notes.substr(0, h.n_namesz);
    if (h.n_type == NT_GNU_BUILD_ID && name == std::string_view("GNU\0", 4) && h.n_descsz > 0) {
      return std::string(notes.substr(nameLen, h.n_descsz));
    }
    notes.remove_prefix(nameLen + descLen);
  }
  return {};
}

bool readAt(int fd, void* buf, std::size_t len, std::uint64_t offset) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    const ssize_t n = ::pread(fd, p, len, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return true;
}

int onObject(dl_phdr_info* info, std::size_t, void* out) {
  // The first object is the program itself.
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    // NOLINTNEXTLINE(performance-no-int-to-ptr): dl_iterate_phdr gives the load address as a number
    const auto* start = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
    std::string id = findBuildId(std::string_view(start, ph.p_memsz));
    if (!id.empty()) {
      *static_cast<std::string*>(out) = std::move(id);
      break;
    }
  }
  return 1;  // stop after the program
}

}  // namespace

const std::string& ownBuildId() {
  static const std::string id = [] {
    std::string out;
    ::dl_iterate_phdr(onObject, &out);
    return out;
  }();
  return id;
}

std::string buildIdOf(int fd) {
  Elf64_Ehdr eh;
  if (!readAt(fd, &eh, sizeof eh, 0)) return {};
  constexpr unsigned char kOrder =
      __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB;
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_ident[EI_DATA] != kOrder || eh.e_phentsize != sizeof(Elf64_Phdr) ||
      eh.e_phnum > kMaxHeaders) {
    return {};
  }
  std::vector<Elf64_Phdr> headers(eh.e_phnum);
  if (!readAt(fd, headers.data(), headers.size() * sizeof(Elf64_Phdr), eh.e_phoff)) return {};
  for (const auto& ph : headers) {
    if (ph.p_type != PT_NOTE || ph.p_filesz > kMaxNotes) continue;
    std::string notes(ph.p_filesz, '\0');
    if (!readAt(fd, notes.data(), notes.size(), ph.p_offset)) continue;
    std::string id = findBuildId(notes);
    if (!id.empty()) return id;
  }
  return {};
}

}  // namespace dualstack::sys
