/*
 * A small JSON reader for the suites that check weft's JSON output (test_stats.c, test_trace.c).
 *
 * ju_parse() accepts exactly the texts RFC 8259 defines: one value with optional whitespace
 * (space, tab, LF, CR) around it; objects, arrays, strings with the escapes \" \\ \/ \b \f \n
 * \r \t \uXXXX and no unescaped control characters, numbers matching
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, true, false and null. The text must be UTF-8
 * (no overlong forms, no surrogates, nothing above U+10FFFF) and contain no NUL byte. Anything
 * else is rejected with a message naming the byte offset. Nesting is limited (JU_MAX_DEPTH) so
 * that a hostile text cannot exhaust the stack.
 *
 * It builds a tree of ju_value nodes that the tests query with ju_get(), ju_u64(), ju_num().
 * Duplicate names are kept (RFC 8259 only says they SHOULD be unique); ju_count() tells.
 *
 * Everything is static inline, like testutil.h. Not thread-safe beyond "one tree per thread".
 */
#ifndef WEFT_JSONUTIL_H
#define WEFT_JSONUTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JU_MAX_DEPTH 256

typedef enum { JU_NULL, JU_FALSE, JU_TRUE, JU_NUMBER, JU_STRING, JU_ARRAY, JU_OBJECT } ju_type;

typedef struct ju_value ju_value;
struct ju_value {
    ju_type type;
    char *text;       /* STRING: the decoded UTF-8 text; NUMBER: the number as written */
    size_t len;       /* STRING: bytes of text (a \u0000 escape may put a NUL inside) */
    size_t n;         /* ARRAY, OBJECT: number of elements or members */
    size_t cap;       /* ARRAY, OBJECT: room in keys and items */
    char **keys;      /* OBJECT: decoded member names */
    ju_value **items; /* ARRAY, OBJECT: elements or member values */
};

typedef struct ju_parser {
    const unsigned char *s;
    size_t len, pos;
    int depth;
    char *err; /* first error, or NULL */
    size_t errlen;
    bool failed;
} ju_parser;

static inline void ju_fail(ju_parser *p, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    if (p->err != NULL && p->errlen > 0) {
        int k = snprintf(p->err, p->errlen, "offset %zu: ", p->pos);
        if (k >= 0 && (size_t)k < p->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
}

static inline void ju_free(ju_value *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n; i++) {
        if (v->keys != NULL)
            free(v->keys[i]);
        ju_free(v->items[i]);
    }
    free(v->keys);
    free(v->items);
    free(v->text);
    free(v);
}

static inline void ju_skip_ws(ju_parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static inline int ju_peek(ju_parser *p)
{
    return p->pos < p->len ? p->s[p->pos] : -1;
}

/* A growable byte buffer for decoded strings. */
typedef struct ju_buf {
    char *b;
    size_t len, cap;
} ju_buf;

static inline bool ju_buf_put(ju_buf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *nb = realloc(b->b, cap);
        if (nb == NULL)
            return false;
        b->b = nb;
        b->cap = cap;
    }
    memcpy(b->b + b->len, data, n);
    b->len += n;
    b->b[b->len] = '\0';
    return true;
}

static inline size_t ju_utf8_encode(uint32_t cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the well-formed UTF-8 sequence at s[0..avail) (Unicode table 3-7), 0 if none. */
static inline size_t ju_utf8_valid(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* no overlong forms */
        if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    }
    return n;
}

static inline int ju_hex4(ju_parser *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int c = ju_peek(p);
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + (uint32_t)d;
        p->pos++;
    }
    *out = v;
    return 0;
}

