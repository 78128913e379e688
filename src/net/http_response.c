/* Incremental HTTP/1.1 response parser (see http_response.h). A head that arrives whole is parsed
 * where it lies and handed to on_head without a copy; a head split across reads is gathered in one
 * capped buffer and parsed line by line as LFs arrive. Every 1xx head counts against the same cap,
 * and parsing stops exactly at the end of the response so that trailing bytes are never taken for
 * the next. */
#include "net/http_response.h"

enum { ST_HEAD = 0, ST_BODY_LENGTH, ST_BODY_CHUNKED, ST_BODY_EOF, ST_DONE, ST_ERROR };

#define DEFAULT_MAX_HEAD (64 * 1024)

static int fail(gw_http_resp_t *r, int err, const char *detail)
{
    if (r->err == 0) {
        r->err = err;
        r->detail = detail;
    }
    r->state = ST_ERROR;
    return r->err;
}

/* The available bytes s[0..n) (n <= 12) can start "HTTP/" DIGIT "." DIGIT SP 3DIGIT. */
static bool status_prefix_ok(const char *s, size_t n)
{
    static const char pat[] = "HTTP/0.0 000";
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (pat[k] == '0' ? (unsigned)(c - '0') > 9u : c != (unsigned char)pat[k])
            return false;
    }
    return true;
}

/* Parses the status line at buf[0..len): GW_OK with r->line_pos after it, GW_AGAIN when it is
 * incomplete, or a failure. */
static int parse_status_line(gw_http_resp_t *r, const char *buf, size_t len)
{
    bool fast = len >= 12 && (memcmp(buf, "HTTP/1.1 ", 9) == 0 || memcmp(buf, "HTTP/1.0 ", 9) == 0) &&
                (unsigned)(buf[9] - '0') < 10u && (unsigned)(buf[10] - '0') < 10u && (unsigned)(buf[11] - '0') < 10u;
    if (!fast && !status_prefix_ok(buf, GW_MIN(len, (size_t)12)))
        return fail(r, GW_EINVAL,
                    status_prefix_ok(buf, GW_MIN(len, (size_t)9)) ? "invalid status code" : "invalid status line");
    if (len < 13)
        return GW_AGAIN;
    if (buf[5] != '1')
        return fail(r, GW_EINVAL, "unsupported HTTP version");
    size_t i = 12;
    if (buf[12] == ' ') {
        /* The reason phrase: any bytes but controls (HTAB allowed); it is not kept. */
        for (i = 13;; i++) {
            i = gw_http_scan_ctl(buf, i, len);
            if (i >= len)
                return GW_AGAIN;
            if (buf[i] != '\t')
                break;
        }
    }
    size_t end;
    if (buf[i] == '\n') {
        end = i + 1;
    } else if (buf[i] == '\r') {
        if (i + 1 >= len)
            return GW_AGAIN;
        if (buf[i + 1] != '\n')
            return fail(r, GW_EINVAL, "CR not followed by LF");
        end = i + 2;
    } else {
        return fail(r, GW_EINVAL, i == 12 ? "invalid status code" : "control character in the reason phrase");
    }
    r->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    r->http_minor = (uint8_t)(buf[7] - '0');
    r->line_pos = (uint32_t)end;
    r->start_done = true;
    return GW_OK;
}

/* Parses as much of the head in buf[0..len) as is there, from r->line_pos on: GW_DONE (the head
 * ends at r->line_pos), GW_AGAIN (no LF in buf[line_pos..len)) or a failure. */
static int parse_head(gw_http_resp_t *r, const char *buf, size_t len)
{
    if (!r->start_done) {
        int rc = parse_status_line(r, buf, len);
        if (rc != GW_OK)
            return rc;
    }
    size_t pos = r->line_pos;
    const char *why = NULL;
    int rc = gw_http_parse_fields(buf, len, &pos, r->headers, &r->n_fields, GW_HTTP_MAX_HEADERS, r->cand, &r->n_cand,
                                  &why);
    r->line_pos = (uint32_t)pos;
    if (rc == GW_EINVAL)
        return fail(r, GW_EINVAL, why);
    if (rc == GW_TOOBIG)
        return fail(r, GW_TOOBIG, "too many response headers");
    return rc;
}

static void next_head(gw_http_resp_t *r)
{
    r->start_done = false;
    r->line_pos = 0;
    r->n_fields = 0;
    r->n_cand = 0;
}

