// Opening files that may be something else than a regular file: nothing blocks, nothing is read
// from a device, no link is followed unless asked, and nothing is read past its cap.
#include "dualstack/sys/file.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "support/support.hpp"

namespace dualstack::sys {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// Fails the whole test binary (visibly) instead of hanging when an open or read blocks.
class Watchdog {
 public:
  Watchdog() { ::alarm(30); }
  ~Watchdog() { ::alarm(0); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
};

FileProblem read(const std::string& path, std::string& out, std::size_t max = 1 << 20,
                 Links links = Links::Refuse) {
  return readRegularFileAt(AT_FDCWD, path, max, links, out);
}

TEST(ReadRegularFile, ReadsTheWholeFileAndAppends) {
  TempDir tmp;
  const std::string big(100'000, 'x');
  std::ofstream(tmp.file("big")) << big;
  std::string out = "prefix:";
  EXPECT_FALSE(read(tmp.file("big"), out));
  EXPECT_EQ(out, "prefix:" + big);
  std::ofstream(tmp.file("empty"));
  std::string empty;
  EXPECT_FALSE(read(tmp.file("empty"), empty));
  EXPECT_EQ(empty, "");
}

TEST(ReadRegularFile, ReadsProcFilesThatReportNoSize) {
  std::string status;
  EXPECT_FALSE(read("/proc/self/status", status, 1 << 20, Links::Follow));
  EXPECT_NE(status.find("Pid:"), std::string::npos);
}

TEST(ReadRegularFile, PastTheCapIsEfbigAndAppendsNothing) {
  TempDir tmp;
  std::ofstream(tmp.file("big")) << std::string(5000, 'x');
  std::string out = "kept";
  const FileProblem p = read(tmp.file("big"), out, 4999);
  EXPECT_EQ(p.err, EFBIG);
  EXPECT_EQ(p.limit, 4999u);
  EXPECT_EQ(p.describe(), "is larger than 4999 bytes");
  EXPECT_EQ(out, "kept");
  EXPECT_FALSE(read(tmp.file("big"), out, 5000));
}

TEST(ReadRegularFile, AFifoIsNamedAndNeitherOpenNorReadBlocks) {
  TempDir tmp;
  ASSERT_EQ(::mkfifo(tmp.file("fifo").c_str(), 0600), 0);
  const Watchdog watchdog;
  const auto start = std::chrono::steady_clock::now();
  std::string out;
  const FileProblem p = read(tmp.file("fifo"), out);
  EXPECT_EQ(p.err, 0);
  EXPECT_EQ(p.type, static_cast<mode_t>(S_IFIFO));
  EXPECT_EQ(p.describe(), "is a FIFO, not a regular file");
  // Opened for writing with nobody reading: that open would wait for a reader.
  Fd fd;
  const FileProblem w =
      openRegularAt(AT_FDCWD, tmp.file("fifo"), O_WRONLY | O_CREAT, 0600, Links::Refuse, fd);
  EXPECT_EQ(w.type, static_cast<mode_t>(S_IFIFO)) << w.describe();
  EXPECT_FALSE(fd);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(ReadRegularFile, DevicesDirectoriesAndSocketsAreNamed) {
  TempDir tmp;
  std::string out;
  FileProblem p = read("/dev/null", out, 100, Links::Follow);
  EXPECT_EQ(p.type, static_cast<mode_t>(S_IFCHR));
  EXPECT_EQ(p.describe(), "is a character device, not a regular file");
  p = read(tmp.path(), out);
  EXPECT_EQ(p.type, static_cast<mode_t>(S_IFDIR));
  EXPECT_EQ(p.describe(), "is a directory, not a regular file");
  Fd fd;
  p = openRegularAt(AT_FDCWD, tmp.path(), O_WRONLY | O_CREAT, 0600, Links::Refuse, fd);
  EXPECT_EQ(p.type, static_cast<mode_t>(S_IFDIR)) << p.describe();

  const int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(sock, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string sockPath = tmp.file("sock");
  ASSERT_LT(sockPath.size(), sizeof addr.sun_path);
  std::strcpy(addr.sun_path, sockPath.c_str());
  ASSERT_EQ(::bind(sock, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
  p = read(sockPath, out);
  ::close(sock);
  EXPECT_EQ(p.type, static_cast<mode_t>(S_IFSOCK)) << p.describe();
  EXPECT_EQ(p.describe(), "is a socket, not a regular file");
  EXPECT_EQ(out, "");
}

TEST(ReadRegularFile, SymlinksAreRefusedOrFollowedAsAsked) {
  TempDir tmp;
  std::ofstream(tmp.file("target")) << "content";
  fs::create_symlink(tmp.file("target"), tmp.file("link"));
  std::string out;
  const FileProblem p = read(tmp.file("link"), out);
  EXPECT_EQ(p.type, static_cast<mode_t>(S_IFLNK));
  EXPECT_EQ(p.describe(), "is a symbolic link, which is not followed");
  EXPECT_FALSE(read(tmp.file("link"), out, 100, Links::Follow));
  EXPECT_EQ(out, "content");

  // Followed to a FIFO: still named, still not blocking.
  ASSERT_EQ(::mkfifo(tmp.file("fifo").c_str(), 0600), 0);
  fs::create_symlink(tmp.file("fifo"), tmp.file("to-fifo"));
  const Watchdog watchdog;
  EXPECT_EQ(read(tmp.file("to-fifo"), out, 100, Links::Follow).type, static_cast<mode_t>(S_IFIFO));
  Fd fd;
  const FileProblem w =
      openRegularAt(AT_FDCWD, tmp.file("link"), O_WRONLY | O_CREAT, 0600, Links::Refuse, fd);
  EXPECT_EQ(w.type, static_cast<mode_t>(S_IFLNK));
  EXPECT_EQ(testing::readFile(tmp.file("target")), "content");
}

TEST(ReadRegularFile, MissingIsEnoent) {
  TempDir tmp;
  std::string out;
  const FileProblem p = read(tmp.file("nothing"), out);
  EXPECT_EQ(p.err, ENOENT);
  EXPECT_EQ(p.type, 0u);
  EXPECT_EQ(p.describe(), std::strerror(ENOENT));
}

TEST(OpenRegularAt, CreatesRelativeToTheDirectoryAndReportsTheStat) {
  TempDir tmp;
  const Fd dir(::open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  Fd fd;
  struct stat st {};
  ASSERT_FALSE(openRegularAt(dir.get(), "new", O_WRONLY | O_CREAT, 0600, Links::Refuse, fd, &st));
  EXPECT_TRUE(fd);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_TRUE(fs::is_regular_file(tmp.file("new")));
}

TEST(FileTypeName, NamesEveryKind) {
  EXPECT_STREQ(fileTypeName(S_IFREG | 0644), "a regular file");
  EXPECT_STREQ(fileTypeName(S_IFIFO), "a FIFO");
  EXPECT_STREQ(fileTypeName(S_IFBLK), "a block device");
  EXPECT_STREQ(fileTypeName(S_IFLNK), "a symbolic link");
}

TEST(MakeDirs, CreatesEveryMissingParentWithTheModeAndAcceptsWhatExists) {
  const TempDir tmp;
  const std::string deep = tmp.file("a/b/c");
  const mode_t old = ::umask(0);
  EXPECT_EQ(makeDirs(deep, 0700), 0);
  EXPECT_EQ(makeDirs(deep, 0700), 0) << "an existing directory is not an error";
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat(deep.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::stat(tmp.file("a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST(MakeDirs, NamesTheComponentThatCannotBeMade) {
  const TempDir tmp;
  std::ofstream(tmp.file("file")) << "x";
  std::string failed;
  EXPECT_EQ(makeDirs(tmp.file("file/sub/dir"), 0700, &failed), ENOTDIR);
  EXPECT_EQ(failed, tmp.file("file/sub"));
}

}  // namespace
}  // namespace dualstack::sys
