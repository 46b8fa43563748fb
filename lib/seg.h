/* SPDX-License-Identifier: MIT */
/*
 * Segmented arrays: tables that grow without moving what they hold.
 *
 * Segment k holds 2^k entries, so entry i lives in segment floor(log2(i + 1)) at offset
 * i + 1 - 2^k: one count of leading zeros finds it. A table grows by adding a segment, and an
 * entry's address never changes, so a thread may keep a pointer to it (or read it through a
 * stale count) while another thread grows the table. The pool's worker records and the parking
 * words are kept this way, so that a pool can grow (resize.c).
 */
#ifndef WEFT_SEG_H
#define WEFT_SEG_H

#include "weft.h"

#define WEFT_SEGS 11u /* segments 0..10 hold 2^11 - 1 entries */

_Static_assert((1u << WEFT_SEGS) - 1 >= WEFT_MAX_THREADS,
               "WEFT_MAX_THREADS grew: raise WEFT_SEGS so that every worker has a segment");

/* The segment of entry i. */
static inline unsigned weft__seg(unsigned i)
{
    return 31u - (unsigned)__builtin_clz(i + 1);
}

/* The offset of entry i in its segment k. */
static inline unsigned weft__seg_off(unsigned i, unsigned k)
{
    return i + 1 - (1u << k);
}

/* The number of entries of segment k. */
static inline unsigned weft__seg_len(unsigned k)
{
    return 1u << k;
}

#endif
