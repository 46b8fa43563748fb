/* SPDX-License-Identifier: MIT */
/*
 * scale_parse.h: what weft-scale reads (header-only, unit-tested by scale_test.c): thread-count
 * lists, line filters, KEY=value metrics in a program's output and the rows they come from,
 * the settings weft prints under WEFT_DISPLAY_ENV, and the numbers of a WEFT_WORKSPAN file.
 *
 * A row is what a line of "key=value" output describes: its key=value words whose values are
 * not numbers ("bench=uts impl=weft variant=join"), the numbers being what was measured. Two
 * lines with the metric whose rows differ are two different things: a filter that lets both
 * through is ambiguous, and weft-scale says so instead of timing whichever came last.
 */
#ifndef WEFT_SCALE_PARSE_H
#define WEFT_SCALE_PARSE_H

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
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

/* --- line filters --- */

/* Which lines count (--match, --baseline): either key=value words, every one of which the line
 * must hold as a whole word ("impl=weft" matches "impl=weft" but neither "impl=weft1" nor
 * "xx_impl=weft"), or, when the text is not such a list, an extended regular expression. */
typedef struct scale_filter {
    bool tokens; /* a list of key=value words */
    size_t ntok;
    char *copy; /* the words, NUL-separated */
    char **tok; /* into copy */
    bool have_re;
    regex_t re;
} scale_filter;

/* Characters that make a filter a regular expression rather than a list of words. */
static inline bool scale_regex_char(char c)
{
    return strchr("^$*+?()[]{}|\\", c) != NULL;
}

/* Whether word (len bytes) is key=value: a key of scale_key_char, one '=', no regex character. */
static inline bool scale_kv_word(const char *w, size_t len)
{
    size_t k = 0;
    while (k < len && scale_key_char(w[k]))
        k++;
    if (k == 0 || k == len || w[k] != '=')
        return false;
    for (size_t i = k + 1; i < len; i++) {
        if (w[i] == '=' || scale_regex_char(w[i]))
            return false;
    }
    return true;
}

static inline bool scale_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Compiles spec. 0, or -1 with a message in err (len bytes) for an empty filter or a bad
 * regular expression. */
static inline int scale_filter_init(scale_filter *f, const char *spec, char *err, size_t len)
{
    memset(f, 0, sizeof(*f));
    bool words = false, all_kv = true;
    for (const char *p = spec; *p != '\0';) {
        while (scale_space(*p))
            p++;
        const char *w = p;
        while (*p != '\0' && !scale_space(*p))
            p++;
        if (p > w) {
            words = true;
            all_kv = all_kv && scale_kv_word(w, (size_t)(p - w));
            f->ntok++;
        }
    }
    if (!words) {
        snprintf(err, len, "an empty filter");
        return -1;
    }
    if (all_kv) {
        f->tokens = true;
        f->copy = strdup(spec);
        f->tok = calloc(f->ntok, sizeof(*f->tok));
        if (f->copy == NULL || f->tok == NULL) {
            snprintf(err, len, "out of memory");
            free(f->copy);
            free(f->tok);
            return -1;
        }
        size_t n = 0;
        for (char *p = f->copy; *p != '\0';) {
            while (scale_space(*p))
                *p++ = '\0';
            if (*p == '\0')
                break;
            f->tok[n++] = p;
            while (*p != '\0' && !scale_space(*p))
                p++;
        }
        return 0;
    }
    f->ntok = 0;
    int rc = regcomp(&f->re, spec, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        regerror(rc, &f->re, err, len);
        return -1;
    }
    f->have_re = true;
    return 0;
}

static inline void scale_filter_free(scale_filter *f)
{
    if (f->have_re)
        regfree(&f->re);
    free(f->copy);
    free(f->tok);
    memset(f, 0, sizeof(*f));
}

/* Word delimiters in a program's output: white space, and the commas and semicolons some
 * programs put after a value. */
static inline bool scale_delim(char c)
{
    return c == '\0' || scale_space(c) || c == ',' || c == ';';
}

/* Whether line (NUL-terminated) holds word as a whole word. */
static inline bool scale_has_word(const char *line, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(line, word); p != NULL; p = strstr(p + 1, word)) {
        if ((p == line || scale_delim(p[-1])) && scale_delim(p[n]))
            return true;
    }
    return false;
}

