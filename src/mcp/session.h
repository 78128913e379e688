/* Stateless MCP session ids: the client's Mcp-Session-Id carries the whole gateway session (route,
 * JWT subject, protocol version, issue time, and every backend's own session id) sealed with
 * AES-256-GCM, so any replica holding the same seeds serves any session and keeps no state. Pure. */
#ifndef GW_MCP_SESSION_H
#define GW_MCP_SESSION_H

#include "core/buf.h"
#include "core/gw.h"

/* ---- Wire format (version 1) ------------------------------------------------------------------
 *
 *   id  = base64url, no padding ( raw )
 *   raw = 0x01 (version) || key id (8) || nonce (12, random) || ciphertext || GCM tag (16)
 *   AAD = "aigw mcp session v1" || 0x00 || version || key id || nonce
 *
 * Keys: HKDF-SHA256(ikm = seed, salt = "aigw mcp session salt v1", info = "aigw mcp session v1")
 * gives 40 bytes, once per seed when the keyring is built: the AES-256 key (32) and the key id (8).
 * The key id is a separate HKDF output, not a hash of the key, so nothing computed from the key is
 * ever published; it only tells which seed to try, never a secret.
 *
 * The route is authenticated inside the plaintext rather than placed in the AAD: a valid session
 * presented on another route then yields GW_MCP_SESSION_EROUTE instead of looking like tampering,
 * which keeps the two events apart in logs and metrics. The purpose string in the AAD keeps these
 * ids from being confused with anything else sealed by the same seeds in the future.
 *
 * The plaintext is a length-prefixed binary record (big-endian integers), so every byte of every
 * field, '@' and ':' and NUL included, round-trips (reference bug #1560, a subject with '@'):
 *   u8 format (1) | u64 issued_at | u16 len route | u16 len subject | u8 len protocol_version |
 *   u16 n_backends | n_backends x ( u8 len name | u8 len protocol_version | u16 len session_id )
 *
 * Nonces are 96 random bits per seal (RAND_bytes): safe far past 2^32 seals per key, and a
 * session is sealed once per initialize. Rotate seeds well before that. */

/* Limits (bytes unless stated). seal refuses anything beyond them with GW_TOOBIG; open treats an
 * id beyond them as malformed. Keep the total small in practice: Node's HTTP client takes at most
 * 16 KiB of response headers in total, so ids past ~8 KiB of plaintext will not reach it. */
#define GW_MCP_SESSION_MAX_SEEDS 8
#define GW_MCP_SESSION_SEED_MIN 16     /* HKDF is no password hash: a seed must carry real entropy */
#define GW_MCP_SESSION_SEED_MAX 1024
#define GW_MCP_SESSION_MAX_BACKENDS 256
#define GW_MCP_SESSION_MAX_ROUTE 512
#define GW_MCP_SESSION_MAX_SUBJECT 1024
#define GW_MCP_SESSION_MAX_NAME 255     /* backend name, 1..255 */
#define GW_MCP_SESSION_MAX_PROTOCOL 64  /* protocol version strings, e.g. "2025-06-18" */
#define GW_MCP_SESSION_MAX_BACKEND_SID 1024
#define GW_MCP_SESSION_MAX_PLAINTEXT 16384
#define GW_MCP_SESSION_OVERHEAD (1 + 8 + 12 + 16)
/* Longest id open looks at: the base64url length of the largest raw value. */
#define GW_MCP_SESSION_MAX_ID_LEN (((GW_MCP_SESSION_MAX_PLAINTEXT + GW_MCP_SESSION_OVERHEAD) * 4 + 2) / 3)
/* A session issued this far in the future (replicas' clocks disagree) is still accepted. */
#define GW_MCP_SESSION_CLOCK_SKEW 60

/* Statuses of gw_mcp_session_open besides GW_OK / GW_EINVAL (bad arguments) / GW_ERROR (OpenSSL
 * failure). Every one of them means "404, the client re-initializes"; they are distinct for logs
 * and metrics only. None of them is ever produced for a different reason than its name says. */
#define GW_MCP_SESSION_EMALFORMED (-100)   /* not base64url, too short or too long, unknown version */
#define GW_MCP_SESSION_EUNKNOWN_KEY (-101) /* well-formed, but no seed of the keyring has this key id */
#define GW_MCP_SESSION_ETAMPERED (-102)    /* authentication failed: modified, truncated or forged */
#define GW_MCP_SESSION_EEXPIRED (-103)     /* older than max_age, or issued beyond the clock skew ahead */
#define GW_MCP_SESSION_ESUBJECT (-104)     /* authentic, but bound to another JWT subject */
#define GW_MCP_SESSION_EROUTE (-105)       /* authentic, but issued for another route */

/* Static, secret-free text for a status (GW_OK and the codes above; "error" otherwise). */
const char *gw_mcp_session_strerror(int status);

/* ---- Keyring --------------------------------------------------------------------------------- */

