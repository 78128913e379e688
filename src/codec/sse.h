/* Incremental Server-Sent Events parser (WHATWG "event stream interpretation"): bytes arrive in
 * arbitrary chunks; complete events are reported through a callback. Pure, no I/O. */
#ifndef GW_CODEC_SSE_H
#define GW_CODEC_SSE_H

#include "core/buf.h"
#include "core/gw.h"

#define GW_SSE_DEFAULT_MAX_EVENT (4u << 20) /* 4 MiB per event (line + accumulated data) */

typedef struct {
    gw_str_t event; /* value of the last "event:" field, empty when none */
    gw_str_t data;  /* "data:" lines joined with '\n' (no trailing newline) */
    gw_str_t id;    /* value of the last "id:" field, empty when none */
    bool has_id;
} gw_sse_event_t;

/* Return GW_OK to continue; any other value stops gw_sse_feed, which returns it. The slices are
 * valid only during the call. */
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
} gw_sse_parser_t;

void gw_sse_parser_init(gw_sse_parser_t *p, size_t max_event);
void gw_sse_parser_free(gw_sse_parser_t *p);
/* Feeds n bytes. Returns GW_OK, GW_TOOBIG when a line or an event exceeds max_event (the parser
 * must then be discarded), or the callback's non-GW_OK value. Events are dispatched on a blank
 * line, as the spec says; an event without any data: field is still reported (data empty) when
 * it carried an event: field, so "event: ping" blocks are visible. */
int gw_sse_feed(gw_sse_parser_t *p, const char *buf, size_t n, gw_sse_event_cb cb, void *ud);
/* At end of stream: true when bytes of an unfinished event are pending (the stream was cut). */
bool gw_sse_has_partial(const gw_sse_parser_t *p);

#endif
