/*
 * A growable byte buffer for text the agent renders (metrics, JSON, HTTP
 * responses) and bytes it accumulates from the network. It owns its storage;
 * buf_init() does not allocate, buf_free() releases and resets. Appends
 * report -ENOMEM and leave the buffer as it was, so a failed render never
 * leaves half a line behind. A hard cap (max_bytes, 0 = none) bounds memory
 * for buffers fed by outside input.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data; /* NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
    size_t max_bytes; /* 0: unbounded; else appends past it fail with -E2BIG */
};

void buf_init(struct buf *b, size_t max_bytes);
void buf_free(struct buf *b);
void buf_reset(struct buf *b); /* len = 0, keeps storage */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Drop the first n bytes (consumed input). */
void buf_consume(struct buf *b, size_t n);
/* Hand the storage to the caller (a new allocation, NUL-terminated); the buffer is reset. */
char *buf_steal(struct buf *b);
