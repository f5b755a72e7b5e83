/*
 * MS-TDS PRELOGIN, both directions, as pure functions over byte arrays. The
 * builder writes the client packet in one pass into a caller's array. The
 * reader is a small state machine over a byte stream: it collects a header,
 * checks it, then copies that packet's payload, until a packet with EOM ends
 * the message; each check happens as soon as the bytes that decide it are
 * in, so a hostile peer is stopped early and memory never exceeds the
 * payload cap. The parser walks the option table twice, first to find its
 * end, then to check and pick each option, and writes its output only once
 * everything is known to be well-formed.
 */
#include "tds_codec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void put_be16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint16_t get_be16(const uint8_t *p) {
    return (uint16_t)((p[0] << 8) | p[1]);
}

/* US_SUBBUILD is the one little-endian field of PRELOGIN: SQL Server and
 * Microsoft's SqlClient write it so, and Wireshark decodes it so. */
static void put_le16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

static uint16_t get_le16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* ---- request ---------------------------------------------------------- */

struct option {
    uint8_t token;
    uint16_t len;
};

static size_t request_options(const struct tds_prelogin_request *req, struct option opts[4]) {
    size_t n = 0;
    opts[n++] = (struct option){TDS_PL_VERSION, 6};
    opts[n++] = (struct option){TDS_PL_ENCRYPTION, 1};
    if (req->send_threadid)
        opts[n++] = (struct option){TDS_PL_THREADID, 4};
    if (req->send_mars)
        opts[n++] = (struct option){TDS_PL_MARS, 1};
    return n;
}

size_t tds_prelogin_size(const struct tds_prelogin_request *req) {
    struct option opts[4];
    size_t n = request_options(req, opts);
    size_t size = TDS_HEADER_BYTES + 5 * n + 1;
    for (size_t i = 0; i < n; i++)
        size += opts[i].len;
    return size;
}

int tds_prelogin_build(const struct tds_prelogin_request *req, uint8_t *out, size_t out_bytes) {
    size_t size = tds_prelogin_size(req);
    if (size > out_bytes)
        return -ENOBUFS;

    struct option opts[4];
    size_t n = request_options(req, opts);

    out[0] = TDS_PACKET_PRELOGIN;
    out[1] = TDS_STATUS_EOM;
    put_be16(out + 2, (uint16_t)size);
    put_be16(out + 4, 0); /* SPID */
    out[6] = 1;           /* PacketID */
    out[7] = 0;           /* Window */

    uint8_t *payload = out + TDS_HEADER_BYTES;
    uint8_t *entry = payload;
    uint16_t data_off = (uint16_t)(5 * n + 1); /* offsets count from the payload */
    for (size_t i = 0; i < n; i++) {
        entry[0] = opts[i].token;
        put_be16(entry + 1, data_off);
        put_be16(entry + 3, opts[i].len);
        uint8_t *d = payload + data_off;
        switch (opts[i].token) {
        case TDS_PL_VERSION:
            d[0] = req->version.major;
            d[1] = req->version.minor;
            put_be16(d + 2, req->version.build);
            put_le16(d + 4, req->version.subbuild);
            break;
        case TDS_PL_ENCRYPTION:
            d[0] = req->encryption;
            break;
        case TDS_PL_THREADID:
            put_be32(d, req->threadid);
            break;
        case TDS_PL_MARS:
            d[0] = 0;
            break;
        default:
            break;
        }
        entry += 5;
        data_off = (uint16_t)(data_off + opts[i].len);
    }
    entry[0] = TDS_PL_TERMINATOR;
    return (int)size;
}

/* ---- reply reader ------------------------------------------------------ */

void tds_reader_init(struct tds_reader *rd) {
    memset(rd, 0, sizeof(*rd));
    buf_init(&rd->payload, TDS_REPLY_MAX_PAYLOAD_BYTES);
    rd->state = TDS_READ_MORE;
}

void tds_reader_free(struct tds_reader *rd) {
    buf_free(&rd->payload);
}

__attribute__((format(printf, 3, 4))) static int fail(struct tds_reader *rd, int r, const char *fmt,
                                                      ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rd->error, sizeof(rd->error), fmt, ap);
    va_end(ap);
    rd->state = r;
    return r;
}

/* A TLS record starts with a content type (20 change_cipher_spec .. 23
 * application_data) and a major version 3 with minor 0..4. None of those
 * types is a TDS packet type, and three bytes decide it: a server refusing
 * a plain-text client may send nothing but a 7-byte alert, shorter than a
 * TDS header, before it closes. Returns 1 for TLS, 0 for not, -1 for
 * undecided. */
static int looks_like_tls(const uint8_t *h, size_t n) {
    if (n >= 1 && (h[0] < 0x14 || h[0] > 0x17))
        return 0;
    if (n >= 2 && h[1] != 0x03)
        return 0;
    if (n >= 3)
        return h[2] <= 0x04;
    return -1;
}

/* The header of the current packet is complete: check it. */
static int check_header(struct tds_reader *rd) {
    const uint8_t *h = rd->header;
    size_t length = get_be16(h + 2);

    if (h[0] != TDS_PACKET_TABULAR_RESULT)
        return fail(rd, -EPROTO, "packet type 0x%02x, not a tabular result", h[0]);
    if (length < TDS_HEADER_BYTES)
        return fail(rd, -EBADMSG, "packet length %zu below the header size", length);
    if (length > TDS_PACKET_MAX_BYTES)
        return fail(rd, -EMSGSIZE, "packet length %zu above %d", length, TDS_PACKET_MAX_BYTES);
    if (rd->packets >= TDS_REPLY_MAX_PACKETS)
        return fail(rd, -EMSGSIZE, "more than %d packets without EOM", TDS_REPLY_MAX_PACKETS);
    if (rd->payload.len + (length - TDS_HEADER_BYTES) > TDS_REPLY_MAX_PAYLOAD_BYTES)
        return fail(rd, -EMSGSIZE, "reply larger than %d bytes", TDS_REPLY_MAX_PAYLOAD_BYTES);

    rd->packets++;
    rd->packet_left = length - TDS_HEADER_BYTES;
    rd->last = h[1] & TDS_STATUS_EOM;
    return 0;
}

