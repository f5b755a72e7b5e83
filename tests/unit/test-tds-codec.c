/*
 * Tests for probes/tds_codec.c: the PRELOGIN packet byte for byte, a SQL
 * Server 2022 reply as the engine sends it, the reader fed in every possible
 * split, and each way a reply can be malformed or hostile, including the
 * caps that bound memory and the TLS record of a TDS 8 strict server.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tds_codec.h"

/* The client packet with every option: header, five table entries, data. */
static const uint8_t golden_request[] = {
    0x12, 0x01, 0x00, 0x29, 0x00, 0x00, 0x01, 0x00, /* PRELOGIN, EOM, 41 bytes, SPID 0, id 1 */
    0x00, 0x00, 0x15, 0x00, 0x06,                   /* VERSION    @21 len 6 */
    0x01, 0x00, 0x1b, 0x00, 0x01,                   /* ENCRYPTION @27 len 1 */
    0x03, 0x00, 0x1c, 0x00, 0x04,                   /* THREADID   @28 len 4 */
    0x04, 0x00, 0x20, 0x00, 0x01,                   /* MARS       @32 len 1 */
    0xff,                                           /* TERMINATOR */
    0x11, 0x02, 0x01, 0x02, 0x03, 0x00,             /* 17.2.258.3 (subbuild little-endian) */
    0x02,                                           /* ENCRYPT_NOT_SUP */
    0xde, 0xad, 0xbe, 0xef,                         /* thread id */
    0x00,                                           /* MARS off */
};

static const struct tds_prelogin_request full_request = {
    .version = {.major = 17, .minor = 2, .build = 258, .subbuild = 3},
    .encryption = TDS_ENCRYPT_NOT_SUP,
    .send_threadid = true,
    .threadid = 0xdeadbeef,
    .send_mars = true,
};

/* SQL Server 2022 CU (16.0.4135.4) answering a client that does not encrypt:
 * VERSION, ENCRYPTION, INSTOPT, an empty THREADID and MARS, as the engine
 * lays them out. Byte 40 is the ENCRYPTION byte. */
static const uint8_t sql2022_reply[] = {
    0x04, 0x01, 0x00, 0x2b, 0x00, 0x00, 0x01, 0x00, /* tabular result, EOM, 43 bytes */
    0x00, 0x00, 0x1a, 0x00, 0x06,                   /* VERSION    @26 len 6 */
    0x01, 0x00, 0x20, 0x00, 0x01,                   /* ENCRYPTION @32 len 1 */
    0x02, 0x00, 0x21, 0x00, 0x01,                   /* INSTOPT    @33 len 1 */
    0x03, 0x00, 0x22, 0x00, 0x00,                   /* THREADID   @34 len 0 */
    0x04, 0x00, 0x22, 0x00, 0x01,                   /* MARS       @34 len 1 */
    0xff,                                           /* TERMINATOR */
    0x10, 0x00, 0x10, 0x27, 0x04, 0x00,             /* 16.0.4135.4 */
    0x00,                                           /* ENCRYPT_OFF */
    0x00,                                           /* INSTOPT: instance ok */
    0x00,                                           /* MARS off */
};
#define SQL2022_ENCRYPTION_AT 40

/* ---- builder ----------------------------------------------------------- */

START_TEST(test_build_golden) {
    uint8_t out[TDS_PRELOGIN_MAX_BYTES];
    memset(out, 0xaa, sizeof(out));
    ck_assert_uint_eq(tds_prelogin_size(&full_request), sizeof(golden_request));
    int n = tds_prelogin_build(&full_request, out, sizeof(out));
    ck_assert_int_eq(n, (int)sizeof(golden_request));
    ck_assert_mem_eq(out, golden_request, sizeof(golden_request));
    ck_assert_uint_eq(out[n], 0xaa); /* nothing written past the packet */
}
END_TEST

