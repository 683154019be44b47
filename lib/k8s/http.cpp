#include "dualstack/k8s/http.hpp"
#include "dualstack/sys/error.hpp"

#include <dlfcn.h>

// Only the types and constants are used from the header; every function is resolved with dlsym.
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include <algorithm>
#include <new>
#include <stop_token>

#include "dualstack/sys/library.hpp"

namespace dualstack::k8s {

using sys::Code;

namespace {

// The few libcurl functions we use, resolved from a dlopen'ed libcurl.so.4.
class LibCurl {
 public:
  static const LibCurl& instance() {
    static const LibCurl lib;
    if (!lib.lib_.loaded()) {
      throw HttpError(HttpFailure::Setup, Code::IoFailure,
                      lib.lib_.error() + " to use node.kubeconfig");
    }
    return lib;
  }

  decltype(&::curl_easy_init) easyInit = nullptr;
  decltype(&::curl_easy_setopt) easySetopt = nullptr;
  decltype(&::curl_easy_getinfo) easyGetinfo = nullptr;
  decltype(&::curl_easy_pause) easyPause = nullptr;
  decltype(&::curl_easy_cleanup) easyCleanup = nullptr;
  decltype(&::curl_easy_strerror) easyStrerror = nullptr;
  decltype(&::curl_slist_append) slistAppend = nullptr;
  decltype(&::curl_slist_free_all) slistFreeAll = nullptr;
  decltype(&::curl_multi_init) multiInit = nullptr;
  decltype(&::curl_multi_add_handle) multiAddHandle = nullptr;
  decltype(&::curl_multi_remove_handle) multiRemoveHandle = nullptr;
  decltype(&::curl_multi_perform) multiPerform = nullptr;
  decltype(&::curl_multi_poll) multiPoll = nullptr;
  decltype(&::curl_multi_wakeup) multiWakeup = nullptr;
  decltype(&::curl_multi_info_read) multiInfoRead = nullptr;
  decltype(&::curl_multi_cleanup) multiCleanup = nullptr;
  decltype(&::curl_multi_strerror) multiStrerror = nullptr;

 private:
  LibCurl() {
    lib_.resolve(easyInit, "curl_easy_init");
    lib_.resolve(easySetopt, "curl_easy_setopt");
    lib_.resolve(easyGetinfo, "curl_easy_getinfo");
    lib_.resolve(easyPause, "curl_easy_pause");
    lib_.resolve(easyCleanup, "curl_easy_cleanup");
    lib_.resolve(easyStrerror, "curl_easy_strerror");
    lib_.resolve(slistAppend, "curl_slist_append");
    lib_.resolve(slistFreeAll, "curl_slist_free_all");
    lib_.resolve(multiInit, "curl_multi_init");
    lib_.resolve(multiAddHandle, "curl_multi_add_handle");
    lib_.resolve(multiRemoveHandle, "curl_multi_remove_handle");
    lib_.resolve(multiPerform, "curl_multi_perform");
    lib_.resolve(multiPoll, "curl_multi_poll");
    lib_.resolve(multiWakeup, "curl_multi_wakeup");
    lib_.resolve(multiInfoRead, "curl_multi_info_read");
    lib_.resolve(multiCleanup, "curl_multi_cleanup");
    lib_.resolve(multiStrerror, "curl_multi_strerror");
  }

  // RTLD_NODELETE: OpenSSL, loaded with libcurl, registers exit handlers that must stay mapped.
  sys::Library lib_{"libcurl.so.4", "libcurl4", RTLD_NODELETE};
};

class Headers {
 public:
  explicit Headers(const LibCurl& lib) : lib_(lib) {}
  ~Headers() {
    if (list_ != nullptr) lib_.slistFreeAll(list_);
  }
  Headers(const Headers&) = delete;
  Headers& operator=(const Headers&) = delete;
  void add(const std::string& header) {
    curl_slist* next = lib_.slistAppend(list_, header.c_str());
    if (next == nullptr) throw std::bad_alloc();
    list_ = next;
  }
  curl_slist* get() const { return list_; }

 private:
  const LibCurl& lib_;
  curl_slist* list_ = nullptr;
};

class Easy {
 public:
  Easy(const LibCurl& lib, const std::string& url) : lib_(lib), handle_(lib.easyInit()) {
    if (handle_ == nullptr) {
      throw HttpError(HttpFailure::Setup, Code::Internal, "curl_easy_init failed for " + url);
    }
    errbuf_[0] = '\0';
    set(CURLOPT_ERRORBUFFER, errbuf_, "CURLOPT_ERRORBUFFER");
  }
  ~Easy() { lib_.easyCleanup(handle_); }
  Easy(const Easy&) = delete;
  Easy& operator=(const Easy&) = delete;