/* The current packet is complete: end the message or expect the next one. */
static void end_packet(struct tds_reader *rd) {
    rd->header_len = 0;
    if (rd->last)
        rd->state = TDS_READ_DONE;
}

int tds_reader_feed(struct tds_reader *rd, const void *data, size_t len, size_t *consumed) {
    const uint8_t *p = data;
    size_t used = 0;

    while (rd->state == TDS_READ_MORE && used < len) {
        if (rd->header_len < TDS_HEADER_BYTES) {
            rd->header[rd->header_len++] = p[used++];
            if (rd->packets == 0 && looks_like_tls(rd->header, rd->header_len) > 0) {
                rd->state = TDS_READ_TLS;
                break;
            }
            if (rd->header_len < TDS_HEADER_BYTES)
                continue;
            if (check_header(rd) < 0)
                break;
            if (rd->packet_left == 0)
                end_packet(rd);
            continue;
        }
        size_t n = len - used;
        if (n > rd->packet_left)
            n = rd->packet_left;
        /* check_header() made room under the cap, so this cannot hit it;
         * failing here is running out of memory. */
        int r = buf_append(&rd->payload, p + used, n);
        if (r < 0) {
            fail(rd, r, "cannot hold the reply");
            break;
        }
        used += n;
        rd->packet_left -= n;
        if (rd->packet_left == 0)
            end_packet(rd);
    }
    if (consumed)
        *consumed = used;
    return rd->state;
}

/* ---- reply parser ------------------------------------------------------ */

int tds_prelogin_parse(const uint8_t *payload, size_t len, struct tds_prelogin_reply *out,
                       const char **why) {
    const char *dummy;
    if (!why)
        why = &dummy;

    /* Pass 1: find the terminator, so the table's extent is known. */
    size_t table_end = 0;
    for (size_t pos = 0;; pos += 5) {
        if (pos >= len) {
            *why = "option table has no terminator";
            return -EBADMSG;
        }
        if (payload[pos] == TDS_PL_TERMINATOR) {
            table_end = pos + 1;
            break;
        }
        if (len - pos < 5) {
            *why = "option table truncated";
            return -EBADMSG;
        }
    }

    /* Pass 2: every option's data lies after the table and inside the
     * payload; pick the ones the probe reports. */
    struct tds_prelogin_reply reply = {.encryption = -1, .mars = -1};
    bool have_version = false;
    for (size_t pos = 0; pos + 1 < table_end; pos += 5) {
        uint8_t token = payload[pos];
        size_t off = get_be16(payload + pos + 1);
        size_t olen = get_be16(payload + pos + 3);
        if (off > len || olen > len - off) {
            *why = "option data past the end of the payload";
            return -EBADMSG;
        }
        if (olen > 0 && off < table_end) {
            *why = "option data overlaps the option table";
            return -EBADMSG;
        }
        const uint8_t *d = payload + off;
        switch (token) {
        case TDS_PL_VERSION:
            if (have_version) {
                *why = "VERSION given twice";
                return -EBADMSG;
            }
            if (olen < 6) {
                *why = "VERSION shorter than 6 bytes";
                return -EBADMSG;
            }
            reply.version.major = d[0];
            reply.version.minor = d[1];
            reply.version.build = get_be16(d + 2);
            reply.version.subbuild = get_le16(d + 4);
            have_version = true;
            break;
        case TDS_PL_ENCRYPTION:
            if (reply.encryption >= 0) {
                *why = "ENCRYPTION given twice";
                return -EBADMSG;
            }
            if (olen < 1) {
                *why = "ENCRYPTION is empty";
                return -EBADMSG;
            }
            reply.encryption = d[0];
            break;
        case TDS_PL_MARS:
            if (olen >= 1 && reply.mars < 0)
                reply.mars = d[0];
            break;
        default:
            /* INSTOPT, THREADID, TRACEID, FEDAUTHREQUIRED, NONCEOPT and
             * tokens newer than this code: not needed to judge health. */
            break;
        }
    }
    if (!have_version) {
        *why = "VERSION missing";
        return -EBADMSG;
    }
    *out = reply;
    return 0;
}

int tds_version_format(const struct tds_version *v, char *out, size_t out_bytes) {
    if (out_bytes == 0)
        return -ENOBUFS;
    int n = snprintf(out, out_bytes, "%u.%u.%u.%u", v->major, v->minor, v->build, v->subbuild);
    if (n < 0 || (size_t)n >= out_bytes) {
        out[0] = '\0';
        return -ENOBUFS;
    }
    return 0;
}

const char *tds_encryption_name(int encryption) {
    switch (encryption) {
    case -1:
        return "unknown";
    case TDS_ENCRYPT_OFF:
        return "off";
    case TDS_ENCRYPT_ON:
        return "on";
    case TDS_ENCRYPT_NOT_SUP:
        return "not_supported";
    case TDS_ENCRYPT_REQ:
        return "required";
    case TDS_ENCRYPT_CLIENT_CERT_OFF:
        return "client_cert_off";
    case TDS_ENCRYPT_CLIENT_CERT_ON:
        return "client_cert_on";
    case TDS_ENCRYPT_CLIENT_CERT_REQ:
        return "client_cert_required";
    default:
        return "invalid";
    }
}
