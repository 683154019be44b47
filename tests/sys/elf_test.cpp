// GNU build IDs of files and of the running program.
#include "dualstack/sys/elf.hpp"

#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "dualstack/sys/fd.hpp"
#include "dualstack/sys/io.hpp"
#include "support/support.hpp"

namespace dualstack::sys {
namespace {

// A minimal 64-bit ELF file of this machine: a header, one program header and its note segment.
struct ElfImage {
  Elf64_Ehdr eh{};
  Elf64_Phdr ph{};
  std::string notes;

  ElfImage() {
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_DYN;
    eh.e_phoff = sizeof eh;
    eh.e_phentsize = sizeof ph;
    eh.e_phnum = 1;
    ph.p_type = PT_NOTE;
    ph.p_offset = sizeof eh + sizeof ph;
  }

  static std::string note(std::uint32_t type, std::string name, const std::string& desc) {
    Elf64_Nhdr h{static_cast<Elf64_Word>(name.size() + 1), static_cast<Elf64_Word>(desc.size()),
                 type};
    std::string out(reinterpret_cast<const char*>(&h), sizeof h);
    name.push_back('\0');
    name.resize((name.size() + 3) & ~std::size_t{3}, '\0');
    out += name;
    out += desc;
    out.resize((out.size() + 3) & ~std::size_t{3}, '\0');
    return out;
  }

  std::string bytes() {
    ph.p_filesz = ph.p_memsz = notes.size();
    std::string out(reinterpret_cast<const char*>(&eh), sizeof eh);
    out.append(reinterpret_cast<const char*>(&ph), sizeof ph);
    return out + notes;
  }
};

class BuildId : public ::testing::Test {
 protected:
  testing::TempDir dir;

  std::string idOf(const std::string& content) {
    const std::string path = dir.file("f");
    {
      Fd w(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      EXPECT_EQ(writeAll(w.get(), content), 0);
    }
    const Fd r(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    return buildIdOf(r.get());
  }
};

const std::string kId =
    "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14";

TEST_F(BuildId, FoundAmongOtherNotes) {
  ElfImage elf;
  elf.notes = ElfImage::note(NT_GNU_ABI_TAG, "GNU", std::string(16, '\0')) +
              ElfImage::note(NT_GNU_BUILD_ID, "GNU", kId);
  EXPECT_EQ(idOf(elf.bytes()), kId);
}

TEST_F(BuildId, NoneWithoutTheNote) {
  ElfImage elf;
  elf.notes = ElfImage::note(NT_GNU_ABI_TAG, "GNU", std::string(16, '\0'));
  EXPECT_EQ(idOf(elf.bytes()), "");
  // The right type under another owner's name is not a GNU build ID.
  elf.notes = ElfImage::note(NT_GNU_BUILD_ID, "XYZ", kId);
  EXPECT_EQ(idOf(elf.bytes()), "");
}

TEST_F(BuildId, NoneForFilesThatAreNotElf) {
  EXPECT_EQ(idOf(""), "");
  EXPECT_EQ(idOf("#!/bin/sh\necho not a build\n"), "");
  ElfImage elf;
  elf.notes = ElfImage::note(NT_GNU_BUILD_ID, "GNU", kId);
  const std::string good = elf.bytes();
  EXPECT_EQ(idOf(good.substr(0, good.size() - 4)), "");         // the note cut short
  EXPECT_EQ(idOf(good.substr(0, sizeof(Elf64_Ehdr) + 8)), "");  // the program header cut short
  ElfImage elf32 = elf;
  elf32.eh.e_ident[EI_CLASS] = ELFCLASS32;
  EXPECT_EQ(idOf(elf32.bytes()), "");
  ElfImage lying = elf;
  lying.eh.e_phnum = 60000;  // far more headers than the file holds
  EXPECT_EQ(idOf(lying.bytes()), "");
}

TEST_F(BuildId, NoteSizesBeyondTheSegmentAreRejected) {
  ElfImage elf;
  std::string n = ElfImage::note(NT_GNU_BUILD_ID, "GNU", kId);
  Elf64_Nhdr h;
  std::memcpy(&h, n.data(), sizeof h);
  h.n_descsz = 0xfffffff0;  // would wrap a careless bounds check
  std::memcpy(n.data(), &h, sizeof h);
  elf.notes = n;
  EXPECT_EQ(idOf(elf.bytes()), "");
}

TEST(OwnBuildId, IsTheOneInTheProgramFile) {
  // Debian's linker gives every program a build ID (sha1 unless told otherwise).
  ASSERT_FALSE(ownBuildId().empty());
  const Fd self(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(self);
  EXPECT_EQ(buildIdOf(self.get()), ownBuildId());
  EXPECT_EQ(ownBuildId().size(), 20u);
}

}  // namespace
}  // namespace dualstack::sys
