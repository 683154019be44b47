// Decoding list pages and watch streams: no network, no kernel.
#include "dualstack/k8s/watch.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "apiserver.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::k8s {
namespace {

using nlohmann::json;
using sys::Code;
using sys::Error;
using testing::nodeObject;

json withRv(json node, const std::string& rv) {
  node["metadata"]["resourceVersion"] = rv;
  return node;
}

json worker(int i, const std::string& rv) {
  const std::string n = std::to_string(i);
  json node = nodeObject("worker-" + n, {"10.244." + n + ".0/24", "fd00:10:244:" + n + "::/64"},
                         {{"InternalIP", "192.168.10." + n}, {"InternalIP", "fd00::" + n}});
  // What makes real Nodes large: a list of images, managed fields.
  json images = json::array();
  for (int k = 0; k < 20; ++k) {
    images.push_back({{"names", {"registry.example/image-" + std::to_string(k) + ":v1"}},
                      {"sizeBytes", 1000000 + k}});
  }
  node["status"]["images"] = images;
  node["metadata"]["managedFields"] = json::array(
      {{{"manager", "kubelet"}, {"fieldsV1", {{"f:status", {{"f:addresses", json::object()}}}}}}});
  return withRv(node, rv);
}

std::string line(const std::string& type, const json& object) {
  return json{{"type", type}, {"object", object}}.dump() + "\n";
}

std::string bookmark(const std::string& rv) {
  return line("BOOKMARK",
              {{"kind", "Node"}, {"apiVersion", "v1"}, {"metadata", {{"resourceVersion", rv}}}});
}

std::string errorEvent(int code, const std::string& reason) {
  return line("ERROR", {{"kind", "Status"},
                        {"apiVersion", "v1"},
                        {"metadata", json::object()},
                        {"status", "Failure"},
                        {"message", "too old resource version: 5 (9)"},
                        {"reason", reason},
                        {"code", code}});
}

std::string deep(int levels) {
  return std::string(static_cast<std::size_t>(levels), '[') +
         std::string(static_cast<std::size_t>(levels), ']');
}

Error decodeError(const std::string& text) {
  try {
    decodeWatchEvent(text);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "decoded: " << text;
  return Error(Code::Internal, "");
}

TEST(WatchEvent, NodeEventsKeepTheModelAndTheResourceVersion) {
  const WatchEvent e = decodeWatchEvent(line("MODIFIED", worker(3, "4711")));
  EXPECT_EQ(e.type, WatchEvent::Type::Modified);
  EXPECT_EQ(e.resourceVersion, "4711");
  EXPECT_EQ(e.node.name, "worker-3");
  EXPECT_EQ(testing::podCidrTexts(e.node),
            (std::vector<std::string>{"10.244.3.0/24", "fd00:10:244:3::/64"}));
  // The Hostname (no IP address) is not part of the model.
  ASSERT_EQ(e.node.addresses.size(), 2U);
  EXPECT_EQ(e.node.addresses[0].type, "InternalIP");
  EXPECT_EQ(e.node.addresses[0].address.str(), "192.168.10.3");
  EXPECT_EQ(e.node.addresses[1].address.str(), "fd00::3");

  EXPECT_EQ(decodeWatchEvent(line("ADDED", worker(1, "1"))).type, WatchEvent::Type::Added);
  EXPECT_EQ(decodeWatchEvent(line("DELETED", worker(1, "2"))).type, WatchEvent::Type::Deleted);
}

TEST(WatchEvent, OnlyTheSingularPodCIDR) {
  json node = worker(2, "7");
  node["spec"].erase("podCIDRs");
  EXPECT_EQ(testing::podCidrTexts(decodeWatchEvent(line("ADDED", node)).node),
            std::vector<std::string>{"10.244.2.0/24"});
}

TEST(WatchEvent, BookmarkAndError) {
  const WatchEvent b = decodeWatchEvent(bookmark("99"));
  EXPECT_EQ(b.type, WatchEvent::Type::Bookmark);
  EXPECT_EQ(b.resourceVersion, "99");

  const WatchEvent e = decodeWatchEvent(errorEvent(410, "Expired"));
  EXPECT_EQ(e.type, WatchEvent::Type::Error);
  EXPECT_EQ(e.code, 410);
  EXPECT_EQ(e.reason, "Expired");
  EXPECT_EQ(e.message, "too old resource version: 5 (9)");
}

TEST(WatchEvent, BadEventsNameTheProblem) {
  EXPECT_NE(decodeError("this is not JSON").msg().find("not valid JSON"), std::string::npos);
  EXPECT_NE(decodeError("{\"type\": \"ADDED\"").msg().find("not valid JSON"), std::string::npos);
  EXPECT_NE(decodeError("[1, 2]").msg().find("expected an object"), std::string::npos);
  EXPECT_NE(decodeError(line("ADDED", json::object()) + "x").msg().find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(decodeError(json{{"type", "ADDED"}}.dump()).msg().find("no object"), std::string::npos);
  EXPECT_NE(decodeError(line("RENAMED", worker(1, "1"))).msg().find("unknown type \"RENAMED\""),
            std::string::npos);

  json noRv = worker(1, "1");
  noRv["metadata"].erase("resourceVersion");
  EXPECT_NE(decodeError(line("ADDED", noRv)).msg().find("no metadata.resourceVersion"),
            std::string::npos);
  json noName = worker(1, "1");
  noName["metadata"].erase("name");
  EXPECT_NE(decodeError(line("ADDED", noName)).msg().find("without metadata.name"),
            std::string::npos);

  json badCidrs = worker(1, "1");
  badCidrs["spec"]["podCIDRs"] = "10.244.1.0/24";
  const Error e = decodeError(line("ADDED", badCidrs));
  EXPECT_EQ(e.code(), Code::DecodeFailure);
  EXPECT_NE(e.msg().find("spec.podCIDRs: expected an array"), std::string::npos) << e.msg();

  json badAddress = worker(1, "1");
  badAddress["status"]["addresses"][0]["address"] = 5;
  EXPECT_NE(decodeError(line("ADDED", badAddress)).msg().find("status.addresses[0]"),
            std::string::npos);
}

TEST(WatchEvent, NestingIsBounded) {
  // Deep nesting where nothing is kept is refused just the same: the parse itself is bounded.
  json node = worker(1, "1");
  node["metadata"]["annotations"]["x"] = "placeholder";
  std::string text = line("ADDED", node);
  const std::string needle = "\"placeholder\"";
  text.replace(text.find(needle), needle.size(), deep(100000));
  const Error e = decodeError(text);
  EXPECT_EQ(e.code(), Code::DecodeFailure);
  EXPECT_NE(e.msg().find("nested deeper than 64 levels"), std::string::npos) << e.msg();

  std::string fine = line("ADDED", node);
  fine.replace(fine.find(needle), needle.size(), deep(50));
  EXPECT_EQ(decodeWatchEvent(fine).node.name, "worker-1");
}

std::vector<WatchEvent> feedAll(WatchDecoder& d, const std::vector<std::string>& chunks) {
  std::vector<WatchEvent> out;
  for (const auto& c : chunks) {
    d.feed(c, [&](WatchEvent&& e) {
      out.push_back(std::move(e));
      return true;
    });
  }
  return out;
}

TEST(WatchDecoder, LinesSplitAnywhere) {
  const std::string stream = line("ADDED", worker(1, "10")) + bookmark("11") +
                             line("MODIFIED", worker(1, "12")) + line("DELETED", worker(1, "13"));
  // Every split point of the stream into two reads, and one byte per read.
  for (std::size_t cut = 0; cut <= stream.size(); cut += 37) {
    WatchDecoder d;
    const auto events = feedAll(d, {stream.substr(0, cut), stream.substr(cut)});
    ASSERT_EQ(events.size(), 4U) << "cut at " << cut;
    EXPECT_EQ(events[3].resourceVersion, "13");
    EXPECT_EQ(d.pending(), 0U);
  }
  WatchDecoder d;
  std::vector<std::string> bytes;
  for (const char c : stream) bytes.emplace_back(1, c);
  const auto events = feedAll(d, bytes);
  ASSERT_EQ(events.size(), 4U);
  EXPECT_EQ(events[0].type, WatchEvent::Type::Added);
  EXPECT_EQ(events[1].type, WatchEvent::Type::Bookmark);
  EXPECT_EQ(events[2].type, WatchEvent::Type::Modified);
  EXPECT_EQ(events[3].type, WatchEvent::Type::Deleted);
}

TEST(WatchDecoder, PartialLineWaitsBlankLinesAndCrLfAreFine) {
  WatchDecoder d;
  const std::string first = line("ADDED", worker(1, "10"));
  auto events = feedAll(d, {"\n\r\n", first.substr(0, 40)});
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(d.pending(), 40U);
  std::string rest = first.substr(40);
  rest.insert(rest.size() - 1, "\r");
  events = feedAll(d, {rest});
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].node.name, "worker-1");
  EXPECT_EQ(d.pending(), 0U);
}

TEST(WatchDecoder, StopsWhereTheCallbackSaysSo) {
  WatchDecoder d;
  int seen = 0;
  d.feed(line("ADDED", worker(1, "1")) + errorEvent(410, "Expired") + line("ADDED", worker(2, "3")),
         [&](WatchEvent&& e) {
           ++seen;
           return e.type != WatchEvent::Type::Error;
         });
  EXPECT_EQ(seen, 2);
}

TEST(WatchDecoder, AnOverLongLineIsAnError) {
  WatchDecoder d(1024);
  const std::string big = line("ADDED", worker(1, "1"));
  ASSERT_GT(big.size(), 1024U);
  try {
    // In pieces, so the limit is checked on what accumulates, not per read.
    for (std::size_t i = 0; i < big.size(); i += 100) {
      d.feed(big.substr(i, 100), [](WatchEvent&&) { return true; });
    }
    FAIL() << "accepted a line of " << big.size() << " bytes";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::DecodeFailure);
    EXPECT_NE(e.msg().find("longer than 1024 bytes"), std::string::npos) << e.msg();
  }
  EXPECT_LE(d.pending(), 1024U);
}

