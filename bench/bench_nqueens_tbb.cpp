/* SPDX-License-Identifier: MIT */
/* The oneTBB variant of bench_nqueens: a task_group run per free column above the cutoff. */
#include "bench_nqueens.h"
#include "bench_tbb.h"

#include <oneapi/tbb/task_group.h>

static uint64_t nq_group(const nq_pos &p, unsigned cutoff)
{
    if (p.depth >= cutoff)
        return nq_count_pos(&p);
    if (p.cols == p.all)
        return 1;
    uint64_t counts[NQ_MAX_N];
    unsigned k = 0;
    tbb::task_group g;
    for (uint32_t avail = nq_free(&p); avail != 0; avail &= avail - 1, k++) {
        nq_pos child = nq_place(&p, avail & (0u - avail));
        uint64_t *slot = &counts[k];
        g.run([child, slot, cutoff] { *slot = nq_group(child, cutoff); });
    }
    g.wait();
    uint64_t n = 0;
    for (unsigned i = 0; i < k; i++)
        n += counts[i];
    return n;
}

extern "C" uint64_t nq_tbb(const nq_pos *p, unsigned cutoff)
{
    nq_pos root = *p;
    return bench_tbb_run([root, cutoff] { return nq_group(root, cutoff); });
}
