#include "dualstack/install/installer.hpp"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <tuple>

#include <nlohmann/json.hpp>

#include "dualstack/install/files.hpp"
#include "dualstack/install/kubeconfig.hpp"
#include "dualstack/k8s/duration.hpp"
#include "dualstack/k8s/kubeconfig.hpp"
#include "dualstack/k8s/names.hpp"
#include "dualstack/k8s/token.hpp"
#include "dualstack/sys/error.hpp"
#include "dualstack/sys/json.hpp"
#include "dualstack/sys/version.hpp"

namespace dualstack::install {

using nlohmann::json;
using std::chrono::milliseconds;
using sys::Code;
using sys::Error;

namespace {

// conf/60-dualstack-kubernetes.conflist, embedded at build time.
constexpr std::string_view kDefaultConflist =
#include "dualstack_default_conflist.inc"
    ;

void log(const std::string& msg) { std::cerr << "dualstack-install: " << msg << std::endl; }

std::string hostPath(const Options& o, const std::string& path) {
  std::string root = o.hostRoot;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return root == "/" ? path : root + path;
}

std::string joinPath(const std::string& dir, const std::string& name) {
  return dir + (!dir.empty() && dir.back() == '/' ? "" : "/") + name;
}

bool validFileName(std::string_view n) {
  return !n.empty() && n != "." && n != ".." && n.find('/') == std::string_view::npos;
}

// Go's form ("500ms", "1m30s"), or a bare number of seconds; from 1 ms to 24 h.
milliseconds parseDuration(const std::string& text, const std::string& flag) {
  const json bare = json::parse(text, nullptr, false);
  milliseconds d{0};
  try {
    d = k8s::parseDuration(bare.is_number() ? bare : json(text), flag);
  } catch (const Error&) {
    d = milliseconds(0);
  }
  if (d < milliseconds(1) || d > std::chrono::hours(24)) {
    throw Error(
        Code::InvalidConfig,
        flag + " \"" + text + "\" is not a duration such as 500ms, 30s or 5m (at most 24h)");
  }
  return d;
}

std::string envOr(const char* name, const std::string& fallback = {}) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

struct Credentials {
  std::string kubeconfig;
  TokenTimes times;
};

// Reads the service account and renders the kubeconfig; throws Error naming the file at fault.
Credentials readCredentials(const Options& o, const std::string& server) {
  std::string token = readFile(o.tokenFile, "service account token");
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' '))
    token.pop_back();
  if (token.empty())
    throw Error(Code::InvalidConfig, "service account token " + o.tokenFile + " is empty");
  const std::string ca = readFile(o.caFile, "cluster CA certificate");
  if (ca.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    throw Error(Code::InvalidConfig,
                "cluster CA certificate " + o.caFile + " holds no PEM certificate");
  }
  Credentials c;
  if (o.tokenServiceAccount.empty()) {
    c.kubeconfig = renderKubeconfig(server, ca, token, "service account token " + o.tokenFile);
    c.times = tokenTimes(token);
  } else {
    // The pod's own token only authenticates the request for one that outlives the pod.
    k8s::Kubeconfig self;
    self.path = "the pod's service account";
    self.server = server;
    self.caFile = o.caFile;
    self.tokenFile = o.tokenFile;
    const auto slash = o.tokenServiceAccount.find('/');
    const auto issued =
        k8s::requestToken(self, o.tokenServiceAccount.substr(0, slash),
                          o.tokenServiceAccount.substr(slash + 1), o.tokenExpiration);
    const std::string what = "the TokenRequest token of service account " + o.tokenServiceAccount;
    c.kubeconfig =
        renderKubeconfig(server, ca, issued.token, what,
                         "dualstack-install with " + what + ";\n# dualstack-agent renews it");
    c.times.issuedAt = static_cast<std::int64_t>(std::time(nullptr));
    c.times.expiresAt = issued.expiresUnix;
  }
  // What the plugin will read must parse: check it with the plugin's own parser.
  k8s::parseKubeconfig(c.kubeconfig, "generated kubeconfig");
  return c;
}

// How long to sleep before reading the token again: the interval, or sooner, at 80% of the
// token's remaining lifetime, so a rotated token is picked up well before the old one expires.
milliseconds nextCheck(const Options& o, const TokenTimes& t) {
  milliseconds wait = o.interval;
  if (t.expiresAt) {
    const std::int64_t remaining = *t.expiresAt - static_cast<std::int64_t>(std::time(nullptr));
    const milliseconds soon = remaining > 0 ? milliseconds(remaining * 800) : milliseconds(5000);
    wait = std::min(wait, std::max(soon, milliseconds(1000)));
  }
  return wait;
}

