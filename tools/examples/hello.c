/* SPDX-License-Identifier: MIT */
/* Hello, weft: a parallel sum, and which workers took part. */
#include <weft.h>
#include <stdio.h>

static _Atomic unsigned seen; /* bit i: worker i ran part of the loop */

static void body(size_t lo, size_t hi, void *acc, void *ctx)
{
    (void)ctx;
    for (size_t i = lo; i < hi; i++)
        *(double *)acc += 1.0 / ((double)i * i + 1);
    seen |= 1u << (weft_worker_index() % 32);
}

static void add(void *into, const void *from, void *ctx)
{
    (void)ctx;
    *(double *)into += *(const double *)from;
}

int main(void)
{
    weft_pool *pool;
    if (weft_pool_create(NULL, &pool) != 0)
        return 1;
    double zero = 0, sum = 0;
    weft_parallel_reduce(pool, 0, 100000000, 0, sizeof(sum), &zero, body, add, NULL, &sum);
    printf("sum = %.6f, from %d of %u workers\n", sum, __builtin_popcount(seen),
           weft_pool_size(pool));
    return weft_pool_destroy(pool);
}