  template <typename T>
  void set(CURLoption opt, T value, const char* name) {
    const CURLcode rc = lib_.easySetopt(handle_, opt, value);
    if (rc != CURLE_OK) {
      throw HttpError(HttpFailure::Setup, Code::IoFailure,
                      std::string("libcurl rejected ") + name + " (" + lib_.easyStrerror(rc) +
                          "): dualstack-ipam needs libcurl 7.77 or newer");
    }
  }
  void setBlob(CURLoption opt, const std::string& pem, const char* name) {
    curl_blob blob{const_cast<char*>(pem.data()), pem.size(), CURL_BLOB_COPY};
    set(opt, &blob, name);
  }
  CURL* handle() const { return handle_; }
  long responseCode() const {
    long code = 0;
    lib_.easyGetinfo(handle_, CURLINFO_RESPONSE_CODE, &code);
    return code;
  }
  // libcurl's detailed message for the last failure, else the generic one.
  std::string describe(CURLcode rc) const {
    return errbuf_[0] != '\0' ? std::string(errbuf_) : std::string(lib_.easyStrerror(rc));
  }

 private:
  const LibCurl& lib_;
  CURL* handle_;
  char errbuf_[CURL_ERROR_SIZE];
};

// What the callbacks share with the loop that drives a transfer.
struct Transfer {
  const LibCurl* lib = nullptr;
  CURL* handle = nullptr;
  std::string received;  // bytes not yet handed on (the whole body of a one-shot request)
  std::size_t max = 0;   // more than this in `received` fails the transfer
  // A stream pauses once this much waits to be handed on (0: never), so that what one step of
  // libcurl reads (up to a hundred 16 KiB reads) is not held at once.
  std::size_t pauseAt = 0;
  bool paused = false;
  bool overflow = false;
  bool headersDone = false;
  std::chrono::steady_clock::time_point lastByte;
};

std::size_t onData(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  t->lastByte = std::chrono::steady_clock::now();
  if (t->pauseAt != 0 && !t->received.empty() && t->received.size() + n > t->pauseAt) {
    t->paused = true;
    return CURL_WRITEFUNC_PAUSE;  // libcurl keeps this piece and offers it again after unpausing
  }
  if (t->received.size() + n > t->max) {
    t->overflow = true;
    return 0;  // makes the transfer fail with CURLE_WRITE_ERROR
  }
  t->received.append(data, n);
  return n;
}

std::size_t onHeader(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  t->lastByte = std::chrono::steady_clock::now();
  // The empty line after the headers of the final (not 1xx) response.
  if ((n == 2 && data[0] == '\r') || (n == 1 && data[0] == '\n')) {
    long code = 0;
    t->lib->easyGetinfo(t->handle, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200) t->headersDone = true;
  }
  return n;
}

// A multi handle running one easy handle, so that the loop in drive() can check its own
// deadlines and the stop token between steps and be woken by request_stop().
class Multi {
 public:
  Multi(const LibCurl& lib, Easy& easy) : lib_(lib), easy_(easy), handle_(lib.multiInit()) {
    if (handle_ == nullptr || lib_.multiAddHandle(handle_, easy_.handle()) != CURLM_OK) {
      if (handle_ != nullptr) lib_.multiCleanup(handle_);
      throw HttpError(HttpFailure::Setup, Code::Internal, "curl_multi_init failed");
    }
  }
  ~Multi() {
    lib_.multiRemoveHandle(handle_, easy_.handle());
    lib_.multiCleanup(handle_);
  }
  Multi(const Multi&) = delete;
  Multi& operator=(const Multi&) = delete;
  CURLM* get() const { return handle_; }
  void wakeup() const { lib_.multiWakeup(handle_); }