START_TEST(test_build_minimal) {
    static const uint8_t expect[] = {
        0x12, 0x01, 0x00, 0x1a, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x06,
        0x01, 0x00, 0x11, 0x00, 0x01, 0xff, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x02,
    };
    struct tds_prelogin_request req = {.version = {.minor = 1}, .encryption = TDS_ENCRYPT_NOT_SUP};
    uint8_t out[TDS_PRELOGIN_MAX_BYTES];
    ck_assert_int_eq(tds_prelogin_build(&req, out, sizeof(out)), (int)sizeof(expect));
    ck_assert_mem_eq(out, expect, sizeof(expect));
}
END_TEST

START_TEST(test_build_too_small) {
    uint8_t out[sizeof(golden_request)];
    memset(out, 0x5a, sizeof(out));
    ck_assert_int_eq(tds_prelogin_build(&full_request, out, sizeof(out) - 1), -ENOBUFS);
    for (size_t i = 0; i < sizeof(out); i++)
        ck_assert_uint_eq(out[i], 0x5a);
    ck_assert_int_eq(tds_prelogin_build(&full_request, out, sizeof(out)), (int)sizeof(out));
}
END_TEST

/* The request's payload is itself a PRELOGIN structure: our parser must
 * read back what the builder wrote. */
START_TEST(test_build_parse_roundtrip) {
    uint8_t out[TDS_PRELOGIN_MAX_BYTES];
    int n = tds_prelogin_build(&full_request, out, sizeof(out));
    ck_assert_int_gt(n, 0);
    struct tds_prelogin_reply reply;
    ck_assert_int_eq(
        tds_prelogin_parse(out + TDS_HEADER_BYTES, (size_t)n - TDS_HEADER_BYTES, &reply, NULL), 0);
    ck_assert_uint_eq(reply.version.major, 17);
    ck_assert_uint_eq(reply.version.minor, 2);
    ck_assert_uint_eq(reply.version.build, 258);
    ck_assert_uint_eq(reply.version.subbuild, 3);
    ck_assert_int_eq(reply.encryption, TDS_ENCRYPT_NOT_SUP);
    ck_assert_int_eq(reply.mars, 0);
}
END_TEST

/* ---- reader + parser on a real reply ------------------------------------ */

static int read_all(struct tds_reader *rd, const uint8_t *p, size_t n) {
    size_t used = 0;
    int st = tds_reader_feed(rd, p, n, &used);
    if (st == TDS_READ_MORE)
        ck_assert_uint_eq(used, n);
    return st;
}

static void assert_sql2022(const uint8_t *payload, size_t len, int encryption) {
    struct tds_prelogin_reply reply;
    const char *why = NULL;
    ck_assert_int_eq(tds_prelogin_parse(payload, len, &reply, &why), 0);
    char version[24];
    ck_assert_int_eq(tds_version_format(&reply.version, version, sizeof(version)), 0);
    ck_assert_str_eq(version, "16.0.4135.4");
    ck_assert_int_eq(reply.encryption, encryption);
    ck_assert_int_eq(reply.mars, 0);
}

START_TEST(test_reply_sql2022_off) {
    struct tds_reader rd;
    tds_reader_init(&rd);
    ck_assert_int_eq(read_all(&rd, sql2022_reply, sizeof(sql2022_reply)), TDS_READ_DONE);
    ck_assert_uint_eq(rd.packets, 1);
    ck_assert_uint_eq(tds_reader_payload_len(&rd), sizeof(sql2022_reply) - TDS_HEADER_BYTES);
    ck_assert_mem_eq(tds_reader_payload(&rd), sql2022_reply + TDS_HEADER_BYTES,
                     sizeof(sql2022_reply) - TDS_HEADER_BYTES);
    assert_sql2022(tds_reader_payload(&rd), tds_reader_payload_len(&rd), TDS_ENCRYPT_OFF);
    ck_assert_str_eq(tds_encryption_name(TDS_ENCRYPT_OFF), "off");
    tds_reader_free(&rd);
}
END_TEST

