/* SPDX-License-Identifier: MIT */
/*
 * scale_parse.h: what weft-scale reads (header-only, unit-tested by scale_test.c): thread-count
 * lists and KEY=value metrics in a program's output.
 */
#ifndef WEFT_SCALE_PARSE_H
#define WEFT_SCALE_PARSE_H

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Parses a comma-separated list of thread counts ("1,2,4,8") into out[0..max). Each count must
 * be an integer in 1..limit and appear once; the order is kept. Returns the number of counts,
 * or -1 for a malformed list, a count out of range, a duplicate or more than max counts. */
static inline int scale_parse_threads(const char *s, unsigned *out, size_t max, unsigned limit)
{
    size_t n = 0;
    const char *p = s;
    if (*p == '\0')
        return -1;
    for (;;) {
        if (!isdigit((unsigned char)*p))
            return -1;
        char *end;
        errno = 0;
        unsigned long v = strtoul(p, &end, 10);
        if (errno != 0 || v < 1 || v > limit || n == max)
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (out[i] == v)
                return -1;
        }
        out[n++] = (unsigned)v;
        if (*end == '\0')
            return (int)n;
        if (*end != ',')
            return -1;
        p = end + 1;
    }
}

/* Whether c may be part of a key: a key in "a=1 median_ns=2" starts after a character that
 * is not one of these, so that "median_ns" does not match inside "x_median_ns=". */
static inline bool scale_key_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

/* The value of the last occurrence of key=<number> in one NUL-terminated line; false if none. */
static inline bool scale_line_metric(const char *line, const char *key, double *value)
{
    size_t klen = strlen(key);
    bool found = false;
    if (klen == 0)
        return false;
    for (const char *p = strstr(line, key); p != NULL; p = strstr(p + 1, key)) {
        if ((p != line && scale_key_char(p[-1])) || p[klen] != '=')
            continue;
        const char *num = p + klen + 1;
        char *end;
        errno = 0;
        double v = strtod(num, &end);
        if (end == num || errno != 0 || scale_key_char(*end))
            continue;
        *value = v;
        found = true;
    }
    return found;
}

/* The value of the last key=<number> in text (NUL-terminated, modified while it runs and
 * restored), counting only lines that match re when re is not NULL. On success returns true,
 * sets *value and, if line is not NULL, *line and *line_len to the line it came from. */
static inline bool scale_find_metric(char *text, const char *key, const regex_t *re, double *value,
                                     const char **line, size_t *line_len)
{
    bool found = false;
    char *p = text;
    while (*p != '\0') {
        char *nl = strchr(p, '\n');
        if (nl != NULL)
            *nl = '\0';
        double v;
        if ((re == NULL || regexec(re, p, 0, NULL, 0) == 0) && scale_line_metric(p, key, &v)) {
            *value = v;
            found = true;
            if (line != NULL) {
                *line = p;
                *line_len = strlen(p);
            }
        }
        if (nl == NULL)
            break;
        *nl = '\n';
        p = nl + 1;
    }
    return found;
}

#endif /* WEFT_SCALE_PARSE_H */
