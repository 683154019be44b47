#include "dualstack/cni/env.hpp"

#include <cstdlib>

#include "dualstack/cni/error.hpp"

namespace dualstack::cni {

namespace {

bool isAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Container IDs and network names end up in file names and in a link alias (at most 255 bytes,
// holding both); runtimes use 64-character IDs.
constexpr std::size_t kMaxIdLength = 128;
constexpr std::size_t kMaxNetworkNameLength = 64;
constexpr std::size_t kMaxArgsLength = 64 * 1024;
constexpr std::size_t kMaxNetnsPathLength = 4096;  // PATH_MAX

std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    } else {
      out += c;
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}

}  // namespace

std::string_view commandName(Command c) {
  switch (c) {
    case Command::Add:
      return "ADD";
    case Command::Del:
      return "DEL";
    case Command::Check:
      return "CHECK";
    case Command::Gc:
      return "GC";
    case Command::Status:
      return "STATUS";
    case Command::Version:
      return "VERSION";
  }
  return "?";
}

std::optional<std::string> Env::arg(std::string_view key) const {
  for (const auto& [k, v] : argPairs) {
    if (k == key) return v;
  }
  return std::nullopt;
}

bool validContainerId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength || !isAlnum(id[0])) return false;
  for (char c : id) {
    if (!isAlnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

bool validNetworkName(std::string_view name) {
  return name.size() <= kMaxNetworkNameLength && validContainerId(name);
}

bool validIfname(std::string_view name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  // The kernel takes any byte but '/', ':' and its spaces (which include 0xa0); JSON takes only
  // UTF-8. Printable ASCII is what both accept, byte for byte.
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '/' || c == ':' || u <= 0x20 || u >= 0x7f) return false;
  }
  return true;
}

bool validNetnsPath(std::string_view path) {
  if (path.empty() || path.size() > kMaxNetnsPathLength) return false;
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) return false;
  }
  return true;
}

std::vector<std::pair<std::string, std::string>> parseCniArgs(std::string_view args) {
  std::vector<std::pair<std::string, std::string>> pairs;
  if (args.size() > kMaxArgsLength) {
    throw Error(Code::InvalidEnv, "CNI_ARGS is " + std::to_string(args.size()) +
                                      " bytes long; at most " + std::to_string(kMaxArgsLength) +
                                      " are accepted");
  }
  std::size_t pos = 0;
  while (pos <= args.size()) {
    auto end = args.find(';', pos);
    if (end == std::string_view::npos) end = args.size();
    const auto item = args.substr(pos, end - pos);
    if (!item.empty()) {
      const auto eq = item.find('=');
      if (eq == std::string_view::npos || eq == 0) {
        throw Error(Code::InvalidEnv,
                    "CNI_ARGS: \"" + printable(item) + "\" is not a KEY=VALUE pair");
      }
      pairs.emplace_back(std::string(item.substr(0, eq)), std::string(item.substr(eq + 1)));
    }
    pos = end + 1;
  }
  return pairs;
}

Env parseEnv(const EnvLookup& lookup) {
  Env env;
  const auto command = lookup("CNI_COMMAND");
  if (!command || command->empty()) throw Error(Code::InvalidEnv, "CNI_COMMAND is not set");
  if (*command == "ADD")
    env.command = Command::Add;
  else if (*command == "DEL")
    env.command = Command::Del;
  else if (*command == "CHECK")
    env.command = Command::Check;
  else if (*command == "GC")
    env.command = Command::Gc;
  else if (*command == "STATUS")
    env.command = Command::Status;
  else if (*command == "VERSION")
    env.command = Command::Version;
  else
    throw Error(Code::InvalidEnv,
                "CNI_COMMAND \"" + printable(*command) +
                    "\" is not a CNI verb (ADD, DEL, CHECK, GC, STATUS, VERSION)");
  if (env.command == Command::Version) return env;

  const bool perAttachment =
      env.command == Command::Add || env.command == Command::Del || env.command == Command::Check;
  auto get = [&](const char* name, bool required) -> std::string {
    auto v = lookup(name);
    if ((!v || v->empty()) && required) {
      throw Error(Code::InvalidEnv, std::string(name) + " is not set (required for " +
                                        std::string(commandName(env.command)) + ")");
    }
    return v.value_or("");
  };
  env.path = get("CNI_PATH", env.command != Command::Version);
  env.args = get("CNI_ARGS", false);
  env.argPairs = parseCniArgs(env.args);
  if (!perAttachment) return env;

  env.containerId = get("CNI_CONTAINERID", true);
  if (!validContainerId(env.containerId)) {
    throw Error(Code::InvalidEnv, "CNI_CONTAINERID \"" + printable(env.containerId) +
                                      "\" is invalid: it must match [a-zA-Z0-9][a-zA-Z0-9_.-]* "
                                      "and be at most 128 characters");
  }
  env.netns = get("CNI_NETNS", env.command != Command::Del);
  // ADD prints the path (the interface's "sandbox"). DEL does not need it and must not fail on it.
  if (env.command != Command::Del && !validNetnsPath(env.netns)) {
    throw Error(Code::InvalidEnv, "CNI_NETNS \"" + printable(env.netns) +
                                      "\" is not a path of printable ASCII characters");
  }
  env.ifname = get("CNI_IFNAME", true);
  if (!validIfname(env.ifname)) {
    throw Error(Code::InvalidEnv, "CNI_IFNAME \"" + printable(env.ifname) +
                                      "\" is not a valid interface name (1-15 printable ASCII "
                                      "characters, no '/', ':' or space, not '.' or '..')");
  }
  return env;
}

Env envFromProcess() {
  return parseEnv([](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  });
}

}  // namespace dualstack::cni