TEST(WatchDecoder, GarbageBetweenGoodLines) {
  WatchDecoder d;
  std::vector<std::string> names;
  EXPECT_THROW(d.feed(line("ADDED", worker(1, "1")) + "garbage\n" + line("ADDED", worker(2, "2")),
                      [&](WatchEvent&& e) {
                        names.push_back(e.node.name);
                        return true;
                      }),
               Error);
  EXPECT_EQ(names, std::vector<std::string>{"worker-1"});
}

std::string nodeList(const std::vector<json>& items, const std::string& rv,
                     const std::string& cont = "") {
  json meta = {{"resourceVersion", rv}};
  if (!cont.empty()) {
    meta["continue"] = cont;
    meta["remainingItemCount"] = 3;
  }
  return json{{"kind", "NodeList"}, {"apiVersion", "v1"}, {"metadata", meta}, {"items", items}}
      .dump();
}

TEST(NodeList, ItemsInOrderWithTheListsResourceVersion) {
  std::vector<std::string> names;
  std::vector<std::string> rvs;
  const NodeListPage page = decodeNodeList(
      nodeList({worker(1, "5"), worker(2, "9"), worker(3, "7")}, "12", "next-page"),
      [&](Node&& n, std::string&& rv) {
        names.push_back(n.name);
        rvs.push_back(rv);
        EXPECT_EQ(n.podCIDRs.size(), 2U);
      },
      "page 1");
  EXPECT_EQ(names, (std::vector<std::string>{"worker-1", "worker-2", "worker-3"}));
  EXPECT_EQ(rvs, (std::vector<std::string>{"5", "9", "7"}));
  EXPECT_EQ(page.resourceVersion, "12");
  EXPECT_EQ(page.continueToken, "next-page");

  const NodeListPage last = decodeNodeList(
      nodeList({}, "13"), [](Node&&, std::string&&) {}, "p");
  EXPECT_EQ(last.resourceVersion, "13");
  EXPECT_EQ(last.continueToken, "");
}