/* Whether line passes f; a NULL filter passes every line. */
static inline bool scale_filter_match(const scale_filter *f, const char *line)
{
    if (f == NULL)
        return true;
    if (f->have_re)
        return regexec(&f->re, line, 0, NULL, 0) == 0;
    for (size_t i = 0; i < f->ntok; i++) {
        if (!scale_has_word(line, f->tok[i]))
            return false;
    }
    return true;
}

/* The filter with its impl=VALUE word replaced by impl=serial, for the serial row of the same
 * case: " impl=weft variant=default " gives "impl=serial variant=default". NULL when f is not a
 * list of words, holds no impl= word, or already names the serial row. Allocated. */
static inline char *scale_serial_filter(const scale_filter *f)
{
    if (f == NULL || !f->tokens)
        return NULL;
    size_t len = 1;
    bool impl = false;
    for (size_t i = 0; i < f->ntok; i++) {
        if (strncmp(f->tok[i], "impl=", 5) == 0) {
            if (strcmp(f->tok[i], "impl=serial") == 0)
                return NULL;
            impl = true;
        }
        len += strlen(f->tok[i]) + 12;
    }
    if (!impl)
        return NULL;
    char *s = malloc(len);
    if (s == NULL)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < f->ntok; i++) {
        if (i > 0)
            strcat(s, " ");
        strcat(s, strncmp(f->tok[i], "impl=", 5) == 0 ? "impl=serial" : f->tok[i]);
    }
    return s;
}

/* --- rows and metrics --- */

/* Whether word (len bytes) reads whole as a number. */
static inline bool scale_numeric(const char *w, size_t len)
{
    if (len == 0 || len > 63)
        return false;
    char buf[64];
    memcpy(buf, w, len);
    buf[len] = '\0';
    char *end;
    strtod(buf, &end);
    return end != buf && *end == '\0';
}

/* The row of a line: its key=value words whose value is not a number, in order, separated by
 * one space, into out (len bytes; cut if longer). "" for a line without such words. */
static inline void scale_row(const char *line, char *out, size_t len)
{
    size_t k = 0;
    out[0] = '\0';
    for (const char *p = line; *p != '\0';) {
        while (*p != '\0' && scale_delim(*p))
            p++;
        const char *w = p;
        while (!scale_delim(*p))
            p++;
        size_t n = (size_t)(p - w);
        const char *eq = memchr(w, '=', n);
        if (n == 0 || eq == NULL || eq == w || !scale_kv_word(w, n) ||
            scale_numeric(eq + 1, n - (size_t)(eq + 1 - w)))
            continue;
        if (k + n + 2 > len)
            break;
        if (k > 0)
            out[k++] = ' ';
        memcpy(out + k, w, n);
        k += n;
        out[k] = '\0';
    }
}

/* What scale_scan found. */
typedef struct scale_found {
    bool found;
    double value;     /* of the last line with the metric that passed the filter */
    const char *line; /* that line, in the text (not NUL-terminated) */
    size_t line_len;
    size_t offset;   /* its offset in the text */
    char row[256];   /* its row */
    bool ambiguous;  /* another passing line with the metric had a different row: */
    char other[256]; /* that row */
} scale_found;

/* The value of the last key=<number> in text (NUL-terminated, modified while it runs and
 * restored) on a line that passes f (NULL: every line), with its row; ambiguous when lines of
 * two different rows passed. With before != (size_t)-1, only lines that start before that offset
 * count, unless none does: then every line counts (the serial row printed before the parallel
 * one it belongs to). */
