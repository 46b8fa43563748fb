/*
 * Settings: a weft_config, completed from the environment ($WEFT_THREADS, $WEFT_BIND,
 * $WEFT_STACK_SIZE, $WEFT_TRACE), validated before anything is allocated; and their display
 * ($WEFT_DISPLAY_ENV).
 */
#include "config.h"

#include "platform.h"
#include "topology.h"

#include <ctype.h>
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

static int env_threads(unsigned *out)
{
    const char *v = env("WEFT_THREADS");
    if (v == NULL)
        return 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    if (errno != 0 || end == v || *end != '\0' || n < 1 || n > (long)WEFT_MAX_THREADS)
        return -EINVAL;
    *out = (unsigned)n;
    return 0;
}

static int env_bind(weft_bind *out)
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
        return -EINVAL;
    return 0;
}

static int env_stack(size_t *out)
{
    const char *v = env("WEFT_STACK_SIZE");
    if (v == NULL)
        return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    unsigned shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    default:
        break;
    }
    if (errno != 0 || end == v || *end != '\0' || v[0] == '-' || n > (SIZE_MAX >> shift))
        return -EINVAL;
    *out = (size_t)n << shift;
    return 0;
}

/* $WEFT_DISPLAY_ENV=1: the settings in effect, on stderr, as OMP_DISPLAY_ENV does for OpenMP.
 * The one place the library prints without $WEFT_DEBUG, because the user asked for exactly
 * this. */
void weft__display_env(const weft_pool *pool, const weft_config *cfg)
{
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
            "WEFT DISPLAY ENVIRONMENT END\n",
            weft_version(), pool->nworkers, src, binds[pool->bind], pool->stack_size,
            pool->max_pending, pool->name, pool->trace_path != NULL ? pool->trace_path : "");
}

int weft__settings_resolve(const weft_config *cfg, struct weft__settings *out)
{
    if ((unsigned)cfg->bind > WEFT_BIND_SPREAD || cfg->threads > WEFT_MAX_THREADS)
        return -EINVAL;
    if (cfg->stack_size != 0 && cfg->stack_size < (size_t)PTHREAD_STACK_MIN)
        return -EINVAL;
    struct weft__settings st = {cfg->threads, cfg->bind, cfg->stack_size, cfg->trace_path};
    int rc;
    if (st.threads == 0 && (rc = env_threads(&st.threads)) != 0)
        return rc;
    if (st.bind == WEFT_BIND_NONE && (rc = env_bind(&st.bind)) != 0)
        return rc;
    if (st.stack == 0) {
        if ((rc = env_stack(&st.stack)) != 0)
            return rc;
        if (st.stack != 0 && st.stack < (size_t)PTHREAD_STACK_MIN)
            return -EINVAL;
        if (st.stack == 0)
            st.stack = WEFT_DEFAULT_STACK_SIZE;
    }
    if (st.threads == 0)
        st.threads = weft__default_threads();
    if (st.trace == NULL)
        st.trace = env("WEFT_TRACE");
    *out = st;
    return 0;
}
