/* Internal to the YAML loader (yaml_*.c): loader state, error and notice reporting with
 * file:line:col, typed field access over the DOM, value grammars (durations, dates, quantities,
 * base64, URIs), and the intermediate resource structs that the parse and link steps share.
 * Nothing here is part of the configuration model; config.h is. */
#ifndef GW_CONFIG_YAML_LOADER_INT_H
#define GW_CONFIG_YAML_LOADER_INT_H

#include "config/config.h"
#include "config/yaml_dom.h"

#include <stdarg.h>

/* ---- growable arrays ---- */

void *gw_yl_vec_grow(void *v, size_t *cap, size_t n, size_t elem);
#define VEC(T)      \
    struct {        \
        T *v;       \
        size_t n;   \
        size_t cap; \
    }
#define VEC_PUSH(vec)                                                                                  \
    ((vec).v = gw_yl_vec_grow((vec).v, &(vec).cap, (vec).n, sizeof(*(vec).v)),                        \
     memset(&(vec).v[(vec).n], 0, sizeof(*(vec).v)), &(vec).v[(vec).n++])

/* ---- positions and ${VAR} substitution ---- */

/* Positions as libyaml counts them: 1-based lines, columns in characters. */
typedef struct {
    uint32_t line;
    uint32_t col;
} pos_t;

typedef struct {
    pos_t out_start, out_end;   /* in the substituted text */
    pos_t orig_start, orig_end; /* in the file */
} subst_t;

typedef VEC(subst_t) subst_map_t;

/* envsubst for the ${NAME} form only: an unset variable becomes "", anything else that is not
 * ${NAME} (a lone $, $NAME, ${1}) stays as written. GW_TOOBIG when out's cap is reached. */
int gw_yl_substitute(const char *in, size_t len, gw_buf_t *out, subst_map_t *map);
/* Maps a position in the substituted text back to the file. */
pos_t gw_yl_map_pos(const subst_map_t *m, pos_t p);

/* ---- loader state and reporting ---- */

typedef struct {
    const char *kind;
    const char *ns;   /* "default" when not written */
    const char *name; /* NULL when missing (already reported) */
    const gw_yaml_node_t *root;
    const gw_yaml_node_t *spec;
} meta_t;

typedef struct {
    const char *file;
    gw_buf_t *errors;
    gw_buf_t *notices; /* NULL: notices go to the log at info level */
    size_t n_errors;
    const subst_map_t *map;
    int64_t now;
    /* Resource checks only, as the reference's API server does them (schema and CEL rules):
     * references to resources that are not in the file and what aigw does not support are not
     * errors then (gw_config_check_buffer with GW_CHECK_RESOURCES_ONLY; the crdcel verdicts). */
    bool crd_only;
} ld_t;

