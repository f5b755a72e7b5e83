/*
 * edgewarden's entry point. Process-wide set-up that must happen before any
 * thread or handle exists — libcurl's global init, SIGPIPE ignored so a peer
 * closing a socket is an error code, not a death — then the command line.
 */
#include <curl/curl.h>
#include <signal.h>

#include "cli.h"

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    int rc = cli_main(argc, argv);
    curl_global_cleanup();
    return rc;
}
