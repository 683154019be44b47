// Undo steps registered while ADD builds an attachment, run in reverse order unless the ADD
// completes: a failed ADD leaves nothing behind.
//
// The steps run in the destructor, while the exception unwinds the function that registered
// them: by then every local declared after the Rollback is gone. So a step owns what it uses. It
// is a function without captures (a plain function or a captureless lambda) and the arguments to
// call it with, copied into the step as std::thread copies its arguments. Lambdas with captures,
// pointers, std::string_view and std::ref do not compile: they would refer to the dying frame.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace dualstack::plugin {

namespace detail {

template <typename T>
struct IsReferenceWrapper : std::false_type {};
template <typename T>
struct IsReferenceWrapper<std::reference_wrapper<T>> : std::true_type {};

// A value that owns its data (as far as the type tells).
template <typename T>
concept OwnedValue = !std::is_pointer_v<T> && !std::is_member_pointer_v<T> &&
                     !std::is_same_v<T, std::string_view> && !IsReferenceWrapper<T>::value;

template <typename... Ts>
concept AllOwned = std::conjunction_v<std::bool_constant<OwnedValue<Ts>>...>;

// A function that can refer to nothing but its arguments and globals.
template <typename F>
concept CapturelessFunction = (std::is_pointer_v<F> &&
                               std::is_function_v<std::remove_pointer_t<F>>) ||
                              (std::is_class_v<F> && std::is_empty_v<F>);

}  // namespace detail

template <typename F, typename... Args>
concept UndoStep = detail::CapturelessFunction<F> && detail::AllOwned<Args...> &&
    std::is_invocable_v<const F&, const Args&...>;

class Rollback {
 public:
  Rollback() = default;
  Rollback(const Rollback&) = delete;
  Rollback& operator=(const Rollback&) = delete;
  ~Rollback();

  // Registers undo(args...). `what` names the step in the message printed (on stderr) if undoing
  // it fails.
  template <typename F, typename... Args>
  requires UndoStep<F, Args...>
  void add(std::string what, F undo, Args... args) {
    steps_.emplace_back(std::move(what), [undo, ... args = std::move(args)] { undo(args...); });
  }
  // The work is complete: keep it.
  void commit() { steps_.clear(); }

 private:
  std::vector<std::pair<std::string, std::function<void()>>> steps_;
};

}  // namespace dualstack::plugin
