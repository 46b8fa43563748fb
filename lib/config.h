/* SPDX-License-Identifier: MIT */
/*
 * A pool's settings, from its weft_config and the environment (config.c).
 */
#ifndef WEFT_CONFIG_H
#define WEFT_CONFIG_H

#include "weft.h"

#include "pool.h"

#include <stddef.h>
#include <stdint.h>

struct weft__settings {
    unsigned threads;      /* resolved: never 0 */
    weft_bind bind;        /* resolved */
    size_t stack;          /* bytes, resolved: never 0 */
    const char *trace;     /* the trace file, NULL when not tracing */
    uint32_t trace_events; /* events per worker's ring ($WEFT_TRACE_EVENTS), when tracing */
    const char *stats;     /* $WEFT_STATS: where to write the statistics at destroy, or NULL */
    const char *workspan;  /* $WEFT_WORKSPAN: where to write work and span at destroy, or NULL */
};

/* Checks cfg and completes it from the environment. 0, or -EINVAL (cfg or a variable bad)
 * with a sentence saying what and what is accepted in why (len bytes; why may be NULL), also
 * printed under $WEFT_DEBUG. */
int weft__settings_resolve(const weft_config *cfg, struct weft__settings *out, char *why,
                           size_t len);

/* $WEFT_DISPLAY_ENV=1: prints the settings pool was created with on stderr. */
void weft__display_env(const weft_pool *pool, const weft_config *cfg);

#endif