START_TEST(test_reply_sql2022_required) {
    uint8_t reply[sizeof(sql2022_reply)];
    memcpy(reply, sql2022_reply, sizeof(reply));
    reply[SQL2022_ENCRYPTION_AT] = TDS_ENCRYPT_REQ;
    struct tds_reader rd;
    tds_reader_init(&rd);
    ck_assert_int_eq(read_all(&rd, reply, sizeof(reply)), TDS_READ_DONE);
    assert_sql2022(tds_reader_payload(&rd), tds_reader_payload_len(&rd), TDS_ENCRYPT_REQ);
    ck_assert_str_eq(tds_encryption_name(TDS_ENCRYPT_REQ), "required");
    tds_reader_free(&rd);
}
END_TEST

/* Bytes after the end of the message are left to the caller, and a stopped
 * reader takes nothing more. */
START_TEST(test_reader_stops_at_message_end) {
    uint8_t data[sizeof(sql2022_reply) + 5];
    memcpy(data, sql2022_reply, sizeof(sql2022_reply));
    memset(data + sizeof(sql2022_reply), 0x04, 5);
    struct tds_reader rd;
    tds_reader_init(&rd);
    size_t used = 0;
    ck_assert_int_eq(tds_reader_feed(&rd, data, sizeof(data), &used), TDS_READ_DONE);
    ck_assert_uint_eq(used, sizeof(sql2022_reply));
    ck_assert_int_eq(tds_reader_feed(&rd, data, sizeof(data), &used), TDS_READ_DONE);
    ck_assert_uint_eq(used, 0);
    tds_reader_free(&rd);
}
END_TEST

START_TEST(test_reader_byte_by_byte) {
    struct tds_reader rd;
    tds_reader_init(&rd);
    for (size_t i = 0; i < sizeof(sql2022_reply); i++) {
        size_t used = 0;
        int st = tds_reader_feed(&rd, sql2022_reply + i, 1, &used);
        ck_assert_uint_eq(used, 1);
        ck_assert_int_eq(st, i + 1 == sizeof(sql2022_reply) ? TDS_READ_DONE : TDS_READ_MORE);
    }
    assert_sql2022(tds_reader_payload(&rd), tds_reader_payload_len(&rd), TDS_ENCRYPT_OFF);
    tds_reader_free(&rd);
}
END_TEST

/* The same reply cut into three packets (payload 10 + 0 + rest bytes), the
 * first two without EOM, as a server with a tiny packet size would send. */
static size_t make_multi_packet(uint8_t *out) {
    const uint8_t *payload = sql2022_reply + TDS_HEADER_BYTES;
    size_t payload_len = sizeof(sql2022_reply) - TDS_HEADER_BYTES;
    const size_t cuts[3] = {10, 0, payload_len - 10};
    size_t pos = 0, from = 0;
    for (int i = 0; i < 3; i++) {
        size_t len = TDS_HEADER_BYTES + cuts[i];
        const uint8_t h[TDS_HEADER_BYTES] = {0x04, i == 2 ? 0x01 : 0x00, 0, (uint8_t)len, 0,
                                             0,    (uint8_t)(i + 1),     0};
        memcpy(out + pos, h, sizeof(h));
        memcpy(out + pos + TDS_HEADER_BYTES, payload + from, cuts[i]);
        pos += len;
        from += cuts[i];
    }
    return pos;
}

START_TEST(test_reader_multi_packet_every_split) {
    uint8_t data[128];
    size_t n = make_multi_packet(data);
    for (size_t cut = 0; cut <= n; cut++) {
        struct tds_reader rd;
        tds_reader_init(&rd);
        int st = read_all(&rd, data, cut);
        ck_assert_int_eq(st, cut == n ? TDS_READ_DONE : TDS_READ_MORE);
        if (cut < n)
            ck_assert_int_eq(read_all(&rd, data + cut, n - cut), TDS_READ_DONE);
        ck_assert_uint_eq(rd.packets, 3);
        ck_assert_uint_eq(tds_reader_payload_len(&rd), sizeof(sql2022_reply) - TDS_HEADER_BYTES);
        assert_sql2022(tds_reader_payload(&rd), tds_reader_payload_len(&rd), TDS_ENCRYPT_OFF);
        tds_reader_free(&rd);
    }
}
END_TEST