TEST(NodeList, BadListsNameTheProblem) {
  auto error = [](const std::string& body) {
    try {
      decodeNodeList(
          body, [](Node&&, std::string&&) {}, "the answer to list nodes (page 2)");
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::DecodeFailure);
      EXPECT_NE(e.msg().find("the answer to list nodes (page 2)"), std::string::npos) << e.msg();
      return e.msg();
    }
    ADD_FAILURE() << "decoded " << body;
    return std::string();
  };
  EXPECT_NE(error("<html>").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error(json{{"kind", "PodList"}, {"metadata", {{"resourceVersion", "1"}}}}.dump())
                .find("expected a NodeList"),
            std::string::npos);
  EXPECT_NE(error(json{{"kind", "NodeList"}, {"items", json::array()}}.dump())
                .find("no metadata.resourceVersion"),
            std::string::npos);
  json bad = worker(1, "1");
  bad["status"]["addresses"] = json::object();
  EXPECT_NE(error(nodeList({worker(2, "2"), bad}, "3")).find("items[1].status.addresses"),
            std::string::npos);
  std::string tooDeep = nodeList({worker(1, "1")}, "3");
  tooDeep.insert(tooDeep.find("\"items\""), "\"x\":" + deep(70) + ",");
  EXPECT_NE(error(tooDeep).find("nested deeper than 64 levels"), std::string::npos);
}

