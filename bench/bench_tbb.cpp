/* SPDX-License-Identifier: MIT */
/* The TBB arena every TBB variant runs in; see bench_tbb.h. */
#include "bench_tbb.h"

#include <memory>

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/version.h>

namespace
{
std::unique_ptr<tbb::global_control> limit;
std::unique_ptr<tbb::global_control> stack;
std::unique_ptr<tbb::task_arena> arena;
} // namespace

tbb::task_arena &bench_tbb_arena()
{
    return *arena;
}

extern "C" int bench_tbb_start(unsigned threads)
{
    try {
        limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                      threads);
        /* The stack weft's workers get by default: deep recursions (UTS) must not fail on one
         * runtime only. */
        stack = std::make_unique<tbb::global_control>(tbb::global_control::thread_stack_size,
                                                      std::size_t(64) << 20);
        arena = std::make_unique<tbb::task_arena>(static_cast<int>(threads));
        arena->initialize();
    } catch (...) {
        return -1;
    }
    return 0;
}

extern "C" void bench_tbb_stop(void)
{
    arena.reset();
    stack.reset();
    limit.reset();
}

extern "C" const char *bench_tbb_version(void)
{
    return TBB_runtime_version();
}