/* Every pair of cut points: three chunks of every size. */
START_TEST(test_reader_multi_packet_three_chunks) {
    uint8_t data[128];
    size_t n = make_multi_packet(data);
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b++) {
            struct tds_reader rd;
            tds_reader_init(&rd);
            read_all(&rd, data, a);
            read_all(&rd, data + a, b - a);
            ck_assert_int_eq(read_all(&rd, data + b, n - b), TDS_READ_DONE);
            ck_assert_mem_eq(tds_reader_payload(&rd), sql2022_reply + TDS_HEADER_BYTES,
                             sizeof(sql2022_reply) - TDS_HEADER_BYTES);
            tds_reader_free(&rd);
        }
    }
}
END_TEST

/* ---- reader: hostile and malformed input -------------------------------- */

static int feed_header(struct tds_reader *rd, uint8_t type, uint8_t status, uint16_t length) {
    const uint8_t h[TDS_HEADER_BYTES] = {
        type, status, (uint8_t)(length >> 8), (uint8_t)length, 0, 0, 1, 0};
    return tds_reader_feed(rd, h, sizeof(h), NULL);
}

START_TEST(test_reader_length_below_header) {
    for (uint16_t len = 0; len < TDS_HEADER_BYTES; len++) {
        struct tds_reader rd;
        tds_reader_init(&rd);
        ck_assert_int_eq(feed_header(&rd, 0x04, 0x01, len), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(rd.error, "below the header"));
        tds_reader_free(&rd);
    }
}
END_TEST

START_TEST(test_reader_length_above_max) {
    struct tds_reader rd;
    tds_reader_init(&rd);
    ck_assert_int_eq(feed_header(&rd, 0x04, 0x01, TDS_PACKET_MAX_BYTES + 1), -EMSGSIZE);
    ck_assert_ptr_nonnull(strstr(rd.error, "32769"));
    tds_reader_free(&rd);

    /* 32768 itself is allowed: the reader waits for its payload. */
    tds_reader_init(&rd);
    ck_assert_int_eq(feed_header(&rd, 0x04, 0x01, TDS_PACKET_MAX_BYTES), TDS_READ_MORE);
    ck_assert_uint_eq(rd.packet_left, TDS_PACKET_MAX_BYTES - TDS_HEADER_BYTES);
    tds_reader_free(&rd);
}
END_TEST

START_TEST(test_reader_wrong_type) {
    struct tds_reader rd;
    tds_reader_init(&rd);
    ck_assert_int_eq(feed_header(&rd, TDS_PACKET_PRELOGIN, 0x01, 16), -EPROTO);
    ck_assert_ptr_nonnull(strstr(rd.error, "0x12"));
    /* A stopped reader stays stopped and consumes nothing. */
    size_t used = 99;
    ck_assert_int_eq(tds_reader_feed(&rd, sql2022_reply, sizeof(sql2022_reply), &used), -EPROTO);
    ck_assert_uint_eq(used, 0);
    tds_reader_free(&rd);

    /* A continuation packet of another type is as bad. */
    tds_reader_init(&rd);
    ck_assert_int_eq(feed_header(&rd, 0x04, 0x00, 8), TDS_READ_MORE);
    ck_assert_int_eq(feed_header(&rd, 0x01, 0x01, 8), -EPROTO);
    tds_reader_free(&rd);
}
END_TEST

START_TEST(test_reader_endless_non_eom) {
    struct tds_reader rd;
    tds_reader_init(&rd);
    for (int i = 0; i < TDS_REPLY_MAX_PACKETS; i++) {
        ck_assert_int_eq(feed_header(&rd, 0x04, 0x00, TDS_HEADER_BYTES + 1), TDS_READ_MORE);
        ck_assert_int_eq(tds_reader_feed(&rd, "x", 1, NULL), TDS_READ_MORE);
    }
    ck_assert_int_eq(feed_header(&rd, 0x04, 0x00, TDS_HEADER_BYTES + 1), -EMSGSIZE);
    ck_assert_ptr_nonnull(strstr(rd.error, "packets"));
    ck_assert_uint_eq(tds_reader_payload_len(&rd), TDS_REPLY_MAX_PACKETS);
    tds_reader_free(&rd);
}
END_TEST