 private:
  const LibCurl& lib_;
  Easy& easy_;
  CURLM* handle_;
};

HttpFailure classify(CURLcode rc) {
  switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_USE_SSL_FAILED:
      return HttpFailure::Tls;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FAILED_INIT:
      return HttpFailure::Setup;
    default:
      return HttpFailure::Unreachable;
  }
}

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string seconds(milliseconds ms) {
  const auto tenths = (ms.count() + 50) / 100;
  return std::to_string(tenths / 10) + (tenths % 10 != 0 ? "." + std::to_string(tenths % 10) : "") +
         " s";
}

// Options shared by both kinds of request.
void setup(Easy& easy, Headers& headers, const HttpRequest& request, Transfer& t) {
  easy.set(CURLOPT_URL, request.url.c_str(), "CURLOPT_URL");
  easy.set(CURLOPT_NOSIGNAL, 1L, "CURLOPT_NOSIGNAL");
  easy.set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.timeout.count()),
           "CURLOPT_CONNECTTIMEOUT_MS");

  for (const auto& h : request.headers) headers.add(h);
  if (request.method == "POST") {
    headers.add("Expect:");  // no 100-continue round trip for a small body
    easy.set(CURLOPT_POST, 1L, "CURLOPT_POST");
    easy.set(CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()),
             "CURLOPT_POSTFIELDSIZE");
    easy.set(CURLOPT_COPYPOSTFIELDS, request.body.c_str(), "CURLOPT_COPYPOSTFIELDS");
  } else if (request.method != "GET") {
    throw HttpError(HttpFailure::Setup, Code::Internal,
                    "unsupported HTTP method " + request.method + " for " + request.url);
  }
  easy.set(CURLOPT_HTTPHEADER, headers.get(), "CURLOPT_HTTPHEADER");

  if (request.insecureSkipTlsVerify) {
    easy.set(CURLOPT_SSL_VERIFYPEER, 0L, "CURLOPT_SSL_VERIFYPEER");
    easy.set(CURLOPT_SSL_VERIFYHOST, 0L, "CURLOPT_SSL_VERIFYHOST");
  } else if (!request.caPem.empty()) {
    // A blob adds to libcurl's built-in CA file and directory (Debian's: /etc/ssl/certs) instead
    // of replacing them; kubectl trusts only the kubeconfig's CA, so switch those off.
    easy.set(CURLOPT_CAINFO, static_cast<const char*>(nullptr), "CURLOPT_CAINFO");
    easy.set(CURLOPT_CAPATH, static_cast<const char*>(nullptr), "CURLOPT_CAPATH");
    easy.setBlob(CURLOPT_CAINFO_BLOB, request.caPem, "CURLOPT_CAINFO_BLOB");
  }
  if (!request.clientCertPem.empty()) {
    easy.setBlob(CURLOPT_SSLCERT_BLOB, request.clientCertPem, "CURLOPT_SSLCERT_BLOB");
    easy.set(CURLOPT_SSLCERTTYPE, "PEM", "CURLOPT_SSLCERTTYPE");
    easy.setBlob(CURLOPT_SSLKEY_BLOB, request.clientKeyPem, "CURLOPT_SSLKEY_BLOB");
    easy.set(CURLOPT_SSLKEYTYPE, "PEM", "CURLOPT_SSLKEYTYPE");
  }

  t.handle = easy.handle();
  easy.set(CURLOPT_WRITEFUNCTION, &onData, "CURLOPT_WRITEFUNCTION");
  easy.set(CURLOPT_WRITEDATA, static_cast<void*>(&t), "CURLOPT_WRITEDATA");
  easy.set(CURLOPT_HEADERFUNCTION, &onHeader, "CURLOPT_HEADERFUNCTION");
  easy.set(CURLOPT_HEADERDATA, static_cast<void*>(&t), "CURLOPT_HEADERDATA");
}

// One request: its handles and the state its callbacks share, with the options every request
// has set.
struct Call {
  Call(const HttpRequest& request, std::size_t max, std::size_t pauseAt)
      : lib(LibCurl::instance()),
        what(request.method + " " + request.url),
        easy(lib, request.url),
        headers(lib) {
    t.lib = &lib;
    t.max = max;
    t.pauseAt = pauseAt;
    setup(easy, headers, request, t);
  }
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  const LibCurl& lib;
  const std::string what;  // "GET <url>", for messages
  Easy easy;
  Headers headers;
  Transfer t;
};

// How long a stream may wait for its next data, at most a second: until the first of its
// deadlines (request.timeout for the headers, idleTimeout between data, maxDuration in all).
// Error(TryAgainLater) naming the deadline once one has passed.
milliseconds streamWait(const Call& c, const HttpRequest& request, Clock::time_point start) {
  const Clock::time_point now = Clock::now();
  milliseconds wait{1000};
  const auto until = [&](Clock::time_point deadline, milliseconds limit, const char* what) {
    if (now >= deadline) {
      throw HttpError(HttpFailure::Unreachable, Code::TryAgainLater,
                      c.what + ": " + what + " " + seconds(limit));
    }
    wait =
        std::min(wait, std::chrono::duration_cast<milliseconds>(deadline - now) + milliseconds(1));
  };
  if (!c.t.headersDone) {
    until(start + request.timeout, request.timeout, "no answer within");
  } else if (request.idleTimeout.count() > 0) {
    until(c.t.lastByte + request.idleTimeout, request.idleTimeout, "no data for");
  }
  if (request.maxDuration.count() > 0) {
    until(start + request.maxDuration, request.maxDuration, "still going after");
  }
  return wait;
}

