/* SPDX-License-Identifier: MIT */
/* The oneTBB variant of bench_integrate: a task_group per refined segment. */
#include "bench_integrate.h"
#include "bench_tbb.h"

#include <oneapi/tbb/task_group.h>

static double ig_group(const ig_seg &s, unsigned cutoff)
{
    if (cutoff != 0 && s.depth >= cutoff)
        return ig_serial(&s);
    ig_seg l, r;
    double v;
    if (!ig_step(&s, &l, &r, &v))
        return v;
    double y = 0;
    tbb::task_group g;
    g.run([&y, &r, cutoff] { y = ig_group(r, cutoff); });
    double x = ig_group(l, cutoff);
    g.wait();
    return x + y;
}

extern "C" double ig_tbb(const ig_seg *s, unsigned cutoff)
{
    ig_seg root = *s;
    return bench_tbb_run([root, cutoff] { return ig_group(root, cutoff); });
}