/* Maximum-size packets without EOM: stopped at the payload cap, before a
 * byte past it is buffered. */
START_TEST(test_reader_huge_packets) {
    static uint8_t chunk[TDS_PACKET_MAX_BYTES - TDS_HEADER_BYTES];
    memset(chunk, 0x41, sizeof(chunk));
    struct tds_reader rd;
    tds_reader_init(&rd);
    int st = TDS_READ_MORE;
    int packets = 0;
    while (st == TDS_READ_MORE && packets < 100) {
        st = feed_header(&rd, 0x04, 0x00, TDS_PACKET_MAX_BYTES);
        if (st != TDS_READ_MORE)
            break;
        st = tds_reader_feed(&rd, chunk, sizeof(chunk), NULL);
        packets++;
        ck_assert_uint_le(rd.payload.len, TDS_REPLY_MAX_PAYLOAD_BYTES);
        ck_assert_uint_le(rd.payload.cap, 2 * TDS_REPLY_MAX_PAYLOAD_BYTES);
    }
    ck_assert_int_eq(st, -EMSGSIZE);
    ck_assert_int_eq(packets, TDS_REPLY_MAX_PAYLOAD_BYTES / (int)sizeof(chunk));
    ck_assert_ptr_nonnull(strstr(rd.error, "larger"));
    tds_reader_free(&rd);
}
END_TEST

START_TEST(test_reader_tls_record) {
    /* A handshake record (ServerHello), an alert, and application data. */
    static const uint8_t records[][7] = {
        {0x16, 0x03, 0x03, 0x00, 0x5a, 0x02, 0x00},
        {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28},
        {0x17, 0x03, 0x04, 0x00, 0x10, 0x00, 0x00},
        {0x14, 0x03, 0x00, 0x00, 0x01, 0x01, 0x00},
    };
    for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++) {
        struct tds_reader rd;
        tds_reader_init(&rd);
        size_t used = 0;
        ck_assert_int_eq(tds_reader_feed(&rd, records[i], 2, &used), TDS_READ_MORE);
        ck_assert_int_eq(tds_reader_feed(&rd, records[i] + 2, 5, &used), TDS_READ_TLS);
        ck_assert_uint_eq(used, 1); /* decided on the third byte */
        tds_reader_free(&rd);
    }
}
END_TEST

START_TEST(test_reader_not_tls) {
    /* Bad TLS versions and non-TLS types are TDS errors, not TLS. */
    static const uint8_t heads[][8] = {
        {0x16, 0x03, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00},
        {0x16, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},
        {0x18, 0x03, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00},
        {0x13, 0x03, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00},
    };
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        struct tds_reader rd;
        tds_reader_init(&rd);
        ck_assert_int_eq(tds_reader_feed(&rd, heads[i], 8, NULL), -EPROTO);
        tds_reader_free(&rd);
    }
    /* A TLS-looking record after the first packet is not a TLS answer. */
    struct tds_reader rd;
    tds_reader_init(&rd);
    ck_assert_int_eq(feed_header(&rd, 0x04, 0x00, 8), TDS_READ_MORE);
    ck_assert_int_eq(tds_reader_feed(&rd, "\x16\x03\x03\x00\x10\x00\x00\x00", 8, NULL), -EPROTO);
    tds_reader_free(&rd);
}
END_TEST

/* ---- parser: malformed payloads ----------------------------------------- */

static void assert_parse_fails(const uint8_t *p, size_t n, const char *why_part) {
    struct tds_prelogin_reply out, before;
    memset(&out, 0x5c, sizeof(out));
    before = out;
    const char *why = NULL;
    ck_assert_int_eq(tds_prelogin_parse(p, n, &out, &why), -EBADMSG);
    ck_assert_ptr_nonnull(why);
    ck_assert_msg(strstr(why, why_part), "why '%s' lacks '%s'", why, why_part);
    ck_assert_mem_eq(&out, &before, sizeof(out)); /* no side effect */
}

