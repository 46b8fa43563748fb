/* SPDX-License-Identifier: MIT */
/* The oneTBB variants of bench_loops: tbb::parallel_for and tbb::parallel_reduce with their
 * defaults (blocked_range of grain 1, auto_partitioner). */
#include "bench_loops.h"
#include "bench_tbb.h"

#include <functional>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/parallel_reduce.h>

using range = tbb::blocked_range<size_t>;

extern "C" void lp_tbb_uniform(uint64_t *out, size_t n, unsigned k)
{
    bench_tbb_run([=] {
        tbb::parallel_for(range(0, n),
                          [=](const range &r) { lp_uniform(out, r.begin(), r.end(), k); });
    });
}

extern "C" void lp_tbb_skewed(uint64_t *out, size_t n, unsigned k)
{
    bench_tbb_run([=] {
        tbb::parallel_for(range(0, n),
                          [=](const range &r) { lp_skewed(out, r.begin(), r.end(), n, k); });
    });
}

extern "C" uint64_t lp_tbb_sum(size_t n, unsigned k)
{
    return bench_tbb_run([=] {
        return tbb::parallel_reduce(
            range(0, n), uint64_t(0),
            [=](const range &r, uint64_t acc) { return acc + lp_sum(r.begin(), r.end(), k); },
            std::plus<uint64_t>());
    });
}
