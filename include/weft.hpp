/* SPDX-License-Identifier: MIT */
/*
 * weft.hpp: C++17 wrapper over the C API of weft.h. Header-only: nothing here is compiled into
 * libweft, so the C library's ABI does not depend on any C++ compiler or standard library.
 *
 * What it gives (docs/cpp.md is the guide):
 *  - weft::pool          RAII pool (move-only); submit(), run(), parallel_for(), parallel_reduce()
 *  - weft::future<T>     a typed, reference-counted future (copies share one result)
 *  - weft::promise<T>    a future completed by the caller
 *  - weft::join(a, b)    two-way fork-join on the stack, no allocation; weft::invoke(f...)
 *  - weft::scope         n-ary fork-join; weft::group: a counted set of tasks of one pool
 *  - weft::gather, weft::wait, weft::completion_set
 *  - weft::error         the exception, weft::category() the std::error_category
 *
 * Errors. Every call that can fail comes in two spellings, as in std::filesystem: one throws
 * weft::error (a std::system_error whose code() is the weft code in weft::category()), the other
 * takes a std::error_code & and throws no weft error. Waiting for a result likewise: get()
 * throws, try_get() returns a weft::result<T> and never throws.
 *
 * Exceptions thrown by user callables never cross the C library's frames: each trampoline
 * catches them, keeps them as a std::exception_ptr next to the result, and fails the C future
 * with weft::exception_code, so that gathers, waits and completion sets see a FAILED future.
 * get() rethrows the original exception. A callable that throws weft::error(code) fails its
 * future with that code (weft::error(-ECANCELED) after a cancel request makes it CANCELLED).
 *
 * Lifetimes. A task's callable and its result live in one heap block (its "state") next to the
 * C future. The state is freed when the last weft::future handle is gone and the task can no
 * longer run (an on_done callback gives back the task's share), so dropping a future never
 * waits and never leaks, whether the task ran, failed, or was cancelled before it started. The
 * callable itself is destroyed as soon as it has run, on the thread that ran it.
 */
#ifndef WEFT_HPP
#define WEFT_HPP

#if !defined(__cplusplus) || __cplusplus < 201703L
#error "weft.hpp needs C++17; from C, include weft.h"
#endif

