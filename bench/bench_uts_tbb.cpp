/* SPDX-License-Identifier: MIT */
/* The oneTBB variant of bench_uts: a task_group run per child of every node. */
#include "bench_tbb.h"
#include "bench_uts.h"

#include <memory>

#include <oneapi/tbb/task_group.h>

static uint64_t uts_group(const uts_tree &t, uint64_t s, unsigned k)
{
    if (k == 0)
        return 1;
    uint64_t small[16];
    std::unique_ptr<uint64_t[]> large;
    uint64_t *counts = small;
    if (k > 16) {
        large.reset(new uint64_t[k]);
        counts = large.get();
    }
    tbb::task_group g;
    for (unsigned i = 0; i < k; i++) {
        uint64_t *slot = &counts[i];
        g.run([&t, s, i, slot] {
            uint64_t c = uts_child(s, i);
            *slot = uts_group(t, c, uts_kids(&t, c));
        });
    }
    g.wait();
    uint64_t n = 1;
    for (unsigned i = 0; i < k; i++)
        n += counts[i];
    return n;
}

extern "C" uint64_t uts_tbb(const uts_tree *t)
{
    return bench_tbb_run([t] { return uts_group(*t, t->seed, t->b0); });
}
