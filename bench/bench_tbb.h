/* SPDX-License-Identifier: MIT */
/*
 * bench_tbb.h: the oneTBB side of the comparison benchmarks. The programs are C; each one's TBB
 * variant lives in a C++ file (bench_<name>_tbb.cpp) exposing extern "C" functions, and all of
 * them run in the one task_arena set up here, so that TBB uses exactly the N threads the other
 * parallel rows use (the calling thread included, as with OpenMP).
 *
 * C side: bench_tbb_start / bench_tbb_stop / bench_tbb_version.
 * C++ side: bench_tbb_run(f) runs f in the arena and turns any exception into exit(1), since an
 * exception must not cross back into C.
 */
#ifndef WEFT_BENCH_TBB_H
#define WEFT_BENCH_TBB_H

#ifdef __cplusplus
extern "C" {
#endif

/* Limits TBB to `threads` threads (global_control) and creates the arena. 0 or -1 (failure). */
int bench_tbb_start(unsigned threads);
/* Destroys the arena and lifts the limit. */
void bench_tbb_stop(void);
/* The oneTBB runtime version, such as "2021.8.0". */
const char *bench_tbb_version(void);

#ifdef __cplusplus
}

#include <cstdio>
#include <cstdlib>
#include <exception>

#include <oneapi/tbb/task_arena.h>

tbb::task_arena &bench_tbb_arena();

template <typename F> auto bench_tbb_run(const F &f) -> decltype(f())
{
    try {
        return bench_tbb_arena().execute(f);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "tbb: %s\n", e.what());
    } catch (...) {
        std::fprintf(stderr, "tbb: unknown exception\n");
    }
    std::fflush(stdout);
    std::exit(1);
}
#endif

#endif /* WEFT_BENCH_TBB_H */