/* A head buf[0..head_len) is complete (its bytes already counted): skips a 1xx, or decides the
 * framing of the final response and hands its head over. */
static int head_done(gw_http_resp_t *r, const char *buf, size_t head_len)
{
    int status = r->status;
    if (status < 100)
        return fail(r, GW_EINVAL, "invalid status code");
    if (status == 101) /* would switch protocols, which we never ask for */
        return fail(r, GW_EINVAL, "unexpected 101 response");
    if (status < 200) {
        next_head(r);
        return GW_OK;
    }
    size_t n = r->n_fields;
    gw_http_framing_t fr;
    const char *why = NULL;
    if (gw_http_framing_read(r->headers, r->cand, r->n_cand, &fr, &why) != GW_OK)
        return fail(r, GW_EINVAL, why);
    r->keep_alive = !fr.close && (r->http_minor >= 1 || fr.keep_alive);
    int next;
    if (r->no_body || status == 204 || status == 304) {
        next = ST_DONE;
    } else if (fr.te != GW_HTTP_TE_NONE) {
        if (fr.te != GW_HTTP_TE_CHUNKED)
            return fail(r, GW_EINVAL, "unsupported transfer-encoding");
        if (r->http_minor == 0) /* RFC 9112 6.1: framing in doubt, do not reuse the connection */
            r->keep_alive = false;
        gw_http_chunked_init(&r->chunked, r->max_head - r->head_bytes, GW_HTTP_MAX_HEADERS - n);
        next = ST_BODY_CHUNKED;
    } else if (fr.has_content_length) {
        r->remaining = fr.content_length;
        next = fr.content_length ? ST_BODY_LENGTH : ST_DONE;
    } else {
        next = ST_BODY_EOF;
        r->keep_alive = false;
    }
    r->state = next;
    if (r->cbs && r->cbs->on_head && r->cbs->on_head(r->ud, status, r->headers, n) != GW_OK)
        return fail(r, GW_ERROR, "stopped by the head callback");
    return GW_OK;
}

/* Head bytes from p[*off..n). GW_OK: a head was complete and *off is past it (r->state says what
 * comes next). GW_AGAIN: all bytes went into a pending head. Otherwise a failure. */
static int feed_head(gw_http_resp_t *r, const char *p, size_t n, size_t *off)
{
    size_t cap_left = r->max_head - r->head_bytes;
    if (r->head.len == 0) {
        size_t i = *off;
        while (i < n && (p[i] == '\r' || p[i] == '\n'))
            i++;
        size_t skipped = i - *off;
        if (skipped > cap_left)
            return fail(r, GW_TOOBIG, "response head too large");
        r->head_bytes += skipped;
        cap_left -= skipped;
        *off = i;
        if (i == n)
            return GW_AGAIN;
        /* Whole heads are parsed where they lie. */
        int rc = parse_head(r, p + i, GW_MIN(n - i, cap_left));
        if (rc == GW_DONE) {
            size_t head_len = r->line_pos;
            r->head_bytes += head_len;
            *off = i + head_len;
            return head_done(r, p + i, head_len);
        }
        if (rc != GW_AGAIN)
            return rc;
        if (n - i >= cap_left)
            return fail(r, GW_TOOBIG, "response head too large");
        gw_buf_append(&r->head, p + i, n - i);
        for (size_t f = 0; f < r->n_fields; f++) { /* the fields parsed so far, in the copy */
            r->headers[f].name.base = r->head.data + (r->headers[f].name.base - (p + i));
            r->headers[f].value.base = r->head.data + (r->headers[f].value.base - (p + i));
        }
        *off = n;
        return GW_AGAIN;
    }
    /* A head in pieces: it is parsed further only once a new LF completes a line, and from its
     * start again when the buffer moved (the parsed fields point into it; the buffer doubles, so
     * this stays linear). */
    size_t old = r->head.len;
    size_t k = GW_MIN(n - *off, cap_left - old);
    uintptr_t was = (uintptr_t)r->head.data;
    if (gw_buf_append(&r->head, p + *off, k) != GW_OK)
        return fail(r, GW_TOOBIG, "response head too large");
    int rc = GW_AGAIN;
    if ((uintptr_t)r->head.data != was) {
        next_head(r);
        rc = parse_head(r, r->head.data, r->head.len);
    } else if (memchr(r->head.data + old, '\n', k) != NULL) {
        rc = parse_head(r, r->head.data, r->head.len);
    }
    if (rc == GW_DONE) {
        size_t head_len = r->line_pos;
        r->head_bytes += head_len;
        *off += head_len - old;
        rc = head_done(r, r->head.data, head_len);
        gw_buf_reset(&r->head);
        return rc;
    }
    if (rc != GW_AGAIN)
        return rc;
    if (r->head.len >= cap_left)
        return fail(r, GW_TOOBIG, "response head too large");
    *off += k;
    return GW_AGAIN;
}