struct Plan {
  std::string binDir, confDir;                                // in the container
  std::vector<std::pair<std::string, std::string>> binaries;  // name, content
  std::string server;
  Credentials credentials;
  std::string conflist;
};

// Everything read and checked before the first write: bad input changes nothing.
Plan prepare(const Options& o) {
  Plan p;
  if (!k8s::validNodeName(o.nodeName)) {
    throw Error(Code::InvalidConfig,
                o.nodeName.empty()
                    ? std::string("no node name: set K8S_NODE_NAME (the downward API's "
                                  "spec.nodeName) or --node-name")
                    : "node name \"" + o.nodeName + "\" is not a valid Kubernetes node name");
  }
  p.server = o.server;
  if (p.server.empty()) {
    const std::string host = envOr("KUBERNETES_SERVICE_HOST"),
                      port = envOr("KUBERNETES_SERVICE_PORT", "443");
    if (host.empty()) {
      throw Error(
          Code::InvalidConfig,
          "no API server: KUBERNETES_SERVICE_HOST is not set (not in a pod?); pass --server");
    }
    p.server = serverUrl(host, port);
  }
  if (p.server.rfind("https://", 0) != 0) {
    throw Error(Code::InvalidConfig, "API server \"" + p.server + "\" must be an https:// URL");
  }
  for (const auto& name : o.binaries) {
    const std::string src = joinPath(o.sourceDir, name);
    p.binaries.emplace_back(name, readFile(src, "plugin binary"));
    if (p.binaries.back().second.compare(0, 4,
                                         "\x7f"
                                         "ELF") != 0) {
      throw Error(Code::InvalidConfig,
                  "plugin binary " + src + " is not an executable (no ELF header)");
    }
  }
  p.credentials = readCredentials(o, p.server);
  const std::string templ = o.conflistTemplate.empty()
                                ? std::string(kDefaultConflist)
                                : readFile(o.conflistTemplate, "conflist template");
  p.conflist = renderConflist(
      templ, o.conflistTemplate.empty() ? "the built-in conflist" : o.conflistTemplate,
      joinPath(o.cniConfDir, o.kubeconfigName), o.nodeName);
  p.binDir = hostPath(o, o.cniBinDir);
  p.confDir = hostPath(o, o.cniConfDir);
  prepareDirectory(p.binDir);
  prepareDirectory(p.confDir);
  return p;
}

// Removes what this process installed, each file only if it still holds what it wrote last: a
// file replaced since (by the next version's installer starting before this one stopped, or by
// an operator) belongs to someone else.
void uninstall(const Options& o, const Plan& p, const std::string& kubeconfig) {
  std::vector<std::tuple<std::string, std::string, std::string_view>> files = {
      // The conflist first: from then on the runtime starts no new pod with dualstack.
      {p.confDir, o.conflistName, p.conflist},
      {p.confDir, o.kubeconfigName, kubeconfig}};
  for (const auto& [name, content] : p.binaries) files.emplace_back(p.binDir, name, content);
  for (const auto& [dir, name, content] : files) {
    const std::string path = joinPath(dir, name);
    try {
      switch (removeFileIfUnchanged(dir, name, content)) {
        case Removal::Removed:
          log("removed " + path);
          break;
        case Removal::Changed:
          log("left " + path + " in place: it changed since it was installed");
          break;
        case Removal::Missing:
          break;
      }
    } catch (const std::exception& e) {
      log(std::string("warning: ") + e.what());
    }
  }
}

}  // namespace

std::string usage() {
  return R"(Usage: dualstack-install [OPTIONS]

Installs dualstack-cni on the node it runs on (the entrypoint of its DaemonSet): copies the
plugin binaries into the host's CNI bin dir, writes a kubeconfig from the pod's service account
(mode 0600) and the conflist into the host's CNI conf dir, every file replaced atomically, then
rewrites the kubeconfig whenever the service account token changes, until SIGTERM. On SIGTERM the
node keeps working: everything installed stays.

  --host-root DIR          where the host's root is mounted (default /host)
  --cni-bin-dir DIR        the host's CNI bin dir (default /opt/cni/bin)
  --cni-conf-dir DIR       the host's CNI conf dir (default /etc/cni/net.d)
  --conflist-name NAME     default 10-dualstack.conflist
  --kubeconfig-name NAME   default dualstack-cni.kubeconfig
  --source-dir DIR         where the binaries to install are (default /usr/lib/cni, where
                           the package and the image put them)
  --conflist-template FILE the conflist to install (default: the built-in copy of
                           conf/60-dualstack-kubernetes.conflist); node.kubeconfig and node.name
                           of each dualstack-ipam are filled in
  --token-file FILE        default /var/run/secrets/kubernetes.io/serviceaccount/token
  --ca-file FILE           default /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
  --server URL             default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
  --node-name NAME         default $K8S_NODE_NAME
  --interval DURATION      how often the token is read again (default 60s; sooner when 80% of
                           its remaining lifetime has passed)
  --token-service-account NS/NAME
                           put a token of this service account from the TokenRequest API into
                           the kubeconfig instead of the pod's own token, which stops working
                           once the pod is gone (this one works until it expires; dualstack-agent
                           --plugin-kubeconfig renews it)
  --token-expiration DURATION
                           the lifetime asked for that token (default 24h, at least 10m)
  --once                   install and exit (an init container, a test)
  --uninstall-on-exit      on SIGTERM, remove the conflist, the kubeconfig and the binaries
                           (pods on the node then cannot be torn down by the runtime)
  --help, --version
)";
}

