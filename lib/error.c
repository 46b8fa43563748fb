/* SPDX-License-Identifier: MIT */
/*
 * Version and error strings. The codes and their texts come from one table.
 */
#include "weft.h"

#include <errno.h>

#define WEFT_STR_(x) #x
#define WEFT_STR(x)  WEFT_STR_(x)

const char *weft_version(void)
{
    return WEFT_STR(WEFT_VERSION_MAJOR) "." WEFT_STR(WEFT_VERSION_MINOR) "." WEFT_STR(
        WEFT_VERSION_PATCH);
}

#define WEFT_ERRORS(X)                                                                             \
    X(0, "success")                                                                                \
    X(-EINVAL, "invalid argument")                                                                 \
    X(-ENOMEM, "out of memory")                                                                    \
    X(-ETIMEDOUT, "timed out")                                                                     \
    X(-ECANCELED, "cancelled")                                                                     \
    X(-ESHUTDOWN, "pool is shut down")                                                             \
    X(-EAGAIN, "resource temporarily unavailable (thread start or max_pending)")                   \
    X(-EDEADLK, "the call would wait on itself")                                                   \
    X(-ENOENT, "no more futures")                                                                  \
    X(-EALREADY, "the future has already finished")                                                \
    X(-ENOTSUP, "not supported here (e.g. a region of a pool that does not measure work and "      \
                "span)")

const char *weft_strerror(int code)
{
#define WEFT_CASE(c, text)                                                                         \
    if (code == (c))                                                                               \
        return text;
    WEFT_ERRORS(WEFT_CASE)
#undef WEFT_CASE
    return code > 0 ? "task failed with a positive code" : "unknown error code";
}
