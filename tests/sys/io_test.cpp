#include "dualstack/sys/io.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dualstack/sys/fd.hpp"
#include "support/support.hpp"

namespace dualstack::sys {
namespace {

using dualstack::testing::readFile;

namespace fs = std::filesystem;
using testing::TempDir;

std::vector<std::string> names(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Fd, ClosesOnceAndMovesOwnership) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  {
    Fd a(raw);
    Fd b(std::move(a));
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from state is specified
    EXPECT_EQ(b.get(), raw);
    Fd c;
    c = std::move(b);
    EXPECT_EQ(c.get(), raw);
    EXPECT_EQ(::fcntl(raw, F_GETFD), FD_CLOEXEC);
  }
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);

  Fd d(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  const int r = d.release();
  EXPECT_FALSE(d);
  EXPECT_EQ(::close(r), 0);  // still open: release() handed it over
  Fd e(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  EXPECT_EQ(e.close(), 0);
  EXPECT_FALSE(e);
}

TEST(ReadAll, ReadsEverythingAndStopsPastTheLimit) {
  TempDir tmp;
  const std::string big(100'000, 'x');
  std::ofstream(tmp.file("big")) << big;
  std::string out = "prefix:";
  Fd fd(::open(tmp.file("big").c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_EQ(readAll(fd.get(), out, big.size()), 0);
  EXPECT_EQ(out, "prefix:" + big);

  Fd again(::open(tmp.file("big").c_str(), O_RDONLY | O_CLOEXEC));
  std::string limited;
  EXPECT_EQ(readAll(again.get(), limited, 1000), EFBIG);
  EXPECT_GT(limited.size(), 1000U);

  Fd dir(::open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::string none;
  EXPECT_EQ(readAll(dir.get(), none, 10), EISDIR);
}

TEST(WriteAll, WritesEverythingOrReportsTheErrno) {
  TempDir tmp;
  const std::string data(300'000, 'y');
  {
    Fd fd(::open(tmp.file("f").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    EXPECT_EQ(writeAll(fd.get(), data), 0);
  }
  EXPECT_EQ(readFile(tmp.file("f")), data);
  Fd ro(::open(tmp.file("f").c_str(), O_RDONLY | O_CLOEXEC));
  EXPECT_EQ(writeAll(ro.get(), "z"), EBADF);
}

TEST(ReplaceFileAt, ReplacesWithContentAndModeLeavingNoTemp) {
  TempDir tmp;
  std::ofstream(tmp.file("conf")) << "old";
  Fd dir(::open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  const ReplaceFailure f = replaceFileAt(dir.get(), "conf", ".conf.tmp", "new content", 0644);
  EXPECT_EQ(f.err, 0) << f.step;
  EXPECT_EQ(readFile(tmp.file("conf")), "new content");
  struct stat st {};
  ASSERT_EQ(::stat(tmp.file("conf").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644U);
  EXPECT_EQ(names(tmp.path()), std::vector<std::string>{"conf"});
}

TEST(ReplaceFileAt, AStaleTempOfADeadWriterIsReplaced) {
  TempDir tmp;
  std::ofstream(tmp.file(".conf.tmp")) << "half-written by a killed writer";
  Fd dir(::open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  EXPECT_EQ(replaceFileAt(dir.get(), "conf", ".conf.tmp", "fresh", 0600).err, 0);
  EXPECT_EQ(readFile(tmp.file("conf")), "fresh");
  EXPECT_EQ(names(tmp.path()), std::vector<std::string>{"conf"});
}

TEST(ReplaceFileAt, AFailedRenameLeavesTheOldFileAndNoTemp) {
  TempDir tmp;
  // A non-empty directory under the target name: rename(2) of a file over it fails.
  fs::create_directories(tmp.file("conf/inside"));
  Fd dir(::open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  const ReplaceFailure f = replaceFileAt(dir.get(), "conf", ".conf.tmp", "x", 0600);
  EXPECT_EQ(f.err, EISDIR);
  EXPECT_STREQ(f.step, "rename into place");
  EXPECT_EQ(f.name, "conf");
  EXPECT_EQ(names(tmp.path()), std::vector<std::string>{"conf"});
  EXPECT_TRUE(fs::is_directory(tmp.file("conf/inside")));
}

TEST(ReplaceFileAt, NeverWritesThroughASymlinkedTemp) {
  TempDir tmp;
  std::ofstream(tmp.file("victim")) << "keep";
  fs::create_symlink(tmp.file("victim"), tmp.file(".conf.tmp"));
  Fd dir(::open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  // The link is a stale temp name: removed, never followed.
  EXPECT_EQ(replaceFileAt(dir.get(), "conf", ".conf.tmp", "data", 0600).err, 0);
  EXPECT_EQ(readFile(tmp.file("victim")), "keep");
  EXPECT_EQ(readFile(tmp.file("conf")), "data");
}

TEST(ListDirAt, EveryEntryWithItsTypeAndNotTheDots) {
  TempDir tmp;
  std::ofstream(tmp.file("file")) << "x";
  fs::create_directory(tmp.file("dir"));
  fs::create_symlink("file", tmp.file("link"));
  std::ofstream(tmp.file(".hidden")) << "y";
  Fd dir(::open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::vector<DirEntry> out;
  ASSERT_EQ(listDirAt(dir.get(), out), 0);
  std::map<std::string, unsigned char> got;
  for (const auto& e : out) got[e.name] = e.type;
  // d_type may be DT_UNKNOWN on some file systems; where it is known it must be right.
  const std::map<std::string, unsigned char> want = {
      {".hidden", DT_REG}, {"dir", DT_DIR}, {"file", DT_REG}, {"link", DT_LNK}};
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, type] : want) {
    ASSERT_EQ(got.count(name), 1U) << name;
    if (got[name] != DT_UNKNOWN) {
      EXPECT_EQ(got[name], type) << name;
    }
  }
  // The caller's descriptor stays open and usable: a second listing sees the same.
  std::vector<DirEntry> again;
  EXPECT_EQ(listDirAt(dir.get(), again), 0);
  EXPECT_EQ(again.size(), out.size());
}

TEST(ListDirAt, ReportsTheErrno) {
  Fd notDir(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  std::vector<DirEntry> out;
  EXPECT_EQ(listDirAt(notDir.get(), out), ENOTDIR);
  EXPECT_EQ(listDirAt(-1, out), EBADF);
  EXPECT_TRUE(out.empty());
}

TEST(RemoveStaleFilesAt, RemovesOnlyOldFilesWithThePrefix) {
  TempDir tmp;
  for (const char* name : {".tmp-1-0", ".tmp-2-0", ".tmp-3-0", "data"}) {
    std::ofstream(tmp.file(name)) << "x";
  }
  fs::create_directory(tmp.file(".tmp-dir"));
  const timespec old[2] = {{0, UTIME_OMIT}, {std::time(nullptr) - 3600, 0}};
  for (const char* name : {".tmp-1-0", ".tmp-3-0", "data", ".tmp-dir"}) {
    ASSERT_EQ(::utimensat(AT_FDCWD, tmp.file(name).c_str(), old, 0), 0);
  }
  Fd dir(::open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::size_t removed = 0;
  // .tmp-3-0 is the caller's own; .tmp-2-0 is young (a live writer's); data is not a temp.
  EXPECT_EQ(removeStaleFilesAt(dir.get(), ".tmp-", std::chrono::minutes(10), ".tmp-3-0", removed),
            0);
  EXPECT_EQ(removed, 1U);
  EXPECT_EQ(names(tmp.path()),
            (std::vector<std::string>{".tmp-2-0", ".tmp-3-0", ".tmp-dir", "data"}));
}

}  // namespace
}  // namespace dualstack::sys
