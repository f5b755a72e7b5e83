/*
 * The `tds` probe kind: one check is a TCP connect to the engine's listener
 * followed by one MS-TDS PRELOGIN round trip, which tells a live engine from
 * a port that merely accepts (a hung sqlservr still completes handshakes in
 * the kernel). It never logs; it reports ok (with server version and
 * encryption), refused, reset, protocol_error, tls_required or error through
 * the probe runner, which owns scheduling and the timeout.
 */
#pragma once

#include <stdint.h>
#include <uv.h>

#include "probe.h"
/* For users of results: tds_encryption_name() names probe_result.encryption. */
#include "tds_codec.h"

#define TDS_DEFAULT_PORT 1433

/* host (borrowed, copied): an IPv4/IPv6 literal or a name, resolved with
 * uv_getaddrinfo at each check; port in host order; name and timing are
 * borrowed and copied. Returns a new probe (free with probe_close) or NULL
 * on allocation failure. */
struct probe *tds_probe_new(uv_loop_t *loop, const char *name, const char *host, uint16_t port,
                            const struct probe_timing *timing);

/* Parse "HOST:PORT", "[v6]:PORT" or "HOST" (default_port); a bare IPv6
 * literal ("::1") is a host without port. On success *host_out is a new
 * allocation (free() it) without brackets. Returns 0 or -EINVAL (-ENOMEM);
 * the outputs are untouched on failure. */
int tds_parse_hostport(const char *s, uint16_t default_port, char **host_out, uint16_t *port_out);
