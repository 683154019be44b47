#include "dualstack/agent/token.hpp"

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <random>

#include "dualstack/install/files.hpp"
#include "dualstack/install/kubeconfig.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::agent {

using sys::Code;
using sys::Error;

TokenKeeper::TokenKeeper(TokenKeeperConfig config, Request request,
                         std::function<k8s::Kubeconfig()> kubeconfig, Log& log)
    : config_(std::move(config)),
      request_(std::move(request)),
      kubeconfig_(std::move(kubeconfig)),
      log_(log) {
  state_.enabled = true;
  state_.file = config_.file;
}

std::chrono::seconds TokenKeeper::renewAfter(std::int64_t nowUnix, std::int64_t expiresUnix) {
  const std::int64_t life = expiresUnix - nowUnix;
  return std::chrono::seconds(std::max<std::int64_t>(life * 8 / 10, 10));
}

bool TokenKeeper::renew() {
  const auto slash = config_.file.rfind('/');
  const std::string dir = slash == 0 ? "/" : config_.file.substr(0, slash);
  const std::string name = config_.file.substr(slash + 1);
  try {
    const k8s::Kubeconfig kc = kubeconfig_();
    std::string ca = kc.caData;
    if (ca.empty() && !kc.caFile.empty())
      ca = install::readFile(kc.caFile, "cluster CA certificate");
    if (ca.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      throw Error(Code::InvalidConfig,
                  "the agent's kubeconfig names no cluster CA certificate (certificate-authority), "
                  "which the plugin's kubeconfig needs");
    }
    const IssuedToken t = request_(config_.expiration);
    const std::string sa = "service account " + config_.serviceAccount;
    const std::string text = install::renderKubeconfig(
        kc.server, ca, t.token, "the token of " + sa,
        "dualstack-agent with a TokenRequest token of " + sa + ";\n# renewed before it expires");
    install::replaceFile(dir, name, text, 0600);
    {
      const std::lock_guard lock(mu_);
      state_.expiresUnix = t.expiresUnix;
      ++state_.renewals;
      state_.lastError.clear();
    }
    char when[32];
    const auto exp = static_cast<std::time_t>(t.expiresUnix);
    std::tm tm{};
    gmtime_r(&exp, &tm);
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    log_.info("plugin kubeconfig written", {{"file", config_.file}, {"expires", when}});
    return true;
  } catch (const sys::Error& e) {
    {
      const std::lock_guard lock(mu_);
      ++state_.failures;
      state_.lastError = e.msg();
    }
    log_.warn("cannot renew the plugin's token", {{"file", config_.file}, {"error", e.msg()}});
    return false;
  }
}

void TokenKeeper::run(std::stop_token stop) {
  std::mutex m;
  std::condition_variable_any cv;
  std::mt19937_64 rng(std::random_device{}());
  std::chrono::milliseconds retry = config_.retryInitial;
  while (!stop.stop_requested()) {
    std::chrono::milliseconds wait;
    if (renew()) {
      retry = config_.retryInitial;
      wait = renewAfter(static_cast<std::int64_t>(std::time(nullptr)), state().expiresUnix);
    } else {
      // Half to all of the current delay, doubling up to the maximum.
      std::uniform_int_distribution<std::int64_t> jitter(retry.count() / 2, retry.count());
      wait = std::chrono::milliseconds(jitter(rng));
      retry = std::min(retry * 2, config_.retryMax);
      // Never wait past the expiry of the token in place without trying again.
      const std::int64_t exp = state().expiresUnix;
      if (exp > 0) {
        const auto left = std::chrono::seconds(exp - static_cast<std::int64_t>(std::time(nullptr)));
        wait = std::max<std::chrono::milliseconds>(
            std::min<std::chrono::milliseconds>(wait, left / 2), config_.retryInitial);
      }
    }
    std::unique_lock lock(m);
    cv.wait_for(lock, stop, wait, [] { return false; });
  }
}

TokenState TokenKeeper::state() const {
  const std::lock_guard lock(mu_);
  return state_;
}

}  // namespace dualstack::agent
