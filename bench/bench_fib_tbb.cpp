/* SPDX-License-Identifier: MIT */
/* The oneTBB variant of bench_fib: tbb::task_group, one run() per level above the cutoff. */
#include "bench_fib.h"
#include "bench_tbb.h"

#include <oneapi/tbb/task_group.h>

static uint64_t fib_group(unsigned n, unsigned cutoff)
{
    if (n < 2 || n < cutoff)
        return fib_below(n);
    uint64_t x = 0;
    tbb::task_group g;
    g.run([&x, n, cutoff] { x = fib_group(n - 1, cutoff); });
    uint64_t y = fib_group(n - 2, cutoff);
    g.wait();
    return x + y;
}

extern "C" uint64_t fib_tbb(unsigned n, unsigned cutoff)
{
    return bench_tbb_run([n, cutoff] { return fib_group(n, cutoff); });
}
