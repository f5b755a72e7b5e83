/*
 * libFuzzer target for the kubeconfig loader: arbitrary bytes go to
 * kubeconfig_load_string(), with insecure-skip-tls-verify refused and then
 * allowed, and with the current context and then a context named by the
 * input's last line. It must never crash, leak, read out of bounds or
 * expand the input beyond its size, and every outcome must be consistent:
 * success fills server and origin and sets no error; failure leaves the
 * output empty and, unless memory ran out, says why. Relative file names
 * resolve into a directory that does not exist, so no input reaches a real
 * file by accident. The input is copied into its own allocation so ASan
 * catches a read past its end (the loader must not need a NUL terminator).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kubeconfig.h"

#define BASE_DIR "/nonexistent/edgewarden-fuzz"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *text, size_t size, const char *context, bool allow_insecure) {
    struct kube_auth a;
    char *error = (char *)"unset";
    int r = kubeconfig_load_string(text, size, BASE_DIR, context, allow_insecure, &a, &error);

    if (r == 0) {
        if (error || !a.server || !a.origin || strncmp(a.server, "https://", 8))
            abort();
        if (a.insecure_skip_tls_verify && !allow_insecure)
            abort();
        if ((a.client_cert_file || a.client_cert_data) != (a.client_key_file || a.client_key_data))
            abort();
        if (a.token && strpbrk(a.token, " \r\n"))
            abort();
    } else {
        if (a.server || a.origin || a.token || a.ca_data)
            abort();
        if (r != -ENOMEM && !error)
            abort();
    }
    if (r == -EPERM && allow_insecure)
        abort();
    kube_auth_free(&a);
    free(error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size ? size : 1), *context = NULL;
    const char *line;

    if (!text)
        return 0;
    memcpy(text, data, size);
    check(text, size, NULL, false);
    check(text, size, NULL, true);
    /* The last line as an explicit context name, when there is one. */
    line = memrchr(text, '\n', size);
    if (line && (size_t)(text + size - line) > 1) {
        context = strndup(line + 1, (size_t)(text + size - line - 1));
        if (context)
            check(text, size, context, false);
    }
    free(context);
    free(text);
    return 0;
}