// Runs the transfer to its end. After every step `drain` sees what arrived; returning false ends
// the transfer (drive then returns CURLE_OK). With `stream`, request.timeout bounds the wait for
// the response headers and idleTimeout / maxDuration apply; otherwise libcurl's own
// CURLOPT_TIMEOUT_MS bounds the whole request.
CURLcode drive(Call& c, const HttpRequest& request, bool stream, std::stop_token stop,
               const std::function<bool()>& drain) {
  const LibCurl& lib = c.lib;
  Transfer& t = c.t;
  const std::string& what = c.what;
  const Multi multi(lib, c.easy);
  const std::stop_callback wake(stop, [&multi] { multi.wakeup(); });
  const Clock::time_point start = Clock::now();
  t.lastByte = start;
  for (;;) {
    if (stop.stop_requested()) {
      throw HttpError(HttpFailure::Cancelled, Code::TryAgainLater, what + ": cancelled");
    }
    int running = 0;
    const CURLMcode mc = lib.multiPerform(multi.get(), &running);
    if (mc != CURLM_OK) {
      throw HttpError(HttpFailure::Setup, Code::Internal,
                      what + ": " + std::string(lib.multiStrerror(mc)));
    }
    if (!drain()) return CURLE_OK;
    // Unpausing hands on what libcurl held back, which may fill `received` and pause again.
    while (t.paused) {
      t.paused = false;
      lib.easyPause(c.easy.handle(), CURLPAUSE_CONT);
      if (!drain()) return CURLE_OK;
    }
    if (running == 0) break;

    const milliseconds wait = stream ? streamWait(c, request, start) : milliseconds{1000};
    lib.multiPoll(multi.get(), nullptr, 0, static_cast<int>(std::max<long>(wait.count(), 1)),
                  nullptr);
  }
  int left = 0;
  while (CURLMsg* msg = lib.multiInfoRead(multi.get(), &left)) {
    if (msg->msg == CURLMSG_DONE) return msg->data.result;
  }
  return CURLE_OK;
}

[[noreturn]] void fail(CURLcode rc, const Call& c) {
  if (c.t.overflow) {
    throw HttpError(HttpFailure::Setup, Code::IoFailure,
                    c.what + ": the answer is larger than " + std::to_string(c.t.max) + " bytes");
  }
  const HttpFailure failure = classify(rc);
  throw HttpError(failure,
                  failure == HttpFailure::Unreachable ? Code::TryAgainLater : Code::IoFailure,
                  c.what + ": " + c.easy.describe(rc));
}

// Hands what a stream received on to onData once the headers are in (false: onData wants no
// more). An error answer's start is kept in result.body for the message, the rest dropped.
bool handOn(Call& c, const HttpRequest& request,
            const std::function<bool(std::string_view)>& onData, HttpStreamResult& result) {
  Transfer& t = c.t;
  if (!t.headersDone || t.received.empty()) return true;
  if (result.status == 0) result.status = c.easy.responseCode();
  if (result.status < 200 || result.status > 299) {
    if (result.body.size() < request.maxBody) {
      result.body.append(t.received, 0,
                         std::min(t.received.size(), request.maxBody - result.body.size()));
    }
    t.received.clear();
    return true;
  }
  const std::string chunk = std::move(t.received);
  t.received.clear();
  if (!onData(chunk)) {
    result.stopped = true;
    return false;
  }
  return true;
}

}  // namespace

HttpResponse httpRequest(const HttpRequest& request, std::stop_token stop) {
  Call c(request, request.maxBody, 0);
  c.easy.set(CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()), "CURLOPT_TIMEOUT_MS");
  const CURLcode rc = drive(c, request, false, stop, [] { return true; });
  if (rc != CURLE_OK) fail(rc, c);
  return {c.easy.responseCode(), std::move(c.t.received)};
}

HttpStreamResult httpStream(const HttpRequest& request,
                            const std::function<bool(std::string_view)>& onData,
                            std::stop_token stop) {
  constexpr std::size_t kPauseAt = 64U << 10;
  constexpr std::size_t kMaxPending = 1U << 20;
  Call c(request, kMaxPending, kPauseAt);
  // A peer that vanished without a FIN or RST is noticed by the idle timeout; keepalives make
  // the kernel notice it too.
  c.easy.set(CURLOPT_TCP_KEEPALIVE, 1L, "CURLOPT_TCP_KEEPALIVE");
  HttpStreamResult result;
  const CURLcode rc =
      drive(c, request, true, stop, [&] { return handOn(c, request, onData, result); });
  if (rc != CURLE_OK) fail(rc, c);
  if (result.status == 0) result.status = c.easy.responseCode();
  return result;
}

}  // namespace dualstack::k8s