/* A schema or CEL violation: always an error. */
void gw_yl_lerr(ld_t *ld, const meta_t *m, const gw_yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A reference that does not resolve (not found, not granted): an error, unless crd_only. */
void gw_yl_lref(ld_t *ld, const meta_t *m, const gw_yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Valid for the reference but refused by aigw: an error, a notice when crd_only. */
void gw_yl_lunsup(ld_t *ld, const meta_t *m, const gw_yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Accepted, but worth telling: ignored fields and kinds, defaults that differ. */
void gw_yl_lnote(ld_t *ld, const meta_t *m, const gw_yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- typed field access: each reports its own problems ---- */

/* True when the key is written with a non-null value (CEL's has()). An empty mapping {} or
 * sequence [] is present. */
bool gw_yl_present(const gw_yaml_node_t *map, const char *key);
/* The value of key when it has the wanted kind; NULL when absent/null (an error if required)
 * or of another kind (always an error). */
const gw_yaml_node_t *gw_yl_field(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key,
                            gw_yaml_kind_t want, const char *path, bool required);
/* A sequence with at most max items ("Too many" otherwise, and NULL). */
const gw_yaml_node_t *gw_yl_fseq(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key, const char *path,
                           bool required, size_t max);
/* A scalar's text; a required one must not be empty either. */
const char *gw_yl_fstr(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key, const char *path,
                 bool required);
/* A string with MinLength=1 (absent counts as "", as the reference's non-pointer fields do). */
const char *gw_yl_fstr1(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key, const char *path);
/* An optional string of at most max bytes. */
const char *gw_yl_fstr_max(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key, const char *path,
                     size_t max);
/* 1: present and valid, 0: absent, -1: invalid (reported). Plain decimal digits only. */
int gw_yl_fuint(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key, const char *path, uint64_t min,
          uint64_t max, uint64_t *out);
/* An enumerated string: its index in values (NULL-terminated), -1 when absent (an error if
 * required) or not one of them (always an error, in the API server's words). */
int gw_yl_fenum(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key, const char *path,
          const char *const *values, bool required);
/* A duration field ("60s", "1m30s", "500ms"): 1 valid, 0 absent, -1 invalid (reported). */
int gw_yl_fduration(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key, const char *path, uint64_t *ms);
/* An optional boolean: 1 true, 0 false or absent, -1 invalid (reported). */
int gw_yl_fbool(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *key, const char *path);

/* Fields of a mapping that aigw reads, and those it knows but ignores (with why). A key in
 * neither list gets an "unknown field" notice, as kubectl warns about one. */
typedef struct {
    const char *name;
    const char *ignored; /* NULL: read; else the notice's reason */
} field_spec_t;
void gw_yl_check_fields(ld_t *ld, const meta_t *m, const gw_yaml_node_t *map, const char *path, const field_spec_t *known,
                  size_t n_known);
#define CHECK_FIELDS(ld, m, map, path, arr) gw_yl_check_fields((ld), (m), (map), (path), (arr), GW_ARRAY_SIZE(arr))

/* ---- value grammars ---- */

bool gw_yl_parse_duration(const char *s, uint64_t *ms);
bool gw_yl_parse_rfc3339(const char *s, int64_t *out);
bool gw_yl_parse_quantity(const char *s, uint64_t *out);
/* Standard base64 (whitespace skipped, padding optional); NULL when invalid or when it decodes to
 * a NUL byte. Caller frees (wipe: it may be a secret). */
char *gw_yl_b64_decode(const char *s, size_t len);
/* RFC 9110 token: what a header name may be made of. */
bool gw_yl_is_token(const char *s);
/* A header value may hold tabs and visible bytes, never CR, LF or other controls. */
bool gw_yl_is_header_value(const char *s);
/* What the CRDs' "format: uri" accepts: an absolute URI (scheme ":" ...) or an absolute path. */
bool gw_yl_is_uri(const char *s);
char *gw_yl_lower_dup(const char *s);
char *gw_yl_joinf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *gw_yl_dup_or_null(const char *s);
void gw_yl_wipe_free(char *s);

/* ---- resources shared by the parse and link steps ---- */

/* An object reference as written; ns defaults to the referrer's namespace. */
typedef struct {
    const char *name;
    const char *ns;
    const char *group; /* NULL when not written */
    const char *kind;  /* NULL when not written */
    bool ns_written;
    const gw_yaml_node_t *at;
} ref_t;

typedef VEC(ref_t) refs_t;

bool gw_yl_parse_ref(ld_t *ld, const meta_t *m, const gw_yaml_node_t *n, const char *path, ref_t *out);

typedef struct {
    const char *name;
    const char *value;
} kv_t;

typedef struct {
    VEC(kv_t) set;
    VEC(const char *) remove;
} hm_t;

typedef struct {
    meta_t m;
    bool ok;
    uint16_t port;
    bool https;
    ref_t cert;                      /* first certificateRefs entry of the first listener */
    const gw_yaml_node_t *listener;  /* the first listener */
} gateway_t;

typedef struct {
    meta_t m;
    bool ok;
    char *host;
    uint16_t port; /* 0: not written */
    bool tls;
    const char *sni;
    char *ca_pem; /* owned: from the BackendTLSPolicy's caCertificateRefs */
    const meta_t *tls_by;
} be_t;

typedef struct {
    meta_t m;
    bool ok;
    gw_schema_t schema;
    const char *version; /* NULL when not written */
    ref_t backend;
    hm_t hm;
    const be_t *be;
    gw_auth_config_t auth;
    const meta_t *auth_by;
} svc_t;

typedef struct {
    meta_t m;
    refs_t targets;
    const char *sni;
    refs_t ca_refs; /* kind ConfigMap or Secret, key ca.crt */
    bool ok;
} tls_t;

typedef struct {
    meta_t m;
    bool ok;
    refs_t targets;
    gw_auth_type_t type;
    const char *type_name;
    ref_t secret;           /* name NULL: none */
    const char *secret_key; /* which key of the Secret */
    const char *region, *profile, *project, *client_id, *tenant_id;
} sec_t;

typedef struct {
    const char *key;
    char *value; /* owned, secret */
    const gw_yaml_node_t *at;
} secret_kv_t;

typedef struct {
    meta_t m;
    const char *type; /* NULL: Opaque */
    VEC(secret_kv_t) data;
} secret_t;

typedef struct {
    meta_t m;
    VEC(kv_t) data; /* values point into the DOM */
} configmap_t;

typedef struct {
    const char *group, *kind, *ns;
} rg_from_t;

typedef struct {
    const char *group, *kind, *name; /* name NULL: every resource of that kind */
} rg_to_t;

typedef struct {
    meta_t m;
    VEC(rg_from_t) from;
    VEC(rg_to_t) to;
} rgrant_t;

typedef struct {
    meta_t m;
    uint64_t limit;
} ctp_t;

typedef struct {
    meta_t m;
    bool ok;
    refs_t targets; /* kind HTTPRoute (an AIGatewayRoute's name) or Gateway */
    bool has_retry;
    gw_retry_policy_t retry;
    bool has_health;
    gw_passive_health_t health;
    bool has_timeout;
    uint64_t request_timeout_ms;
} btp_t;

typedef struct {
    meta_t m;
} route_t;

typedef struct {
    meta_t m;
} mcp_t;

typedef struct {
    VEC(gateway_t) gateways;
    VEC(route_t) routes;
    VEC(svc_t) svcs;
    VEC(be_t) backends;
    VEC(tls_t) tls;
    VEC(sec_t) secs;
    VEC(secret_t) secrets;
    VEC(configmap_t) configmaps;
    VEC(rgrant_t) grants;
    VEC(ctp_t) ctps;
    VEC(btp_t) btps;
    VEC(mcp_t) mcps;
} set_t;

#define FIND(vec, ns_, name_)                                                                       \
    __extension__({                                                                                 \
        __typeof__((vec).v[0]) *found_ = NULL;                                                      \
        for (size_t i_ = 0; i_ < (vec).n; i_++)                                                     \
            if (strcmp((vec).v[i_].m.name, (name_)) == 0 && strcmp((vec).v[i_].m.ns, (ns_)) == 0) { \
                found_ = &(vec).v[i_];                                                              \
                break;                                                                              \
            }                                                                                       \
        found_;                                                                                     \
    })

/* Whether a ReferenceGrant in to_ns lets (from_group, from_kind) in from_ns refer to the
 * resource (to_group, to_kind, to_name). Same namespace is always allowed. */
bool gw_yl_granted(const set_t *s, const char *from_group, const char *from_kind, const char *from_ns,
                   const char *to_group, const char *to_kind, const char *to_ns, const char *to_name);
/* The value of key in Secret ns/name; NULL with the problem reported against m/at. */
const char *gw_yl_secret_value(ld_t *ld, const set_t *s, const meta_t *m, const ref_t *r, const char *key);
/* Header matches of a route (AIGatewayRoute rule or MCPRoute): at most 16, unique names. */
void gw_yl_parse_header_matches(ld_t *ld, const meta_t *m, const gw_yaml_node_t *hs, const char *path,
                                gw_route_match_t *rm);

/* Policy targetRefs (LocalPolicyTargetReference: group, kind and name required; the policy's
 * own namespace). The caller checks which kinds it takes. */
void gw_yl_parse_policy_targets(ld_t *ld, const meta_t *m, bool required, refs_t *vec);
/* parentRefs of a route: at most 16, kind Gateway (the default). */
void gw_yl_check_parent_refs(ld_t *ld, const set_t *s, const meta_t *m, bool required);

/* Per-kind steps living in their own files. */
void gw_yl_parse_btp(ld_t *ld, set_t *s, const meta_t *m);
void gw_yl_link_btps(ld_t *ld, set_t *s);
/* The BackendTrafficPolicy that governs an AIGatewayRoute: the one targeting its HTTPRoute, else
 * the one targeting the Gateway; NULL when none. */
const btp_t *gw_yl_btp_for_route(const set_t *s, const meta_t *route);
void gw_yl_parse_mcp(ld_t *ld, set_t *s, const meta_t *m);
void gw_yl_link_mcps(ld_t *ld, set_t *s, gw_config_t *c);

/* Short names for the loader files. */
#define lerr(...) gw_yl_lerr(__VA_ARGS__)
#define lref(...) gw_yl_lref(__VA_ARGS__)
#define lunsup(...) gw_yl_lunsup(__VA_ARGS__)
#define lnote(...) gw_yl_lnote(__VA_ARGS__)
#define present(...) gw_yl_present(__VA_ARGS__)
#define field(...) gw_yl_field(__VA_ARGS__)
#define fseq(...) gw_yl_fseq(__VA_ARGS__)
#define fstr(...) gw_yl_fstr(__VA_ARGS__)
#define fstr1(...) gw_yl_fstr1(__VA_ARGS__)
#define fstr_max(...) gw_yl_fstr_max(__VA_ARGS__)
#define fuint(...) gw_yl_fuint(__VA_ARGS__)
#define fenum(...) gw_yl_fenum(__VA_ARGS__)
#define fduration(...) gw_yl_fduration(__VA_ARGS__)
#define fbool(...) gw_yl_fbool(__VA_ARGS__)
#define check_fields(...) gw_yl_check_fields(__VA_ARGS__)
#define parse_duration(...) gw_yl_parse_duration(__VA_ARGS__)
#define parse_rfc3339(...) gw_yl_parse_rfc3339(__VA_ARGS__)
#define parse_quantity(...) gw_yl_parse_quantity(__VA_ARGS__)
#define b64_decode(...) gw_yl_b64_decode(__VA_ARGS__)
#define is_token(...) gw_yl_is_token(__VA_ARGS__)
#define is_header_value(...) gw_yl_is_header_value(__VA_ARGS__)
#define is_uri(...) gw_yl_is_uri(__VA_ARGS__)
#define lower_dup(...) gw_yl_lower_dup(__VA_ARGS__)
#define joinf(...) gw_yl_joinf(__VA_ARGS__)
#define dup_or_null(...) gw_yl_dup_or_null(__VA_ARGS__)
#define wipe_free(...) gw_yl_wipe_free(__VA_ARGS__)
#define parse_ref(...) gw_yl_parse_ref(__VA_ARGS__)

#endif
