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
/* Hard ceilings of the validator, which keeps its state on the C stack instead of allocating:
 * max_depth is clamped to GW_JSON_MAX_DEPTH_CAP, and the objects open at any one time may hold at
 * most GW_JSON_MAX_OPEN_KEYS keys together (duplicate detection); beyond either, GW_TOOBIG. */
#define GW_JSON_MAX_DEPTH_CAP 1024
#define GW_JSON_MAX_OPEN_KEYS 4096

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
 * Depth counts open containers: a scalar is depth 0, "[1]" depth 1; max_depth <= 0 means
 * GW_JSON_DEFAULT_MAX_DEPTH. Returns GW_OK, or GW_EINVAL / GW_TOOBIG (depth, open keys, n >= 4 GiB)
 * with *err filled when err != NULL. */
int gw_json_validate(const char *p, size_t n, int max_depth, gw_json_error_t *err);
/* The same, and on GW_OK when the document is an object: values[i] = the raw value of its
 * top-level member names[i] (which must hold no backslash), or GW_STR_NULL when absent. Saves a
 * second pass over a body that is validated anyway. values may be NULL when n_names is 0. */
int gw_json_validate_members(const char *p, size_t n, int max_depth, gw_json_error_t *err, const gw_str_t *names,
                             gw_str_t *values, size_t n_names);

/* Type of the raw value slice (first non-blank byte decides). */
gw_json_type_t gw_json_type(gw_str_t raw);

/* Finds member `key` (exact, unescaped comparison; keys containing escapes are compared after
 * unescaping) of the object `obj` (a raw object slice, assumed already validated) and returns
 * its raw value slice in *value (pointing into obj). GW_OK, GW_DONE when absent, GW_EINVAL when
 * obj is not an object. */
int gw_json_object_get(gw_str_t obj, gw_str_t key, gw_str_t *value);

/* Same, following a dotted path of object keys, e.g. "usage.prompt_tokens_details.cached_tokens".
 * GW_DONE also when an intermediate value is not an object (e.g. "usage": null). */
int gw_json_path_get(gw_str_t obj, const char *dotted_path, gw_str_t *value);

/* Iterates the members of the raw object `obj`: start with *pos = 0; each call stores the next
 * member's raw key (with its quotes) and raw value (slices into obj) and returns GW_OK, then
 * GW_DONE after the last one (*pos is then just past the closing brace). GW_EINVAL when obj is
 * not an object or its structure is broken. Safe on unvalidated input (never reads outside obj),
 * but only structure is checked there (brackets, quotes, commas, colons), not content. */
int gw_json_object_next(gw_str_t obj, size_t *pos, gw_str_t *key, gw_str_t *value);

/* Iterates the elements of the raw array `arr` the same way: start with *pos = 0; GW_OK with the
 * next element's raw slice in *elem, GW_DONE after the last, GW_EINVAL when arr is not an array or
 * its structure is broken. Same safety as gw_json_object_next. */
int gw_json_array_next(gw_str_t arr, size_t *pos, gw_str_t *elem);

/* True when the raw JSON string `raw_key` (with quotes) unescapes to exactly the bytes of key. */
bool gw_json_key_eq(gw_str_t raw_key, gw_str_t key);

/* Unescapes a raw JSON string slice (with its quotes) into out (appended). GW_OK / GW_EINVAL /
 * GW_TOOBIG, with the validator's strictness (UTF-8, escapes, no "\u0000"). All or nothing: on
 * failure out is left as it was. */
int gw_json_string_unescape(gw_str_t raw, gw_buf_t *out);

/* Parses a raw JSON number that is a non-negative integer fitting uint64 ("12", also "12.0" and
 * "1.2e1" when integral). GW_OK or GW_EINVAL. */
int gw_json_uint(gw_str_t raw, uint64_t *out);

/* Raw `true` -> *out=true, `false` -> false; anything else GW_EINVAL. */
int gw_json_bool(gw_str_t raw, bool *out);

/* Appends s as a JSON string literal (with quotes), escaping as needed. Invalid UTF-8 (each
 * maximal ill-formed subsequence) and NUL bytes are replaced with U+FFFD so the output always
 * passes gw_json_validate. All or nothing: on GW_TOOBIG out is left as it was. */
int gw_json_append_string(gw_buf_t *out, const char *s, size_t n);

/* Writes doc with the bytes of `old_value` (a slice inside doc) replaced by `replacement`,
 * appending to out. Used to splice the model name without touching anything else. GW_EINVAL when
 * old_value is not inside doc; GW_TOOBIG (out unchanged) past out's cap. */
int gw_json_splice(gw_str_t doc, gw_str_t old_value, gw_str_t replacement, gw_buf_t *out);

#endif
