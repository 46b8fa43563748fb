/* SPDX-License-Identifier: MIT */
/* The oneTBB variant of bench_matmul: tbb::parallel_for over the tiles. */
#include "bench_matmul.h"
#include "bench_tbb.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

extern "C" void mm_tbb(const mm_problem *p)
{
    size_t tiles = p->tiles_per_side * p->tiles_per_side;
    bench_tbb_run([p, tiles] {
        tbb::parallel_for(
            tbb::blocked_range<size_t>(0, tiles, 1),
            [p](const tbb::blocked_range<size_t> &r) { mm_tiles(p, r.begin(), r.end()); });
    });
}