#include <weft.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace weft
{

/* ---------------------------------------------------------------------------------------------
 * Errors
 */

/* The failure code of a C future whose C++ callable threw an exception other than weft::error.
 * ASCII "weft": no errno value, so C code reading the future can tell it apart. */
inline constexpr int exception_code = 0x77656674;

namespace detail
{
class category_impl final : public std::error_category
{
  public:
    const char *name() const noexcept override
    {
        return "weft";
    }
    std::string message(int code) const override
    {
        if (code == exception_code)
            return "a task threw a C++ exception";
        return weft_strerror(code);
    }
    /* Negative errno values compare equal to the generic conditions: ec == std::errc::timed_out. */
    std::error_condition default_error_condition(int code) const noexcept override
    {
        if (code < 0)
            return std::error_condition(-code, std::generic_category());
        return std::error_condition(code, *this);
    }
};
} // namespace detail

/* The category of every weft code: the value is the code as the C API returns it. */
inline const std::error_category &category() noexcept
{
    static const detail::category_impl c;
    return c;
}

inline std::error_code make_error_code(int code) noexcept
{
    return std::error_code(code, category());
}

/* The exception every throwing call of this header uses for an error code. */
class error : public std::system_error
{
  public:
    explicit error(int code) : std::system_error(make_error_code(code)) {}
    error(int code, const char *what) : std::system_error(make_error_code(code), what) {}
    /* The weft code: a negative errno value, a task's failure code, or exception_code. */
    int value() const noexcept
    {
        return code().value();
    }
};

/* Inside a task: whether its future was asked to cancel. */
inline bool cancel_requested() noexcept
{
    return weft_cancel_requested();
}

/* Inside a task: leaves it by weft::error(-ECANCELED) when a cancel was requested, which ends
 * its future CANCELLED. */
inline void throw_if_cancelled()
{
    if (weft_cancel_requested())
        throw error(-ECANCELED);
}

/* The index of the calling thread among its pool's workers, -1 on any other thread. */
inline int worker_index() noexcept
{
    return weft_worker_index();
}

namespace detail
{
inline void check(int rc, const char *what)
{
    if (rc != 0)
        throw error(rc, what);
}

inline void set(std::error_code *ec, int rc) noexcept
{
    if (ec != nullptr)
        *ec = rc != 0 ? make_error_code(rc) : std::error_code();
}

/* A std::chrono duration as weft's timeout: nanoseconds, 0 for anything not positive, and
 * WEFT_FOREVER past a century (the library adds it to the clock). */
template <class Rep, class Period>
int64_t timeout_ns(const std::chrono::duration<Rep, Period> &d) noexcept
{
    double ns = std::chrono::duration<double, std::nano>(d).count();
    if (!(ns > 0))
        return 0;
    if (ns >= 3.1e18)
        return WEFT_FOREVER;
    return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

/* What a callable returns, as stored: decayed, and std::monostate for void where a value is
 * needed (join's pair). */
template <class F> using value_t = std::decay_t<std::invoke_result_t<std::decay_t<F> &&>>;
template <class T> using stored_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/* Runs f once (as an rvalue: it is consumed) into slot, catching everything. Returns 0, or the
 * code for the C future: a weft::error's own code, else exception_code. */
template <class T, class F>
int run_into(std::optional<stored_t<T>> &slot, std::exception_ptr &ex, F &&f) noexcept
{
    try {
        if constexpr (std::is_void_v<T>) {
            std::invoke(std::forward<F>(f));
            slot.emplace();
        } else {
            slot.emplace(std::invoke(std::forward<F>(f)));
        }
        return 0;
    } catch (const error &e) {
        ex = std::current_exception();
        return e.value() != 0 ? e.value() : exception_code;
    } catch (...) {
        ex = std::current_exception();
        return exception_code;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Shared states
 */

/* The heap block behind a weft::future: one reference to the C future, the exception a task
 * threw, and (in state<T>) the value. Counted separately from the C future, whose references
 * the library and other C code hold and release on their own schedule. */
struct state_base {
    std::atomic<unsigned> refs;
    weft_future *f = nullptr; /* one C reference, given back with the state */
    std::exception_ptr ex;    /* written before the C future finishes, read after */

    explicit state_base(unsigned r) noexcept : refs(r) {}
    state_base(const state_base &) = delete;
    state_base &operator=(const state_base &) = delete;
    virtual ~state_base()
    {
        weft_future_release(f);
    }
    /* The exception behind a FAILED future, if any: the task's own, or (for a gather) the one
     * of the child that failed it. */
    virtual std::exception_ptr exception() const noexcept
    {
        return ex;
    }
    void retain() noexcept
    {
        /* relaxed: the caller holds a reference already, so the count cannot reach zero
         * meanwhile; no data is published by taking one (as std::shared_ptr) */
        refs.fetch_add(1, std::memory_order_relaxed);
    }
    void release() noexcept
    {
        /* acq_rel: the release half publishes this owner's uses of the state to the owner that
         * drops the last reference, whose acquire half orders the delete after all of them */
        if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1)
            delete this;
    }
};

template <class T> struct state : state_base {
    std::optional<stored_t<T>> value; /* written by the task before the C future finishes */
    using state_base::state_base;
};

/* The on_done callback that gives back the task's share of a state, once the task can no longer
 * run: after it ran, or once it was cancelled before it started. */
inline void drop(weft_future *, void *data)
{
    static_cast<state_base *>(data)->release();
}

/* After the C call that made s->f (submit, then, group submit) returned rc: arms the release of
 * the task's share. Returns 0, or an error after which nothing runs and s is freed. */
inline int arm(state_base *s, int rc) noexcept
{
    if (rc != 0) {
        delete s; /* the C call failed and changed nothing: s->f is NULL, no task holds s */
        return rc;
    }
    rc = weft_future_on_done(s->f, drop, s);
    if (rc == 0)
        return 0;
    /* -ENOMEM: no callback. Take the task back if it has not started... */
    if (weft_future_cancel(s->f) == 1) {
        delete s; /* its function will never run: nothing else uses s */
        return rc;
    }
    /* ...else it runs or ran: keep s until it is over. Only on this rare path does a
     * submission wait. */
    weft_future_wait(s->f, WEFT_FOREVER);
    s->release();
    return 0;
}

/* A submitted task: its callable, consumed when it runs. */
template <class T, class F> struct task_state final : state<T> {
    std::optional<F> fn;

    template <class G>
    explicit task_state(G &&g) : state<T>(2), fn(std::in_place, std::forward<G>(g))
    {
    }
    static int run(void *arg, void **out) noexcept
    {
        auto *s = static_cast<task_state *>(arg);
        int rc = run_into<T>(s->value, s->ex, std::move(*s->fn));
        s->fn.reset(); /* captures go now, on this thread, not with the last handle */
        *out = nullptr;
        return rc;
    }
};

struct access;
} // namespace detail

/* ---------------------------------------------------------------------------------------------
 * Results and futures
 */

/* What try_get() gives: the value (a pointer into the future's state, valid while a future
 * handle of that state lives), or the weft code and, when the task threw, its exception. */
template <class T> class result
{
  public:
    explicit operator bool() const noexcept
    {
        return code_ == 0;
    }
    bool has_value() const noexcept
    {
        return code_ == 0;
    }
    /* 0, the task's failure code, -ECANCELED, exception_code, or an error of the wait. */
    int code() const noexcept
    {
        return code_;
    }
    std::error_code error() const noexcept
    {
        return make_error_code(code_);
    }
    const std::exception_ptr &exception() const noexcept
    {
        return ex_;
    }
    /* The value, or what get() would have thrown. */
    T &value() const
    {
        rethrow();
        return *v_;
    }
    T &operator*() const noexcept
    {
        return *v_;
    }
    T *operator->() const noexcept
    {
        return v_;
    }

  private:
    friend struct detail::access;
    void rethrow() const
    {
        if (ex_)
            std::rethrow_exception(ex_);
        if (code_ != 0)
            throw weft::error(code_);
    }
    T *v_ = nullptr;
    int code_ = -EINVAL;
    std::exception_ptr ex_;
};

template <> class result<void>
{
  public:
    explicit operator bool() const noexcept
    {
        return code_ == 0;
    }
    bool has_value() const noexcept
    {
        return code_ == 0;
    }
    int code() const noexcept
    {
        return code_;
    }
    std::error_code error() const noexcept
    {
        return make_error_code(code_);
    }
    const std::exception_ptr &exception() const noexcept
    {
        return ex_;
    }
    void value() const
    {
        if (ex_)
            std::rethrow_exception(ex_);
        if (code_ != 0)
            throw weft::error(code_);
    }

  private:
    friend struct detail::access;
    int code_ = -EINVAL;
    std::exception_ptr ex_;
};

class pool;

/* A typed future. Copies share one state (and one C future reference); the last copy to go
 * frees it, without waiting for the task. A default-constructed future is invalid: its calls
 * throw weft::error(-EINVAL) (or report it), done() is false. */
template <class T> class future
{
  public:
    using value_type = T;

    future() noexcept = default;
    future(const future &o) noexcept : s_(o.s_)
    {
        if (s_ != nullptr)
            s_->retain();
    }
    future(future &&o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    future &operator=(future o) noexcept
    {
        std::swap(s_, o.s_);
        return *this;
    }
    ~future()
    {
        if (s_ != nullptr)
            s_->release();
    }

    bool valid() const noexcept
    {
        return s_ != nullptr;
    }
    /* The C future, for the C API (one more reference: weft_future_retain). NULL if invalid. */
    weft_future *native() const noexcept
    {
        return s_ != nullptr ? s_->f : nullptr;
    }
    weft_state state() const noexcept
    {
        return weft_future_state(native());
    }
    bool done() const noexcept
    {
        return weft_future_done(native());
    }
    /* True when the future is now CANCELLED and its task will never run; false when it had
     * finished or is running (a running task gets a request: weft::cancel_requested()). */
    bool cancel() const noexcept
    {
        return weft_future_cancel(native()) == 1;
    }

    /* Waits until it has finished. On a worker it keeps the pool's parallelism meanwhile.
     * Throws weft::error: -EDEADLK inside its own task, -EINVAL when invalid. */
    void wait() const
    {
        detail::check(weft_future_wait(native(), WEFT_FOREVER), "weft::future::wait");
    }
    void wait(std::error_code &ec) const noexcept
    {
        detail::set(&ec, weft_future_wait(native(), WEFT_FOREVER));
    }
    /* True once finished, false on timeout. */
    template <class Rep, class Period>
    bool wait_for(const std::chrono::duration<Rep, Period> &d) const
    {
        int rc = weft_future_wait(native(), detail::timeout_ns(d));
        if (rc == -ETIMEDOUT)
            return false;
        detail::check(rc, "weft::future::wait_for");
        return true;
    }

    /* Waits, then: the value for DONE (a reference into the shared state, valid while a copy
     * of this future lives); rethrows the task's exception; throws weft::error(code) for a
     * failure code and weft::error(-ECANCELED) for CANCELLED. */
    std::add_lvalue_reference_t<T> get() const &
    {
        return finish().value();
    }
    /* On an rvalue future, the value is moved out of the shared state (other copies then see a
     * moved-from value): pool.submit(f).get() works for move-only results. */
    T get() &&
    {
        if constexpr (std::is_void_v<T>) {
            finish().value();
        } else {
            T &v = finish().value();
            return std::move(v);
        }
    }
    /* Waits, then the outcome, never throwing. */
    result<T> try_get() const noexcept
    {
        return finish();
    }

    /* A continuation on pool, once this future has finished (see weft_future_then). f is called
     * with this future (future<T> &) if it accepts one, and sees every outcome; otherwise with the
     * value (T &, or nothing for void), and only when this future is DONE: a failure passes
     * through to the new future unchanged (the same exception or code). */
    template <class F> auto then(pool &p, F &&f) const;
    template <class F> auto then(pool &p, F &&f, std::error_code &ec) const;

  private:
    friend struct detail::access;
    explicit future(detail::state<T> *s) noexcept : s_(s) {}
    result<T> finish() const noexcept;

    detail::state<T> *s_ = nullptr;
};

namespace detail
{
struct access {
    template <class T> static future<T> adopt(state<T> *s) noexcept
    {
        return future<T>(s);
    }
    template <class T> static state<T> *get(const future<T> &f) noexcept
    {
        return f.s_;
    }
    template <class T> static result<T> make(int code, T *v, std::exception_ptr ex) noexcept
    {
        result<T> r;
        r.code_ = code;
        r.ex_ = std::move(ex);
        if constexpr (!std::is_void_v<T>)
            r.v_ = v;
        return r;
    }
};

/* The outcome of a finished state: 0 and the value, or its code and exception. */
template <class T> result<T> outcome(state<T> *s) noexcept
{
    int rc = weft_future_result(s->f, nullptr); /* finished: does not wait */
    if (rc == 0) {
        if constexpr (std::is_void_v<T>)
            return access::make<T>(0, nullptr, nullptr);
        else
            return access::make<T>(0, &*s->value, nullptr);
    }
    return access::make<T>(rc, nullptr, s->exception());
}

/* Launches a task of callable fn through submit(run, arg, &out) (weft_submit, weft_group_submit,
 * weft_future_then's shape bound by the caller). */
template <class F, class Submit> auto launch(F &&fn, std::error_code *ec, Submit &&submit)
{
    using T = value_t<F>;
    using S = task_state<T, std::decay_t<F>>;
    S *s = new (std::nothrow) S(std::forward<F>(fn));
    if (s == nullptr) {
        set(ec, -ENOMEM);
        if (ec == nullptr)
            throw error(-ENOMEM, "weft: submit");
        return future<T>();
    }
    int rc = arm(s, submit(&S::run, static_cast<void *>(s), &s->f));
    set(ec, rc);
    if (rc != 0) {
        if (ec == nullptr)
            throw error(rc, "weft: submit");
        return future<T>();
    }
    return access::adopt<T>(s);
}
} // namespace detail

template <class T> result<T> future<T>::finish() const noexcept
{
    if (s_ == nullptr)
        return detail::access::make<T>(-EINVAL, nullptr, nullptr);
    int rc = weft_future_wait(s_->f, WEFT_FOREVER);
    if (rc != 0)
        return detail::access::make<T>(rc, nullptr, nullptr); /* -EDEADLK: the wait's own */
    return detail::outcome(s_);
}

/* ---------------------------------------------------------------------------------------------
 * Promises
 */

/* A future completed by the caller, from any thread. Destroying a promise that was never set
 * cancels its future (its waiters see -ECANCELED) rather than leaving them waiting forever. */
template <class T> class promise
{
  public:
    promise() : promise(nullptr) {}
    explicit promise(std::error_code &ec) noexcept : promise(&ec) {}
    promise(promise &&o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    promise &operator=(promise &&o) noexcept
    {
        if (this != &o) {
            abandon();
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    promise(const promise &) = delete;
    promise &operator=(const promise &) = delete;
    ~promise()
    {
        abandon();
    }

    bool valid() const noexcept
    {
        return s_ != nullptr;
    }
    /* A future of this promise; any number may be taken. */
    future<T> get_future() const
    {
        if (s_ == nullptr)
            throw error(-EINVAL, "weft::promise::get_future");
        s_->retain();
        return detail::access::adopt<T>(s_);
    }

    /* Each setter completes the future once; a second set, or one after the future was
     * cancelled, throws weft::error(-EALREADY) (the error_code overloads report it). */
    template <class... A> void set_value(A &&...a)
    {
        detail::check(set_value_code(std::forward<A>(a)...), "weft::promise::set_value");
    }
    void set_exception(std::exception_ptr e)
    {
        detail::check(set_exception_code(std::move(e)), "weft::promise::set_exception");
    }
    /* FAILED with code (nonzero; -EINVAL for 0). */
    void set_error(int code)
    {
        detail::check(set_error_code(code), "weft::promise::set_error");
    }
    template <class... A> bool try_set_value(A &&...a) noexcept
    {
        return set_value_code(std::forward<A>(a)...) == 0;
    }

  private:
    /* The state of a promise: one more flag, so that one setter alone writes the value. */
    struct holder final : detail::state<T> {
        std::atomic<bool> claimed{false};
        holder() : detail::state<T>(1) {}
    };

    explicit promise(std::error_code *ec)
    {
        holder *h = new (std::nothrow) holder();
        int rc = h != nullptr ? weft_future_create(&h->f) : -ENOMEM;
        if (rc != 0) {
            delete h;
            detail::set(ec, rc);
            if (ec == nullptr)
                throw error(rc, "weft::promise");
            return;
        }
        detail::set(ec, 0);
        s_ = h;
    }
    bool claim() noexcept
    {
        /* acq_rel: exactly one setter wins; it alone writes value and ex, which the C future's
         * completion then publishes (release in weft_future_set_*) */
        return s_ != nullptr && !s_->claimed.exchange(true, std::memory_order_acq_rel);
    }
    template <class... A> int set_value_code(A &&...a)
    {
        if (!claim())
            return s_ == nullptr ? -EINVAL : -EALREADY;
        s_->value.emplace(std::forward<A>(a)...);
        return weft_future_set_result(s_->f, nullptr);
    }
    int set_exception_code(std::exception_ptr e) noexcept
    {
        if (!e)
            return -EINVAL;
        if (!claim())
            return s_ == nullptr ? -EINVAL : -EALREADY;
        s_->ex = std::move(e);
        return weft_future_set_error(s_->f, exception_code);
    }
    int set_error_code(int code) noexcept
    {
        if (code == 0)
            return -EINVAL;
        if (!claim())
            return s_ == nullptr ? -EINVAL : -EALREADY;
        return weft_future_set_error(s_->f, code);
    }
    void abandon() noexcept
    {
        if (s_ == nullptr)
            return;
        if (claim())
            weft_future_cancel(s_->f);
        std::exchange(s_, nullptr)->release();
    }

    holder *s_ = nullptr;

  public:
    /* The error_code spellings of the setters. */
    template <class... A> void set_value(std::error_code &ec, A &&...a)
    {
        detail::set(&ec, set_value_code(std::forward<A>(a)...));
    }
    void set_exception(std::exception_ptr e, std::error_code &ec) noexcept
    {
        detail::set(&ec, set_exception_code(std::move(e)));
    }
    void set_error(int code, std::error_code &ec) noexcept
    {
        detail::set(&ec, set_error_code(code));
    }
};

/* ---------------------------------------------------------------------------------------------
 * Fork-join
 */

namespace detail
{
/* One half of a join: the callable by reference (it lives in the caller's frame), its value and
 * exception. */
template <class F> struct half {
    using R = std::decay_t<std::invoke_result_t<F &>>;
    F *fn;
    std::optional<stored_t<R>> value;
    std::exception_ptr ex;

    void operator()() noexcept
    {
        run_into<R>(value, ex, *fn);
    }
    static void run(void *p) noexcept
    {
        (*static_cast<half *>(p))();
    }
};
} // namespace detail

/* Runs a() and b(), possibly in parallel (b may be stolen by another worker), and returns when
 * both are done: weft_offer / weft_reclaim on the caller's stack, so no allocation, and when no
 * thief took b it is a direct call. Returns nothing if both return void, else a std::pair of
 * their values (std::monostate for a void one):
 *
 *     auto [x, y] = weft::join([&] { return fib(n - 1); }, [&] { return fib(n - 2); });
 *
 * If either throws, both still finish; then a's exception (else b's) is rethrown. Outside any
 * pool it runs a then b. */
template <class A, class B> auto join(A &&a, B &&b)
{
    using RA = std::decay_t<std::invoke_result_t<A &>>;
    using RB = std::decay_t<std::invoke_result_t<B &>>;
    std::remove_reference_t<B> &bref = b;
    detail::half<std::remove_reference_t<B>> hb{&bref, std::nullopt, nullptr};
    weft_frame fr;
    weft_offer(&fr, &detail::half<std::remove_reference_t<B>>::run, &hb);
    std::optional<detail::stored_t<RA>> va;
    std::exception_ptr ea;
    detail::run_into<RA>(va, ea, a);
    if (weft_reclaim(&fr))
        hb(); /* nobody took b: call it here */
    if (ea)
        std::rethrow_exception(ea);
    if (hb.ex)
        std::rethrow_exception(hb.ex);
    if constexpr (std::is_void_v<RA> && std::is_void_v<RB>)
        return;
    else
        return std::pair<detail::stored_t<RA>, detail::stored_t<RB>>(std::move(*va),
                                                                     std::move(*hb.value));
}

namespace detail
{
template <std::size_t Lo, std::size_t Hi, class Tuple> void invoke_span(Tuple &t)
{
    if constexpr (Hi - Lo == 1) {
        std::invoke(std::get<Lo>(t));
    } else {
        constexpr std::size_t mid = Lo + (Hi - Lo) / 2;
        join([&] { invoke_span<Lo, mid>(t); }, [&] { invoke_span<mid, Hi>(t); });
    }
}
} // namespace detail

/* Runs every f, possibly in parallel, as a balanced tree of joins (oneTBB's parallel_invoke).
 * No allocation. The exception of the leftmost f that threw is rethrown once all are done. */
template <class... F> void invoke(F &&...f)
{
    static_assert(sizeof...(F) > 0, "weft::invoke needs at least one callable");
    auto t = std::forward_as_tuple(f...);
    detail::invoke_span<0, sizeof...(F)>(t);
}

/* An n-ary fork-join scope (weft_scope): spawn any number of callables, then wait() for all.
 * Each spawn needs a record of the C weft_spawn slot and the callable; the first InlineBytes of
 * them live inside the scope (on the caller's stack), beyond that each record is allocated.
 * Spawn and wait belong to the thread that made the scope. The exception of the first callable
 * to throw is rethrown by wait(); the destructor waits too and drops it. */
template <std::size_t InlineBytes = 768> class basic_scope
{
  public:
    basic_scope() noexcept
    {
        weft_scope_init(&s_);
    }
    basic_scope(const basic_scope &) = delete;
    basic_scope &operator=(const basic_scope &) = delete;
    ~basic_scope()
    {
        settle();
    }

    template <class F> void spawn(F &&f)
    {
        using R = rec<std::decay_t<F>>;
        void *mem = nullptr;
        bool heap = false;
        std::size_t at = (used_ + alignof(R) - 1) & ~(alignof(R) - 1);
        if (alignof(R) <= alignof(std::max_align_t) && at + sizeof(R) <= InlineBytes) {
            mem = arena_ + at;
            used_ = at + sizeof(R);
        } else {
            mem = ::operator new(sizeof(R), std::align_val_t(alignof(R)));
            heap = true;
        }
        R *r;
        try {
            r = ::new (mem) R(this, heap, std::forward<F>(f));
        } catch (...) {
            if (heap)
                ::operator delete(mem, std::align_val_t(alignof(R)));
            throw;
        }
        r->next = last_;
        last_ = r;
        weft_scope_spawn(&s_, &r->slot, &R::run, r);
    }

    /* Waits for everything spawned (on a worker, running the spawns nobody took and other
     * work meanwhile), then rethrows the first exception. The scope may be used again. */
    void wait()
    {
        std::exception_ptr e = settle();
        if (e)
            std::rethrow_exception(e);
    }

  private:
    struct record {
        weft_spawn slot;
        basic_scope *owner;
        record *next = nullptr;
        bool heap;
        void (*destroy)(record *) noexcept;
        record(basic_scope *o, bool h, void (*d)(record *) noexcept) : owner(o), heap(h), destroy(d)
        {
        }
    };
    template <class F> struct rec : record {
        F fn;
        template <class G>
        rec(basic_scope *o, bool h, G &&g) : record(o, h, &rec::destroy_rec), fn(std::forward<G>(g))
        {
        }
        static void run(void *p) noexcept
        {
            auto *r = static_cast<rec *>(p);
            try {
                std::invoke(std::move(r->fn));
            } catch (...) {
                r->owner->note(std::current_exception());
            }
        }
        static void destroy_rec(record *p) noexcept
        {
            auto *r = static_cast<rec *>(p);
            bool heap = r->heap;
            r->~rec();
            if (heap)
                ::operator delete(static_cast<void *>(r), std::align_val_t(alignof(rec)));
        }
    };

    void note(std::exception_ptr e) noexcept
    {
        /* acq_rel: one thrower wins and alone writes first_; weft_scope_wait orders its write
         * before wait()'s read */
        if (!failed_.exchange(true, std::memory_order_acq_rel))
            first_ = std::move(e);
    }
    std::exception_ptr settle() noexcept
    {
        weft_scope_wait(&s_);
        for (record *r = last_; r != nullptr;) {
            record *next = r->next;
            r->destroy(r);
            r = next;
        }
        last_ = nullptr;
        used_ = 0;
        failed_.store(false, std::memory_order_relaxed); /* relaxed: nothing runs any more */
        return std::exchange(first_, nullptr);
    }

    weft_scope s_;
    record *last_ = nullptr;
    std::size_t used_ = 0;
    std::atomic<bool> failed_{false};
    std::exception_ptr first_;
    alignas(std::max_align_t) unsigned char arena_[InlineBytes];
};
using scope = basic_scope<>;

/* ---------------------------------------------------------------------------------------------
 * Loops
 */

namespace detail
{
/* The first exception of a loop's bodies; the others skip their work once one failed. */
struct loop_error {
    std::atomic<bool> failed{false};
    std::exception_ptr ex;

    bool stopped() const noexcept
    {
        /* relaxed: only a hint to skip work; ex is read after the loop returns */
        return failed.load(std::memory_order_relaxed);
    }
    void note(std::exception_ptr e) noexcept
    {
        /* acq_rel: one body wins and alone writes ex; the loop's return orders it before the
         * caller's read */
        if (!failed.exchange(true, std::memory_order_acq_rel))
            ex = std::move(e);
    }
};

template <class F> struct loop_ctx {
    F *body;
    loop_error err;

    static void run(size_t lo, size_t hi, void *p) noexcept
    {
        auto *c = static_cast<loop_ctx *>(p);
        if (c->err.stopped())
            return;
        try {
            if constexpr (std::is_invocable_v<F &, std::size_t, std::size_t>) {
                (*c->body)(lo, hi);
            } else {
                for (std::size_t i = lo; i < hi; i++)
                    (*c->body)(i);
            }
        } catch (...) {
            c->err.note(std::current_exception());
        }
    }
};

template <class F>
void parallel_for(weft_pool *p, std::size_t begin, std::size_t end, F &body, std::size_t grain,
                  std::error_code *ec)
{
    static_assert(std::is_invocable_v<F &, std::size_t, std::size_t> ||
                      std::is_invocable_v<F &, std::size_t>,
                  "a parallel_for body takes (size_t lo, size_t hi) or (size_t i)");
    loop_ctx<F> c{&body, {}};
    int rc = weft_parallel_for(p, begin, end, grain, &loop_ctx<F>::run, &c);
    set(ec, rc);
    if (rc != 0 && ec == nullptr)
        throw error(rc, "weft::parallel_for");
    if (c.err.ex)
        std::rethrow_exception(c.err.ex);
}

/* parallel_reduce for any T. A trivially copyable T that fits lives in the C accumulator
 * itself; any other T lives on the heap and the accumulator holds a pointer to it (NULL: the
 * identity, so that the C library's copies of the identity stay plain bytes). */
template <class T, class Body, class Combine> struct reduce_ctx {
    static constexpr bool inline_acc = std::is_trivially_copyable_v<T> &&
                                       std::is_default_constructible_v<T> &&
                                       sizeof(T) <= WEFT_REDUCE_MAX_ACC;
    using acc_t = std::conditional_t<inline_acc, T, T *>;

    const T *identity;
    Body *body;
    Combine *combine;
    loop_error err;

    static void run(size_t lo, size_t hi, void *acc, void *p) noexcept
    {
        auto *c = static_cast<reduce_ctx *>(p);
        if (c->err.stopped())
            return;
        try {
            if constexpr (inline_acc) {
                T cur;
                std::memcpy(static_cast<void *>(&cur), acc, sizeof(T));
                T next = (*c->body)(lo, hi, std::move(cur));
                std::memcpy(acc, static_cast<const void *>(&next), sizeof(T));
            } else {
                T *cur;
                std::memcpy(&cur, acc, sizeof(cur));
                if (cur == nullptr) {
                    cur = new T((*c->body)(lo, hi, T(*c->identity)));
                    std::memcpy(acc, &cur, sizeof(cur));
                } else {
                    *cur = (*c->body)(lo, hi, std::move(*cur));
                }
            }
        } catch (...) {
            c->err.note(std::current_exception());
        }
    }
    static void join(void *acc, const void *other, void *p) noexcept
    {
        auto *c = static_cast<reduce_ctx *>(p);
        if constexpr (inline_acc) {
            if (c->err.stopped())
                return;
            try {
                T a, b;
                std::memcpy(static_cast<void *>(&a), acc, sizeof(T));
                std::memcpy(static_cast<void *>(&b), other, sizeof(T));
                T r = (*c->combine)(std::move(a), std::move(b));
                std::memcpy(acc, static_cast<const void *>(&r), sizeof(T));
            } catch (...) {
                c->err.note(std::current_exception());
            }
        } else {
            T *a, *b;
            std::memcpy(&a, acc, sizeof(a));
            std::memcpy(&b, other, sizeof(b));
            if (b == nullptr)
                return;
            if (a == nullptr || c->err.stopped()) {
                /* left is the identity: the right one is the combination; after a failure,
                 * keep one of them only to free it */
                if (a == nullptr) {
                    std::memcpy(acc, &b, sizeof(b));
                    return;
                }
                delete b;
                return;
            }
            try {
                *a = (*c->combine)(std::move(*a), std::move(*b));
            } catch (...) {
                c->err.note(std::current_exception());
            }
            delete b; /* the right accumulator is consumed in every case */
        }
    }
};

template <class T, class Body, class Combine>
T parallel_reduce(weft_pool *p, std::size_t begin, std::size_t end, const T &identity, Body &body,
                  Combine &combine, std::size_t grain, std::error_code *ec)
{
    static_assert(std::is_invocable_r_v<T, Body &, std::size_t, std::size_t, T>,
                  "a parallel_reduce body is T(size_t lo, size_t hi, T acc)");
    static_assert(std::is_invocable_r_v<T, Combine &, T, T>,
                  "a parallel_reduce combine is T(T left, T right)");
    using C = reduce_ctx<T, Body, Combine>;
    using acc_t = typename C::acc_t;
    C c{&identity, &body, &combine, {}};
    alignas(acc_t) unsigned char id[sizeof(acc_t)];
    alignas(acc_t) unsigned char out[sizeof(acc_t)];
    if constexpr (C::inline_acc)
        std::memcpy(id, static_cast<const void *>(&identity), sizeof(T));
    else
        std::memset(id, 0, sizeof(id)); /* a NULL pointer: the identity */
    int rc =
        weft_parallel_reduce(p, begin, end, grain, sizeof(acc_t), id, &C::run, &C::join, &c, out);
    set(ec, rc);
    if constexpr (C::inline_acc) {
        if (rc != 0) {
            if (ec == nullptr)
                throw error(rc, "weft::parallel_reduce");
            return identity;
        }
        if (c.err.ex)
            std::rethrow_exception(c.err.ex);
        T r;
        std::memcpy(static_cast<void *>(&r), out, sizeof(T));
        return r;
    } else {
        T *r = nullptr;
        if (rc == 0)
            std::memcpy(&r, out, sizeof(r));
        /* Owned here from now on, whatever happens below. */
        std::unique_ptr<T> owned(r);
        if (rc != 0) {
            if (ec == nullptr)
                throw error(rc, "weft::parallel_reduce");
            return identity;
        }
        if (c.err.ex)
            std::rethrow_exception(c.err.ex);
        return owned ? std::move(*owned) : identity;
    }
}
} // namespace detail

/* Calls body on disjoint ranges covering [begin, end), from the calling worker's pool (the
 * calling thread must be a worker: else weft::error(-EINVAL)). body takes (size_t lo,
 * size_t hi) for a range, or (size_t i) for each index. grain 0: chosen automatically. If a body
 * throws, the bodies not yet started skip their work and the first exception is rethrown. */
template <class F>
void parallel_for(std::size_t begin, std::size_t end, F &&body, std::size_t grain = 0)
{
    detail::parallel_for(nullptr, begin, end, body, grain, nullptr);
}

/* A reduction of [begin, end) from the calling worker's pool: body(lo, hi, acc) -> T folds a
 * range into acc, combine(left, right) -> T joins neighbours, left to right (associative, need
 * not commute). Any copyable T: trivially copyable ones of up to WEFT_REDUCE_MAX_ACC bytes
 * allocate nothing. An empty range gives identity. */
template <class T, class Body, class Combine>
T parallel_reduce(std::size_t begin, std::size_t end, const T &identity, Body &&body,
                  Combine &&combine, std::size_t grain = 0)
{
    return detail::parallel_reduce<T>(nullptr, begin, end, identity, body, combine, grain, nullptr);
}

/* ---------------------------------------------------------------------------------------------
 * Pool
 */

/* A pool (weft_pool), move-only. The destructor is weft_pool_destroy: it waits for the tasks
 * already submitted, then joins the workers. */
class pool
{
  public:
    /* threads 0: $WEFT_THREADS, else one per core. Throws weft::error. */
    explicit pool(unsigned threads = 0)
    {
        weft_config cfg;
        weft_config_init(&cfg);
        cfg.threads = threads;
        detail::check(weft_pool_create(&cfg, &p_), "weft_pool_create");
    }
    explicit pool(const weft_config &cfg)
    {
        detail::check(weft_pool_create(&cfg, &p_), "weft_pool_create");
    }
    pool(const weft_config &cfg, std::error_code &ec) noexcept
    {
        detail::set(&ec, weft_pool_create(&cfg, &p_));
    }
    pool(pool &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    pool &operator=(pool &&o) noexcept
    {
        if (this != &o) {
            weft_pool_destroy(p_);
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    pool(const pool &) = delete;
    pool &operator=(const pool &) = delete;
    ~pool()
    {
        /* -EDEADLK from one of its own workers: a pool must not be destroyed by its tasks */
        weft_pool_destroy(p_);
    }

    bool valid() const noexcept
    {
        return p_ != nullptr;
    }
    weft_pool *native() const noexcept
    {
        return p_;
    }
    unsigned size() const noexcept
    {
        return weft_pool_size(p_);
    }
    /* New submissions fail with -ESHUTDOWN from now on (see weft_pool_shutdown). */
    void shutdown(weft_shutdown_mode mode = WEFT_SHUTDOWN_DRAIN)
    {
        detail::check(weft_pool_shutdown(p_, mode), "weft_pool_shutdown");
    }
    /* weft_pool_destroy now, with its error: -EDEADLK from one of its own workers. */
    int destroy() noexcept
    {
        int rc = weft_pool_destroy(p_);
        if (rc == 0)
            p_ = nullptr;
        return rc;
    }

    /* Runs f() as a task; its result and exception come back through the future.
     * Throws weft::error (-ESHUTDOWN, -ENOMEM, -EAGAIN with max_pending). */
    template <class F> future<detail::value_t<F>> submit(F &&f)
    {
        return submit_impl(std::forward<F>(f), nullptr);
    }
    template <class F> future<detail::value_t<F>> submit(F &&f, std::error_code &ec)
    {
        return submit_impl(std::forward<F>(f), &ec);
    }

    /* Runs f() as a task of this pool and waits for it (weft_pool_run): the way into the pool
     * for code that forks and joins. Returns f's value, rethrows its exception, throws
     * weft::error for an error of the call. No allocation besides the C task. */
    template <class F> detail::value_t<F> run(F &&f)
    {
        using T = detail::value_t<F>;
        struct ctx {
            std::remove_reference_t<F> *fn;
            std::optional<detail::stored_t<T>> value;
            std::exception_ptr ex;
            static int call(void *p, void **) noexcept
            {
                auto *c = static_cast<ctx *>(p);
                return detail::run_into<T>(c->value, c->ex, std::forward<F>(*c->fn));
            }
        } c{&f, std::nullopt, nullptr};
        int rc = weft_pool_run(p_, &ctx::call, &c, nullptr);
        if (c.ex)
            std::rethrow_exception(c.ex);
        detail::check(rc, "weft_pool_run");
        if constexpr (!std::is_void_v<T>)
            return std::move(*c.value);
    }

    /* parallel_for on this pool, from any thread (from outside, it waits as run() does). */
    template <class F>
    void parallel_for(std::size_t begin, std::size_t end, F &&body, std::size_t grain = 0)
    {
        detail::parallel_for(p_, begin, end, body, grain, nullptr);
    }
    template <class F>
    void parallel_for(std::size_t begin, std::size_t end, F &&body, std::size_t grain,
                      std::error_code &ec)
    {
        detail::parallel_for(p_, begin, end, body, grain, &ec);
    }
    template <class T, class Body, class Combine>
    T parallel_reduce(std::size_t begin, std::size_t end, const T &identity, Body &&body,
                      Combine &&combine, std::size_t grain = 0)
    {
        return detail::parallel_reduce<T>(p_, begin, end, identity, body, combine, grain, nullptr);
    }
    template <class T, class Body, class Combine>
    T parallel_reduce(std::size_t begin, std::size_t end, const T &identity, Body &&body,
                      Combine &&combine, std::size_t grain, std::error_code &ec)
    {
        return detail::parallel_reduce<T>(p_, begin, end, identity, body, combine, grain, &ec);
    }

  private:
    template <class F> future<detail::value_t<F>> submit_impl(F &&f, std::error_code *ec)
    {
        weft_pool *p = p_;
        return detail::launch(
            std::forward<F>(f), ec,
            [p](weft_fn fn, void *arg, weft_future **out) { return weft_submit(p, fn, arg, out); });
    }

    weft_pool *p_ = nullptr;
};

/* ---------------------------------------------------------------------------------------------
 * Continuations
 */

namespace detail
{
template <class T, class F> struct then_traits {
    static constexpr bool whole = std::is_invocable_v<std::decay_t<F> &&, future<T> &>;
    static auto probe()
    {
        if constexpr (whole)
            return std::invoke_result<std::decay_t<F> &&, future<T> &>{};
        else if constexpr (std::is_void_v<T>)
            return std::invoke_result<std::decay_t<F> &&>{};
        else
            return std::invoke_result<std::decay_t<F> &&, T &>{};
    }
    using result_type = std::decay_t<typename decltype(probe())::type>;
};

/* A continuation: the previous future (kept alive for its value) and the callable. */
template <class T, class U, class F> struct then_state final : state<U> {
    future<T> prev;
    std::optional<F> fn;

    template <class G>
    then_state(future<T> p, G &&g)
        : state<U>(2), prev(std::move(p)), fn(std::in_place, std::forward<G>(g))
    {
    }
    static int run(weft_future *, void *arg, void **out) noexcept
    {
        auto *s = static_cast<then_state *>(arg);
        *out = nullptr;
        int rc;
        if constexpr (then_traits<T, F>::whole) {
            rc = run_into<U>(s->value, s->ex, [s]() -> decltype(auto) {
                return std::invoke(std::move(*s->fn), s->prev);
            });
        } else {
            result<T> r = s->prev.try_get(); /* finished: no wait */
            if (!r) {
                s->ex = r.exception(); /* the failure passes through unchanged */
                rc = r.code();
            } else if constexpr (std::is_void_v<T>) {
                rc = run_into<U>(s->value, s->ex, std::move(*s->fn));
            } else {
                rc = run_into<U>(s->value, s->ex, [s, &r]() -> decltype(auto) {
                    return std::invoke(std::move(*s->fn), *r);
                });
            }
        }
        s->fn.reset();
        return rc;
    }
};

template <class T, class F>
auto then(const future<T> &prev, weft_pool *p, F &&f, std::error_code *ec)
{
    using U = typename then_traits<T, F>::result_type;
    using S = then_state<T, U, std::decay_t<F>>;
    if (!prev.valid()) {
        set(ec, -EINVAL);
        if (ec == nullptr)
            throw error(-EINVAL, "weft::future::then");
        return future<U>();
    }
    S *s = new (std::nothrow) S(prev, std::forward<F>(f));
    int rc = s == nullptr ? -ENOMEM : arm(s, weft_future_then(prev.native(), p, &S::run, s, &s->f));
    set(ec, rc);
    if (rc != 0) {
        if (ec == nullptr)
            throw error(rc, "weft::future::then");
        return future<U>();
    }
    return access::adopt<U>(s);
}
} // namespace detail

template <class T> template <class F> auto future<T>::then(pool &p, F &&f) const
{
    return detail::then(*this, p.native(), std::forward<F>(f), nullptr);
}

template <class T>
template <class F>
auto future<T>::then(pool &p, F &&f, std::error_code &ec) const
{
    return detail::then(*this, p.native(), std::forward<F>(f), &ec);
}

/* ---------------------------------------------------------------------------------------------
 * Groups
 */

/* A counted set of tasks of one pool (weft_group), as oneTBB's task_group: run() detached
 * tasks, wait() for all of them. The destructor waits too. */
class group
{
  public:
    explicit group(pool &p)
    {
        detail::check(weft_group_create(p.native(), &g_), "weft_group_create");
    }
    group(const group &) = delete;
    group &operator=(const group &) = delete;
    ~group()
    {
        weft_group_destroy(g_);
    }

    weft_group *native() const noexcept
    {
        return g_;
    }

    /* Runs f() detached in the group: an exception it throws is kept for wait(). */
    template <class F> void run(F &&f)
    {
        group *self = this;
        submit([self, fn = std::forward<F>(f)]() mutable {
            try {
                std::invoke(std::move(fn));
            } catch (...) {
                self->err_.note(std::current_exception());
            }
        });
    }
    /* Runs f() in the group, with a future of its own (its exception goes there). */
    template <class F> future<detail::value_t<F>> submit(F &&f)
    {
        return submit_impl(std::forward<F>(f), nullptr);
    }
    template <class F> future<detail::value_t<F>> submit(F &&f, std::error_code &ec)
    {
        return submit_impl(std::forward<F>(f), &ec);
    }

    /* Waits for every task of the group, then rethrows the first exception of a run() task
     * (once). Throws weft::error(-EDEADLK) from a task of the group. */
    void wait()
    {
        detail::check(weft_group_wait(g_, WEFT_FOREVER), "weft_group_wait");
        rethrow();
    }
    /* True when every task finished in time (then as wait()), false on timeout. */
    template <class Rep, class Period> bool wait_for(const std::chrono::duration<Rep, Period> &d)
    {
        int rc = weft_group_wait(g_, detail::timeout_ns(d));
        if (rc == -ETIMEDOUT)
            return false;
        detail::check(rc, "weft_group_wait");
        rethrow();
        return true;
    }
    /* Cancels the tasks that have not started; returns how many. */
    int cancel()
    {
        int rc = weft_group_cancel(g_);
        if (rc < 0)
            throw error(rc, "weft_group_cancel");
        return rc;
    }
    std::size_t pending() const noexcept
    {
        return weft_group_pending(g_);
    }

  private:
    template <class F> future<detail::value_t<F>> submit_impl(F &&f, std::error_code *ec)
    {
        weft_group *g = g_;
        return detail::launch(std::forward<F>(f), ec,
                              [g](weft_fn fn, void *arg, weft_future **out) {
                                  return weft_group_submit(g, fn, arg, out);
                              });
    }
    void rethrow()
    {
        if (!err_.failed.load(std::memory_order_acquire)) /* acquire: pairs with note() */
            return;
        std::exception_ptr e = std::exchange(err_.ex, nullptr);
        err_.failed.store(false, std::memory_order_relaxed); /* relaxed: all tasks are done */
        if (e)
            std::rethrow_exception(e);
    }

    weft_group *g_ = nullptr;
    detail::loop_error err_;
};

/* ---------------------------------------------------------------------------------------------
 * gather, wait, completion sets
 */

namespace detail
{
/* A gather: keeps its children's states, so that their values and exceptions stay reachable. */
struct gather_state final : state<void> {
    std::vector<state_base *> kids;

    gather_state() : state<void>(1) {}
    ~gather_state() override
    {
        for (state_base *k : kids)
            k->release();
    }
    std::exception_ptr exception() const noexcept override
    {
        std::size_t i;
        if (weft_gather_failed_child(f, &i) == 0 && i < kids.size())
            return kids[i]->exception();
        return nullptr;
    }
};

inline future<void> gather(std::vector<state_base *> kids, unsigned flags, std::error_code *ec)
{
    int rc = -ENOMEM;
    gather_state *g = new (std::nothrow) gather_state();
    if (g != nullptr) {
        std::vector<weft_future *> fs;
        rc = 0;
        try {
            fs.reserve(kids.size());
            g->kids.reserve(kids.size());
        } catch (const std::bad_alloc &) {
            rc = -ENOMEM;
        }
        for (std::size_t i = 0; rc == 0 && i < kids.size(); i++) {
            if (kids[i] == nullptr) {
                rc = -EINVAL;
                break;
            }
            fs.push_back(kids[i]->f);
        }
        if (rc == 0)
            rc = weft_gather(fs.data(), fs.size(), flags, &g->f);
        if (rc == 0) {
            for (state_base *k : kids) {
                k->retain();
                g->kids.push_back(k); /* reserved: does not throw */
            }
        } else {
            delete g;
        }
    }
    set(ec, rc);
    if (rc != 0) {
        if (ec == nullptr)
            throw error(rc, "weft::gather");
        return future<void>();
    }
    return access::adopt<void>(g);
}
} // namespace detail

/* One future for many (weft_gather): DONE when all are DONE; without WEFT_RETURN_EXCEPTIONS it
 * fails with the first failure, and its get() rethrows that child's own exception. The values
 * stay in the children's futures (the gather keeps them alive): read them with their get(). */
template <class T> future<void> gather(const std::vector<future<T>> &fs, unsigned flags = 0)
{
    std::vector<detail::state_base *> kids;
    kids.reserve(fs.size());
    for (const future<T> &f : fs)
        kids.push_back(detail::access::get(f));
    return detail::gather(std::move(kids), flags, nullptr);
}
template <class T>
future<void> gather(const std::vector<future<T>> &fs, unsigned flags, std::error_code &ec)
{
    std::vector<detail::state_base *> kids;
    kids.reserve(fs.size());
    for (const future<T> &f : fs)
        kids.push_back(detail::access::get(f));
    return detail::gather(std::move(kids), flags, &ec);
}
/* Futures of different types: gather_all(f1, f2, ...), flags 0. */
template <class... T> future<void> gather_all(const future<T> &...fs)
{
    return detail::gather({static_cast<detail::state_base *>(detail::access::get(fs))...}, 0,
                          nullptr);
}

/* weft_wait over fs: returns when `when` holds or the timeout passes, whichever is first, and
 * reorders fs so that fs[0..n) are the finished ones and the rest unfinished, each part in its
 * previous order. Returns n. Throws weft::error (-EINVAL for an empty or invalid entry). */
template <class T, class Rep = int64_t, class Period = std::nano>
std::size_t wait(std::vector<future<T>> &fs, weft_return_when when = WEFT_ALL_COMPLETED,
                 std::chrono::duration<Rep, Period> timeout = std::chrono::nanoseconds::max())
{
    std::vector<weft_future *> in, out(fs.size());
    in.reserve(fs.size());
    for (const future<T> &f : fs)
        in.push_back(f.native());
    std::size_t n = 0;
    detail::check(
        weft_wait(in.data(), in.size(), when, detail::timeout_ns(timeout), out.data(), &n),
        "weft_wait");
    /* out keeps input order within each part: walk fs once per part */
    std::unordered_map<weft_future *, std::size_t> done;
    for (std::size_t i = 0; i < n; i++)
        done[out[i]]++;
    std::vector<future<T>> first, rest;
    first.reserve(n);
    rest.reserve(fs.size() - n);
    for (future<T> &f : fs) {
        auto it = done.find(f.native());
        if (it != done.end() && it->second > 0) {
            it->second--;
            first.push_back(std::move(f));
        } else {
            rest.push_back(std::move(f));
        }
    }
    fs = std::move(first);
    for (future<T> &f : rest)
        fs.push_back(std::move(f));
    return n;
}

/* A completion set (weft_completion) of futures of one type: next() hands out each added future
 * once, in the order they finish. Open-ended: add() at any time, from any thread; fd() for an
 * event loop. */
template <class T> class completion_set
{
  public:
    completion_set()
    {
        detail::check(weft_completion_create(&c_), "weft_completion_create");
    }
    explicit completion_set(const std::vector<future<T>> &fs) : completion_set()
    {
        for (const future<T> &f : fs)
            add(f);
    }
    completion_set(const completion_set &) = delete;
    completion_set &operator=(const completion_set &) = delete;
    ~completion_set()
    {
        weft_completion_destroy(c_);
    }

    weft_completion *native() const noexcept
    {
        return c_;
    }
    void add(const future<T> &f)
    {
        if (!f.valid())
            throw error(-EINVAL, "weft::completion_set::add");
        {
            std::lock_guard<std::mutex> lock(mu_);
            held_.emplace(f.native(), f);
        }
        int rc = weft_completion_add(c_, f.native());
        if (rc != 0) {
            std::lock_guard<std::mutex> lock(mu_);
            held_.erase(held_.find(f.native()));
            throw error(rc, "weft_completion_add");
        }
    }
    /* The next finished future, waiting as long as it takes; std::nullopt once every future
     * added so far has been handed out. */
    std::optional<future<T>> next()
    {
        std::error_code ec;
        future<T> f = next(ec, std::chrono::nanoseconds(-1));
        if (ec == std::errc::no_such_file_or_directory)
            return std::nullopt;
        if (ec)
            throw error(ec.value(), "weft_completion_next");
        return f;
    }
    /* The next finished future within timeout (zero: poll; negative: no limit), or an invalid
     * future with ec set to -ETIMEDOUT (none finished in time) or -ENOENT (all handed out). */
    template <class Rep, class Period>
    future<T> next(std::error_code &ec, std::chrono::duration<Rep, Period> timeout)
    {
        int64_t ns = timeout < timeout.zero() ? WEFT_FOREVER : detail::timeout_ns(timeout);
        weft_future *raw = nullptr;
        int rc = weft_completion_next(c_, ns, &raw);
        detail::set(&ec, rc);
        if (rc != 0)
            return future<T>();
        future<T> f;
        {
            std::lock_guard<std::mutex> lock(mu_);
            auto it = held_.find(raw);
            if (it != held_.end()) {
                f = std::move(it->second);
                held_.erase(it);
            }
        }
        weft_future_release(raw); /* the set's reference; f holds its own */
        if (!f.valid())           /* added through native(), not through add(): no typed future */
            detail::set(&ec, -EINVAL);
        return f;
    }
    /* Readable (POLLIN) exactly while next(ec, 0) would return a future. */
    int fd() const
    {
        int rc = weft_completion_fd(c_);
        if (rc < 0)
            throw error(rc, "weft_completion_fd");
        return rc;
    }

  private:
    weft_completion *c_ = nullptr;
    std::mutex mu_;
    std::unordered_multimap<weft_future *, future<T>> held_; /* added and not handed out */
};

} // namespace weft

#endif /* WEFT_HPP */
