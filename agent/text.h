/*
 * Small helpers for text the agent did not write itself and puts into
 * messages: a detail from a probe, a key from a YAML document. Messages are
 * built in fixed buffers and end up in JSON, Kubernetes Events and error
 * lines, so a cut must not leave half a UTF-8 sequence behind, and text
 * quoted from outside input must stay on one line and be short. The module
 * is pure and allocates nothing; every function writes only into memory the
 * caller hands it.
 */
#pragma once

#include <stddef.h>

/* Outside text quoted by text_shown() is cut short past this many bytes. */
#define TEXT_SHOWN_MAX_BYTES 64
/* A buffer for any text_shown() result: room for every byte up to the limit
 * as \xNN. */
#define TEXT_SHOWN_SIZE (TEXT_SHOWN_MAX_BYTES * 4 + 8)

/* Cut s, whose first len bytes are the text, so that it does not end inside
 * a UTF-8 sequence: when the last sequence is incomplete, a NUL is written
 * over its lead byte (any byte from 0xF0 up counts as a 4-byte lead).
 * Complete text and stray continuation bytes are left alone; s[len] and
 * beyond are never touched. */
void text_utf8_trim_tail(char *s, size_t len);

/* Outside text made safe to put in a one-line message: printable ASCII is
 * kept, '"' and '\\' are escaped with a backslash, other bytes become \xNN,
 * and past TEXT_SHOWN_MAX_BYTES the rest becomes "...". Writes into out
 * (size >= 1 bytes; a buffer smaller than TEXT_SHOWN_SIZE gets a shorter
 * result) and returns it. */
const char *text_shown(const char *s, char *out, size_t size);
