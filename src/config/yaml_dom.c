/* YAML DOM (see yaml_dom.h): libyaml loads each document, then we copy it into our own nodes,
 * all carved from one bump arena per stream, so a walk is plain pointer chasing and a free is a
 * few calls. Aliases are expanded on copy, which is why the node budget counts every use. */
#include "config/yaml_dom.h"

#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <yaml.h>

const gw_yaml_limits_t gw_yaml_default_limits = {
    .max_input = 16u << 20,
    .max_nodes = 200000,
    .max_depth = 64,
};

#define ARENA_BLOCK 65536

typedef struct block_s {
    struct block_s *next;
    size_t used;
    size_t cap;
    max_align_t data[];
} block_t;

struct gw_yaml_stream_s {
    block_t *blocks;
    const gw_yaml_node_t **docs;
    size_t n_docs;
    size_t cap_docs;
};

static void *arena_alloc(gw_yaml_stream_t *s, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    block_t *b = s->blocks;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK / 2 ? n : ARENA_BLOCK;
        block_t *nb = gw_malloc(sizeof(*nb) + cap);
        nb->used = 0;
        nb->cap = cap;
        /* A one-off big block goes second so the current block keeps serving small requests. */
        if (b != NULL && cap != ARENA_BLOCK) {
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            s->blocks = nb;
        }
        b = nb;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

typedef struct {
    gw_yaml_stream_t *s;
    yaml_document_t *doc;
    const gw_yaml_limits_t *lim;
    size_t nodes;
    gw_yaml_error_t *err;
} conv_t;

static void set_err(gw_yaml_error_t *err, uint32_t line, uint32_t col, const char *msg)
{
    err->line = line;
    err->col = col;
    snprintf(err->msg, sizeof(err->msg), "%s", msg);
}

static const gw_yaml_node_t *convert(conv_t *cv, yaml_node_t *yn, unsigned depth)
{
    uint32_t line = (uint32_t)yn->start_mark.line + 1, col = (uint32_t)yn->start_mark.column + 1;
    if (depth > cv->lim->max_depth) {
        set_err(cv->err, line, col, "YAML nesting is too deep");
        return NULL;
    }
    if (++cv->nodes > cv->lim->max_nodes) {
        set_err(cv->err, line, col, "YAML has too many nodes (aliases count at every use)");
        return NULL;
    }
    gw_yaml_node_t *n = arena_alloc(cv->s, sizeof(*n));
    n->line = line;
    n->col = col;
    n->str = "";
    switch (yn->type) {
    case YAML_SCALAR_NODE: {
        size_t len = yn->data.scalar.length;
        if (memchr(yn->data.scalar.value, '\0', len) != NULL) {
            set_err(cv->err, line, col, "a scalar contains a NUL character");
            return NULL;
        }
        char *p = arena_alloc(cv->s, len + 1);
        memcpy(p, yn->data.scalar.value, len);
        p[len] = '\0';
        n->kind = GW_YAML_SCALAR;
        n->str = p;
        n->len = len;
        /* An explicit tag (other than the default string one) or quotes mean "not a null". */
        const char *tag = (const char *)yn->tag;
        n->plain = yn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                   (tag == NULL || strcmp(tag, YAML_DEFAULT_SCALAR_TAG) == 0 || strcmp(tag, YAML_NULL_TAG) == 0);
        return n;
    }
    case YAML_SEQUENCE_NODE: {
        size_t cnt = (size_t)(yn->data.sequence.items.top - yn->data.sequence.items.start);
        n->kind = GW_YAML_SEQ;
        const gw_yaml_node_t **items = arena_alloc(cv->s, (cnt ? cnt : 1) * sizeof(*items));
        for (size_t i = 0; i < cnt; i++) {
            yaml_node_t *child = yaml_document_get_node(cv->doc, yn->data.sequence.items.start[i]);
            if (child == NULL || (items[i] = convert(cv, child, depth + 1)) == NULL) {
                if (child == NULL)
                    set_err(cv->err, line, col, "broken YAML document");
                return NULL;
            }
        }
        n->items = items;
        n->n_items = cnt;
        return n;
    }
    case YAML_MAPPING_NODE: {
        size_t cnt = (size_t)(yn->data.mapping.pairs.top - yn->data.mapping.pairs.start);
        n->kind = GW_YAML_MAP;
        gw_yaml_pair_t *pairs = arena_alloc(cv->s, (cnt ? cnt : 1) * sizeof(*pairs));
        for (size_t i = 0; i < cnt; i++) {
            yaml_node_t *k = yaml_document_get_node(cv->doc, yn->data.mapping.pairs.start[i].key);
            yaml_node_t *v = yaml_document_get_node(cv->doc, yn->data.mapping.pairs.start[i].value);
            if (k == NULL || v == NULL) {
                set_err(cv->err, line, col, "broken YAML document");
                return NULL;
            }
            if ((pairs[i].key = convert(cv, k, depth + 1)) == NULL || (pairs[i].value = convert(cv, v, depth + 1)) == NULL)
                return NULL;
        }
        n->pairs = pairs;
        n->n_pairs = cnt;
        return n;
    }
    default:
        set_err(cv->err, line, col, "unexpected YAML node");
        return NULL;
    }
}

static void parser_err(const yaml_parser_t *p, gw_yaml_error_t *err)
{
    const char *what = p->problem ? p->problem : "invalid YAML";
    char msg[sizeof(err->msg)];
    if (p->context != NULL)
        snprintf(msg, sizeof(msg), "%s %s", what, p->context);
    else
        snprintf(msg, sizeof(msg), "%s", what);
    set_err(err, (uint32_t)p->problem_mark.line + 1, (uint32_t)p->problem_mark.column + 1, msg);
    if (p->error == YAML_MEMORY_ERROR)
        set_err(err, 0, 0, "out of memory while parsing YAML");
}

gw_yaml_stream_t *gw_yaml_parse(const char *buf, size_t len, const gw_yaml_limits_t *limits, gw_yaml_error_t *err)
{
    yaml_parser_t parser;
    gw_yaml_stream_t *s = NULL;
    bool ok = false;
    if (limits == NULL)
        limits = &gw_yaml_default_limits;
    memset(err, 0, sizeof(*err));
    if (len > limits->max_input) {
        snprintf(err->msg, sizeof(err->msg), "input is larger than %zu bytes", limits->max_input);
        return NULL;
    }
    if (!yaml_parser_initialize(&parser)) {
        set_err(err, 0, 0, "cannot initialize the YAML parser");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    s = gw_calloc(1, sizeof(*s));
    conv_t cv = {.s = s, .lim = limits, .err = err};
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            parser_err(&parser, err);
            goto out;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root == NULL) { /* end of the stream */
            yaml_document_delete(&doc);
            break;
        }
        cv.doc = &doc;
        const gw_yaml_node_t *n = convert(&cv, root, 0);
        yaml_document_delete(&doc);
        if (n == NULL)
            goto out;
        if (s->n_docs == s->cap_docs) {
            s->cap_docs = s->cap_docs ? s->cap_docs * 2 : 8;
            s->docs = gw_realloc(s->docs, s->cap_docs * sizeof(*s->docs));
        }
        s->docs[s->n_docs++] = n;
    }
    ok = true;
out:
    yaml_parser_delete(&parser);
    if (!ok) {
        gw_yaml_stream_free(s);
        return NULL;
    }
    return s;
}

