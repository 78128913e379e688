/* One interface for every "client API -> backend schema" pair. A translator turns the client's
 * request into the backend's (path, body) and the backend's response back into the client's
 * API, filling the usage record on the way. Translators never do I/O: bytes in, bytes out, so
 * each is testable with recorded payloads alone. */
#ifndef GW_TRANSLATE_TRANSLATE_H
#define GW_TRANSLATE_TRANSLATE_H

#include "config/config.h"
#include "core/buf.h"
#include "core/gw.h"
#include "net/http.h"
#include "usage/token_usage.h"

/* The client-facing operation, named as gen_ai.operation.name. */
typedef enum {
    GW_OP_CHAT = 0,         /* POST /v1/chat/completions */
    GW_OP_COMPLETION,       /* POST /v1/completions */
    GW_OP_EMBEDDINGS,       /* POST /v1/embeddings */
    GW_OP_IMAGE_GENERATION, /* POST /v1/images/generations */
    GW_OP_MESSAGES,         /* POST /anthropic/v1/messages */
    GW_OP_COUNT_TOKENS,     /* POST /anthropic/v1/messages/count_tokens */
} gw_operation_t;

/* The API the client speaks, which decides the error format the client gets. */
typedef enum { GW_CLIENT_API_OPENAI = 0, GW_CLIENT_API_ANTHROPIC } gw_client_api_t;

gw_client_api_t gw_operation_client_api(gw_operation_t op);

const char *gw_operation_name(gw_operation_t op);

typedef struct {
    gw_operation_t op;
    gw_str_t body;            /* the client's body, validated JSON object */
    gw_str_t model_raw;       /* raw JSON slice of the body's "model" value (for splicing) */
    const char *model_override; /* NULL: none */
    bool stream;
    const gw_backend_t *backend;
    /* The client's request headers, to tell whether it sent a header the backend API needs
     * (e.g. anthropic-version) before supplying a default. May be NULL with n_headers 0. */
    const gw_http_header_t *headers;
    size_t n_headers;
} gw_translate_request_t;

#define GW_TRANSLATE_MAX_HEADERS 8

typedef struct {
    char name[64];
    char value[256];
} gw_translate_header_t;

typedef struct {
    gw_buf_t path;          /* upstream origin-form path (+ query), already percent-encoded */
    gw_buf_t body;          /* the upstream body when body_changed */
    bool body_changed;      /* false: send the client's bytes unchanged */
    /* Headers the backend API needs (e.g. anthropic-version, accept); they replace client headers
     * of the same name. Content-Type is set to content_type when that is not empty. */
    gw_translate_header_t headers[GW_TRANSLATE_MAX_HEADERS];
    size_t n_headers;
    char content_type[64];
} gw_translate_output_t;

/* Adds a header to the output (truncating nothing: GW_TOOBIG when it does not fit). */
int gw_translate_output_add_header(gw_translate_output_t *o, const char *name, const char *value);

typedef struct gw_translator_s gw_translator_t;

typedef struct {
    /* Builds the upstream request. GW_OK or GW_EINVAL with a message in *err (static). */
    int (*request)(gw_translator_t *t, const gw_translate_request_t *in, gw_translate_output_t *out,
                   const char **err);
    /* Status and the response's content type / encoding (before any body byte). A translator that
     * rewrites the body decodes content_encoding itself and sets client_content_type. */
    int (*response_head)(gw_translator_t *t, int status, gw_str_t content_type, gw_str_t content_encoding);
    /* A piece of a 2xx response body as received. Passthrough translators only observe it (usage,
     * model) and leave out untouched; others append the client's bytes to out. end: last call. */
    int (*response_body)(gw_translator_t *t, const char *p, size_t n, bool end, gw_buf_t *out);
    /* A whole non-2xx body (content-decoded), rewritten into the client API's error format in out
     * (which stays empty when the body passes through unchanged). headers are the upstream's
     * response headers (e.g. x-amzn-errortype). */
    int (*response_error)(gw_translator_t *t, int status, const gw_http_header_t *headers, size_t n_headers,
                          gw_str_t body, gw_buf_t *out);
    void (*destroy)(gw_translator_t *t);
} gw_translator_vtable_t;

struct gw_translator_s {
    const gw_translator_vtable_t *vt;
    gw_token_usage_t usage;
    gw_buf_t response_model;   /* model reported by the provider, empty when none */
    bool passthrough_response; /* the client receives the upstream bytes unchanged */
    bool stream_response;      /* the response is an event stream (to the client) */
    char client_content_type[64]; /* non-passthrough: Content-Type for the client ("" keeps the upstream's) */
    bool stream_failed;        /* the upstream stream carried an error (exception frame, error event): the
                                  translator already wrote the client's error event; not a success */
};

/* A translator for this client operation and backend schema, or NULL when the pair is not
 * supported. Destroy with gw_translator_free. */
gw_translator_t *gw_translator_new(gw_operation_t op, gw_schema_t schema);
void gw_translator_free(gw_translator_t *t);

void gw_translate_output_init(gw_translate_output_t *o);
void gw_translate_output_free(gw_translate_output_t *o);

#endif
