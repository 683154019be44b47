#include "dualstack/netlink/socket.hpp"

#include <linux/netlink.h>
#include <netlink/attr.h>
#include <netlink/handlers.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <sys/socket.h>
#include <cerrno>
#include <cstring>
#include <exception>
#include <utility>

#include "attrs.hpp"
#include "dualstack/ip/address.hpp"
#include "dualstack/sys/error.hpp"

namespace dualstack::netlink {

using sys::Code;
using sys::Error;

// ---- Message ------------------------------------------------------------------------------

void Message::Free::operator()(nl_msg* m) const { nlmsg_free(m); }

Message::Message(std::uint16_t type, std::uint16_t flags) : msg_(nlmsg_alloc_simple(type, flags)) {
  if (!msg_) throw std::bad_alloc();
}

nlmsghdr* Message::header() const { return nlmsg_hdr(msg_.get()); }

namespace {

[[noreturn]] void tooLarge(int type) {
  throw Error(Code::Internal,
              "netlink message too large (attribute " + std::to_string(type) + " does not fit)");
}

int lenOf(std::size_t len, int type) {
  if (len > 0xffff) tooLarge(type);
  return static_cast<int>(len);
}

}  // namespace

void Message::appendRaw(const void* data, std::size_t len) {
  if (nlmsg_append(msg_.get(), const_cast<void*>(data), len, NLMSG_ALIGNTO) < 0) tooLarge(0);
}

void Message::putU8(int type, std::uint8_t value) {
  if (nla_put_u8(msg_.get(), type, value) < 0) tooLarge(type);
}

void Message::putU32(int type, std::uint32_t value) {
  if (nla_put_u32(msg_.get(), type, value) < 0) tooLarge(type);
}

void Message::putS32(int type, std::int32_t value) {
  if (nla_put_s32(msg_.get(), type, value) < 0) tooLarge(type);
}

void Message::putString(int type, std::string_view value) {
  const std::string s(value);
  if (nla_put(msg_.get(), type, lenOf(s.size() + 1, type), s.c_str()) < 0) tooLarge(type);
}

void Message::putBytes(int type, const void* data, std::size_t len) {
  if (nla_put(msg_.get(), type, lenOf(len, type), data) < 0) tooLarge(type);
}

void Message::putAddress(int type, const ip::Address& address) {
  unsigned char bytes[16];
  address.toBytes(bytes);
  putBytes(type, bytes, address.isV4() ? 4 : 16);
}

Message::Nest Message::beginNest(int type) {
  nlattr* start = nla_nest_start(msg_.get(), type);
  if (start == nullptr) tooLarge(type);
  return Nest{start};
}

void Message::endNest(Nest nest) {
  if (nla_nest_end(msg_.get(), nest.start) < 0) tooLarge(0);
}

// ---- Socket -------------------------------------------------------------------------------

struct Socket::State {
  nl_sock* sk = nullptr;
  nl_cb* cb = nullptr;

  // Per exchange.
  const ReplyHandler* onReply = nullptr;
  std::exception_ptr handlerError;
  KernelStatus status;
  bool finished = false;