TEST(NodeList, SplitAnywhereTheItemsComeOneByOne) {
  const std::string body =
      nodeList({worker(1, "5"), worker(2, "9"), worker(3, "7")}, "12", "next-page");
  for (std::size_t cut = 0; cut <= body.size(); cut += 97) {
    std::vector<std::string> names;
    NodeListDecoder d([&](Node&& n, std::string&&) { names.push_back(n.name); }, "page");
    d.feed(body.substr(0, cut));
    // Every Node complete in the first part was handed on before the rest arrived.
    const std::size_t complete = names.size();
    d.feed(body.substr(cut));
    const NodeListPage page = d.finish();
    ASSERT_EQ(names, (std::vector<std::string>{"worker-1", "worker-2", "worker-3"})) << cut;
    EXPECT_EQ(page.resourceVersion, "12");
    EXPECT_EQ(page.continueToken, "next-page");
    if (cut < body.find("worker-1")) {
      EXPECT_EQ(complete, 0U);
    } else if (cut > body.rfind("worker-3") + 2048) {
      EXPECT_EQ(complete, 3U);
    }
  }
}

TEST(NodeList, ItemsMustBeObjectsBetweenSingleCommas) {
  const std::string a = worker(1, "1").dump();
  const std::string b = worker(2, "2").dump();
  auto list = [](const std::string& items) {
    return R"({"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"3"},"items":[)" +
           items + "]}";
  };
  auto ok = [&](const std::string& items) {
    std::size_t n = 0;
    decodeNodeList(
        list(items), [&](Node&&, std::string&&) { ++n; }, "p");
    return n;
  };
  EXPECT_EQ(ok(""), 0U);
  EXPECT_EQ(ok(a), 1U);
  EXPECT_EQ(ok(" \n" + a + " ,\n " + b + "\n"), 2U);
  for (const std::string& bad :
       {a + b, a + ",," + b, a + ",", "," + a, a + ",5", std::string("\"x\""), std::string("null"),
        "[" + a + "]", a + "]"}) {
    EXPECT_THROW(ok(bad), Error) << bad;
  }
  // Strings with brackets and escaped quotes do not confuse the scan.
  json tricky = worker(3, "4");
  tricky["metadata"]["annotations"]["x"] = "}]\\\"{[,";
  EXPECT_EQ(ok(tricky.dump() + "," + a), 2U);
}

TEST(NodeList, AnItemIsBounded) {
  std::size_t n = 0;
  NodeListDecoder d([&](Node&&, std::string&&) { ++n; }, "page", 6144);
  json big = worker(2, "2");
  big["metadata"]["annotations"]["big"] = std::string(8192, 'x');
  const std::string body = nodeList({worker(1, "1"), big}, "3");
  try {
    for (std::size_t i = 0; i < body.size(); i += 64) d.feed(body.substr(i, 64));
    FAIL() << "an 11 KiB item passed a 6 KiB bound";
  } catch (const Error& e) {
    EXPECT_NE(e.msg().find("page: items[1] is longer than 6144 bytes"), std::string::npos)
        << e.msg();
  }
  EXPECT_EQ(n, 1U);
}

}  // namespace
}  // namespace dualstack::k8s
