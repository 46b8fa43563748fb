/* SPDX-License-Identifier: MIT */
/*
 * The C++ wrapper, include/weft.hpp: every part of it against the C library it wraps.
 *
 * Pools and typed futures (values, void, move-only results and move-only captures), exceptions
 * crossing tasks (rethrown by get(), kept by try_get(), passed through continuations, gathers and
 * groups, never through C frames), weft::error codes and cancellation, the error_code
 * spellings, promises, joins (with a check that the fast path allocates nothing), invoke, scopes
 * (past their inline arena), parallel_for and parallel_reduce (inline and heap accumulators),
 * continuations, gather, wait, completion sets, groups. Lifetime: every callable, capture and
 * result is counted by a Tracked object, and each test ends with none alive once its pool is
 * gone, so a leaked or doubly freed state shows as a count (and as a report under
 * AddressSanitizer).
 *
 * A plain program: CHECK records a failure (from any thread) and the program exits 1 at the
 * end if there was any. Each test is a function; the name on the command line runs one.
 */
#include <weft.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

/* c_header.cpp: weft.h compiled alone as C++. */
int weft_c_header_as_cpp(void);
/* alloc_count.cpp: the number of operator new calls the calling thread made. */
long weft_test_allocations(void);

namespace
{

std::atomic<int> failures{0};

void fail(const char *file, int line, const char *what)
{
    failures.fetch_add(1);
    std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, what);
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail(__FILE__, __LINE__, #cond);                                                       \
    } while (0)

/* Expects expr to throw E and pred(e) to hold. */
#define CHECK_THROWS(E, expr, pred)                                                                \
    do {                                                                                           \
        bool thrown_ = false;                                                                      \
        try {                                                                                      \
            (void)(expr);                                                                          \
        } catch (const E &e) {                                                                     \
            thrown_ = true;                                                                        \
            if (!(pred))                                                                           \
                fail(__FILE__, __LINE__, #pred);                                                   \
        }                                                                                          \
        if (!thrown_)                                                                              \
            fail(__FILE__, __LINE__, "no " #E " from " #expr);                                     \
    } while (0)

/* Counts live instances: captures, results and values that the wrapper must free. */
std::atomic<int> live{0};
struct Tracked {
    int v;
    explicit Tracked(int x = 0) : v(x)
    {
        live.fetch_add(1);
    }
    Tracked(const Tracked &o) : v(o.v)
    {
        live.fetch_add(1);
    }
    Tracked(Tracked &&o) noexcept : v(o.v)
    {
        live.fetch_add(1);
    }
    Tracked &operator=(const Tracked &) = default;
    Tracked &operator=(Tracked &&) = default;
    ~Tracked()
    {
        live.fetch_sub(1);
    }
};

/* Heap allocations made by the calling thread (alloc_count.cpp replaces operator new). */
#define allocations weft_test_allocations()

struct gate {
    weft::promise<void> p;
    weft::future<void> f = p.get_future();
    void open()
    {
        p.set_value();
    }
    void pass() const
    {
        f.wait();
    }
};

/* ---------------------------------------------------------------------------------------------
 * Pools and futures
 */

void test_submit_values()
{
    weft::pool pool(2);
    CHECK(pool.valid() && pool.size() == 2);
    auto fi = pool.submit([] { return 6 * 7; });
    auto fs = pool.submit([] { return std::string("weft"); });
    auto fv = pool.submit([] {});
    static_assert(std::is_same_v<decltype(fi), weft::future<int>>);
    static_assert(std::is_same_v<decltype(fv), weft::future<void>>);
    CHECK(fi.get() == 42);
    CHECK(fs.get() == "weft");
    fv.get();
    CHECK(fi.state() == WEFT_DONE && fi.done());
    auto copy = fi; /* copies share the result */
    CHECK(&copy.get() == &fi.get());
    auto r = fi.try_get();
    CHECK(r && r.code() == 0 && *r == 42 && r.value() == 42);

    /* move-only result, moved out of an rvalue future */
    std::unique_ptr<int> p = pool.submit([] { return std::make_unique<int>(7); }).get();
    CHECK(p && *p == 7);

    /* move-only capture, consumed by the task */
    auto up = std::make_unique<Tracked>(5);
    auto fm = pool.submit([u = std::move(up)]() mutable { return std::move(u); });
    std::unique_ptr<Tracked> back = std::move(fm).get();
    CHECK(back && back->v == 5);

    /* a callable object with state, any callable */
    struct functor {
        Tracked t{3};
        int operator()() &&
        {
            return t.v + 1;
        }
    };
    CHECK(pool.submit(functor{}).get() == 4);

    weft::future<int> invalid;
    CHECK(!invalid.valid() && !invalid.done() && invalid.native() == nullptr);
    CHECK_THROWS(weft::error, invalid.get(), e.value() == -EINVAL);
    CHECK(invalid.try_get().code() == -EINVAL);
}

struct boom : std::runtime_error {
    int n;
    explicit boom(int x) : std::runtime_error("boom " + std::to_string(x)), n(x) {}
};

void test_exceptions()
{
    weft::pool pool(2);
    auto f = pool.submit([]() -> int { throw boom(1); });
    CHECK_THROWS(boom, f.get(), e.n == 1 && std::string(e.what()) == "boom 1");
    /* the C future is FAILED with exception_code: C code and gathers see a failure */
    CHECK(f.state() == WEFT_FAILED);
    void *ignored;
    CHECK(weft_future_result(f.native(), &ignored) == weft::exception_code);
    auto r = f.try_get(); /* never throws */
    CHECK(!r && r.code() == weft::exception_code && r.exception());
    CHECK_THROWS(boom, r.value(), e.n == 1);
    /* rethrown again, from a copy */
    auto g = f;
    CHECK_THROWS(boom, g.get(), e.n == 1);

    /* weft::error(code) fails the future with that code */
    auto fc = pool.submit([] { throw weft::error(42, "custom"); });
    CHECK_THROWS(weft::error, fc.get(), e.value() == 42);
    CHECK(weft_future_result(fc.native(), nullptr) == 42);

    /* a throw of anything */
    auto fx = pool.submit([] { throw 17; });
    CHECK_THROWS(int, fx.get(), e == 17);

    /* pool.run: values and exceptions come back to the caller */
    CHECK(pool.run([] { return 5; }) == 5);
    CHECK(pool.run([] { return weft::worker_index(); }) >= 0);
    CHECK_THROWS(boom, pool.run([]() -> int { throw boom(2); }), e.n == 2);
    auto up = std::make_unique<int>(9);
    CHECK(*pool.run([&up] { return std::move(up); }) == 9);
}

void test_error_codes()
{
    CHECK(weft::category().name() == std::string("weft"));
    CHECK(weft::make_error_code(-ETIMEDOUT) == std::errc::timed_out);
    CHECK(weft::make_error_code(-EINVAL) == std::errc::invalid_argument);
    CHECK(weft::make_error_code(-ESHUTDOWN).message() == weft_strerror(-ESHUTDOWN));
    CHECK(weft::make_error_code(weft::exception_code).message().find("C++ exception") !=
          std::string::npos);

    weft::pool pool(1);
    pool.shutdown();
    std::error_code ec;
    auto f = pool.submit([] { return 1; }, ec);
    CHECK(!f.valid() && ec.value() == -ESHUTDOWN && ec.category() == weft::category());
    CHECK_THROWS(weft::error, pool.submit([] { return 1; }), e.value() == -ESHUTDOWN);
    CHECK_THROWS(weft::error, pool.run([] {}), e.value() == -ESHUTDOWN);

    weft_config cfg;
    weft_config_init(&cfg);
    cfg.bind = static_cast<weft_bind>(99);
    weft::pool bad(cfg, ec);
    CHECK(!bad.valid() && ec == std::errc::invalid_argument);
    CHECK_THROWS(weft::error, weft::pool(cfg), e.code() == std::errc::invalid_argument);

    /* a wait on the task's own future is -EDEADLK, thrown, or reported */
    weft::pool p2(1);
    weft::promise<weft::future<int>> self;
    auto fself = self.get_future();
    auto f2 = p2.submit([fself]() {
        weft::future<int> me = fself.get();
        std::error_code wec;
        me.wait(wec);
        CHECK(wec.value() == -EDEADLK);
        CHECK(me.try_get().code() == -EDEADLK);
        CHECK_THROWS(weft::error, me.get(), e.value() == -EDEADLK);
        return 1;
    });
    self.set_value(f2);
    CHECK(f2.get() == 1);
}

void test_cancel_and_lifetime()
{
    {
        weft::pool pool(1);
        gate g;
        auto blocker = pool.submit([&g] { g.pass(); });
        std::atomic<bool> ran{false};
        auto victim = pool.submit([&ran, t = Tracked(1)] { ran = true; });
        CHECK(victim.cancel());
        CHECK(victim.state() == WEFT_CANCELLED);
        CHECK_THROWS(weft::error, victim.get(), e.value() == -ECANCELED);
        CHECK(victim.try_get().error() == std::errc::operation_canceled);

        /* dropped before it runs: it still runs, and its state goes with the last owner */
        std::atomic<int> dropped_ran{0};
        for (int i = 0; i < 10; i++)
            pool.submit([&dropped_ran, t = Tracked(i)] { return Tracked(dropped_ran++); });

        /* weft::throw_if_cancelled() inside a running task ends it CANCELLED */
        std::atomic<bool> go{false};
        auto coop = pool.submit([&] {
            while (!go.load())
                std::this_thread::yield();
            weft::throw_if_cancelled();
            return 1;
        });
        g.open();
        blocker.get();
        while (coop.state() == WEFT_PENDING)
            std::this_thread::yield();
        CHECK(dropped_ran.load() == 10);
        /* dropped, then cancelled by a CANCEL shutdown before it started: still freed */
        std::atomic<bool> late_ran{false};
        pool.submit([&late_ran, t = Tracked(99)] { late_ran = true; });
        pool.shutdown(WEFT_SHUTDOWN_CANCEL);
        CHECK(!coop.cancel()); /* running: a request */
        go = true;
        CHECK_THROWS(weft::error, coop.get(), e.value() == -ECANCELED);
        CHECK(coop.state() == WEFT_CANCELLED);
        CHECK(!ran.load() && !late_ran.load());
    }
    CHECK(live.load() == 0);

    /* wait_for: a timeout, then success */
    weft::pool pool(1);
    gate g;
    auto f = pool.submit([&g] {
        g.pass();
        return Tracked(3);
    });
    CHECK(!f.wait_for(std::chrono::milliseconds(1)));
    g.open();
    CHECK(f.wait_for(std::chrono::hours(1)));
    CHECK(f.get().v == 3);
}

/* ---------------------------------------------------------------------------------------------
 * Promises and continuations
 */

void test_promises()
{
    weft::promise<std::string> p;
    auto f = p.get_future();
    CHECK(!f.done());
    std::thread t([&p] { p.set_value("from a thread"); });
    CHECK(f.get() == "from a thread");
    t.join();
    CHECK_THROWS(weft::error, p.set_value("again"), e.value() == -EALREADY);
    CHECK(!p.try_set_value("again"));
    std::error_code ec;
    p.set_error(5, ec);
    CHECK(ec.value() == -EALREADY);

    weft::promise<int> pe;
    pe.set_exception(std::make_exception_ptr(boom(3)));
    CHECK_THROWS(boom, pe.get_future().get(), e.n == 3);

    weft::promise<void> pc;
    pc.set_error(-EPIPE);
    CHECK_THROWS(weft::error, pc.get_future().get(), e.code() == std::errc::broken_pipe);

    /* cancelled while pending: the setter is refused */
    weft::promise<int> px;
    CHECK(px.get_future().cancel());
    CHECK_THROWS(weft::error, px.set_value(1), e.value() == -EALREADY);

    /* destroyed without a value: its futures end CANCELLED, not waiting forever */
    weft::future<Tracked> orphan;
    {
        weft::promise<Tracked> pt;
        orphan = pt.get_future();
    }
    CHECK(orphan.state() == WEFT_CANCELLED);
    orphan = {};

    /* move-only values */
    weft::promise<std::unique_ptr<Tracked>> pm;
    auto fm = pm.get_future();
    pm.set_value(std::make_unique<Tracked>(8));
    CHECK(std::move(fm).get()->v == 8);
    CHECK(live.load() == 0);
}

void test_then()
{
    {
        weft::pool pool(2);
        /* value style: the continuation gets the value */
        auto f = pool.submit([] { return 20; })
                     .then(pool, [](int &v) { return v + 1; })
                     .then(pool, [](int &v) { return std::to_string(v * 2); });
        CHECK(f.get() == "42");

        /* failures pass through value-style continuations unchanged */
        std::atomic<int> called{0};
        auto failed = pool.submit([]() -> int { throw boom(4); })
                          .then(pool, [&](int &v) { return called++, v; })
                          .then(pool, [&](int &) { called++; });
        CHECK_THROWS(boom, failed.get(), e.n == 4);
        CHECK(called.load() == 0);

        /* whole-future style sees every outcome */
        auto handled =
            pool.submit([]() -> int { throw boom(5); }).then(pool, [](weft::future<int> &p) {
                try {
                    return p.get();
                } catch (const boom &b) {
                    return -b.n;
                }
            });
        CHECK(handled.get() == -5);

        /* a continuation of a promise, run once it is set, with move-only captures */
        weft::promise<void> gatep;
        auto chained =
            gatep.get_future().then(pool, [t = std::make_unique<Tracked>(6)]() { return t->v; });
        CHECK(!chained.wait_for(std::chrono::milliseconds(1)));
        gatep.set_value();
        CHECK(chained.get() == 6);

        /* cancelling the continuation before it starts: it never runs */
        weft::promise<int> never;
        auto c = never.get_future().then(pool, [&](int &) { called++; });
        CHECK(c.cancel());
        never.set_value(1);
        CHECK_THROWS(weft::error, c.get(), e.value() == -ECANCELED);

        /* a long chain blocks no thread */
        weft::future<long> chain = pool.submit([] { return 0L; });
        for (int i = 0; i < 1000; i++)
            chain = chain.then(pool, [](long &v) { return v + 1; });
        CHECK(chain.get() == 1000);

        /* the error_code spelling */
        std::error_code ec;
        weft::future<int> invalid;
        auto none = invalid.then(
            pool, [](int &v) { return v; }, ec);
        CHECK(!none.valid() && ec == std::errc::invalid_argument);
    }
    CHECK(live.load() == 0);
}

/* ---------------------------------------------------------------------------------------------
 * Fork-join
 */

long fib(long n)
{
    if (n < 2)
        return n;
    auto [a, b] = weft::join([&] { return fib(n - 1); }, [&] { return fib(n - 2); });
    return a + b;
}

long fib_serial(long n)
{
    return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

void test_join()
{
    weft::pool pool;
    CHECK(pool.run([] { return fib(24); }) == fib_serial(24));
    CHECK(fib(15) == fib_serial(15)); /* outside any pool: serial */

    /* void halves, mixed halves */
    std::atomic<int> n{0};
    pool.run([&] { weft::join([&] { n++; }, [&] { n++; }); });
    CHECK(n.load() == 2);
    auto [v, s] = pool.run([] { return weft::join([] {}, [] { return std::string("b"); }); });
    static_assert(std::is_same_v<decltype(v), std::monostate>);
    CHECK(s == "b");

    /* both halves finish when one throws; a's exception wins */
    std::atomic<int> finished{0};
    CHECK_THROWS(boom, pool.run([&] {
        weft::join(
            [&] {
                finished++;
                throw boom(1);
            },
            [&] {
                finished++;
                throw boom(2);
            });
    }),
                 e.n == 1);
    CHECK(finished.load() == 2);
    CHECK_THROWS(boom, pool.run([&] { weft::join([] {}, [] { throw boom(3); }); }), e.n == 3);

    /* invoke: every callable once, the leftmost exception */
    std::atomic<int> mask{0};
    pool.run([&] {
        weft::invoke([&] { mask |= 1; }, [&] { mask |= 2; }, [&] { mask |= 4; }, [&] { mask |= 8; },
                     [&] { mask |= 16; });
    });
    CHECK(mask.load() == 31);
    CHECK_THROWS(boom, pool.run([] {
        weft::invoke([] {}, [] { throw boom(2); }, [] {}, [] { throw boom(4); });
    }),
                 e.n == 2);
    weft::invoke([&] { mask = 0; }); /* one callable, outside any pool */
    CHECK(mask.load() == 0);
}

/* The fast path of join allocates nothing: on a one-worker pool nobody steals, and the thread
 * running the joins makes no heap allocation. */
void test_join_allocates_nothing()
{
    weft::pool pool(1);
    long count = pool.run([] {
        long before = allocations;
        long r = fib(18);
        long after = allocations;
        return r == fib_serial(18) ? after - before : -1;
    });
    CHECK(count == 0);
}

void test_scope()
{
    weft::pool pool;
    /* more spawns than the inline arena holds, with move-only captures, reused after wait */
    std::vector<std::atomic<int>> hits(300);
    pool.run([&] {
        weft::scope s;
        for (int round = 0; round < 2; round++) {
            for (size_t i = 0; i < hits.size(); i++)
                s.spawn([&hits, i, t = std::make_unique<Tracked>(int(i))] {
                    hits[i] += t->v == int(i);
                });
            s.wait();
        }
    });
    bool all = true;
    for (auto &h : hits)
        all = all && h.load() == 2;
    CHECK(all);

    /* a small scope stays inside its arena: no allocation for the records */
    long allocs = pool.run([] {
        std::atomic<int> n{0};
        long before = allocations;
        weft::basic_scope<1024> s;
        for (int i = 0; i < 4; i++)
            s.spawn([&n] { n++; });
        s.wait();
        return n.load() == 4 ? allocations - before : -1;
    });
    CHECK(allocs == 0);

    /* the first exception comes back from wait(); every spawn still ran */
    std::atomic<int> ran{0};
    CHECK_THROWS(boom, pool.run([&] {
        weft::scope s;
        for (int i = 0; i < 50; i++)
            s.spawn([&ran, i] {
                ran++;
                if (i % 10 == 3)
                    throw boom(i);
            });
        s.wait();
    }),
                 e.n % 10 == 3);
    CHECK(ran.load() == 50);

    /* outside any pool the spawns run at once */
    int serial = 0;
    weft::scope s;
    s.spawn([&] { serial = 1; });
    CHECK(serial == 1);
    s.wait();
    CHECK(live.load() == 0);
}

/* ---------------------------------------------------------------------------------------------
 * Loops
 */

void test_parallel_for()
{
    weft::pool pool;
    const size_t n = 100000;
    std::vector<int> seen(n, 0);
    pool.parallel_for(0, n, [&](size_t i) { seen[i]++; });
    CHECK(std::all_of(seen.begin(), seen.end(), [](int v) { return v == 1; }));
    pool.parallel_for(
        0, n,
        [&](size_t lo, size_t hi) {
            CHECK(lo < hi && hi - lo <= 100);
            for (size_t i = lo; i < hi; i++)
                seen[i]++;
        },
        100);
    CHECK(std::all_of(seen.begin(), seen.end(), [](int v) { return v == 2; }));

    /* the pool of the calling worker */
    pool.run([&] { weft::parallel_for(0, n, [&](size_t i) { seen[i]--; }); });
    CHECK(std::all_of(seen.begin(), seen.end(), [](int v) { return v == 1; }));
    CHECK_THROWS(weft::error, weft::parallel_for(0, 10, [](size_t) {}), e.value() == -EINVAL);

    /* an exception stops the loop early and comes back */
    std::atomic<size_t> done{0};
    CHECK_THROWS(boom,
                 pool.parallel_for(0, n,
                                   [&](size_t i) {
                                       if (i == 500)
                                           throw boom(500);
                                       done++;
                                   }),
                 e.n == 500);
    CHECK(done.load() < n);

    std::error_code ec;
    pool.parallel_for(
        5, 1, [](size_t) {}, 0, ec);
    CHECK(ec == std::errc::invalid_argument);
}

void test_parallel_reduce()
{
    weft::pool pool;
    const size_t n = 200000;
    /* a trivially copyable accumulator, in the C accumulator itself */
    long sum = pool.parallel_reduce(
        0, n, 0L,
        [](size_t lo, size_t hi, long acc) {
            for (size_t i = lo; i < hi; i++)
                acc += long(i);
            return acc;
        },
        [](long a, long b) { return a + b; });
    CHECK(sum == long(n) * long(n - 1) / 2);

    /* any copyable T: order kept (combine need not commute) */
    std::vector<size_t> all = pool.parallel_reduce(
        0, 5000, std::vector<size_t>{},
        [](size_t lo, size_t hi, std::vector<size_t> acc) {
            for (size_t i = lo; i < hi; i++)
                acc.push_back(i);
            return acc;
        },
        [](std::vector<size_t> a, std::vector<size_t> b) {
            a.insert(a.end(), b.begin(), b.end());
            return a;
        },
        7);
    std::vector<size_t> expect(5000);
    std::iota(expect.begin(), expect.end(), size_t(0));
    CHECK(all == expect);

    /* empty range: the identity */
    CHECK(pool.parallel_reduce(
              3, 3, std::string("id"), [](size_t, size_t, std::string a) { return a + "x"; },
              [](std::string a, std::string b) { return a + b; }) == "id");

    /* exceptions in bodies and combines; no accumulator leaks */
    CHECK_THROWS(boom,
                 pool.parallel_reduce(
                     0, n, Tracked(0),
                     [](size_t lo, size_t hi, Tracked acc) {
                         if (lo <= 777 && 777 < hi)
                             throw boom(777);
                         acc.v += int(hi - lo);
                         return acc;
                     },
                     [](Tracked a, Tracked b) { return Tracked(a.v + b.v); }, 10),
                 e.n == 777);
    CHECK_THROWS(boom,
                 pool.parallel_reduce(
                     0, n, std::string(), [](size_t, size_t, std::string acc) { return acc + "."; },
                     [](std::string, std::string) -> std::string { throw boom(8); }, 10),
                 e.n == 8);
    long inner = pool.run([] {
        return weft::parallel_reduce(
            0, 1000, 0L, [](size_t lo, size_t hi, long acc) { return acc + long(hi - lo); },
            [](long a, long b) { return a + b; });
    });
    CHECK(inner == 1000);
    CHECK(live.load() == 0);
}

/* ---------------------------------------------------------------------------------------------
 * gather, wait, completion sets, groups
 */

void test_gather_wait()
{
    {
        weft::pool pool(2);
        std::vector<weft::future<int>> fs;
        for (int i = 0; i < 20; i++)
            fs.push_back(pool.submit([i] { return i * i; }));
        auto g = weft::gather(fs);
        g.get();
        int total = 0;
        for (auto &f : fs)
            total += f.get();
        CHECK(total == 2470);

        /* a child that throws fails the gather with its own exception */
        std::vector<weft::future<Tracked>> bad;
        bad.push_back(pool.submit([] { return Tracked(1); }));
        bad.push_back(pool.submit([]() -> Tracked { throw boom(9); }));
        CHECK_THROWS(boom, weft::gather(bad).get(), e.n == 9);
        auto all = weft::gather(bad, WEFT_RETURN_EXCEPTIONS);
        all.get();
        CHECK(bad[0].get().v == 1 && bad[1].state() == WEFT_FAILED);

        /* the gather keeps its children alive when the caller lets go */
        auto kept = weft::gather_all(pool.submit([] { return Tracked(2); }),
                                     pool.submit([] { return std::string("x"); }));
        kept.get();

        /* nested gathers */
        std::vector<weft::future<void>> inner{weft::gather(fs), weft::gather(bad)};
        CHECK_THROWS(boom, weft::gather(inner).get(), e.n == 9);

        /* wait: the finished ones first, then the rest, each in order */
        gate g1;
        std::vector<weft::future<int>> ws;
        ws.push_back(pool.submit([&g1] { return g1.pass(), 0; }));
        ws.push_back(pool.submit([] { return 1; }));
        ws.push_back(pool.submit([] { return 2; }));
        ws[1].wait();
        ws[2].wait();
        size_t nd = weft::wait(ws, WEFT_FIRST_COMPLETED);
        CHECK(nd == 2 && ws[0].get() == 1 && ws[1].get() == 2 && !ws[2].done());
        CHECK(weft::wait(ws, WEFT_ALL_COMPLETED, std::chrono::milliseconds(1)) == 2);
        g1.open();
        CHECK(weft::wait(ws) == 3 && ws[2].get() == 0);
        std::vector<weft::future<int>> empty;
        CHECK_THROWS(weft::error, weft::wait(empty), e.value() == -EINVAL);
    }
    CHECK(live.load() == 0);
}

void test_completion_set()
{
    {
        weft::pool pool(2);
        gate g;
        std::vector<weft::future<Tracked>> fs;
        fs.push_back(pool.submit([&g] { return g.pass(), Tracked(0); }));
        for (int i = 1; i < 10; i++)
            fs.push_back(pool.submit([i] { return Tracked(i); }));
        weft::completion_set<Tracked> set(fs);
        fs.clear(); /* the set keeps them */
        int sum = 0;
        for (int i = 1; i < 10; i++) {
            auto f = set.next();
            CHECK(f && f->get().v != 0);
            sum += f ? f->get().v : 0;
        }
        CHECK(sum == 45);
        std::error_code ec;
        auto none = set.next(ec, std::chrono::milliseconds(0));
        CHECK(!none.valid() && ec == std::errc::timed_out);
        struct pollfd pfd = {set.fd(), POLLIN, 0};
        CHECK(poll(&pfd, 1, 0) == 0);
        g.open();
        CHECK(poll(&pfd, 1, 30000) == 1);
        auto last = set.next(ec, std::chrono::milliseconds(0));
        CHECK(!ec && last.valid() && last.get().v == 0);
        CHECK(!set.next());
        set.add(pool.submit([] { return Tracked(11); }));
        auto late = set.next();
        CHECK(late && late->get().v == 11);
        /* futures never handed out go with the set */
        weft::completion_set<Tracked> dropped;
        dropped.add(pool.submit([] { return Tracked(12); }));
    }
    CHECK(live.load() == 0);
}

void test_group()
{
    {
        weft::pool pool;
        weft::group g(pool);
        std::atomic<int> n{0};
        for (int i = 0; i < 100; i++)
            g.run([&n, t = std::make_unique<Tracked>(i)] { n += t->v >= 0; });
        auto f = g.submit([] { return 5; });
        g.wait();
        CHECK(n.load() == 100 && g.pending() == 0 && f.get() == 5);

        /* the first exception of a run() task comes back from wait(), once */
        for (int i = 0; i < 10; i++)
            g.run([i] {
                if (i == 4)
                    throw boom(4);
            });
        CHECK_THROWS(boom, g.wait(), e.n == 4);
        g.wait();

        /* cancel what has not started; the first task holds the only worker by spinning (a
         * wait would lend the worker to a spare thread, which would run the others) */
        weft::pool one(1);
        weft::group g1(one);
        std::atomic<bool> release{false};
        auto spinner = g1.submit([&release] {
            while (!release.load())
                std::this_thread::yield();
        });
        while (spinner.state() == WEFT_PENDING)
            std::this_thread::yield();
        std::atomic<int> ran{0};
        for (int i = 0; i < 5; i++)
            g1.run([&ran, t = Tracked(i)] { ran++; });
        CHECK(g1.cancel() == 5);
        CHECK(!g1.wait_for(std::chrono::milliseconds(1)));
        release = true;
        CHECK(g1.wait_for(std::chrono::seconds(60)));
        CHECK(ran.load() == 0);
    }
    CHECK(live.load() == 0);
}

void test_c_header()
{
    CHECK(weft_c_header_as_cpp() == 0);
}

struct test_case {
    const char *name;
    void (*fn)();
};

const test_case tests[] = {
    {"submit_values", test_submit_values},
    {"exceptions", test_exceptions},
    {"error_codes", test_error_codes},
    {"cancel_and_lifetime", test_cancel_and_lifetime},
    {"promises", test_promises},
    {"then", test_then},
    {"join", test_join},
    {"join_allocates_nothing", test_join_allocates_nothing},
    {"scope", test_scope},
    {"parallel_for", test_parallel_for},
    {"parallel_reduce", test_parallel_reduce},
    {"gather_wait", test_gather_wait},
    {"completion_set", test_completion_set},
    {"group", test_group},
    {"c_header", test_c_header},
};

} // namespace

int main(int argc, char **argv)
{
    int ran = 0;
    for (const test_case &t : tests) {
        if (argc > 1 && std::strcmp(argv[1], t.name) != 0)
            continue;
        int before = failures.load();
        auto start = std::chrono::steady_clock::now();
        t.fn();
        double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count();
        if (live.load() != 0) {
            std::fprintf(stderr, "%s: %d tracked objects alive after the test\n", t.name,
                         live.load());
            failures++;
            live = 0;
        }
        std::printf("%-24s %s (%.0f ms)\n", t.name, failures.load() == before ? "ok" : "FAILED",
                    ms);
        ran++;
    }
    if (ran == 0) {
        std::fprintf(stderr, "no test named %s\n", argv[1]);
        return 2;
    }
    std::printf("%d test(s), %d failure(s)\n", ran, failures.load());
    return failures.load() == 0 ? 0 : 1;
}
