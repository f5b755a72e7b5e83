/*
 * Helpers for outside text in messages (see text.h). They were written twice
 * before this module existed: health and policy each trimmed their bounded
 * messages at a UTF-8 boundary, and the kubeconfig loader and the YAML reader
 * both quote keys and values into errors. One copy keeps the rules the same
 * everywhere a message is cut or quoted. Nothing here allocates or logs.
 */
#include "text.h"

#include <stdio.h>
#include <string.h>

void text_utf8_trim_tail(char *s, size_t len) {
    size_t lead = len;
    size_t back = 0;
    unsigned char c;
    size_t need;

    /* Walk back over continuation bytes (10xxxxxx) to the sequence's lead. */
    while (lead > 0 && back < 4 && ((unsigned char)s[lead - 1] & 0xC0) == 0x80) {
        lead--;
        back++;
    }
    if (lead == 0)
        return;
    c = (unsigned char)s[lead - 1];
    need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (need > 1 && back + 1 < need)
        s[lead - 1] = '\0';
}

const char *text_shown(const char *s, char *out, size_t size) {
    size_t n = 0;

    for (size_t i = 0; s[i] && n + 8 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= TEXT_SHOWN_MAX_BYTES) {
            memcpy(out + n, "...", 3);
            n += 3;
            break;
        }
        if (c == '"' || c == '\\')
            n += (size_t)snprintf(out + n, size - n, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            n += (size_t)snprintf(out + n, size - n, "\\x%02x", c);
        else
            out[n++] = (char)c;
    }
    out[n] = '\0';
    return out;
}
