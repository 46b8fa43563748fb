/* SPDX-License-Identifier: MIT */
/*
 * bench_nqueens.h: the kernel every nqueens variant shares (defined in bench_nqueens.c, called
 * by bench_nqueens_tbb.cpp too): the classic bitmask search, serial, that all of them run below
 * the cutoff depth.
 */
#ifndef WEFT_BENCH_NQUEENS_H
#define WEFT_BENCH_NQUEENS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NQ_MAX_N 20u

/* A partial placement: one queen on each of the first `depth` rows. all has the n low bits set;
 * cols, and the diagonals d1 and d2 shifted to the next row, mark the attacked columns. */
typedef struct nq_pos {
    uint32_t all, cols, d1, d2;
    unsigned depth;
} nq_pos;

/* The columns a queen may take on the next row. */
static inline uint32_t nq_free(const nq_pos *p)
{
    return p->all & ~(p->cols | p->d1 | p->d2);
}

/* p with a queen on column bit of the next row. */
static inline nq_pos nq_place(const nq_pos *p, uint32_t bit)
{
    nq_pos q;
    q.all = p->all;
    q.cols = p->cols | bit;
    q.d1 = (p->d1 | bit) << 1;
    q.d2 = (p->d2 | bit) >> 1;
    q.depth = p->depth + 1;
    return q;
}

/* Solutions that complete a placement, by plain recursion (bench_nqueens.c; one out-of-line
 * copy, see BENCH_KERNEL). */
uint64_t nq_count(uint32_t all, uint32_t cols, uint32_t d1, uint32_t d2);

static inline uint64_t nq_count_pos(const nq_pos *p)
{
    return nq_count(p->all, p->cols, p->d1, p->d2);
}

/* Solutions completing p, with a task_group run per free column while depth < cutoff. */
uint64_t nq_tbb(const nq_pos *p, unsigned cutoff);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BENCH_NQUEENS_H */
