/*
 * A pure codec for the one MS-TDS exchange the tds probe makes: the client's
 * PRELOGIN packet (MS-TDS 2.2.6.5) and the server's PRELOGIN reply. It does
 * no I/O and never logs; the probe owns the socket and feeds bytes in. The
 * reply reader accepts arbitrary chunks, reassembles the TDS packets of one
 * message up to the packet with the EOM status bit, and stops with a bounded
 * amount of memory whatever the peer sends (packet size, packet count and
 * total payload are capped). It also recognises a TLS record where a TDS
 * packet was expected, the answer of a TDS 8 "strict" server. The caller
 * owns every struct here; only struct tds_reader holds an allocation, which
 * tds_reader_free() releases.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define TDS_HEADER_BYTES            8
#define TDS_PACKET_MAX_BYTES        32768 /* largest packet size a server may negotiate */
#define TDS_REPLY_MAX_PAYLOAD_BYTES 65536 /* a PRELOGIN reply is ~50 bytes; far above */
#define TDS_REPLY_MAX_PACKETS       64
/* Enough for every option tds_prelogin_build() can write. */
#define TDS_PRELOGIN_MAX_BYTES 64

#define TDS_PACKET_TABULAR_RESULT 0x04
#define TDS_PACKET_PRELOGIN       0x12
#define TDS_STATUS_EOM            0x01

#define TDS_PL_VERSION    0x00
#define TDS_PL_ENCRYPTION 0x01
#define TDS_PL_INSTOPT    0x02
#define TDS_PL_THREADID   0x03
#define TDS_PL_MARS       0x04
#define TDS_PL_TERMINATOR 0xff

/* The PRELOGIN ENCRYPTION byte. */
#define TDS_ENCRYPT_OFF             0x00
#define TDS_ENCRYPT_ON              0x01
#define TDS_ENCRYPT_NOT_SUP         0x02
#define TDS_ENCRYPT_REQ             0x03
#define TDS_ENCRYPT_CLIENT_CERT_OFF 0x80
#define TDS_ENCRYPT_CLIENT_CERT_ON  0x81
#define TDS_ENCRYPT_CLIENT_CERT_REQ 0x83

/* VERSION option: UL_VERSION (major, minor, build big-endian) and US_SUBBUILD
 * (little-endian, as SQL Server, SqlClient and Wireshark have it). */
struct tds_version {
    uint8_t major;
    uint8_t minor;
    uint16_t build;
    uint16_t subbuild;
};

/* What the client announces. VERSION and ENCRYPTION are always sent, VERSION
 * first as the specification requires. */
struct tds_prelogin_request {
    struct tds_version version; /* the client's (driver) version */
    uint8_t encryption;         /* TDS_ENCRYPT_NOT_SUP for a client without TLS */
    bool send_threadid;
    uint32_t threadid;
    bool send_mars; /* MARS off (0) */
};

/* Bytes tds_prelogin_build() writes for req (header included). */
size_t tds_prelogin_size(const struct tds_prelogin_request *req);

/* Write the PRELOGIN packet (header, option table, data) into out, which has
 * room for out_bytes. Returns the packet length, or -ENOBUFS when it does not
 * fit (out is then untouched). */
int tds_prelogin_build(const struct tds_prelogin_request *req, uint8_t *out, size_t out_bytes);

/* Reader states; a negative value is an -errno protocol error:
 *   -EBADMSG  a packet length below the header size
 *   -EMSGSIZE a packet above TDS_PACKET_MAX_BYTES, too many packets, or too
 *             much payload
 *   -EPROTO   a packet that is not a tabular result (0x04) */
enum tds_read_state {
    TDS_READ_MORE = 0, /* feed more bytes */
    TDS_READ_DONE = 1, /* a whole message is in the payload */
    TDS_READ_TLS = 2,  /* the peer answered with a TLS record */
};

struct tds_reader {
    struct buf payload; /* the message's payloads, concatenated; owned */
    uint8_t header[TDS_HEADER_BYTES];
    size_t header_len;  /* header bytes of the current packet seen so far */
    size_t packet_left; /* payload bytes of the current packet still to come */
    unsigned packets;   /* packets whose header was complete */
    bool last;          /* the current packet carries EOM */
    int state;          /* enum tds_read_state or -errno */
    char error[80];     /* what went wrong when state < 0 */
};

/* Does not allocate. */
void tds_reader_init(struct tds_reader *rd);
/* Release the payload; the reader may be initialised again. */
void tds_reader_free(struct tds_reader *rd);

/* Feed len bytes (borrowed). Returns the new state: TDS_READ_MORE when every
 * byte was used and more are needed, TDS_READ_DONE or TDS_READ_TLS when the
 * reader has stopped, or -errno with rd->error set. *consumed (may be NULL)
 * says how many bytes were used; bytes after the end of the message are not.
 * Once stopped, the reader keeps its state and consumes nothing. */
int tds_reader_feed(struct tds_reader *rd, const void *data, size_t len, size_t *consumed);

/* The message payload (borrowed from rd), valid once the state is DONE. */
static inline const uint8_t *tds_reader_payload(const struct tds_reader *rd) {
    return (const uint8_t *)rd->payload.data;
}
static inline size_t tds_reader_payload_len(const struct tds_reader *rd) {
    return rd->payload.len;
}

/* What a PRELOGIN reply says. */
struct tds_prelogin_reply {
    struct tds_version version;
    int encryption; /* the ENCRYPTION byte, -1 when absent */
    int mars;       /* the MARS byte, -1 when absent */
};

/* Parse a PRELOGIN reply payload (without TDS header). Returns 0, or -EBADMSG
 * with *why (may be NULL) pointing at static text; out is written only on
 * success. VERSION must be present and at least 6 bytes long; unknown options
 * are skipped. */
int tds_prelogin_parse(const uint8_t *payload, size_t len, struct tds_prelogin_reply *out,
                       const char **why);

/* Format "major.minor.build.subbuild" into out (out_bytes with the NUL).
 * Returns 0, or -ENOBUFS with out set to "" when it does not fit. */
int tds_version_format(const struct tds_version *v, char *out, size_t out_bytes);

/* A static name for an ENCRYPTION byte: "off", "on", "not_supported",
 * "required", "client_cert_off", "client_cert_on", "client_cert_required";
 * "unknown" for -1 and "invalid" for anything else. */
const char *tds_encryption_name(int encryption);