/* Parses a string at p->pos (which is at '"'); the decoded text goes to *out (malloc'd). */
static inline bool ju_string(ju_parser *p, char **out, size_t *outlen)
{
    ju_buf b = {NULL, 0, 0};
    p->pos++; /* the opening quote */
    if (!ju_buf_put(&b, "", 0)) {
        ju_fail(p, "out of memory");
        return false;
    }
    for (;;) {
        if (p->pos >= p->len) {
            ju_fail(p, "unterminated string");
            break;
        }
        unsigned char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            *out = b.b;
            if (outlen != NULL)
                *outlen = b.len;
            return true;
        }
        if (c < 0x20) {
            ju_fail(p, "unescaped control character 0x%02x in a string", c);
            break;
        }
        if (c == '\\') {
            p->pos++;
            int e = ju_peek(p);
            char one;
            switch (e) {
            case '"':
            case '\\':
            case '/':
                one = (char)e;
                break;
            case 'b':
                one = '\b';
                break;
            case 'f':
                one = '\f';
                break;
            case 'n':
                one = '\n';
                break;
            case 'r':
                one = '\r';
                break;
            case 't':
                one = '\t';
                break;
            case 'u': {
                p->pos++;
                uint32_t cp;
                if (ju_hex4(p, &cp) != 0) {
                    ju_fail(p, "bad \\u escape");
                    goto fail;
                }
                /* A high surrogate followed by an escaped low one is one code point. A lone
                 * surrogate is allowed by the grammar; it decodes as U+FFFD. */
                if (cp >= 0xD800 && cp <= 0xDBFF && p->pos + 1 < p->len && p->s[p->pos] == '\\' &&
                    p->s[p->pos + 1] == 'u') {
                    size_t save = p->pos;
                    p->pos += 2;
                    uint32_t lo;
                    if (ju_hex4(p, &lo) != 0) {
                        ju_fail(p, "bad \\u escape");
                        goto fail;
                    }
                    if (lo >= 0xDC00 && lo <= 0xDFFF)
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    else
                        p->pos = save; /* not a pair: decode the next escape on its own */
                }
                if (cp >= 0xD800 && cp <= 0xDFFF)
                    cp = 0xFFFD;
                unsigned char u[4];
                size_t k = ju_utf8_encode(cp, u);
                if (!ju_buf_put(&b, u, k)) {
                    ju_fail(p, "out of memory");
                    goto fail;
                }
                continue;
            }
            default:
                ju_fail(p, "bad escape");
                goto fail;
            }
            p->pos++;
            if (!ju_buf_put(&b, &one, 1)) {
                ju_fail(p, "out of memory");
                break;
            }
            continue;
        }
        size_t k = ju_utf8_valid(p->s + p->pos, p->len - p->pos);
        if (k == 0) {
            ju_fail(p, "invalid UTF-8");
            break;
        }
        if (!ju_buf_put(&b, p->s + p->pos, k)) {
            ju_fail(p, "out of memory");
            break;
        }
        p->pos += k;
    }
fail:
    free(b.b);
    return false;
}

static inline bool ju_digits(ju_parser *p)
{
    size_t start = p->pos;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
        p->pos++;
    return p->pos > start;
}

static inline bool ju_number(ju_parser *p, ju_value *v)
{
    size_t start = p->pos;
    if (ju_peek(p) == '-')
        p->pos++;
    int c = ju_peek(p);
    if (c == '0') {
        p->pos++;
    } else if (c >= '1' && c <= '9') {
        ju_digits(p);
    } else {
        ju_fail(p, "bad number");
        return false;
    }
    if (ju_peek(p) == '.') {
        p->pos++;
        if (!ju_digits(p)) {
            ju_fail(p, "bad fraction");
            return false;
        }
    }
    c = ju_peek(p);
    if (c == 'e' || c == 'E') {
        p->pos++;
        c = ju_peek(p);
        if (c == '+' || c == '-')
            p->pos++;
        if (!ju_digits(p)) {
            ju_fail(p, "bad exponent");
            return false;
        }
    }
    v->text = malloc(p->pos - start + 1);
    if (v->text == NULL) {
        ju_fail(p, "out of memory");
        return false;
    }
    memcpy(v->text, p->s + start, p->pos - start);
    v->text[p->pos - start] = '\0';
    v->len = p->pos - start;
    return true;
}

static inline bool ju_literal(ju_parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) {
        ju_fail(p, "unexpected character");
        return false;
    }
    p->pos += n;
    return true;
}

static inline bool ju_append(ju_value *v, char *key, ju_value *item)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        ju_value **items = realloc(v->items, cap * sizeof(*items));
        if (items == NULL)
            return false;
        v->items = items;
        if (v->type == JU_OBJECT) {
            char **keys = realloc(v->keys, cap * sizeof(*keys));
            if (keys == NULL)
                return false;
            v->keys = keys;
        }
        v->cap = cap;
    }
    if (v->type == JU_OBJECT)
        v->keys[v->n] = key;
    v->items[v->n] = item;
    v->n++;
    return true;
}

static inline ju_value *ju_value_at(ju_parser *p);

static inline bool ju_container(ju_parser *p, ju_value *v, char close)
{
    p->pos++; /* the opening bracket */
    ju_skip_ws(p);
    if (ju_peek(p) == close) {
        p->pos++;
        return true;
    }
    for (;;) {
        char *key = NULL;
        if (v->type == JU_OBJECT) {
            ju_skip_ws(p);
            if (ju_peek(p) != '"') {
                ju_fail(p, "expected a member name");
                return false;
            }
            if (!ju_string(p, &key, NULL))
                return false;
            ju_skip_ws(p);
            if (ju_peek(p) != ':') {
                free(key);
                ju_fail(p, "expected ':'");
                return false;
            }
            p->pos++;
        }
        ju_value *item = ju_value_at(p);
        if (item == NULL) {
            free(key);
            return false;
        }
        if (!ju_append(v, key, item)) {
            free(key);
            ju_free(item);
            ju_fail(p, "out of memory");
            return false;
        }
        ju_skip_ws(p);
        int c = ju_peek(p);
        if (c == ',') {
            p->pos++;
            continue;
        }
        if (c == close) {
            p->pos++;
            return true;
        }
        ju_fail(p, "expected ',' or '%c'", close);
        return false;
    }
}

