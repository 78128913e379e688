/* UTF-8 sequence checking shared by everything that writes untrusted text into a structured
 * output (access-log JSON, Prometheus label values): valid sequences pass, anything else is
 * replaced by the caller. */
#ifndef GW_CORE_UTF8_H
#define GW_CORE_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at p (1..4) given n >= 1 bytes available, or 0 when it is not
 * one (overlong forms, surrogates, code points above U+10FFFF and truncated sequences are all
 * invalid). */
static inline size_t gw_utf8_seq_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0))
            return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

#endif
