// dualstack-ipam run by a person: list, verify, release and gc against stores with planted leaks
// and inconsistencies, through the built binary (exit codes and output).
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "support/support.hpp"

namespace dualstack::ops {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

struct Cli {
  int status = -1;
  std::string out;
  std::string err;
};

using dualstack::testing::readFile;

void writeFile(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

class IpamCli : public ::testing::Test {
 protected:
  dualstack::testing::TempDir tmp;
  std::string dataDir = tmp.file("networks");
  std::string store = dataDir + "/net1";
  std::string binary = dualstack::testing::binPath("dualstack-ipam");
  std::string confPath = tmp.file("net1.conflist");

  void SetUp() override {
    const json conflist = {
        {"cniVersion", "1.0.0"},
        {"name", "net1"},
        {"plugins",
         {{{"type", "dualstack"},
           {"ipam",
            {{"type", "dualstack-ipam"},
             {"dataDir", dataDir},
             {"node", {{"podCIDRs", {"10.244.1.0/24", "fd00:10:244:1::/64"}}}}}}}}}};
    writeFile(confPath, conflist.dump());
  }

  // Runs the binary by hand (no CNI_* variables) with `args` (shell words, no quoting needed).
  Cli run(const std::string& args, const std::string& bin = "") const {
    const std::string out = tmp.file("cli.out"), err = tmp.file("cli.err");
    Cli c;
    c.status = dualstack::testing::shell("env -u CNI_COMMAND " + (bin.empty() ? binary : bin) +
                                         " " + args + " >" + out + " 2>" + err);
    c.out = readFile(out);
    c.err = readFile(err);
    return c;
  }

  // A real ADD, the way a runtime does it.
  void add(const std::string& id, const std::string& ifname = "eth0") const {
    const json conf = {{"cniVersion", "1.0.0"},
                       {"name", "net1"},
                       {"type", "dualstack"},
                       {"ipam",
                        {{"type", "dualstack-ipam"},
                         {"dataDir", dataDir},
                         {"node", {{"podCIDRs", {"10.244.1.0/24", "fd00:10:244:1::/64"}}}}}}};
    const auto r = dualstack::testing::runPlugin(
        binary, dualstack::testing::cniEnv("ADD", id, "/var/run/netns/x", ifname), conf.dump());
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
  }

  // Three healthy attachments: c1, c2, c3 hold 10.244.1.{2,3,4} and fd00:10:244:1::{2,3,4}.
  void populate() const {
    add("c1");
    add("c2");
    add("c3");
  }

  // The leaks and inconsistencies operators find after crashes and hand edits.
  void plantProblems() const {
    writeFile(store + "/notes.txt", "hello");                  // stray file
    fs::create_directory(store + "/subdir");                   // stray directory
    fs::remove(store + "/10.244.1.3");                         // c2's index entry names a gone file
    writeFile(store + "/10.244.1.50", "c9\r\neth0");           // allocation missing from the index
    writeFile(store + "/10.99.0.1", "c8\r\neth0");             // outside the podCIDRs
    writeFile(store + "/10.244.1.60", "");                     // names nobody
    writeFile(store + "/.dualstack/bogus@eth0", "garbage\n");  // not an index entry
  }

  std::map<std::string, std::string> snapshot() const {
    return dualstack::testing::snapshotTree(store);
  }
};

TEST_F(IpamCli, HelpAndVersionOfBothBinaries) {
  for (const std::string args : {"--help", "help", "-h"}) {
    const Cli c = run(args);
    EXPECT_EQ(c.status, 0) << args;
    EXPECT_THAT(c.out, HasSubstr("Usage: dualstack-ipam COMMAND")) << args;
    for (const char* cmd : {"list", "verify", "release", "gc"}) EXPECT_THAT(c.out, HasSubstr(cmd));
  }
  for (const std::string bin : {"dualstack", "dualstack-ipam"}) {
    const Cli v = run("--version", dualstack::testing::binPath(bin));
    EXPECT_EQ(v.status, 0) << bin;
    const auto first = lines(v.out).at(0);
    EXPECT_EQ(first.rfind(bin + " ", 0), 0u) << first;
    const std::string version = first.substr(bin.size() + 1);
    // PROJECT_VERSION, optionally followed by git's description of the commit.
    EXPECT_TRUE(!version.empty() && version[0] >= '0' && version[0] <= '9') << version;
    EXPECT_THAT(version, Not(HasSubstr("unknown")));
    EXPECT_THAT(v.out, HasSubstr("1.1.0"));  // the CNI versions
  }
  const Cli h = run("--help", dualstack::testing::binPath("dualstack"));
  EXPECT_EQ(h.status, 0);
  EXPECT_THAT(h.out, HasSubstr("CNI plugin"));
}

TEST_F(IpamCli, BadUsageExitsTwoWithAMessage) {
  const Cli none = run("");
  EXPECT_EQ(none.status, 2);
  EXPECT_THAT(none.err, HasSubstr("Usage:"));

  const Cli unknown = run("frobnicate");
  EXPECT_EQ(unknown.status, 2);
  EXPECT_THAT(unknown.err, HasSubstr("unknown command \"frobnicate\""));

  const Cli noIfname = run("release --data-dir " + dataDir + " --network net1 --container-id c1");
  EXPECT_EQ(noIfname.status, 2);
  EXPECT_THAT(noIfname.err, HasSubstr("release needs --container-id and --ifname"));

  const Cli both = run("gc --network net1 --cache-dir /x --live /y");
  EXPECT_EQ(both.status, 2);
  EXPECT_THAT(both.err, HasSubstr("not both"));

  const Cli misplaced = run("list --dry-run");
  EXPECT_EQ(misplaced.status, 2);
  EXPECT_THAT(misplaced.err, HasSubstr("--dry-run does not apply to list"));

  const Cli missingValue = run("list --network");
  EXPECT_EQ(missingValue.status, 2);
  EXPECT_THAT(missingValue.err, HasSubstr("--network needs a value"));
}

TEST_F(IpamCli, ListShowsEveryAllocationAsTableAndJson) {
  populate();
  const Cli table = run("list --data-dir " + dataDir);
  ASSERT_EQ(table.status, 0) << table.err;
  const auto rows = lines(table.out);
  ASSERT_EQ(rows.size(), 7u) << table.out;
  EXPECT_THAT(rows[0], HasSubstr("NETWORK"));
  EXPECT_THAT(rows[0], HasSubstr("CONTAINER ID"));
  EXPECT_THAT(rows[1], HasSubstr("10.244.1.2"));
  EXPECT_THAT(rows[1], HasSubstr("c1"));
  EXPECT_THAT(rows[1], HasSubstr("eth0"));
  EXPECT_THAT(rows[6], HasSubstr("fd00:10:244:1::4"));

  const Cli js = run("list --data-dir " + dataDir + " --network net1 --json");
  ASSERT_EQ(js.status, 0) << js.err;
  const json j = json::parse(js.out);
  ASSERT_EQ(j.size(), 6u);
  EXPECT_EQ(j[0]["network"], "net1");
  EXPECT_EQ(j[0]["address"], "10.244.1.2");
  EXPECT_EQ(j[0]["containerID"], "c1");
  EXPECT_EQ(j[0]["ifname"], "eth0");
  EXPECT_GE(j[0]["ageSeconds"].get<int>(), 0);
  EXPECT_LT(j[0]["ageSeconds"].get<int>(), 600);

  // The config names the store just as well; a store that does not exist lists nothing.
  const Cli viaConfig = run("list --json --config " + confPath);
  ASSERT_EQ(viaConfig.status, 0) << viaConfig.err;
  EXPECT_EQ(json::parse(viaConfig.out).size(), 6u);
  const Cli other = run("list --json --data-dir " + dataDir + " --network net2");
  ASSERT_EQ(other.status, 0) << other.err;
  EXPECT_EQ(json::parse(other.out).size(), 0u);
}

TEST_F(IpamCli, ListShowsLeaksWithoutChangingTheStore) {
  populate();
  plantProblems();
  const auto before = snapshot();
  const Cli js = run("list --json --data-dir " + dataDir);
  ASSERT_EQ(js.status, 0) << js.err;
  const json j = json::parse(js.out);
  std::map<std::string, json> byAddr;
  for (const auto& e : j) byAddr[e["address"].get<std::string>()] = e;
  EXPECT_EQ(byAddr.count("10.244.1.3"), 0u);
  EXPECT_EQ(byAddr.at("10.244.1.50")["containerID"], "c9");
  EXPECT_EQ(byAddr.at("10.99.0.1")["containerID"], "c8");
  EXPECT_TRUE(byAddr.at("10.244.1.60")["containerID"].is_null());
  EXPECT_EQ(snapshot(), before);
}

TEST_F(IpamCli, VerifyHealthyStore) {
  populate();
  const Cli c = run("verify --config " + confPath);
  EXPECT_EQ(c.status, 0) << c.out << c.err;
  EXPECT_EQ(c.out, "");
  EXPECT_THAT(c.err, HasSubstr("no problems"));
}

TEST_F(IpamCli, VerifyReportsEachProblemOnOneLine) {
  populate();
  plantProblems();
  const auto before = snapshot();
  const Cli c = run("verify --data-dir " + dataDir);
  EXPECT_EQ(c.status, 1);
  const auto out = lines(c.out);
  const std::vector<std::string> expected = {
      store + "/notes.txt: not an allocation (stray file)",
      store + "/subdir: not an allocation (stray directory)",
      store + "/10.244.1.60: names no owner",
      store + "/.dualstack/bogus@eth0: not a valid index entry",
      store + "/.dualstack/c2@eth0: lists 10.244.1.3 for c2/eth0, but " + store +
          "/10.244.1.3 does not hold an allocation",
      store + "/10.244.1.50: held by c9/eth0 but missing from the index",
      store + "/10.99.0.1: held by c8/eth0 but missing from the index",
  };
  for (const auto& e : expected) {
    EXPECT_EQ(std::count_if(out.begin(), out.end(),
                            [&](const std::string& l) { return l.rfind(e, 0) == 0; }),
              1)
        << "expected one line starting with: " << e << "\ngot:\n"
        << c.out;
  }
  EXPECT_EQ(out.size(), expected.size()) << c.out;
  EXPECT_THAT(c.err, HasSubstr("7 problems"));
  EXPECT_EQ(snapshot(), before);  // verify only reads

  // With the config, the address outside the podCIDRs is a problem too.
  const Cli withConf = run("verify --config " + confPath);
  EXPECT_EQ(withConf.status, 1);
  EXPECT_THAT(withConf.out,
              HasSubstr(store + "/10.99.0.1: held by c8/eth0, outside the ranges of " + confPath +
                        " (10.244.1.0/24, fd00:10:244:1::/64)"));
  EXPECT_EQ(lines(withConf.out).size(), expected.size() + 1) << withConf.out;
}

TEST_F(IpamCli, VerifyFindsReservedAndDoubleAllocations) {
  populate();
  writeFile(store + "/10.244.1.1", "c7\r\neth0");   // the gateway
  writeFile(store + "/10.244.1.70", "c1\r\neth0");  // a second IPv4 address for c1
  const Cli c = run("verify --config " + confPath);
  EXPECT_EQ(c.status, 1);
  EXPECT_THAT(c.out,
              HasSubstr(store + "/10.244.1.1: held by c7/eth0, but 10.244.1.1 is the network, "
                                "gateway or broadcast address"));
  EXPECT_THAT(c.out, HasSubstr(store + ": c1/eth0 holds 2 addresses of one range set (10.244.1.2, "
                                       "10.244.1.70); one is leaked"));
}

TEST_F(IpamCli, VerifyOfAMissingStoreOrBadConfigFails) {
  const Cli missing = run("verify --data-dir " + dataDir + " --network net1");
  EXPECT_EQ(missing.status, 1);
  EXPECT_THAT(missing.err, HasSubstr("no address store at " + store));

  const Cli noConf = run("verify --config " + tmp.file("nope.conflist"));
  EXPECT_EQ(noConf.status, 1);
  EXPECT_THAT(noConf.err, HasSubstr(tmp.file("nope.conflist")));

  writeFile(tmp.file("bad.conflist"),
            R"({"cniVersion": "1.0.0", "name": "x", "plugins": [{"type": "dualstack"}]})");
  const Cli bad = run("verify --config " + tmp.file("bad.conflist"));
  EXPECT_EQ(bad.status, 1);
  EXPECT_THAT(bad.err, HasSubstr("has no plugin whose ipam.type is dualstack-ipam"));

  // Copying a plugin out of a list nested this deep overflowed the stack.
  writeFile(tmp.file("deep.conflist"),
            R"({"cniVersion": "1.0.0", "name": "x", "plugins": [{"type": "dualstack", "ipam": )"
            R"({"type": "dualstack-ipam", "x": )" +
                dualstack::testing::nestedJson(100000) + "}}]}");
  const Cli deep = run("verify --config " + tmp.file("deep.conflist"));
  EXPECT_EQ(deep.status, 1);
  EXPECT_THAT(deep.err, HasSubstr("network config " + tmp.file("deep.conflist") +
                                  " is nested deeper than 128 levels"));

  const Cli badName = run("verify --data-dir " + dataDir + " --network ../etc");
  EXPECT_EQ(badName.status, 1);
  EXPECT_THAT(badName.err, HasSubstr("not a valid network name"));
}

TEST_F(IpamCli, ReleaseOneAttachmentLikeDel) {
  populate();
  const Cli c =
      run("release --data-dir " + dataDir + " --network net1 --container-id c2 --ifname eth0");
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_THAT(c.out, HasSubstr("released 10.244.1.3 (c2/eth0)"));
  EXPECT_THAT(c.out, HasSubstr("released fd00:10:244:1::3 (c2/eth0)"));
  EXPECT_FALSE(fs::exists(store + "/10.244.1.3"));
  EXPECT_FALSE(fs::exists(store + "/fd00:10:244:1::3"));
  EXPECT_FALSE(fs::exists(store + "/.dualstack/c2@eth0"));
  EXPECT_TRUE(fs::exists(store + "/10.244.1.2"));
  EXPECT_TRUE(fs::exists(store + "/10.244.1.4"));

  // Again: nothing to do, still success (DEL is idempotent too); the store stays consistent.
  const Cli again = run("release --config " + confPath + " --container-id c2 --ifname eth0");
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr("c2/eth0 holds no address"));
  const Cli v = run("verify --config " + confPath);
  EXPECT_EQ(v.status, 0) << v.out;
}

TEST_F(IpamCli, ReleaseRejectsBadNamesWithoutTouchingTheStore) {
  populate();
  const auto before = snapshot();
  const Cli id =
      run("release --data-dir " + dataDir + " --network net1 --container-id ../c1 --ifname eth0");
  EXPECT_EQ(id.status, 1);
  EXPECT_THAT(id.err, HasSubstr("--container-id \"../c1\" is not a valid container ID"));
  const Cli ifn =
      run("release --data-dir " + dataDir + " --network net1 --container-id c1 --ifname a/b");
  EXPECT_EQ(ifn.status, 1);
  EXPECT_THAT(ifn.err, HasSubstr("--ifname \"a/b\" is not a valid interface name"));
  const Cli net =
      run("release --data-dir " + dataDir + " --network ../net1 --container-id c1 --ifname eth0");
  EXPECT_EQ(net.status, 1);
  EXPECT_THAT(net.err, HasSubstr("not a valid network name"));
  // A relative data dir would name a store that depends on the working directory.
  const Cli rel =
      run("release --data-dir tmp/networks --network net1 --container-id c1 --ifname eth0");
  EXPECT_EQ(rel.status, 2);
  EXPECT_THAT(rel.err, HasSubstr("--data-dir \"tmp/networks\" is not an absolute path"));
  const Cli relGc = run("gc --data-dir networks --network net1 --live /dev/null --dry-run");
  EXPECT_EQ(relGc.status, 2);
  EXPECT_EQ(snapshot(), before);
}

TEST_F(IpamCli, ReleaseWaitsForTheStoreLock) {
  populate();
  const auto before = snapshot();
  const int fd = ::open((store + "/lock").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  // While another process holds the lock the release blocks (and is killed by the timeout).
  const Cli blocked =
      run("release --data-dir " + dataDir + " --network net1 --container-id c1 --ifname eth0",
          "timeout 1 " + binary);
  ::close(fd);
  EXPECT_EQ(blocked.status, 124);
  EXPECT_EQ(snapshot(), before);
  const Cli c =
      run("release --data-dir " + dataDir + " --network net1 --container-id c1 --ifname eth0");
  EXPECT_EQ(c.status, 0) << c.err;
  EXPECT_FALSE(fs::exists(store + "/10.244.1.2"));
}

class IpamCliGc : public IpamCli {
 protected:
  std::string cache = tmp.file("cni-cache");

  void SetUp() override {
    IpamCli::SetUp();
    fs::create_directories(cache + "/results");
  }
  // A libcni result cache entry, as runtimes write it.
  void cached(const std::string& network, const std::string& id, const std::string& ifname) const {
    const json j = {{"kind", "cniCacheV1"}, {"containerId", id},
                    {"ifName", ifname},     {"networkName", network},
                    {"config", "e30="},     {"result", {{"cniVersion", "1.0.0"}}}};
    writeFile(cache + "/results/" + network + "-" + id + "-" + ifname, j.dump());
  }
};

TEST_F(IpamCliGc, DryRunThenReleaseWhatNoCachedAttachmentHolds) {
  populate();
  plantProblems();
  cached("net1", "c1", "eth0");
  cached("net1", "c3", "eth1");   // c3's eth0 is not live
  cached("other", "c2", "eth0");  // another network: does not keep c2
  writeFile(cache + "/results/other-broken-eth0", "{not json");  // another network: ignored

  const auto before = snapshot();
  const Cli dry =
      run("gc --data-dir " + dataDir + " --network net1 --cache-dir " + cache + " --dry-run");
  ASSERT_EQ(dry.status, 0) << dry.err;
  EXPECT_EQ(snapshot(), before);
  const std::vector<std::string> gone = {"10.244.1.4", "10.244.1.50",      "10.244.1.60",
                                         "10.99.0.1",  "fd00:10:244:1::3", "fd00:10:244:1::4"};
  const auto dryLines = lines(dry.out);
  ASSERT_EQ(dryLines.size(), gone.size()) << dry.out;
  for (const auto& a : gone) EXPECT_THAT(dry.out, HasSubstr("would release " + a + " ")) << a;
  EXPECT_THAT(dry.out, HasSubstr("would release 10.244.1.60 (held by nobody)"));
  EXPECT_THAT(dry.err, HasSubstr("2 live attachments; kept 2 addresses, would release 6"));

  // The results directory itself works as well as the cache directory.
  const Cli gc = run("gc --config " + confPath + " --cache-dir " + cache + "/results");
  ASSERT_EQ(gc.status, 0) << gc.err;
  EXPECT_EQ(lines(gc.out).size(), gone.size()) << gc.out;
  for (const auto& a : gone) {
    EXPECT_THAT(gc.out, HasSubstr("released " + a + " ")) << a;
    EXPECT_FALSE(fs::exists(store + "/" + a)) << a;
  }
  EXPECT_TRUE(fs::exists(store + "/10.244.1.2"));
  EXPECT_TRUE(fs::exists(store + "/fd00:10:244:1::2"));

  // GC rewrote the index: what is left to report is what is not the store's to delete.
  const Cli v = run("verify --config " + confPath);
  EXPECT_EQ(v.status, 1);
  EXPECT_EQ(lines(v.out).size(), 2u) << v.out;
  EXPECT_THAT(v.out, HasSubstr("notes.txt: not an allocation"));
  EXPECT_THAT(v.out, HasSubstr("subdir: not an allocation"));
}

TEST_F(IpamCliGc, LiveFile) {
  populate();
  writeFile(tmp.file("live.json"), R"([{"containerID": "c2", "ifname": "eth0"}])");
  const Cli gc =
      run("gc --data-dir " + dataDir + " --network net1 --live " + tmp.file("live.json"));
  ASSERT_EQ(gc.status, 0) << gc.err;
  EXPECT_EQ(lines(gc.out).size(), 4u) << gc.out;
  const Cli list = run("list --json --data-dir " + dataDir);
  const json j = json::parse(list.out);
  ASSERT_EQ(j.size(), 2u);
  for (const auto& e : j) EXPECT_EQ(e["containerID"], "c2");

  const auto before = snapshot();
  writeFile(tmp.file("deep.json"), "[" + dualstack::testing::nestedJson(100000, true) + "]");
  const Cli deep =
      run("gc --data-dir " + dataDir + " --network net1 --live " + tmp.file("deep.json"));
  EXPECT_EQ(deep.status, 1);
  EXPECT_THAT(deep.err, HasSubstr("live attachment list " + tmp.file("deep.json") +
                                  " is nested deeper than 128 levels"));
  EXPECT_EQ(snapshot(), before);

  writeFile(tmp.file("bad.json"), R"([{"containerID": "c2"}])");
  const Cli bad =
      run("gc --data-dir " + dataDir + " --network net1 --live " + tmp.file("bad.json"));
  EXPECT_EQ(bad.status, 1);
  EXPECT_THAT(bad.err, HasSubstr(tmp.file("bad.json") +
                                 "[0] needs the strings \"containerID\" and \"ifname\""));
  EXPECT_EQ(snapshot(), before);
}

TEST_F(IpamCliGc, RefusesToGuessFromAnEmptyOrBrokenCache) {
  populate();
  const auto before = snapshot();
  const Cli empty = run("gc --data-dir " + dataDir + " --network net1 --cache-dir " + cache);
  EXPECT_EQ(empty.status, 1);
  EXPECT_THAT(empty.err, HasSubstr("lists no attachment of network net1"));
  EXPECT_THAT(empty.err, HasSubstr("--force"));
  EXPECT_EQ(snapshot(), before);

  const Cli missing =
      run("gc --data-dir " + dataDir + " --network net1 --cache-dir " + tmp.file("nope"));
  EXPECT_EQ(missing.status, 1);
  EXPECT_THAT(missing.err,
              HasSubstr("libcni result cache " + tmp.file("nope") + " does not exist"));

  cached("net1", "c1", "eth0");
  writeFile(cache + "/results/net1-c2-eth0", "{\"containerId\": ");  // torn: c2 may be live
  const Cli broken = run("gc --data-dir " + dataDir + " --network net1 --cache-dir " + cache);
  EXPECT_EQ(broken.status, 1);
  EXPECT_THAT(broken.err, HasSubstr(cache + "/results/net1-c2-eth0 is not valid JSON"));
  EXPECT_THAT(broken.err, HasSubstr("refusing to guess"));
  EXPECT_EQ(snapshot(), before);

  writeFile(cache + "/results/net1-c2-eth0",
            R"({"kind": "cniCacheV1", "networkName": "net1", "result": )" +
                dualstack::testing::nestedJson(100000) + "}");
  const Cli deep = run("gc --data-dir " + dataDir + " --network net1 --cache-dir " + cache);
  EXPECT_EQ(deep.status, 1);
  EXPECT_THAT(deep.err, HasSubstr(cache + "/results/net1-c2-eth0 is nested deeper than 128"));
  EXPECT_THAT(deep.err, HasSubstr("refusing to guess"));
  EXPECT_EQ(snapshot(), before);

  fs::remove(cache + "/results/net1-c2-eth0");
  fs::remove(cache + "/results/net1-c1-eth0");
  const Cli forced =
      run("gc --data-dir " + dataDir + " --network net1 --cache-dir " + cache + " --force");
  EXPECT_EQ(forced.status, 0) << forced.err;
  EXPECT_EQ(lines(forced.out).size(), 6u);
  const Cli list = run("list --json --data-dir " + dataDir);
  EXPECT_EQ(json::parse(list.out).size(), 0u);
}

}  // namespace
}  // namespace dualstack::ops
