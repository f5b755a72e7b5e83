/*
 * libFuzzer target for the configuration loader: arbitrary bytes go to
 * config_load_string(), which must never crash, leak or read out of bounds,
 * and must either return a config or at least one error. A config that loads
 * is copied, overridden through the environment path and freed, and error
 * lists are printed, so every owner of memory in agent/config.c is
 * exercised. The input is copied into its own allocation so ASan catches a
 * read past its end (the loader must not need a NUL terminator).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The environment the fuzzer's configs are overridden with. */
static const char *fuzz_getenv(const char *name) {
    if (!strcmp(name, "EDGEWARDEN_LOG_LEVEL"))
        return "debug";
    if (!strcmp(name, "EDGEWARDEN_LISTEN"))
        return "[::1]:9808";
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct config_errors errs = {0};
    struct config *c = NULL;
    char *text = malloc(size ? size : 1);
    FILE *sink;
    int r;

    if (!text)
        return 0;
    memcpy(text, data, size);
    r = config_load_string(text, size, &c, &errs);
    if (r == 0) {
        struct config *copy = config_dup(c);
        if (!c || errs.n)
            abort(); /* success means a config and no errors */
        if (copy && config_apply_env(copy, fuzz_getenv, &errs) != 0)
            abort();
        config_free(copy);
    } else if (r == -EINVAL && (c || errs.n == 0)) {
        abort(); /* a failure leaves no config and says why */
    }
    sink = fopen("/dev/null", "w");
    if (sink) {
        config_errors_print(&errs, sink);
        fclose(sink);
    }
    config_errors_free(&errs);
    config_free(c);
    free(text);
    return 0;
}
