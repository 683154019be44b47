#include "dualstack/k8s/http.hpp"

#include <dlfcn.h>

// Only the types and constants are used from the header; every function is resolved with dlsym.
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include <new>

namespace dualstack::k8s {

using cni::Code;

namespace {

constexpr const char* kLibcurl = "libcurl.so.4";

// The few libcurl functions we use, resolved from a dlopen'ed libcurl.so.4.
class LibCurl {
 public:
  static const LibCurl& instance() {
    static const LibCurl lib;
    if (lib.handle_ == nullptr) {
      throw HttpError(HttpFailure::Setup, Code::IoFailure,
                      std::string("cannot load ") + kLibcurl + " (" + lib.loadError_ +
                          "): install libcurl4 to use node.kubeconfig");
    }
    return lib;
  }

  ~LibCurl() {
    if (handle_ != nullptr) ::dlclose(handle_);
  }
  LibCurl(const LibCurl&) = delete;
  LibCurl& operator=(const LibCurl&) = delete;

  decltype(&::curl_easy_init) easyInit = nullptr;
  decltype(&::curl_easy_setopt) easySetopt = nullptr;
  decltype(&::curl_easy_perform) easyPerform = nullptr;
  decltype(&::curl_easy_getinfo) easyGetinfo = nullptr;
  decltype(&::curl_easy_cleanup) easyCleanup = nullptr;
  decltype(&::curl_easy_strerror) easyStrerror = nullptr;
  decltype(&::curl_slist_append) slistAppend = nullptr;
  decltype(&::curl_slist_free_all) slistFreeAll = nullptr;

 private:
  LibCurl() {
    // RTLD_NODELETE: OpenSSL, loaded with libcurl, registers exit handlers that must stay mapped.
    handle_ = ::dlopen(kLibcurl, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (handle_ == nullptr) {
      const char* e = ::dlerror();
      loadError_ = e != nullptr ? e : "not found";
      return;
    }
    const bool ok =
        resolve(easyInit, "curl_easy_init") && resolve(easySetopt, "curl_easy_setopt") &&
        resolve(easyPerform, "curl_easy_perform") && resolve(easyGetinfo, "curl_easy_getinfo") &&
        resolve(easyCleanup, "curl_easy_cleanup") && resolve(easyStrerror, "curl_easy_strerror") &&
        resolve(slistAppend, "curl_slist_append") && resolve(slistFreeAll, "curl_slist_free_all");
    if (!ok) {
      ::dlclose(handle_);
      handle_ = nullptr;
    }
  }

  template <typename F>
  bool resolve(F& fn, const char* name) {
    void* sym = ::dlsym(handle_, name);
    if (sym == nullptr) {
      loadError_ = std::string("it has no ") + name;
      return false;
    }
    fn = reinterpret_cast<F>(sym);
    return true;
  }

  void* handle_ = nullptr;
  std::string loadError_;
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
  CURLcode perform() { return lib_.easyPerform(handle_); }
  long responseCode() {
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

struct Sink {
  std::string* body;
  std::size_t max;
  bool overflow = false;
};

std::size_t onData(char* data, std::size_t size, std::size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const std::size_t n = size * count;
  if (sink->body->size() + n > sink->max) {
    sink->overflow = true;
    return 0;  // makes curl_easy_perform fail with CURLE_WRITE_ERROR
  }
  sink->body->append(data, n);
  return n;
}

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

}  // namespace

HttpResponse httpGet(const HttpRequest& request) {
  const LibCurl& lib = LibCurl::instance();
  Easy easy(lib, request.url);
  easy.set(CURLOPT_URL, request.url.c_str(), "CURLOPT_URL");
  easy.set(CURLOPT_NOSIGNAL, 1L, "CURLOPT_NOSIGNAL");
  easy.set(CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()), "CURLOPT_TIMEOUT_MS");
  easy.set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.timeout.count()),
           "CURLOPT_CONNECTTIMEOUT_MS");

  Headers headers(lib);
  for (const auto& h : request.headers) headers.add(h);
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

  HttpResponse response;
  Sink sink{&response.body, request.maxBody};
  easy.set(CURLOPT_WRITEFUNCTION, &onData, "CURLOPT_WRITEFUNCTION");
  easy.set(CURLOPT_WRITEDATA, static_cast<void*>(&sink), "CURLOPT_WRITEDATA");

  const CURLcode rc = easy.perform();
  if (rc != CURLE_OK) {
    if (sink.overflow) {
      throw HttpError(HttpFailure::Setup, Code::IoFailure,
                      "GET " + request.url + ": the answer is larger than " +
                          std::to_string(request.maxBody) + " bytes");
    }
    const HttpFailure failure = classify(rc);
    throw HttpError(failure,
                    failure == HttpFailure::Unreachable ? Code::TryAgainLater : Code::IoFailure,
                    "GET " + request.url + ": " + easy.describe(rc));
  }
  response.status = easy.responseCode();
  return response;
}

}  // namespace dualstack::k8s