Options parseOptions(int argc, char** argv, bool* help) {
  Options o;
  o.nodeName = envOr("K8S_NODE_NAME");
  *help = false;
  const std::vector<std::pair<std::string, std::string Options::*>> valued = {
      {"--host-root", &Options::hostRoot},
      {"--cni-bin-dir", &Options::cniBinDir},
      {"--cni-conf-dir", &Options::cniConfDir},
      {"--conflist-name", &Options::conflistName},
      {"--kubeconfig-name", &Options::kubeconfigName},
      {"--source-dir", &Options::sourceDir},
      {"--conflist-template", &Options::conflistTemplate},
      {"--token-file", &Options::tokenFile},
      {"--ca-file", &Options::caFile},
      {"--server", &Options::server},
      {"--node-name", &Options::nodeName}};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::optional<std::string> value;
    if (const auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
    }
    const auto needValue = [&]() -> std::string {
      if (value) return *value;
      if (i + 1 >= argc) throw Error(Code::InvalidConfig, arg + " needs a value");
      return argv[++i];
    };
    const auto it =
        std::find_if(valued.begin(), valued.end(), [&](const auto& v) { return v.first == arg; });
    if (arg == "--help" || arg == "-h") {
      *help = true;
    } else if (arg == "--once" && !value) {
      o.once = true;
    } else if (arg == "--uninstall-on-exit" && !value) {
      o.uninstallOnExit = true;
    } else if (arg == "--interval") {
      o.interval = parseDuration(needValue(), arg);
    } else if (arg == "--token-service-account") {
      o.tokenServiceAccount = needValue();
      if (!k8s::parseServiceAccount(o.tokenServiceAccount)) {
        throw Error(Code::InvalidConfig, "--token-service-account \"" + o.tokenServiceAccount +
                                             "\" is not NAMESPACE/NAME of a service account");
      }
    } else if (arg == "--token-expiration") {
      const milliseconds d = parseDuration(needValue(), arg);
      // The API server refuses TokenRequests for less than 10 minutes.
      if (d < std::chrono::minutes(10)) {
        throw Error(Code::InvalidConfig,
                    "--token-expiration must be at least 10m (the API's minimum)");
      }
      o.tokenExpiration = std::chrono::duration_cast<std::chrono::seconds>(d);
    } else if (it != valued.end()) {
      o.*(it->second) = needValue();
    } else {
      throw Error(Code::InvalidConfig,
                  "unknown argument \"" + std::string(argv[i]) + "\" (see --help)");
    }
  }
  for (const auto* dir : {&o.cniBinDir, &o.cniConfDir, &o.hostRoot}) {
    if (dir->empty() || dir->front() != '/') {
      throw Error(Code::InvalidConfig, "\"" + *dir + "\" must be an absolute directory");
    }
  }
  if (!validFileName(o.conflistName) || !validFileName(o.kubeconfigName)) {
    throw Error(Code::InvalidConfig,
                "--conflist-name and --kubeconfig-name must be plain file names");
  }
  return o;
}

std::string renderConflist(const std::string& templateText, const std::string& where,
                           const std::string& kubeconfigPath, const std::string& nodeName) {
  // ordered_json: the installed file keeps the template's key order.
  auto j = sys::parseOrderedJson(templateText, where);
  if (!j.is_object() || !j.contains("plugins") || !j["plugins"].is_array()) {
    throw Error(Code::InvalidConfig, where + " is not a conflist (a JSON object with \"plugins\")");
  }
  std::size_t found = 0;
  for (auto& p : j["plugins"]) {
    if (!p.is_object() || !p.contains("ipam") || !p["ipam"].is_object() ||
        p["ipam"].value("type", "") != "dualstack-ipam") {
      continue;
    }
    auto& node = p["ipam"]["node"];
    if (!node.is_object()) node = nlohmann::ordered_json::object();
    // The node comes from the API: static podCIDRs or a Node file would contradict it.
    for (const char* key : {"podCIDRs", "addresses", "file"}) node.erase(key);
    node["kubeconfig"] = kubeconfigPath;
    node["name"] = nodeName;
    ++found;
  }
  if (found == 0)
    throw Error(Code::InvalidConfig, where + " has no plugin with ipam.type dualstack-ipam");
  return j.dump(2) + "\n";
}

