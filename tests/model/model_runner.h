/* SPDX-License-Identifier: MIT */
/*
 * Running Relacy tests: one simulation with a chosen scheduler, its result and timing, and the
 * failing execution's history written to a file. Shared by the Relacy models in this directory.
 *
 * Relacy replaces the global operator new/delete while a simulation runs, so its output streams
 * must not allocate then: they are files (whose buffers are allocated when opened), never
 * stringstreams. Build with -fno-sized-deallocation (Relacy does not replace the sized operator
 * delete) and -fno-lifetime-dse (otherwise GCC drops the stores in destructors that Relacy uses
 * to detect accesses to freed memory).
 */
#ifndef WEFT_MODEL_RUNNER_H
#define WEFT_MODEL_RUNNER_H

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <relacy/relacy.hpp>

namespace model
{

struct Result {
    bool pass; /* Relacy found nothing */
    rl::test_result_e res;
    unsigned long long iterations;
    double seconds;
};

inline std::string g_trace_path = "relacy.trace";

inline bool env_flag(const char *name)
{
    const char *v = getenv(name);
    return v != nullptr && v[0] != '\0' && strcmp(v, "0") != 0;
}

template <class Test>
Result run(rl::scheduler_type_e sched, unsigned long long iterations, unsigned context_bound)
{
    bool trace = env_flag("WEFT_MODEL_TRACE");
    rl::test_params p;
    p.search_type = sched;
    p.iteration_count = iterations;
    p.context_bound = context_bound;
    std::ofstream out(g_trace_path.c_str(), std::ios::trunc), progress("/dev/null");
    p.output_stream = &out;
    p.progress_stream = &progress;
    auto t0 = std::chrono::steady_clock::now();
    rl::simulate<Test>(p);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.close();
    Result r;
    r.res = p.test_result;
    r.iterations = p.stop_iteration;
    r.seconds = secs;
    r.pass = r.res == rl::test_result_success;
    if (!r.pass) {
        /* what failed, and where; the whole history is in the trace file */
        std::ifstream in(g_trace_path.c_str());
        std::string line, last;
        while (std::getline(in, line)) {
            if (trace)
                std::printf("    | %s\n", line.c_str());
            if (line.find("ASSERT") != std::string::npos ||
                line.find("RACE") != std::string::npos ||
                line.find("detected") != std::string::npos ||
                line.find("FREED") != std::string::npos ||
                line.find("UNINITIALIZED") != std::string::npos ||
                line.find("livelock") != std::string::npos)
                last = line;
        }
        if (!trace && !last.empty())
            std::printf("    | %s\n", last.c_str());
        std::printf("    | (execution history in %s)\n", g_trace_path.c_str());
    }
    return r;
}

inline const char *sched_name(rl::scheduler_type_e s)
{
    return s == rl::sched_full ? "full" : s == rl::sched_bound ? "context-bound" : "random";
}

inline rl::scheduler_type_e sched_from(const char *s)
{
    return strcmp(s, "full") == 0    ? rl::sched_full
           : strcmp(s, "bound") == 0 ? rl::sched_bound
                                     : rl::sched_random;
}

/* What a test expects of Relacy. */
enum Expect {
    MUST_PASS, /* Relacy must find nothing */
    NEGATIVE,  /* a deliberately broken variant: Relacy must find the failure */
    KNOWN_BUG, /* lib/ as it is, with a bug the report describes: Relacy must find it (when lib/
                * is fixed this test fails: make it MUST_PASS) */
};

/* A named test in a suite. */
struct Case {
    const char *name;
    bool big; /* run only with WEFT_MODEL_BIG=1 (or by name) */
    Expect expect;
    Result (*fn)(rl::scheduler_type_e, unsigned long long, unsigned);
    rl::scheduler_type_e sched;
    unsigned long long iterations; /* random scheduler */
    unsigned context_bound;        /* context-bound scheduler */
    const char *what;              /* configuration, for the log */
    void (*setup)();               /* sets the globals the test reads, or NULL */
};

/* Runs the cases named on the command line, or all the default ones; 0 when all passed. */
inline int run_suite(const char *prog, const std::vector<Case> &cases, int argc, char **argv)
{
    bool big = env_flag("WEFT_MODEL_BIG");
    std::vector<std::string> only(argv + 1, argv + argc);
    int failures = 0, ran = 0;
    double total = 0;
    for (const Case &c : cases) {
        if (!only.empty()) {
            bool want = false;
            for (const std::string &n : only)
                want |= n == c.name || n == "all";
            if (!want)
                continue;
        } else if (c.big && !big) {
            continue;
        }
        if (c.setup != nullptr)
            c.setup();
        g_trace_path = std::string(prog) + "." + c.name + ".trace";
        std::printf("%-28s %s, %s scheduler", c.name, c.what, sched_name(c.sched));
        if (c.sched == rl::sched_bound)
            std::printf(" (bound %u)", c.context_bound);
        if (c.sched == rl::sched_random)
            std::printf(" (%llu iterations)", c.iterations);
        std::printf("%s\n", c.expect == NEGATIVE    ? "  [negative: must fail]"
                            : c.expect == KNOWN_BUG ? "  [known bug in lib/: must fail]"
                                                    : "");
        std::fflush(stdout);
        Result r = c.fn(c.sched, c.iterations, c.context_bound);
        bool ok = c.expect == MUST_PASS ? r.pass : !r.pass;
        if (c.expect == KNOWN_BUG && r.pass)
            std::printf("  !! the known bug was not found: if lib/ was fixed, make this test "
                        "MUST_PASS\n");
        std::printf("  -> %s: %s after %llu iterations, %.1f s\n", ok ? "PASS" : "FAIL",
                    rl::test_result_str(r.res), r.iterations, r.seconds);
        std::fflush(stdout);
        failures += !ok;
        ran++;
        total += r.seconds;
    }
    std::printf("%s: %d test(s), %d failure(s), %.1f s\n", prog, ran, failures, total);
    return failures == 0 && ran > 0 ? 0 : 1;
}

} // namespace model

#endif
