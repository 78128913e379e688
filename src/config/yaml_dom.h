/* A small read-only YAML DOM with a line and column on every node, built from libyaml's document
 * loader. The config loaders walk it and point their error messages at the offending node.
 * Limits (size, depth, node count with aliases expanded) are enforced here, at the boundary. */
#ifndef GW_CONFIG_YAML_DOM_H
#define GW_CONFIG_YAML_DOM_H

#include "core/gw.h"

typedef enum { GW_YAML_SCALAR = 0, GW_YAML_SEQ, GW_YAML_MAP } gw_yaml_kind_t;

typedef struct gw_yaml_node_s gw_yaml_node_t;

typedef struct {
    const gw_yaml_node_t *key;
    const gw_yaml_node_t *value;
} gw_yaml_pair_t;

struct gw_yaml_node_s {
    gw_yaml_kind_t kind;
    uint32_t line; /* 1-based, in the parsed text */
    uint32_t col;  /* 1-based, in characters */
    bool plain;    /* scalar written without quotes or tag: only then are "", "~" and "null" a null */
    const char *str; /* scalar: NUL-terminated (NUL bytes inside a scalar are refused), else "" */
    size_t len;
    const gw_yaml_node_t **items; /* sequence */
    size_t n_items;
    const gw_yaml_pair_t *pairs; /* mapping, in document order */
    size_t n_pairs;
};

typedef struct {
    size_t max_input;  /* bytes */
    size_t max_nodes;  /* over all documents, aliases counted at every use */
    unsigned max_depth;
} gw_yaml_limits_t;

/* 16 MiB, 200k nodes, depth 64: far above any real gateway configuration. */
extern const gw_yaml_limits_t gw_yaml_default_limits;

typedef struct {
    uint32_t line; /* 1-based; 0 when the problem has no position */
    uint32_t col;
    char msg[200];
} gw_yaml_error_t;

typedef struct gw_yaml_stream_s gw_yaml_stream_t;

/* Parses every document of buf. NULL on a syntax error or an exceeded limit, with *err filled.
 * Free the result with gw_yaml_stream_free; every node lives as long as the stream. */
gw_yaml_stream_t *gw_yaml_parse(const char *buf, size_t len, const gw_yaml_limits_t *limits, gw_yaml_error_t *err);
void gw_yaml_stream_free(gw_yaml_stream_t *s);

size_t gw_yaml_doc_count(const gw_yaml_stream_t *s);
/* Root node of document i (a null scalar for an empty document). */
const gw_yaml_node_t *gw_yaml_doc(const gw_yaml_stream_t *s, size_t i);

/* The value of key in a mapping; NULL when n is not a mapping or has no such key. */
const gw_yaml_node_t *gw_yaml_get(const gw_yaml_node_t *n, const char *key);
/* True for NULL, and for a plain "", "~", "null", "Null" or "NULL" scalar. */
bool gw_yaml_is_null(const gw_yaml_node_t *n);
/* The scalar's text, or NULL when n is absent, null or not a scalar. */
const char *gw_yaml_str(const gw_yaml_node_t *n);
const char *gw_yaml_kind_name(gw_yaml_kind_t k);

#endif
