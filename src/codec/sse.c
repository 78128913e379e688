/* Incremental Server-Sent Events parser (sse.h), following the WHATWG "event stream
 * interpretation": lines end in CRLF, LF or CR (a CR at the end of one chunk pairs with an LF at the
 * start of the next), a blank line dispatches. Lines are parsed in place when a chunk holds them
 * whole; only a line split across chunks is copied. */
#include "codec/sse.h"

static const unsigned char bom[3] = {0xef, 0xbb, 0xbf};

void gw_sse_parser_init(gw_sse_parser_t *p, size_t max_event)
{
    memset(p, 0, sizeof(*p));
    p->max_event = max_event ? max_event : GW_SSE_DEFAULT_MAX_EVENT;
    p->retry_ms = -1;
    gw_buf_init(&p->line, p->max_event);
    gw_buf_init(&p->data, p->max_event);
    gw_buf_init(&p->event, p->max_event);
    gw_buf_init(&p->id, p->max_event);
}

void gw_sse_parser_free(gw_sse_parser_t *p)
{
    gw_buf_free(&p->line);
    gw_buf_free(&p->data);
    gw_buf_free(&p->event);
    gw_buf_free(&p->id);
}

bool gw_sse_has_partial(const gw_sse_parser_t *p)
{
    return p->line.len > 0 || p->has_data || p->event.len > 0;
}

static int dispatch(gw_sse_parser_t *p, gw_sse_event_cb cb, void *ud)
{
    /* The spec dispatches only when data was seen; an event name alone is reported too (sse.h). */
    if (!p->has_data && p->event.len == 0)
        return GW_OK;
    gw_sse_event_t ev = {
        .event = gw_buf_str(&p->event),
        .data = gw_buf_str(&p->data),
        .id = gw_buf_str(&p->id),
        .has_id = p->has_id,
    };
    if (ev.event.base == NULL)
        ev.event = GW_STR("");
    if (ev.data.base == NULL)
        ev.data = GW_STR("");
    if (ev.id.base == NULL)
        ev.id = GW_STR("");
    int rc = cb(ud, &ev);
    /* The last event id persists across events, as the spec's "last event ID buffer" does. */
    gw_buf_reset(&p->data);
    gw_buf_reset(&p->event);
    p->has_data = false;
    return rc;
}

static int set_buf(gw_buf_t *b, const char *v, size_t n)
{
    gw_buf_reset(b);
    return gw_buf_append(b, v, n);
}

/* One complete line, without its terminator. */
static int process_line(gw_sse_parser_t *p, const char *s, size_t n, gw_sse_event_cb cb, void *ud)
{
    if (n == 0)
        return dispatch(p, cb, ud);
    if (s[0] == ':')
        return GW_OK; /* comment (keep-alives) */
    const char *colon = memchr(s, ':', n);
    size_t flen = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    size_t vlen = (size_t)(s + n - v);
    if (vlen && *v == ' ') {
        v++;
        vlen--;
    }
    gw_str_t field = gw_str(s, flen);
    if (gw_str_eq_lit(field, "data")) {
        if (p->has_data && gw_buf_append_byte(&p->data, '\n') != GW_OK)
            return GW_TOOBIG;
        if (gw_buf_append(&p->data, v, vlen) != GW_OK)
            return GW_TOOBIG;
        p->has_data = true;
        return GW_OK;
    }
    if (gw_str_eq_lit(field, "event"))
        return set_buf(&p->event, v, vlen) == GW_OK ? GW_OK : GW_TOOBIG;
    if (gw_str_eq_lit(field, "id")) {
        if (vlen && memchr(v, '\0', vlen))
            return GW_OK; /* the spec ignores ids containing NUL */
        if (set_buf(&p->id, v, vlen) != GW_OK)
            return GW_TOOBIG;
        p->has_id = true;
        return GW_OK;
    }
    if (gw_str_eq_lit(field, "retry")) {
        /* no events come of it; a caller that reconnects (the MCP polling pattern) reads it */
        int64_t ms = 0;
        if (vlen == 0)
            return GW_OK;
        for (size_t i = 0; i < vlen; i++) {
            if (v[i] < '0' || v[i] > '9')
                return GW_OK; /* the spec ignores the field then */
            if (ms < GW_SSE_MAX_RETRY_MS)
                ms = ms * 10 + (v[i] - '0');
        }
        p->retry_ms = ms < GW_SSE_MAX_RETRY_MS ? ms : GW_SSE_MAX_RETRY_MS;
        return GW_OK;
    }
    return GW_OK; /* unknown fields are ignored */
}

/* The limit covers the line being read plus the data accumulated for the event. The data only
 * changes when a line completes, so checking both when a piece of line arrives gives the same
 * verdict however the bytes are chunked. */
static bool line_fits(const gw_sse_parser_t *p, size_t more)
{
    return p->data.len <= p->max_event && p->line.len + more <= p->max_event - p->data.len;
}

/* Finishes a line whose tail is [s, s+n): joins it with a carried partial line when there is one. */
static int finish_line(gw_sse_parser_t *p, const char *s, size_t n, gw_sse_event_cb cb, void *ud)
{
    if (!line_fits(p, n))
        return GW_TOOBIG;
    if (p->line.len == 0)
        return process_line(p, s, n, cb, ud);
    if (gw_buf_append(&p->line, s, n) != GW_OK)
        return GW_TOOBIG;
    int rc = process_line(p, p->line.data, p->line.len, cb, ud);
    gw_buf_reset(&p->line);
    return rc;
}

int gw_sse_feed(gw_sse_parser_t *p, const char *buf, size_t n, gw_sse_event_cb cb, void *ud)
{
    if (n == 0)
        return GW_OK;
    const char *s = buf, *end = buf + n;
    if (p->last_was_cr) {
        p->last_was_cr = false;
        if (*s == '\n')
            s++;
    }
    /* A leading BOM is dropped once; its bytes may arrive one per chunk, so they wait in `line`. */
    while (!p->bom_checked && s < end) {
        if ((unsigned char)*s != bom[p->line.len]) {
            p->bom_checked = true;
            break;
        }
        if (!line_fits(p, 1) || gw_buf_append(&p->line, s++, 1) != GW_OK)
            return GW_TOOBIG;
        if (p->line.len == sizeof(bom)) {
            gw_buf_reset(&p->line);
            p->bom_checked = true;
        }
    }
    /* Next CR and LF are looked up once each and reused until passed, so the scan stays linear
     * whatever mix of terminators the stream uses. */
    const char *cr = NULL, *lf = NULL;
    bool cr_none = false, lf_none = false;
    while (s < end) {
        if (!cr_none && (cr == NULL || cr < s) && (cr = memchr(s, '\r', (size_t)(end - s))) == NULL)
            cr_none = true;
        if (!lf_none && (lf == NULL || lf < s) && (lf = memchr(s, '\n', (size_t)(end - s))) == NULL)
            lf_none = true;
        const char *eol = cr_none ? (lf_none ? NULL : lf) : (lf_none || cr < lf ? cr : lf);
        if (eol == NULL)
            break;
        int rc = finish_line(p, s, (size_t)(eol - s), cb, ud);
        if (rc != GW_OK)
            return rc;
        s = eol + 1;
        if (*eol == '\r') {
            if (s == end)
                p->last_was_cr = true;
            else if (*s == '\n')
                s++;
        }
    }
    if (s < end && (!line_fits(p, (size_t)(end - s)) || gw_buf_append(&p->line, s, (size_t)(end - s)) != GW_OK))
        return GW_TOOBIG;
    return GW_OK;
}
