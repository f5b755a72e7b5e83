/*
 * libFuzzer target for the tds codec: arbitrary bytes, as a server could
 * send them, go through the reply reader in chunks whose sizes the input
 * itself chooses, and a finished message through the PRELOGIN parser; the
 * input is also parsed directly as a payload. Besides the sanitizers, it
 * checks the reader's promises: never more consumed than given, payload
 * under its cap, a stopped reader stays stopped, and a parse either fails
 * or yields a version that formats.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tds_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse(const uint8_t *p, size_t n) {
    struct tds_prelogin_reply reply;
    const char *why = NULL;
    if (tds_prelogin_parse(p, n, &reply, &why) < 0) {
        if (!why)
            abort();
        return;
    }
    char v[24];
    if (tds_version_format(&reply.version, v, sizeof(v)) < 0)
        abort();
    if (reply.encryption < -1 || reply.encryption > 255)
        abort();
    (void)tds_encryption_name(reply.encryption);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    parse(data, size);
    if (size == 0)
        return 0;

    /* The first byte seeds the chunk sizes: 1..16 bytes, varying. */
    uint8_t seed = data[0];
    const uint8_t *p = data + 1;
    size_t left = size - 1;

    struct tds_reader rd;
    tds_reader_init(&rd);
    int st = TDS_READ_MORE;
    while (left > 0 && st == TDS_READ_MORE) {
        size_t chunk = (size_t)(seed & 0x0f) + 1;
        seed = (uint8_t)(seed * 37 + 11);
        if (chunk > left)
            chunk = left;
        size_t used = 0;
        st = tds_reader_feed(&rd, p, chunk, &used);
        if (used > chunk || (st == TDS_READ_MORE && used != chunk))
            abort();
        if (rd.payload.len > TDS_REPLY_MAX_PAYLOAD_BYTES || rd.packets > TDS_REPLY_MAX_PACKETS)
            abort();
        p += used;
        left -= used;
    }
    if (st != TDS_READ_MORE) {
        size_t used = 1;
        if (tds_reader_feed(&rd, data, size, &used) != st || used != 0)
            abort();
    }
    if (st < 0 && rd.error[0] == '\0')
        abort();
    if (st == TDS_READ_DONE)
        parse(tds_reader_payload(&rd), tds_reader_payload_len(&rd));
    tds_reader_free(&rd);
    return 0;
}
