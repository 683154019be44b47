// An rtnetlink socket and request messages, on libnl-3 (core only: messages, attributes, socket).
//
// Design (as containers/netavark): open one Socket in the host network namespace and one inside
// the pod's namespace up front, then do everything through them without switching namespaces.
// Every request is acknowledged; the kernel's errno and its extended-ack text come back as a
// KernelStatus and are turned into an operator-readable sys::Error right where the request was
// made, e.g. "add address fd00::5/64 to eth0 in pod netns: Permission denied: ipv6: IPv6 is
// disabled on this device (is IPv6 disabled in the pod netns (net.ipv6.conf.eth0.disable_ipv6=1)?)"
// (strerror, then the kernel's extended ack, then our hint).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "dualstack/sys/error.hpp"

struct nl_msg;
struct nlattr;
struct nlmsghdr;

namespace dualstack::ip {
class Address;
}

namespace dualstack::netlink {

// The kernel's answer to one request.
struct KernelStatus {
  int err = 0;               // positive errno; 0 on success
  std::string extack;        // the kernel's extended-ack message, often empty
  bool interrupted = false;  // a dump saw NLM_F_DUMP_INTR: the data changed while it was read
  bool ok() const { return err == 0; }
};

// A request the kernel refused: the sys::Error of Socket::error(), with the kernel's errno for
// callers that act on the reason (a route whose gateway is not reachable, say).
class KernelError : public sys::Error {
 public:
  KernelError(sys::Code code, std::string msg, int err)
      : sys::Error(code, std::move(msg)), err_(err) {}
  int err() const noexcept { return err_; }

 private:
  int err_;
};

// One rtnetlink request under construction. Owns its nl_msg. The fixed header (ifinfomsg,
// ifaddrmsg, rtmsg) is appended first, then attributes. Putting fails only if the message
// outgrows its buffer (a bug), reported as sys::Error Code::Internal.
class Message {
 public:
  Message(std::uint16_t type, std::uint16_t flags);
  Message(Message&&) noexcept = default;
  Message& operator=(Message&&) noexcept = default;
  ~Message() = default;

  template <class Header>
  void append(const Header& header) {
    appendRaw(&header, sizeof header);
  }
  void appendRaw(const void* data, std::size_t len);

  void putU8(int type, std::uint8_t value);
  void putU32(int type, std::uint32_t value);
  void putS32(int type, std::int32_t value);
  // NUL-terminated, as the kernel's NLA_STRING/NLA_NUL_STRING policies expect.
  void putString(int type, std::string_view value);
  void putBytes(int type, const void* data, std::size_t len);
  // 4 or 16 bytes in network order.
  void putAddress(int type, const ip::Address& address);

  // A nested attribute: everything put between beginNest and endNest goes inside it.
  struct Nest {
    nlattr* start;
  };
  Nest beginNest(int type);
  void endNest(Nest nest);

  nl_msg* get() const { return msg_.get(); }
  nlmsghdr* header() const;

 private:
  struct Free {
    void operator()(nl_msg* m) const;
  };
  std::unique_ptr<nl_msg, Free> msg_;
};

// Not thread-safe: one exchange at a time.
class Socket {
 public:
  // Opens a NETLINK_ROUTE socket (close-on-exec, extended acks on) in the network namespace of
  // the calling thread: create the pod's socket while holding a netns::ScopedSetns for it; the
  // socket stays bound to that namespace afterwards. `where` names the namespace in messages
  // ("host netns", "pod netns"). Throws sys::Error (Code::IoFailure).
  explicit Socket(std::string where);
  Socket(Socket&&) noexcept;
  Socket& operator=(Socket&&) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();

  const std::string& where() const { return where_; }

  // Implementation detail (the libnl socket and the state of the exchange in flight).
  struct State;

  using ReplyHandler = std::function<void(const nlmsghdr&)>;

  // Sends `msg` and reads the kernel's answer to the end: the ack or error of a plain request,
  // the reply and ack of an RTM_GET* request, or every message up to NLMSG_DONE of a dump
  // (NLM_F_DUMP in the message flags). Replies go to onReply; an exception from onReply is
  // rethrown after the answer has been drained, so the socket stays usable. The message may be
  // sent again (sequence number and port are reassigned on every send).
  // Kernel errors are returned, not thrown; local failures (send/receive) throw Code::IoFailure.
  KernelStatus request(Message& msg, const ReplyHandler& onReply = {});

  // The error for a failed request: "<what> in <where>: <strerror>[: <extack>][ (<hint>)]".
  // Without a hint, a generic one is picked from the errno where one helps (EPERM, EBUSY, ...).
  // Code: EEXIST -> AlreadyExists; EAGAIN/EBUSY/ENOBUFS/ENOMEM/EINTR -> TryAgainLater;
  // anything else -> IoFailure.
  KernelError error(std::string_view what, const KernelStatus& status,
                    std::string_view hint = {}) const;

  // Throws error(what, status, hint) unless status.ok().
  void check(std::string_view what, const KernelStatus& status, std::string_view hint = {}) const;

 private:
  std::unique_ptr<State> state_;
  std::string where_;
};

}  // namespace dualstack::netlink
