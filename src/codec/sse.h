/* Incremental Server-Sent Events parser (WHATWG "event stream interpretation"): bytes arrive in
 * arbitrary chunks; complete events are reported through a callback. Pure, no I/O. */
#ifndef GW_CODEC_SSE_H
#define GW_CODEC_SSE_H

#include "core/buf.h"
#include "core/gw.h"

#define GW_SSE_DEFAULT_MAX_EVENT (4u << 20) /* 4 MiB per event (line + accumulated data) */
/* A retry: value above this is taken as this (a day): it only tells a reconnecting client how long
 * to wait, and the caller bounds that wait anyway. */
#define GW_SSE_MAX_RETRY_MS (24ll * 3600 * 1000)

typedef struct {
    gw_str_t event; /* value of the last "event:" field, empty when none */
    gw_str_t data;  /* "data:" lines joined with '\n' (no trailing newline) */
    gw_str_t id;    /* value of the last "id:" field, empty when none; like the spec's last event ID
                     * it persists across events until another id: field changes it */
    bool has_id;    /* an id: field has been seen in the stream */
} gw_sse_event_t;

/* Return GW_OK to continue; any other value stops gw_sse_feed, which returns it (the rest of that
 * chunk is not parsed). The slices are valid only during the call and never NULL. */
typedef int (*gw_sse_event_cb)(void *ud, const gw_sse_event_t *ev);

typedef struct {
    gw_buf_t line;  /* partial line carried across feeds */
    gw_buf_t data;  /* data of the event being built */
    gw_buf_t event; /* event name of the event being built */
    gw_buf_t id;
    bool has_id;
    bool has_data;    /* at least one data: field seen for the current event */
    bool bom_checked; /* a leading UTF-8 BOM is skipped once */
    bool last_was_cr; /* previous chunk ended in '\r' (a following '\n' belongs to it) */
    size_t max_event;
    int64_t retry_ms; /* the stream's reconnection time: the last valid "retry:" field (ASCII
                       * digits only, as the spec says), -1 before any; read it after a feed */
} gw_sse_parser_t;

/* max_event 0 means GW_SSE_DEFAULT_MAX_EVENT. */
void gw_sse_parser_init(gw_sse_parser_t *p, size_t max_event);
void gw_sse_parser_free(gw_sse_parser_t *p);
/* Feeds n bytes. Returns GW_OK, GW_TOOBIG when the line being read plus the data accumulated for
 * the current event exceed max_event (whatever the chunking; the parser must then be discarded),
 * or the callback's non-GW_OK value. Events are dispatched on a blank line, as the spec says; an
 * event without any data: field is still reported (data empty) when it carried an event: field,
 * so "event: ping" blocks are visible. Bytes are passed through as they are (no U+FFFD
 * replacement): payloads are validated by whoever parses them. */
int gw_sse_feed(gw_sse_parser_t *p, const char *buf, size_t n, gw_sse_event_cb cb, void *ud);
/* At end of stream: true when bytes of an unfinished event are pending (the stream was cut). */
bool gw_sse_has_partial(const gw_sse_parser_t *p);

#endif