  ~State() {
    if (cb != nullptr) nl_cb_put(cb);
    if (sk != nullptr) nl_socket_free(sk);  // also closes the fd
  }
};

namespace {

using State = Socket::State;

// The extended-ack attributes follow the fixed payload of an NLMSG_ERROR or NLMSG_DONE.
std::string extackMessage(const nlmsghdr* hdr, std::size_t payload) {
  if ((hdr->nlmsg_flags & NLM_F_ACK_TLVS) == 0) return {};
  const std::size_t total = hdr->nlmsg_len;
  std::size_t off = detail::kMsgHdrLen + detail::align4(payload);
  const auto* base = reinterpret_cast<const unsigned char*>(hdr);
  while (off + sizeof(nlattr) <= total) {
    nlattr a;
    std::memcpy(&a, base + off, sizeof a);
    if (a.nla_len < sizeof(nlattr) || off + a.nla_len > total) break;
    if ((a.nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
      const auto* s = reinterpret_cast<const char*>(base + off + detail::kAttrHdrLen);
      const std::size_t n = a.nla_len - detail::kAttrHdrLen;
      return std::string(s, strnlen(s, n));
    }
    off += detail::align4(a.nla_len);
  }
  return {};
}

int onValid(nl_msg* msg, void* arg) {
  auto* s = static_cast<State*>(arg);
  if (s->onReply != nullptr && *s->onReply && !s->handlerError) {
    // Exceptions must not unwind through libnl's C frames; keep draining the answer instead.
    try {
      (*s->onReply)(*nlmsg_hdr(msg));
    } catch (...) {
      s->handlerError = std::current_exception();
    }
  }
  return NL_OK;
}

int onFinish(nl_msg* msg, void* arg) {
  auto* s = static_cast<State*>(arg);
  const nlmsghdr* hdr = nlmsg_hdr(msg);
  // A dump that failed part-way ends with NLMSG_DONE carrying the negative errno.
  if (hdr->nlmsg_len >= detail::kMsgHdrLen + sizeof(int)) {
    int code = 0;
    std::memcpy(&code, detail::payload(*hdr), sizeof code);
    if (code < 0) {
      s->status.err = -code;
      s->status.extack = extackMessage(hdr, sizeof(int));
    }
  }
  s->finished = true;
  return NL_STOP;
}

int onAck(nl_msg*, void* arg) {
  static_cast<State*>(arg)->finished = true;
  return NL_STOP;
}

// libnl goes on to deliver the flagged message as usual after this.
int onDumpInterrupted(nl_msg*, void* arg) {
  static_cast<State*>(arg)->status.interrupted = true;
  return NL_OK;
}

int onError(sockaddr_nl*, nlmsgerr* e, void* arg) {
  auto* s = static_cast<State*>(arg);
  // libnl hands over the payload; the header (flags, length) sits right before it.
  const auto* hdr = reinterpret_cast<const nlmsghdr*>(reinterpret_cast<const unsigned char*>(e) -
                                                      detail::kMsgHdrLen);
  s->status.err = -e->error;
  std::size_t payload = sizeof(nlmsgerr);
  if ((hdr->nlmsg_flags & NLM_F_CAPPED) == 0 && e->msg.nlmsg_len >= detail::kMsgHdrLen) {
    payload += e->msg.nlmsg_len - detail::kMsgHdrLen;
  }
  s->status.extack = extackMessage(hdr, payload);
  s->finished = true;
  return NL_STOP;
}

void setSockOpt(int fd, int opt) {
  const int one = 1;
  // Each of these only improves messages or filtering and older kernels lack some; a failure is
  // not worth refusing to work.
  (void)::setsockopt(fd, SOL_NETLINK, opt, &one, sizeof one);
}

std::string libnlError(int rc) { return nl_geterror(rc); }

}  // namespace

Socket::Socket(std::string where) : state_(std::make_unique<State>()), where_(std::move(where)) {
  State& s = *state_;
  s.sk = nl_socket_alloc();
  if (s.sk == nullptr) throw std::bad_alloc();
  const int rc = nl_connect(s.sk, NETLINK_ROUTE);
  if (rc < 0) {
    throw Error(Code::IoFailure, "open rtnetlink socket in " + where_ + ": " + libnlError(rc));
  }
  // One recvmsg per datagram, without libnl's peek for its size first: the buffer is larger than
  // any datagram the kernel sends us (dump parts are at most 32 KiB; the single links, addresses
  // and routes we ask for are a few KiB). A larger one would fail the request, never go unseen.
  nl_socket_set_msg_buf_size(s.sk, std::size_t{64} << 10);
  nl_socket_disable_msg_peek(s.sk);
  const int fd = nl_socket_get_fd(s.sk);
  setSockOpt(fd, NETLINK_EXT_ACK);
  // Errors then quote only the request header instead of echoing the whole request.
  setSockOpt(fd, NETLINK_CAP_ACK);
  // Lets the kernel filter dumps by ifindex, table and kind (Linux 4.20+) instead of sending
  // every address or route of a node with thousands of pods; results are filtered here as well.
  setSockOpt(fd, NETLINK_GET_STRICT_CHK);

  s.cb = nl_cb_alloc(NL_CB_DEFAULT);
  if (s.cb == nullptr) throw std::bad_alloc();
  nl_cb_set(s.cb, NL_CB_VALID, NL_CB_CUSTOM, onValid, &s);
  nl_cb_set(s.cb, NL_CB_FINISH, NL_CB_CUSTOM, onFinish, &s);
  nl_cb_set(s.cb, NL_CB_ACK, NL_CB_CUSTOM, onAck, &s);
  nl_cb_set(s.cb, NL_CB_DUMP_INTR, NL_CB_CUSTOM, onDumpInterrupted, &s);
  nl_cb_err(s.cb, NL_CB_CUSTOM, onError, &s);
}

Socket::Socket(Socket&&) noexcept = default;
Socket& Socket::operator=(Socket&&) noexcept = default;
Socket::~Socket() = default;

KernelStatus Socket::request(Message& msg, const ReplyHandler& onReply) {
  State& s = *state_;
  nlmsghdr* hdr = msg.header();
  const bool isDump = (hdr->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
  // Completed here rather than by nl_send_auto: only non-dump requests ask for an ack. A dump is
  // answered up to NLMSG_DONE and never acked; the loop below stops at whichever ends the answer.
  hdr->nlmsg_flags =
      static_cast<std::uint16_t>(hdr->nlmsg_flags | NLM_F_REQUEST | (isDump ? 0 : NLM_F_ACK));
  hdr->nlmsg_pid = nl_socket_get_local_port(s.sk);
  hdr->nlmsg_seq = nl_socket_use_seq(s.sk);

  s.onReply = &onReply;
  s.handlerError = nullptr;
  s.status = KernelStatus{};
  s.finished = false;

  int rc = nl_send(s.sk, msg.get());
  if (rc < 0) {
    throw Error(Code::IoFailure, "send rtnetlink request in " + where_ + ": " + libnlError(rc));
  }
  while (!s.finished) {
    rc = nl_recvmsgs_report(s.sk, s.cb);
    if (s.finished) break;
    if (rc < 0) {
      throw Error(Code::IoFailure, "read rtnetlink answer in " + where_ + ": " + libnlError(rc));
    }
    if (rc == 0) {
      throw Error(Code::IoFailure, "read rtnetlink answer in " + where_ + ": socket closed");
    }
  }
  s.onReply = nullptr;
  if (s.handlerError) std::rethrow_exception(std::exchange(s.handlerError, nullptr));
  return s.status;
}

KernelError Socket::error(std::string_view what, const KernelStatus& status,
                          std::string_view hint) const {
  const int err = status.err;
  Code code = Code::IoFailure;
  switch (err) {
    case EEXIST:
      code = Code::AlreadyExists;
      break;
    case EAGAIN:
    case EBUSY:
    case ENOBUFS:
    case ENOMEM:
    case EINTR:
      code = Code::TryAgainLater;
      break;
    default:
      break;
  }
  std::string generic;
  if (hint.empty()) {
    switch (err) {
      case EPERM:
      case EACCES:
        generic = "the plugin needs CAP_NET_ADMIN in that network namespace";
        break;
      case EBUSY:
        generic = "the device is busy; try again";
        break;
      case EAFNOSUPPORT:
        generic = "is IPv6 disabled in the kernel (ipv6.disable=1)?";
        break;
      default:
        break;
    }
    hint = generic;
  }
  std::string msg(what);
  msg += " in ";
  msg += where_;
  msg += ": ";
  msg += std::strerror(err);
  if (!status.extack.empty()) {
    msg += ": ";
    msg += status.extack;
  }
  if (!hint.empty()) {
    msg += " (";
    msg += hint;
    msg += ")";
  }
  return KernelError(code, std::move(msg), err);
}

void Socket::check(std::string_view what, const KernelStatus& status, std::string_view hint) const {
  if (!status.ok()) throw error(what, status, hint);
}

}  // namespace dualstack::netlink
