/* SPDX-License-Identifier: MIT */
/*
 * Strict reading of the JSON that weft writes (weft_stats_write_json, WEFT_TRACE files), for
 * test_stats.c and test_trace.c, with jansson (Debian's libjansson-dev).
 *
 * jc_parse() accepts one RFC 8259 text and nothing else. jansson itself rejects text after the
 * value, NaN and Infinity, malformed numbers (leading zeros, "1.", ".5", "+1", "1e"), bad
 * escapes, unescaped control characters, invalid UTF-8 (overlong forms, surrogates, anything
 * above U+10FFFF), NUL bytes, comments, and nesting deeper than JSON_PARSER_MAX_DEPTH (2048)
 * without exhausting the stack. The flags add:
 *  - JSON_DECODE_ANY: any value may be the top level, as RFC 8259 allows; callers assert the
 *    type they expect;
 *  - JSON_REJECT_DUPLICATES: an object never has two members of one name, so every member a
 *    test looks up is the only one of its name.
 * jansson is also stricter than RFC 8259 in ways that weft's output never needs: \u0000 and
 * lone surrogate escapes are refused, integers must fit an int64_t (so a counter above
 * INT64_MAX would fail to parse) and reals must not overflow a double.
 * test_stats.c's test_json_validator pins all of this down.
 *
 * Everything is static inline, like testutil.h.
 */
#ifndef WEFT_JSONCHECK_H
#define WEFT_JSONCHECK_H

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JC_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)

/* Parses text[0..len) as one JSON text. NULL if it is not one, with jansson's message in *err
 * (err may be NULL). The caller releases the tree with json_decref(). */
static inline json_t *jc_parse(const char *text, size_t len, json_error_t *err)
{
    return json_loadb(text, len, JC_FLAGS, err);
}

/* True (and *out set) when v is an integer (no fraction, no exponent) that is not negative.
 * NULL-tolerant, like jansson's getters, so lookups can be chained. jansson reads "-0" as the
 * integer 0, so it passes; weft writes its integers with %u and %llu, never with a sign. */
static inline bool jc_u64(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* True (and *out set) when v is a number, integer or real. NULL-tolerant. */
static inline bool jc_num(const json_t *v, double *out)
{
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

#endif /* WEFT_JSONCHECK_H */