void gw_yaml_stream_free(gw_yaml_stream_t *s)
{
    if (s == NULL)
        return;
    block_t *b = s->blocks;
    while (b != NULL) {
        block_t *next = b->next;
        free(b);
        b = next;
    }
    free(s->docs);
    free(s);
}

size_t gw_yaml_doc_count(const gw_yaml_stream_t *s)
{
    return s->n_docs;
}

const gw_yaml_node_t *gw_yaml_doc(const gw_yaml_stream_t *s, size_t i)
{
    return i < s->n_docs ? s->docs[i] : NULL;
}

const gw_yaml_node_t *gw_yaml_get(const gw_yaml_node_t *n, const char *key)
{
    if (n == NULL || n->kind != GW_YAML_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i < n->n_pairs; i++) {
        const gw_yaml_node_t *k = n->pairs[i].key;
        if (k->kind == GW_YAML_SCALAR && k->len == klen && memcmp(k->str, key, klen) == 0)
            return n->pairs[i].value;
    }
    return NULL;
}

bool gw_yaml_is_null(const gw_yaml_node_t *n)
{
    if (n == NULL)
        return true;
    if (n->kind != GW_YAML_SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 || strcmp(n->str, "Null") == 0 ||
           strcmp(n->str, "NULL") == 0;
}

const char *gw_yaml_str(const gw_yaml_node_t *n)
{
    if (n == NULL || n->kind != GW_YAML_SCALAR || gw_yaml_is_null(n))
        return NULL;
    return n->str;
}

const char *gw_yaml_kind_name(gw_yaml_kind_t k)
{
    switch (k) {
    case GW_YAML_SCALAR:
        return "a scalar";
    case GW_YAML_SEQ:
        return "a sequence";
    case GW_YAML_MAP:
        return "a mapping";
    }
    return "?";
}
