/*
 * libFuzzer target for the roll call's parsers: the same bytes are read as a
 * peer's HTTP answer, once as it stands (more may come) and once as all
 * there is (the peer closed), and, up to the first NUL, as a peer address.
 * Besides memory safety it checks the contracts peer_ask() builds on: the
 * results are a known set; 0 and only 0 means answered; bytes that are all
 * there is never ask for more; a verdict reached before the end stands once
 * the peer closes, and no prefix contradicts the whole; an address that
 * parses is an IP literal with a port that formats back to itself. Every
 * buffer is its own allocation so ASan catches a read past its end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok) {
    if (!ok)
        abort();
}

static bool same_answer(const struct peer_answer *a, const struct peer_answer *b) {
    return a->answered == b->answered && a->api_reachable == b->api_reachable &&
           !strcmp(a->node, b->node);
}

/* The reply of n bytes in its own allocation. */
static int parse_copy(const uint8_t *data, size_t n, bool complete, struct peer_answer *a) {
    char *copy = malloc(n ? n : 1);
    int r;

    require(copy != NULL);
    memcpy(copy, data, n);
    r = peer_reply_parse(copy, n, complete, a);
    free(copy);
    return r;
}

static void check_answer(int r, const struct peer_answer *a) {
    require(r == 0 || r == -EAGAIN || r == -EBADMSG);
    require((r == 0) == a->answered);
    require(memchr(a->node, '\0', sizeof(a->node)) != NULL);
}

static void check_reply(const uint8_t *data, size_t size) {
    struct peer_answer more, closed, part;
    int r_more = parse_copy(data, size, false, &more);
    int r_closed = parse_copy(data, size, true, &closed);

    check_answer(r_more, &more);
    check_answer(r_closed, &closed);
    require(r_closed != -EAGAIN);
    if (r_more != -EAGAIN) {
        require(r_closed == r_more);
        require(same_answer(&more, &closed));
    }
    /* A reply longer than the client's buffer never reaches the parser. */
    if (size > PEER_MAX_REPLY)
        return;
    size_t cuts[] = {size / 2, size ? size - 1 : 0, size / 3, size * 2 / 3};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        int r = parse_copy(data, cuts[i], false, &part);

        check_answer(r, &part);
        require(r == -EAGAIN || r == r_more);
        if (r == 0)
            require(same_answer(&part, &more));
    }
}

static void check_address(const uint8_t *data, size_t size) {
    char *text = strndup((const char *)data, size > 512 ? 512 : size);
    struct sockaddr_storage sa, again;
    char host[INET6_ADDRSTRLEN], back[INET6_ADDRSTRLEN + 16];
    int r, port;

    require(text != NULL);
    memset(&sa, 0, sizeof(sa));
    r = peer_address_parse(text, &sa);
    require(r == 0 || r == -EINVAL);
    if (r == 0) {
        /* An IP literal: never a name to resolve. */
        require(text[0] == '[' || strspn(text, "0123456789.:") == strlen(text));
        if (sa.ss_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)&sa;

            port = ntohs(in->sin_port);
            require(inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)) != NULL);
            snprintf(back, sizeof(back), "%s:%d", host, port);
        } else {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&sa;

            require(sa.ss_family == AF_INET6);
            port = ntohs(in6->sin6_port);
            require(inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)) != NULL);
            snprintf(back, sizeof(back), "[%s]:%d", host, port);
        }
        require(port > 0 && port <= 65535);
        memset(&again, 0, sizeof(again));
        require(peer_address_parse(back, &again) == 0);
        require(again.ss_family == sa.ss_family);
        if (sa.ss_family == AF_INET)
            require(!memcmp(&((struct sockaddr_in *)&again)->sin_addr,
                            &((struct sockaddr_in *)&sa)->sin_addr, sizeof(struct in_addr)) &&
                    ((struct sockaddr_in *)&again)->sin_port ==
                        ((struct sockaddr_in *)&sa)->sin_port);
        else
            require(!memcmp(&((struct sockaddr_in6 *)&again)->sin6_addr,
                            &((struct sockaddr_in6 *)&sa)->sin6_addr, sizeof(struct in6_addr)) &&
                    ((struct sockaddr_in6 *)&again)->sin6_port ==
                        ((struct sockaddr_in6 *)&sa)->sin6_port);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_reply(data, size);
    check_address(data, size);
    return 0;
}