void gw_http_resp_init(gw_http_resp_t *r, size_t max_head)
{
    memset(r, 0, sizeof(*r));
    if (max_head == 0)
        max_head = DEFAULT_MAX_HEAD;
    r->max_head = GW_MIN(max_head, (size_t)GW_HTTP_HEAD_LIMIT);
    gw_buf_init(&r->head, r->max_head);
    r->state = ST_ERROR;
    r->err = GW_EINVAL;
    r->detail = "parser not started";
}

void gw_http_resp_start(gw_http_resp_t *r, const gw_http_resp_cbs_t *cbs, void *ud)
{
    r->cbs = cbs;
    r->ud = ud;
    gw_buf_reset(&r->head);
    r->head_bytes = 0;
    r->remaining = 0;
    r->detail = NULL;
    r->state = ST_HEAD;
    r->err = 0;
    r->status = 0;
    r->http_minor = 0;
    next_head(r);
    r->started = false;
    r->keep_alive = false;
    r->no_body = false;
}

void gw_http_resp_free(gw_http_resp_t *r)
{
    gw_buf_free(&r->head);
}

int gw_http_resp_feed(gw_http_resp_t *r, const char *p, size_t n, size_t *used)
{
    if (used)
        *used = 0;
    if (r->state == ST_DONE)
        return GW_DONE;
    if (r->state == ST_ERROR)
        return r->err;
    if (n == 0)
        return GW_OK;
    r->started = true;
    size_t off = 0;
    while (off < n && r->state != ST_DONE) {
        int rc;
        switch (r->state) {
        case ST_HEAD:
            rc = feed_head(r, p, n, &off);
            if (rc != GW_OK && rc != GW_AGAIN)
                return rc;
            break;
        case ST_BODY_LENGTH: {
            size_t take = n - off;
            if (take > r->remaining)
                take = (size_t)r->remaining;
            r->remaining -= take;
            if (r->remaining == 0)
                r->state = ST_DONE;
            if (r->cbs && r->cbs->on_body && r->cbs->on_body(r->ud, p + off, take) != GW_OK)
                return fail(r, GW_ERROR, "stopped by the body callback");
            off += take;
            break;
        }
        case ST_BODY_CHUNKED: {
            size_t u = 0;
            gw_str_t piece;
            rc = gw_http_chunked_decode(&r->chunked, p + off, n - off, &u, &piece);
            off += u;
            if (rc == GW_OK) {
                if (r->cbs && r->cbs->on_body && r->cbs->on_body(r->ud, piece.base, piece.len) != GW_OK)
                    return fail(r, GW_ERROR, "stopped by the body callback");
            } else if (rc == GW_DONE) {
                r->state = ST_DONE;
            } else if (rc != GW_AGAIN) {
                return fail(r, rc == GW_TOOBIG ? GW_TOOBIG : GW_EINVAL, r->chunked.why);
            }
            break;
        }
        case ST_BODY_EOF:
            if (r->cbs && r->cbs->on_body && r->cbs->on_body(r->ud, p + off, n - off) != GW_OK)
                return fail(r, GW_ERROR, "stopped by the body callback");
            off = n;
            break;
        default:
            return fail(r, GW_EINVAL, "response parser in a bad state");
        }
    }
    if (r->state == ST_DONE) {
        if (used)
            *used = off;
        return GW_DONE;
    }
    if (used)
        *used = n;
    return GW_OK;
}

int gw_http_resp_eof(gw_http_resp_t *r)
{
    if (r->state == ST_DONE)
        return GW_DONE;
    if (r->state == ST_ERROR)
        return r->err;
    if (!r->started)
        return fail(r, GW_EINVAL, "connection closed before the response");
    if (r->state == ST_BODY_EOF) {
        r->state = ST_DONE;
        r->keep_alive = false;
        return GW_DONE;
    }
    return fail(r, GW_EINVAL, "response truncated by connection close");
}
