// Keeps the plugin's kubeconfig valid without depending on the agent's pod: a pod's projected
// service-account token stops working when the pod is deleted, so the agent asks the TokenRequest
// API for a token of its own with an expiry, writes the kubeconfig (the API server and CA of the
// agent's own kubeconfig, that token) atomically with mode 0600, and renews it at 80% of its
// lifetime, retrying with backoff when that fails. A token written stays valid until it
// expires, whatever happens to the agent or its DaemonSet.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>

#include "dualstack/agent/log.hpp"
#include "dualstack/agent/metrics.hpp"
#include "dualstack/k8s/kubeconfig.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::agent {

struct IssuedToken {
  std::string token;
  std::int64_t expiresUnix = 0;
};

struct TokenKeeperConfig {
  std::string file;            // the plugin's kubeconfig, absolute
  std::string serviceAccount;  // "ns/name", for messages
  std::chrono::seconds expiration{std::chrono::hours(24)};
  std::chrono::milliseconds retryInitial{1000}, retryMax{std::chrono::minutes(5)};
};

class TokenKeeper {
 public:
  // `request` asks the API for a token of the service account; `config` gives the agent's own
  // kubeconfig (its server and CA go into the file). Both throw sys::Error on failure.
  using Request = std::function<IssuedToken(std::chrono::seconds expiration)>;
  TokenKeeper(TokenKeeperConfig config, Request request,
              std::function<k8s::Kubeconfig()> kubeconfig, Log& log);

  // Requests and writes a token now; false (logged, counted) when that failed.
  bool renew();
  // Renews at once, then at 80% of each token's lifetime, until `stop`.
  void run(std::stop_token stop);
  // When the next renewal is due after a token issued at `nowUnix` that expires at
  // `expiresUnix`: 80% of its lifetime, at least 10 s from now.
  static std::chrono::seconds renewAfter(std::int64_t nowUnix, std::int64_t expiresUnix);

  TokenState state() const;

 private:
  TokenKeeperConfig config_;
  Request request_;
  std::function<k8s::Kubeconfig()> kubeconfig_;
  Log& log_;
  mutable std::mutex mu_;
  TokenState state_;
};

}  // namespace dualstack::agent