namespace {

// Writes the binaries, the kubeconfig and the conflist.
void install(const Options& o, const Plan& p) {
  for (const auto& [name, content] : p.binaries) {
    const bool changed = replaceFile(p.binDir, name, content, 0755);
    log((changed ? "installed " : "up to date: ") + joinPath(p.binDir, name));
  }
  replaceFile(p.confDir, o.kubeconfigName, p.credentials.kubeconfig, 0600);
  log("wrote " + joinPath(p.confDir, o.kubeconfigName) + " (API server " + p.server + ", node " +
      o.nodeName + ")");
  if (!p.credentials.times.problem.empty()) {
    log("warning: service account token " + o.tokenFile + ": " + p.credentials.times.problem +
        "; its expiry is not tracked");
  }
  replaceFile(p.confDir, o.conflistName, p.conflist, 0644);
  log("wrote " + joinPath(p.confDir, o.conflistName));
}

// What the watch remembers from one check to the next.
struct Watch {
  TokenTimes times;
  std::string kubeconfig;  // as last written
  std::int64_t warnedExpiry = 0;
  std::string warnedProblem;
};

// A TokenRequest token is asked for again once 80% of its lifetime has passed.
bool tokenRequestDue(const TokenTimes& times) {
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  return !times.expiresAt || !times.issuedAt ||
         now >= *times.issuedAt + (*times.expiresAt - *times.issuedAt) * 8 / 10;
}

void restoreConflist(const Options& o, const Plan& p) {
  if (replaceFile(p.confDir, o.conflistName, p.conflist, 0644)) {
    log("restored " + joinPath(p.confDir, o.conflistName));
  }
}

// One check: the token file is replaced by kubelet (a symlink swap), so it is read again and
// the kubeconfig rewritten when it changed; a removed or edited conflist is put back.
void check(const Options& o, const Plan& p, Watch& w) {
  if (!o.tokenServiceAccount.empty() && !tokenRequestDue(w.times)) {
    restoreConflist(o, p);
    return;
  }
  const Credentials c = readCredentials(o, p.server);
  w.times = c.times;
  if (w.times.problem != w.warnedProblem) {
    w.warnedProblem = w.times.problem;
    if (!w.times.problem.empty()) {
      log("warning: service account token " + o.tokenFile + ": " + w.times.problem +
          "; its expiry is not tracked");
    }
  }
  if (replaceFile(p.confDir, o.kubeconfigName, c.kubeconfig, 0600)) {
    log("service account token or CA changed: rewrote " + joinPath(p.confDir, o.kubeconfigName));
  }
  w.kubeconfig = c.kubeconfig;
  restoreConflist(o, p);
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  if (w.times.expiresAt && *w.times.expiresAt <= now && w.warnedExpiry != *w.times.expiresAt) {
    w.warnedExpiry = *w.times.expiresAt;
    log("warning: the service account token in " + o.tokenFile +
        " has expired and was not replaced; the plugin's API requests will fail until it is");
  }
}

// Waits `wait` for SIGTERM or SIGINT (blocked by the caller); true when one came.
bool stopSignalled(milliseconds wait) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  const timespec ts{static_cast<time_t>(wait.count() / 1000),
                    static_cast<long>(wait.count() % 1000) * 1000000L};
  for (;;) {
    const int sig = ::sigtimedwait(&stop, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      log(std::string("got ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT"));
      return true;
    }
    if (sig >= 0 || errno != EINTR) return false;
  }
}

}  // namespace

int run(const Options& o) {
  const Plan p = prepare(o);
  install(o, p);
  if (o.once) return 0;
  Watch w{p.credentials.times, p.credentials.kubeconfig, 0, p.credentials.times.problem};
  while (!stopSignalled(nextCheck(o, w.times))) {
    try {
      check(o, p, w);
    } catch (const std::exception& e) {
      // Kept running: the next check may succeed (a token mid-rotation, a full disk).
      log(std::string("warning: ") + e.what());
    }
  }
  if (o.uninstallOnExit) {
    uninstall(o, p, w.kubeconfig);
  } else {
    log("leaving the installed files in place");
  }
  return 0;
}

}  // namespace dualstack::install