/* Parses one value with the whitespace around it. */
static inline ju_value *ju_value_at(ju_parser *p)
{
    ju_skip_ws(p);
    ju_value *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        ju_fail(p, "out of memory");
        return NULL;
    }
    bool ok;
    int c = ju_peek(p);
    switch (c) {
    case '{':
    case '[':
        if (++p->depth > JU_MAX_DEPTH) {
            ju_fail(p, "nested too deeply");
            ok = false;
        } else {
            v->type = c == '{' ? JU_OBJECT : JU_ARRAY;
            ok = ju_container(p, v, c == '{' ? '}' : ']');
        }
        p->depth--;
        break;
    case '"':
        v->type = JU_STRING;
        ok = ju_string(p, &v->text, &v->len);
        break;
    case 't':
        v->type = JU_TRUE;
        ok = ju_literal(p, "true");
        break;
    case 'f':
        v->type = JU_FALSE;
        ok = ju_literal(p, "false");
        break;
    case 'n':
        v->type = JU_NULL;
        ok = ju_literal(p, "null");
        break;
    case -1:
        ju_fail(p, "unexpected end of text");
        ok = false;
        break;
    default:
        v->type = JU_NUMBER;
        ok = (c == '-' || (c >= '0' && c <= '9')) ? ju_number(p, v) : false;
        if (!ok)
            ju_fail(p, "unexpected character 0x%02x", (unsigned)c);
        break;
    }
    if (!ok) {
        ju_free(v);
        return NULL;
    }
    ju_skip_ws(p);
    return v;
}

/* Parses text[0..len) as one RFC 8259 JSON text. NULL if it is not one, with a message in
 * err[0..errlen) (err may be NULL). The caller frees the tree with ju_free. */
static inline ju_value *ju_parse(const char *text, size_t len, char *err, size_t errlen)
{
    ju_parser p = {(const unsigned char *)text, len, 0, 0, err, errlen, false};
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (text == NULL) {
        ju_fail(&p, "no text");
        return NULL;
    }
    ju_value *v = ju_value_at(&p);
    if (v != NULL && p.pos != p.len) {
        ju_fail(&p, "text after the value");
        ju_free(v);
        v = NULL;
    }
    return v;
}

static inline bool ju_valid(const char *text)
{
    ju_value *v = ju_parse(text, strlen(text), NULL, 0);
    ju_free(v);
    return v != NULL;
}

/* --- queries --- */

/* The value of the first member called key, NULL if v is not an object or has none. */
static inline const ju_value *ju_get(const ju_value *v, const char *key)
{
    if (v == NULL || v->type != JU_OBJECT)
        return NULL;
    for (size_t i = 0; i < v->n; i++) {
        if (strcmp(v->keys[i], key) == 0)
            return v->items[i];
    }
    return NULL;
}

/* How many members of object v are called key. */
static inline size_t ju_count(const ju_value *v, const char *key)
{
    size_t k = 0;
    if (v != NULL && v->type == JU_OBJECT) {
        for (size_t i = 0; i < v->n; i++)
            k += strcmp(v->keys[i], key) == 0;
    }
    return k;
}

/* Element i of array v, NULL if v is not an array or is shorter. */
static inline const ju_value *ju_at(const ju_value *v, size_t i)
{
    return v != NULL && v->type == JU_ARRAY && i < v->n ? v->items[i] : NULL;
}

/* The string value of v, NULL if v is not a string. */
static inline const char *ju_str(const ju_value *v)
{
    return v != NULL && v->type == JU_STRING ? v->text : NULL;
}

/* True (and *out set) when v is a number written as a non-negative integer that fits. */
static inline bool ju_u64(const ju_value *v, uint64_t *out)
{
    if (v == NULL || v->type != JU_NUMBER)
        return false;
    for (const char *c = v->text; *c != '\0'; c++) {
        if (*c < '0' || *c > '9')
            return false;
    }
    errno = 0;
    unsigned long long x = strtoull(v->text, NULL, 10);
    if (errno != 0)
        return false;
    *out = (uint64_t)x;
    return true;
}

/* True (and *out set) when v is a number. */
static inline bool ju_num(const ju_value *v, double *out)
{
    if (v == NULL || v->type != JU_NUMBER)
        return false;
    *out = strtod(v->text, NULL);
    return true;
}

/* --- reading files --- */

/* Reads everything from fd (from its current offset) into a NUL-terminated malloc'd buffer;
 * NULL on error. *len (if not NULL) receives the length. */
static inline char *ju_read_fd(int fd, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    if (b == NULL)
        return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(b, cap * 2);
            if (nb == NULL) {
                free(b);
                return NULL;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(b);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    b[n] = '\0';
    if (len != NULL)
        *len = n;
    return b;
}

#endif /* WEFT_JSONUTIL_H */