/* An immutable, refcounted set of derived keys. The first seed's key seals, every key opens. Safe
 * to use from any number of threads at once: nothing in it changes after gw_mcp_session_keyring_new.
 * Each thread that seals or opens keeps its own AES-GCM contexts, keyed once per keyring and key
 * (about 1 KiB each); they are freed, key schedules wiped, at thread exit and on the thread's next
 * seal or open after any keyring is freed. The derived keys are wiped when the last ref goes. */
typedef struct gw_mcp_session_keyring_s gw_mcp_session_keyring_t;

/* Builds a keyring from seeds[0..n) (1 <= n <= GW_MCP_SESSION_MAX_SEEDS; each seed
 * GW_MCP_SESSION_SEED_MIN..SEED_MAX arbitrary bytes; the same seed twice is refused, as are two
 * seeds whose key ids collide). The seeds are not kept; the caller may wipe them right after.
 * Returns GW_OK with *out (refcount 1, the caller owns that reference), GW_EINVAL for bad seeds,
 * GW_ERROR when OpenSSL cannot derive or fetch AES-256-GCM. */
int gw_mcp_session_keyring_new(const gw_str_t *seeds, size_t n, gw_mcp_session_keyring_t **out);
gw_mcp_session_keyring_t *gw_mcp_session_keyring_ref(gw_mcp_session_keyring_t *kr);
void gw_mcp_session_keyring_unref(gw_mcp_session_keyring_t *kr); /* NULL is fine */

/* ---- Sessions -------------------------------------------------------------------------------- */

typedef struct {
    gw_str_t name;             /* the MCPRoute backendRef name, 1..GW_MCP_SESSION_MAX_NAME bytes */
    gw_str_t protocol_version; /* negotiated with this backend; may be empty */
    gw_str_t session_id;       /* the backend's Mcp-Session-Id; SECRET; empty for stateless servers */
} gw_mcp_session_backend_t;

/* A gateway session. For seal the caller fills it with slices it owns. From open every slice points
 * into storage_, owned by the struct and released (wiped first) by gw_mcp_session_free. */
typedef struct {
    gw_str_t route;            /* "<namespace>/<name>" of the MCPRoute; may be empty */
    gw_str_t subject;          /* JWT "sub" of the caller, any bytes; empty for anonymous access */
    gw_str_t protocol_version; /* negotiated with the client */
    int64_t issued_at;         /* unix seconds, >= 0 */
    gw_mcp_session_backend_t *backends;
    size_t n_backends;         /* 0..GW_MCP_SESSION_MAX_BACKENDS */
    void *storage_;            /* private: set by open, NULL for a caller-built session */
} gw_mcp_session_t;

/* Seals s with the keyring's first key and appends the id (base64url, visible ASCII only, at most
 * GW_MCP_SESSION_MAX_ID_LEN bytes) to out. GW_OK; GW_EINVAL for a negative issued_at, an empty or
 * duplicate backend name, a NULL slice base with a non-zero length; GW_TOOBIG past a limit above
 * or out's cap (out is then unchanged); GW_ERROR when RAND_bytes or the cipher fails. The id is a
 * SECRET (it holds backend session ids, and presenting it resumes the session): never log it. */
int gw_mcp_session_seal(const gw_mcp_session_keyring_t *kr, const gw_mcp_session_t *s, gw_buf_t *out);

/* What the request presenting the id must match. */
typedef struct {
    gw_str_t route;   /* the route serving this request: exact bytes */
    gw_str_t subject; /* the verified JWT subject of this request, empty when anonymous: exact bytes,
                         so an anonymous session refuses a subject and the other way round */
    int64_t now;      /* unix seconds */
    int64_t max_age;  /* seconds, > 0: a session issued_at + max_age <= now is expired */
} gw_mcp_session_expect_t;

/* Opens an id (the raw header value) and checks it against exp. Never crashes and never reads
 * outside id, whatever the bytes. On GW_OK *out holds the session (free it with
 * gw_mcp_session_free); on any other status *out is zeroed and holds nothing. Statuses, checked in
 * this order: GW_EINVAL (NULL arguments, max_age <= 0), GW_MCP_SESSION_EMALFORMED,
 * GW_MCP_SESSION_EUNKNOWN_KEY, GW_MCP_SESSION_ETAMPERED, GW_MCP_SESSION_EROUTE,
 * GW_MCP_SESSION_ESUBJECT, GW_MCP_SESSION_EEXPIRED, GW_ERROR (OpenSSL). */
int gw_mcp_session_open(const gw_mcp_session_keyring_t *kr, gw_str_t id, const gw_mcp_session_expect_t *exp,
                        gw_mcp_session_t *out);

/* Wipes and frees what open stored in s, then zeroes s. Safe on a zeroed struct and twice. Does
 * nothing to the slices of a caller-built session (storage_ == NULL) except zero the struct. */
void gw_mcp_session_free(gw_mcp_session_t *s);

#endif