START_TEST(test_parse_empty_and_unterminated) {
    assert_parse_fails((const uint8_t *)"", 0, "no terminator");
    static const uint8_t no_term[] = {0x00, 0x00, 0x05, 0x00, 0x06};
    assert_parse_fails(no_term, sizeof(no_term), "no terminator");
}
END_TEST

START_TEST(test_parse_truncated_table) {
    /* Every prefix of the reply that cuts the table is malformed. */
    const uint8_t *p = sql2022_reply + TDS_HEADER_BYTES;
    for (size_t n = 1; n < 26; n++) {
        struct tds_prelogin_reply out;
        ck_assert_int_eq(tds_prelogin_parse(p, n, &out, NULL), -EBADMSG);
    }
    static const uint8_t cut_entry[] = {0x00, 0x00, 0x06};
    assert_parse_fails(cut_entry, sizeof(cut_entry), "truncated");
}
END_TEST

START_TEST(test_parse_offset_past_end) {
    uint8_t p[sizeof(sql2022_reply) - TDS_HEADER_BYTES];
    memcpy(p, sql2022_reply + TDS_HEADER_BYTES, sizeof(p));
    p[2] = 0x40; /* VERSION @64 of 35 */
    assert_parse_fails(p, sizeof(p), "past the end");

    memcpy(p, sql2022_reply + TDS_HEADER_BYTES, sizeof(p));
    p[4] = 0x0a; /* VERSION @26 len 10: runs past the end */
    assert_parse_fails(p, sizeof(p), "past the end");

    memcpy(p, sql2022_reply + TDS_HEADER_BYTES, sizeof(p));
    p[1] = 0xff, p[2] = 0xff, p[3] = 0xff, p[4] = 0xff; /* no wrap-around */
    assert_parse_fails(p, sizeof(p), "past the end");
}
END_TEST

START_TEST(test_parse_overlap_table) {
    uint8_t p[sizeof(sql2022_reply) - TDS_HEADER_BYTES];
    memcpy(p, sql2022_reply + TDS_HEADER_BYTES, sizeof(p));
    p[2] = 0x05; /* VERSION data inside the table */
    assert_parse_fails(p, sizeof(p), "overlaps");
}
END_TEST

START_TEST(test_parse_version_missing_or_short) {
    static const uint8_t only_encryption[] = {0x01, 0x00, 0x06, 0x00, 0x01, 0xff, 0x00};
    assert_parse_fails(only_encryption, sizeof(only_encryption), "VERSION missing");

    uint8_t p[sizeof(sql2022_reply) - TDS_HEADER_BYTES];
    memcpy(p, sql2022_reply + TDS_HEADER_BYTES, sizeof(p));
    p[4] = 0x05;
    assert_parse_fails(p, sizeof(p), "shorter than 6");

    static const uint8_t twice[] = {0x00, 0x00, 0x0b, 0x00, 0x06, 0x00, 0x00, 0x0b, 0x00,
                                    0x06, 0xff, 1,    0,    0,    1,    0,    0};
    assert_parse_fails(twice, sizeof(twice), "twice");

    static const uint8_t empty_encryption[] = {0x00, 0x00, 0x0b, 0x00, 0x06, 0x01, 0x00, 0x11, 0x00,
                                               0x00, 0xff, 1,    0,    0,    1,    0,    0};
    assert_parse_fails(empty_encryption, sizeof(empty_encryption), "ENCRYPTION is empty");
}
END_TEST

