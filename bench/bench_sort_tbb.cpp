/* SPDX-License-Identifier: MIT */
/* The oneTBB variant of bench_sort: a task_group per split of the sort and of the merge. */
#include "bench_sort.h"
#include "bench_tbb.h"

#include <oneapi/tbb/task_group.h>

static void merge_group(const ms_merge_job &m, size_t cutoff)
{
    if (m.nx + m.ny <= cutoff) {
        ms_merge(m.x, m.nx, m.y, m.ny, m.out);
        return;
    }
    ms_merge_job lo, hi;
    ms_split(&m, &lo, &hi);
    tbb::task_group g;
    g.run([&hi, cutoff] { merge_group(hi, cutoff); });
    merge_group(lo, cutoff);
    g.wait();
}

static void sort_group(int *a, int *b, size_t n, bool to_b, const ms_params &p)
{
    if (n <= p.sort_cutoff) {
        ms_sort_seq(a, b, n, to_b);
        return;
    }
    size_t h = n / 2;
    tbb::task_group g;
    g.run([a, b, h, n, to_b, &p] { sort_group(a + h, b + h, n - h, !to_b, p); });
    sort_group(a, b, h, !to_b, p);
    g.wait();
    ms_merge_job m;
    if (to_b)
        m = ms_merge_job{a, a + h, h, n - h, b};
    else
        m = ms_merge_job{b, b + h, h, n - h, a};
    merge_group(m, p.merge_cutoff);
}

extern "C" void ms_tbb(int *a, int *b, size_t n, const ms_params *p)
{
    bench_tbb_run([a, b, n, p] { sort_group(a, b, n, false, *p); });
}