static inline void scale_scan(char *text, const char *key, const scale_filter *f, size_t before,
                              scale_found *out)
{
    memset(out, 0, sizeof(*out));
    for (int pass = 0; pass < 2 && !out->found; pass++) {
        bool limit = pass == 0 && before != (size_t)-1;
        if (pass == 1 && before == (size_t)-1)
            break;
        char *p = text;
        while (*p != '\0' && (!limit || (size_t)(p - text) < before)) {
            char *nl = strchr(p, '\n');
            if (nl != NULL)
                *nl = '\0';
            double v;
            if (scale_filter_match(f, p) && scale_line_metric(p, key, &v)) {
                char row[256];
                scale_row(p, row, sizeof(row));
                if (out->found && strcmp(row, out->row) != 0 && !out->ambiguous) {
                    out->ambiguous = true;
                    snprintf(out->other, sizeof(out->other), "%s", out->row);
                }
                out->found = true;
                out->value = v;
                out->line = p;
                out->line_len = strlen(p);
                out->offset = (size_t)(p - text);
                memcpy(out->row, row, sizeof(row));
            }
            if (nl == NULL)
                break;
            *nl = '\n';
            p = nl + 1;
        }
    }
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

/* --- what the program tells of its threads --- */

/* The pools a run created, from the settings weft prints under WEFT_DISPLAY_ENV=1 (one
 * "  WEFT_THREADS = 'N' (from SOURCE)" line per pool): how many, how many had want workers, the
 * most workers of one, and whether any took its count from weft_config.threads, that is from
 * the program itself rather than from WEFT_THREADS. */
typedef struct scale_pools {
    unsigned pools;
    unsigned matched; /* pools with want workers */
    unsigned max_workers;
    bool from_config;
} scale_pools;

static inline void scale_display_pools(const char *text, unsigned want, scale_pools *out)
{
    static const char tag[] = "WEFT_THREADS = '";
    static const char cfg[] = "(from weft_config.threads)";
    memset(out, 0, sizeof(*out));
    for (const char *p = strstr(text, tag); p != NULL; p = strstr(p + 1, tag)) {
        char *end;
        unsigned long n = strtoul(p + sizeof(tag) - 1, &end, 10);
        if (end == p + sizeof(tag) - 1 || *end != '\'')
            continue;
        const char *eol = strchr(end, '\n');
        size_t rest = eol != NULL ? (size_t)(eol - end) : strlen(end);
        out->from_config = out->from_config || memmem(end, rest, cfg, sizeof(cfg) - 1) != NULL;
        out->matched += n == want;
        out->max_workers = n > out->max_workers ? (unsigned)n : out->max_workers;
        out->pools++;
    }
}

/* The value of the word key=<integer> on a line (line_len bytes, not NUL-terminated): a count
 * the program reports of itself, such as threads=4. -1 when there is none. */
static inline long scale_line_count(const char *line, size_t line_len, const char *key)
{
    char buf[1024];
    size_t n = line_len < sizeof(buf) - 1 ? line_len : sizeof(buf) - 1;
    memcpy(buf, line, n);
    buf[n] = '\0';
    double v;
    if (!scale_line_metric(buf, key, &v) || v < 0 || v != (double)(long)v)
        return -1;
    return (long)v;
}

/* --- work and span (WEFT_WORKSPAN) --- */

/* The number after the first "key": in a JSON text; false if there is none. */
static inline bool scale_json_number(const char *text, const char *key, double *out)
{
    size_t klen = strlen(key);
    for (const char *p = strchr(text, '"'); p != NULL; p = strchr(p + 1, '"')) {
        if (strncmp(p + 1, key, klen) != 0 || p[1 + klen] != '"')
            continue;
        const char *q = p + klen + 2;
        while (scale_space(*q))
            q++;
        if (*q != ':')
            continue;
        q++;
        while (scale_space(*q))
            q++;
        char *end;
        double v = strtod(q, &end);
        if (end == q)
            return false;
        *out = v;
        return true;
    }
    return false;
}

typedef struct scale_workspan {
    double work_ns, span_ns, parallelism, burdened_span_ns;
} scale_workspan;

/* Reads the four fields of a WEFT_WORKSPAN file; false when one is missing or work and span
 * are not positive. parallelism, when missing, is work / span. */
static inline bool scale_parse_workspan(const char *text, scale_workspan *ws)
{
    memset(ws, 0, sizeof(*ws));
    if (!scale_json_number(text, "work_ns", &ws->work_ns) ||
        !scale_json_number(text, "span_ns", &ws->span_ns) ||
        !scale_json_number(text, "burdened_span_ns", &ws->burdened_span_ns))
        return false;
    if (!(ws->work_ns > 0) || !(ws->span_ns > 0) || ws->burdened_span_ns < 0)
        return false;
    if (!scale_json_number(text, "parallelism", &ws->parallelism) || !(ws->parallelism > 0))
        ws->parallelism = ws->work_ns / ws->span_ns;
    return true;
}

#endif /* WEFT_SCALE_PARSE_H */
