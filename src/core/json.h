/* A small, strict, non-allocating JSON scanner: validation with limits, and lookups that return
 * the raw bytes of a value so the gateway can route and splice without re-serializing the body.
 * RFC 8259 strict: no comments, no trailing commas, no NaN, valid UTF-8 only (overlong forms and
 * surrogates rejected), no unescaped control characters, "\u0000" rejected (it truncates C
 * strings downstream), duplicate keys in the same object rejected (a request-smuggling vector
 * across parsers). */
#ifndef GW_CORE_JSON_H
#define GW_CORE_JSON_H

#include "core/buf.h"
#include "core/gw.h"

#define GW_JSON_DEFAULT_MAX_DEPTH 64

typedef enum {
    GW_JSON_INVALID = 0,
    GW_JSON_OBJECT,
    GW_JSON_ARRAY,
    GW_JSON_STRING,
    GW_JSON_NUMBER,
    GW_JSON_TRUE,
    GW_JSON_FALSE,
    GW_JSON_NULL,
} gw_json_type_t;

typedef struct {
    size_t offset;     /* byte offset of the first problem */
    const char *what;  /* static text, e.g. "unexpected character", "nesting too deep" */
} gw_json_error_t;

/* Validates that [p, p+n) is exactly one JSON value (surrounding whitespace allowed).
 * Returns GW_OK, or GW_EINVAL / GW_TOOBIG (depth) with *err filled when err != NULL. */
int gw_json_validate(const char *p, size_t n, int max_depth, gw_json_error_t *err);

/* Type of the raw value slice (first non-blank byte decides). */
gw_json_type_t gw_json_type(gw_str_t raw);

/* Finds member `key` (exact, unescaped comparison; keys containing escapes are compared after
 * unescaping) of the object `obj` (a raw object slice, assumed already validated) and returns
 * its raw value slice in *value (pointing into obj). GW_OK, GW_DONE when absent, GW_EINVAL when
 * obj is not an object. */
int gw_json_object_get(gw_str_t obj, gw_str_t key, gw_str_t *value);

/* Same, following a dotted path of object keys, e.g. "usage.prompt_tokens_details.cached_tokens". */
int gw_json_path_get(gw_str_t obj, const char *dotted_path, gw_str_t *value);

/* Unescapes a raw JSON string slice (with its quotes) into out (appended). GW_OK / GW_EINVAL /
 * GW_TOOBIG. */
int gw_json_string_unescape(gw_str_t raw, gw_buf_t *out);

/* Parses a raw JSON number that is a non-negative integer fitting uint64 ("12", also "12.0" and
 * "1.2e1" when integral). GW_OK or GW_EINVAL. */
int gw_json_uint(gw_str_t raw, uint64_t *out);

/* Raw `true` -> *out=true, `false` -> false; anything else GW_EINVAL. */
int gw_json_bool(gw_str_t raw, bool *out);

/* Appends s as a JSON string literal (with quotes), escaping as needed. Invalid UTF-8 bytes are
 * replaced with U+FFFD so the output is always valid JSON. */
int gw_json_append_string(gw_buf_t *out, const char *s, size_t n);

/* Writes doc with the bytes of `old_value` (a slice inside doc) replaced by `replacement`,
 * appending to out. Used to splice the model name without touching anything else. */
int gw_json_splice(gw_str_t doc, gw_str_t old_value, gw_str_t replacement, gw_buf_t *out);

#endif
