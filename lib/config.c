/* SPDX-License-Identifier: MIT */
/*
 * Settings: a weft_config, completed from the environment ($WEFT_THREADS, $WEFT_BIND,
 * $WEFT_STACK_SIZE, $WEFT_TRACE, $WEFT_STATS, $WEFT_WORKSPAN), validated before anything is
 * allocated; and their display ($WEFT_DISPLAY_ENV).
 */
#include "config.h"

#include "platform.h"
#include "trace.h"
#include "topology.h"
#include "workspan.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void weft_config_init(weft_config *cfg)
{
    if (cfg != NULL)
        memset(cfg, 0, sizeof(*cfg));
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Says what is wrong: into why (when given) and, under $WEFT_DEBUG, on stderr. -EINVAL. */
__attribute__((format(printf, 3, 4))) static int bad(char *why, size_t len, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (why != NULL && len > 0)
        snprintf(why, len, "%s", msg);
    weft__debug("%s", msg);
    return -EINVAL;
}

/* A whole number in [lo, hi], with an optional K, M or G (powers of 1024) when sized. */
static bool parse_count(const char *v, bool sized, unsigned long long lo, unsigned long long hi,
                        unsigned long long *out)
{
    if (!isdigit((unsigned char)v[0]))
        return false;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    unsigned shift = 0;
    if (sized && *end != '\0' && strchr("kKmMgG", *end) != NULL) {
        shift = strchr("kK", *end) != NULL ? 10 : strchr("mM", *end) != NULL ? 20 : 30;
        end++;
    }
    while (isspace((unsigned char)*end))
        end++;
    if (errno != 0 || *end != '\0' || n > (ULLONG_MAX >> shift))
        return false;
    n <<= shift;
    if (n < lo || n > hi)
        return false;
    *out = n;
    return true;
}

static int env_threads(unsigned *out, char *why, size_t len)
{
    const char *v = env("WEFT_THREADS");
    if (v == NULL)
        return 0;
    unsigned long long n;
    if (!parse_count(v, false, 1, WEFT_MAX_THREADS, &n))
        return bad(why, len, "WEFT_THREADS='%s': expected a whole number of workers, 1 to %u", v,
                   WEFT_MAX_THREADS);
    *out = (unsigned)n;
    return 0;
}

static int env_bind(weft_bind *out, char *why, size_t len)
{
    const char *v = env("WEFT_BIND");
    if (v == NULL)
        return 0;
    if (strcasecmp(v, "none") == 0)
        *out = WEFT_BIND_NONE;
    else if (strcasecmp(v, "compact") == 0)
        *out = WEFT_BIND_COMPACT;
    else if (strcasecmp(v, "spread") == 0)
        *out = WEFT_BIND_SPREAD;
    else
        return bad(why, len,
                   "WEFT_BIND='%s': expected none, compact or spread (OpenMP's close is compact, "
                   "its spread is spread)",
                   v);
    return 0;
}

static int env_stack(size_t *out, char *why, size_t len)
{
    const char *v = env("WEFT_STACK_SIZE");
    if (v == NULL)
        return 0;
    unsigned long long n;
    if (!parse_count(v, true, 0, SIZE_MAX, &n) || (n != 0 && n < (size_t)PTHREAD_STACK_MIN))
        return bad(why, len,
                   "WEFT_STACK_SIZE='%s': expected bytes, at least %zu (0: the default), "
                   "optionally with K, M or G (e.g. 64M)",
                   v, (size_t)PTHREAD_STACK_MIN);
    *out = (size_t)n;
    return 0;
}

static int env_trace_events(uint32_t *out, char *why, size_t len)
{
    const char *v = env("WEFT_TRACE_EVENTS");
    if (v == NULL) {
        *out = WEFT_TRACE_EVENTS_DEFAULT;
        return 0;
    }
    unsigned long long n;
    if (!parse_count(v, true, 16, WEFT_TRACE_EVENTS_MAX, &n))
        return bad(why, len,
                   "WEFT_TRACE_EVENTS='%s': expected events per worker, 16 to %u, optionally "
                   "with K or M (e.g. 64K)",
                   v, (unsigned)WEFT_TRACE_EVENTS_MAX);
    *out = (uint32_t)n;
    return 0;
}

/* $WEFT_DISPLAY_ENV=1: the settings in effect, on stderr, as OMP_DISPLAY_ENV does for OpenMP.
 * The one place the library prints without $WEFT_DEBUG, because the user asked for exactly
 * this. */
void weft__display_env(const weft_pool *pool, const weft_config *cfg)
{
    if (cfg->flags & WEFT_CONFIG_NO_ENV)
        return;
    const char *v = env("WEFT_DISPLAY_ENV");
    if (v == NULL || strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0)
        return;
    static const char *const binds[] = {"none", "compact", "spread"};
    const char *src = cfg->threads != 0             ? "weft_config.threads"
                      : env("WEFT_THREADS") != NULL ? "$WEFT_THREADS"
                                                    : "cores this process may use";
    fprintf(stderr,
            "WEFT DISPLAY ENVIRONMENT BEGIN\n"
            "  _WEFT_VERSION = '%s'\n"
            "  WEFT_THREADS = '%u' (from %s)\n"
            "  WEFT_BIND = '%s'\n"
            "  WEFT_STACK_SIZE = '%zu'\n"
            "  WEFT_MAX_PENDING = '%zu'\n"
            "  WEFT_NAME = '%s'\n"
            "  WEFT_TRACE = '%s'\n"
            "  WEFT_STATS = '%s'\n"
            "  WEFT_WORKSPAN = '%s'\n"
            "WEFT DISPLAY ENVIRONMENT END\n",
            weft_version(), weft_pool_size(pool), src, binds[pool->bind], pool->stack_size,
            pool->max_pending, pool->name, pool->trace_path != NULL ? pool->trace_path : "",
            pool->stats_path != NULL ? pool->stats_path : "",
            pool->ws != NULL ? weft__ws_path(pool) : "");
}

int weft__settings_resolve(const weft_config *cfg, struct weft__settings *out, char *why,
                           size_t len)
{
    if (cfg->flags & ~(unsigned)WEFT_CONFIG_NO_ENV)
        return bad(why, len, "weft_config.flags = %#x: unknown bits (known: WEFT_CONFIG_NO_ENV)",
                   cfg->flags);
    for (size_t i = 0; i < sizeof(cfg->reserved_) / sizeof(cfg->reserved_[0]); i++) {
        if (cfg->reserved_[i] != NULL)
            return bad(why, len,
                       "weft_config.reserved_[%zu] is not zero: start from "
                       "weft_config_init()",
                       i);
    }
    if ((cfg->mem_alloc == NULL) != (cfg->mem_free == NULL))
        return bad(why, len, "weft_config.mem_alloc and mem_free: set both or neither");
    if ((unsigned)cfg->bind > WEFT_BIND_SPREAD)
        return bad(why, len, "weft_config.bind = %d: not a weft_bind", (int)cfg->bind);
    if (cfg->threads > WEFT_MAX_THREADS)
        return bad(why, len, "weft_config.threads = %u: at most %u", cfg->threads,
                   WEFT_MAX_THREADS);
    if (cfg->stack_size != 0 && cfg->stack_size < (size_t)PTHREAD_STACK_MIN)
        return bad(why, len, "weft_config.stack_size = %zu: at least %zu (PTHREAD_STACK_MIN)",
                   cfg->stack_size, (size_t)PTHREAD_STACK_MIN);
    /* WEFT_CONFIG_NO_ENV: a library embedding a pool decides alone; nothing is read */
    bool use_env = !(cfg->flags & WEFT_CONFIG_NO_ENV);
    struct weft__settings st = {cfg->threads,
                                cfg->bind,
                                cfg->stack_size,
                                cfg->trace_path,
                                0,
                                use_env ? env("WEFT_STATS") : NULL,
                                use_env ? env("WEFT_WORKSPAN") : NULL};
    int rc;
    if (use_env && st.threads == 0 && (rc = env_threads(&st.threads, why, len)) != 0)
        return rc;
    if (use_env && st.bind == WEFT_BIND_NONE && (rc = env_bind(&st.bind, why, len)) != 0)
        return rc;
    if (use_env && st.stack == 0 && (rc = env_stack(&st.stack, why, len)) != 0)
        return rc;
    if (st.stack == 0)
        st.stack = WEFT_DEFAULT_STACK_SIZE;
    if (st.threads == 0)
        st.threads = weft__default_threads();
    if (st.trace == NULL && use_env)
        st.trace = env("WEFT_TRACE");
    if (st.trace != NULL && !use_env)
        st.trace_events = WEFT_TRACE_EVENTS_DEFAULT;
    else if (st.trace != NULL && (rc = env_trace_events(&st.trace_events, why, len)) != 0)
        return rc;
    if (why != NULL && len > 0)
        snprintf(why, len, "ok");
    *out = st;
    return 0;
}

int weft_config_check(const weft_config *cfg, char *buf, size_t len)
{
    weft_config defaults;
    if (cfg == NULL) {
        weft_config_init(&defaults);
        cfg = &defaults;
    }
    struct weft__settings st;
    return weft__settings_resolve(cfg, &st, buf, len);
}