START_TEST(test_parse_unknown_tokens_and_absent_encryption) {
    /* TRACEID-like 0x05 and a future 0x42 with data; no ENCRYPTION, no MARS. */
    static const uint8_t p[] = {
        0x05, 0x00, 0x10, 0x00, 0x02, 0x00, 0x00, 0x12, 0x00, 0x08, 0x42, 0x00, 0x1a,
        0x00, 0x00, 0xff, 0xab, 0xcd, 0x0f, 0x00, 0x07, 0xd0, 0x00, 0x00, 0x99, 0x99,
    };
    struct tds_prelogin_reply out;
    const char *why = NULL;
    ck_assert_int_eq(tds_prelogin_parse(p, sizeof(p), &out, &why), 0);
    char v[24];
    ck_assert_int_eq(tds_version_format(&out.version, v, sizeof(v)), 0);
    ck_assert_str_eq(v, "15.0.2000.0");
    ck_assert_int_eq(out.encryption, -1);
    ck_assert_int_eq(out.mars, -1);
    ck_assert_str_eq(tds_encryption_name(out.encryption), "unknown");
}
END_TEST

/* ---- helpers ------------------------------------------------------------ */

START_TEST(test_version_format_bounds) {
    struct tds_version v = {255, 255, 65535, 65535};
    char out[24];
    ck_assert_int_eq(tds_version_format(&v, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "255.255.65535.65535");
    char small[19]; /* one short */
    ck_assert_int_eq(tds_version_format(&v, small, sizeof(small)), -ENOBUFS);
    ck_assert_str_eq(small, "");
    ck_assert_int_eq(tds_version_format(&v, small, 0), -ENOBUFS);
}
END_TEST

START_TEST(test_encryption_names) {
    ck_assert_str_eq(tds_encryption_name(0x00), "off");
    ck_assert_str_eq(tds_encryption_name(0x01), "on");
    ck_assert_str_eq(tds_encryption_name(0x02), "not_supported");
    ck_assert_str_eq(tds_encryption_name(0x03), "required");
    ck_assert_str_eq(tds_encryption_name(0x80), "client_cert_off");
    ck_assert_str_eq(tds_encryption_name(0x81), "client_cert_on");
    ck_assert_str_eq(tds_encryption_name(0x83), "client_cert_required");
    ck_assert_str_eq(tds_encryption_name(-1), "unknown");
    ck_assert_str_eq(tds_encryption_name(0x04), "invalid");
    ck_assert_str_eq(tds_encryption_name(0x82), "invalid");
}
END_TEST

static Suite *tds_codec_suite(void) {
    Suite *s = suite_create("tds_codec");
    TCase *b = tcase_create("build");
    tcase_add_test(b, test_build_golden);
    tcase_add_test(b, test_build_minimal);
    tcase_add_test(b, test_build_too_small);
    tcase_add_test(b, test_build_parse_roundtrip);
    suite_add_tcase(s, b);

    TCase *r = tcase_create("reader");
    tcase_add_test(r, test_reply_sql2022_off);
    tcase_add_test(r, test_reply_sql2022_required);
    tcase_add_test(r, test_reader_stops_at_message_end);
    tcase_add_test(r, test_reader_byte_by_byte);
    tcase_add_test(r, test_reader_multi_packet_every_split);
    tcase_add_test(r, test_reader_multi_packet_three_chunks);
    tcase_add_test(r, test_reader_length_below_header);
    tcase_add_test(r, test_reader_length_above_max);
    tcase_add_test(r, test_reader_wrong_type);
    tcase_add_test(r, test_reader_endless_non_eom);
    tcase_add_test(r, test_reader_huge_packets);
    tcase_add_test(r, test_reader_tls_record);
    tcase_add_test(r, test_reader_not_tls);
    suite_add_tcase(s, r);

    TCase *p = tcase_create("parse");
    tcase_add_test(p, test_parse_empty_and_unterminated);
    tcase_add_test(p, test_parse_truncated_table);
    tcase_add_test(p, test_parse_offset_past_end);
    tcase_add_test(p, test_parse_overlap_table);
    tcase_add_test(p, test_parse_version_missing_or_short);
    tcase_add_test(p, test_parse_unknown_tokens_and_absent_encryption);
    tcase_add_test(p, test_version_format_bounds);
    tcase_add_test(p, test_encryption_names);
    suite_add_tcase(s, p);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(tds_codec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
