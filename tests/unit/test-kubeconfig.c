/*
 * Tests for agent/kubeconfig.c. Every refusal is checked against the exact
 * message an operator would read, so a changed message is a deliberate act.
 * Files are real: each test that needs them builds a kubeconfig, certificates,
 * a token and a fake service account directory in its own mkdtemp directory
 * and removes it afterwards. The environment is a table fed through a stub,
 * never the process's own. The fixtures in tests/fixtures/kubeconfig are
 * loaded too; an invalid one says what it must fail with on its first line.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kubeconfig.h"

#define KCFG_DIR FIXTURES "/kubeconfig"

#define CA_PEM   "-----BEGIN CERTIFICATE-----\nMIIBfakeCA\n-----END CERTIFICATE-----\n"
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nMIIBfakeClientCert\n-----END CERTIFICATE-----\n"
#define KEY_PEM  "-----BEGIN EC PRIVATE KEY-----\nMHcfakeKey\n-----END EC PRIVATE KEY-----\n"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

/* Standard padded base64, written independently of the decoder under test. */
static char *b64(const char *s) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = strlen(s), n = 0;
    const unsigned char *p = (const unsigned char *)s;
    char *out = malloc(len / 3 * 4 + 5);

    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        out[n++] = alphabet[v >> 18 & 63];
        out[n++] = alphabet[v >> 12 & 63];
        out[n++] = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
        out[n++] = i + 2 < len ? alphabet[v & 63] : '=';
    }
    out[n] = '\0';
    return out;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...) {
    va_list ap;
    char *s;
    int r;

    va_start(ap, fmt);
    r = vasprintf(&s, fmt, ap);
    va_end(ap);
    ck_assert_int_ge(r, 0);
    return s;
}

static char *make_tmpdir(void) {
    char *dir = strdup("/tmp/test-kubeconfig-XXXXXX");

    ck_assert_ptr_nonnull(dir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    return remove(path);
}

static void remove_tmpdir(char *dir) {
    ck_assert_int_eq(nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(dir);
}

/* Write content to dir/name; returns the new full path. */
static char *write_file(const char *dir, const char *name, const char *content) {
    char *path = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");

    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(fputs(content, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* The environment the stub returns: NULL-terminated name/value pairs. */
static const char *const *fake_env;

static const char *fake_getenv(const char *name) {
    for (size_t i = 0; fake_env && fake_env[i]; i += 2)
        if (!strcmp(fake_env[i], name))
            return fake_env[i + 1];
    return NULL;
}

/* A fake service account directory in dir/sa; returns its path. */
static char *make_sa_dir(const char *dir, const char *token, const char *ns) {
    char *sa = xasprintf("%s/sa", dir);

    ck_assert_int_eq(mkdir(sa, 0700), 0);
    free(write_file(sa, "token", token));
    free(write_file(sa, "ca.crt", CA_PEM));
    if (ns)
        free(write_file(sa, "namespace", ns));
    return sa;
}

/* A load must fail with exactly this code and message. */
static void assert_fails(const char *text, const char *context, bool allow_insecure, int code,
                         const char *message) {
    struct kube_auth a = {0};
    char *error = NULL;
    int r = kubeconfig_load_string(text, strlen(text), NULL, context, allow_insecure, &a, &error);

    ck_assert_msg(r == code, "expected %d, got %d (%s) for:\n%s", code, r, error ? error : "-",
                  text);
    ck_assert_ptr_nonnull(error);
    ck_assert_str_eq(error, message);
    ck_assert_ptr_null(a.server);
    ck_assert_ptr_null(a.origin);
    free(error);
}

/* ------------------------------------------------------------------------ */
/* Kubeconfig: valid                                                        */

START_TEST(test_full_data) {
    char *ca = b64(CA_PEM), *cert = b64(CERT_PEM), *key = b64(KEY_PEM);
    char *text = xasprintf("apiVersion: v1\n"
                           "kind: Config\n"
                           "preferences: {}\n"
                           "clusters:\n"
                           "- name: prod\n"
                           "  cluster:\n"
                           "    server: https://api.example.com:6443/\n"
                           "    certificate-authority-data: %s\n"
                           "    extensions: []\n"
                           "users:\n"
                           "- name: other\n"
                           "  user:\n"
                           "    exec: {command: aws}\n"
                           "- name: admin\n"
                           "  user:\n"
                           "    client-certificate-data: %s\n"
                           "    client-key-data: >-\n"
                           "      %.20s\n"
                           "      %s\n"
                           "contexts:\n"
                           "- name: prod\n"
                           "  context:\n"
                           "    cluster: prod\n"
                           "    user: admin\n"
                           "    namespace: sql\n"
                           "current-context: prod\n",
                           ca, cert, key, key + 20);
    struct kube_auth a = {0};
    char *error = (char *)"not reset";

    ck_assert_int_eq(kubeconfig_load_string(text, strlen(text), NULL, NULL, false, &a, &error), 0);
    ck_assert_ptr_null(error);
    ck_assert_str_eq(a.server, "https://api.example.com:6443");
    ck_assert_ptr_null(a.ca_file);
    ck_assert_str_eq(a.ca_data, CA_PEM);
    ck_assert_uint_eq(a.ca_data_len, strlen(CA_PEM));
    ck_assert_str_eq(a.client_cert_data, CERT_PEM);
    ck_assert_uint_eq(a.client_cert_data_len, strlen(CERT_PEM));
    /* Folded over two lines: the space YAML puts in between is skipped. */
    ck_assert_str_eq(a.client_key_data, KEY_PEM);
    ck_assert_uint_eq(a.client_key_data_len, strlen(KEY_PEM));
    ck_assert_ptr_null(a.client_cert_file);
    ck_assert_ptr_null(a.client_key_file);
    ck_assert_ptr_null(a.token);
    ck_assert_ptr_null(a.token_file);
    ck_assert(!a.insecure_skip_tls_verify);
    ck_assert_str_eq(a.namespace, "sql");
    ck_assert_str_eq(a.origin, "(string)#prod");
    kube_auth_free(&a);
    ck_assert_ptr_null(a.server);
    kube_auth_free(&a); /* twice is harmless */
    kube_auth_free(NULL);
    free(text);
    free(ca);
    free(cert);
    free(key);
}
END_TEST

START_TEST(test_relative_files) {
    char *dir = make_tmpdir(), *sub = xasprintf("%s/certs", dir), *path, *cwd, *expect;
    struct kube_auth a = {0};
    char *error = NULL;

    ck_assert_int_eq(mkdir(sub, 0700), 0);
    free(write_file(sub, "ca.crt", CA_PEM));
    free(write_file(sub, "client.crt", CERT_PEM));
    free(write_file(sub, "client.key", KEY_PEM));
    free(write_file(dir, "token", "  s3cr3t.token\n\n"));
    path = write_file(dir, "config",
                      "clusters:\n"
                      "- name: c\n"
                      "  cluster:\n"
                      "    server: https://10.0.0.1\n"
                      "    certificate-authority: certs/ca.crt\n"
                      "users:\n"
                      "- name: cert\n"
                      "  user:\n"
                      "    client-certificate: certs/client.crt\n"
                      "    client-key: certs/client.key\n"
                      "- name: tf\n"
                      "  user:\n"
                      "    tokenFile: token\n"
                      "contexts:\n"
                      "- {name: a, context: {cluster: c, user: cert}}\n"
                      "- {name: b, context: {cluster: c, user: tf}}\n"
                      "current-context: a\n");

    ck_assert_int_eq(kubeconfig_load(path, NULL, false, &a, &error), 0);
    ck_assert_ptr_null(error);
    ck_assert_str_eq(a.server, "https://10.0.0.1");
    expect = xasprintf("%s/ca.crt", sub);
    ck_assert_str_eq(a.ca_file, expect);
    free(expect);
    expect = xasprintf("%s/client.crt", sub);
    ck_assert_str_eq(a.client_cert_file, expect);
    free(expect);
    expect = xasprintf("%s/client.key", sub);
    ck_assert_str_eq(a.client_key_file, expect);
    free(expect);
    ck_assert_ptr_null(a.token);
    ck_assert_ptr_null(a.namespace);
    expect = xasprintf("%s#a", path);
    ck_assert_str_eq(a.origin, expect);
    free(expect);
    kube_auth_free(&a);

    /* Another context of the same file: a token file, read now, trimmed. */
    ck_assert_int_eq(kubeconfig_load(path, "b", false, &a, &error), 0);
    expect = xasprintf("%s/token", dir);
    ck_assert_str_eq(a.token_file, expect);
    free(expect);
    ck_assert_str_eq(a.token, "s3cr3t.token");
    ck_assert_ptr_null(a.ca_data);
    kube_auth_free(&a);

    /* A relative kubeconfig path still gives absolute file names. */
    cwd = getcwd(NULL, 0);
    ck_assert_ptr_nonnull(cwd);
    ck_assert_int_eq(chdir(sub), 0);
    ck_assert_int_eq(kubeconfig_load("../config", NULL, false, &a, &error), 0);
    ck_assert_int_eq(chdir(cwd), 0);
    expect = xasprintf("%s/../certs/ca.crt", sub);
    ck_assert_str_eq(a.ca_file, expect);
    free(expect);
    ck_assert_str_eq(a.origin, "../config#a");
    kube_auth_free(&a);

    free(cwd);
    free(path);
    free(sub);
    remove_tmpdir(dir);
}
END_TEST

START_TEST(test_token_and_context) {
    static const char text[] = "clusters:\n"
                               "- name: one\n"
                               "  cluster: {server: 'HTTPS://one.example:443'}\n"
                               "- name: six\n"
                               "  cluster: {server: 'https://[fd00::1]:6443'}\n"
                               "users:\n"
                               "- name: u\n"
                               "  user:\n"
                               "    token: 12345\n"
                               "    username: ''\n"
                               "contexts:\n"
                               "- name: first\n"
                               "  context: {cluster: one, user: u}\n"
                               "- name: second\n"
                               "  context: {cluster: six, user: u, namespace: kube-system}\n"
                               "current-context: first\n";
    struct kube_auth a = {0};

    ck_assert_int_eq(kubeconfig_load_string(text, strlen(text), NULL, NULL, false, &a, NULL), 0);
    ck_assert_str_eq(a.server, "https://one.example:443");
    /* A number-looking token stays the string it was written as. */
    ck_assert_str_eq(a.token, "12345");
    ck_assert_ptr_null(a.token_file);
    ck_assert_ptr_null(a.namespace);
    ck_assert_str_eq(a.origin, "(string)#first");
    kube_auth_free(&a);

    ck_assert_int_eq(kubeconfig_load_string(text, strlen(text), NULL, "second", false, &a, NULL),
                     0);
    ck_assert_str_eq(a.server, "https://[fd00::1]:6443");
    ck_assert_str_eq(a.namespace, "kube-system");
    ck_assert_str_eq(a.origin, "(string)#second");
    kube_auth_free(&a);
}
END_TEST

START_TEST(test_insecure_allowed) {
    static const char text[] = "clusters:\n"
                               "- name: c\n"
                               "  cluster:\n"
                               "    server: https://kind-control-plane:6443\n"
                               "    insecure-skip-tls-verify: true\n"
                               "users: [{name: u, user: {token: t}}]\n"
                               "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                               "current-context: x\n";
    struct kube_auth a = {0};
    char *error = NULL;

    ck_assert_int_eq(kubeconfig_load_string(text, strlen(text), NULL, NULL, true, &a, &error), 0);
    ck_assert(a.insecure_skip_tls_verify);
    kube_auth_free(&a);
    ck_assert_int_eq(kubeconfig_load_string(text, strlen(text), NULL, NULL, false, &a, &error),
                     -EPERM);
    ck_assert_str_eq(error, "clusters[0].cluster.insecure-skip-tls-verify: refusing to turn off "
                            "verification of the API server's certificate");
    free(error);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Kubeconfig: invalid                                                      */

#define CTX                                                                                        \
    "current-context: ctx\n"                                                                       \
    "contexts:\n"                                                                                  \
    "- name: ctx\n"                                                                                \
    "  context:\n"                                                                                 \
    "    cluster: c\n"                                                                             \
    "    user: u\n"
#define CLUSTER                                                                                    \
    "clusters:\n"                                                                                  \
    "- name: c\n"                                                                                  \
    "  cluster:\n"                                                                                 \
    "    server: https://k:6443\n"
#define CLUSTER_AT(server)                                                                         \
    "clusters:\n"                                                                                  \
    "- name: c\n"                                                                                  \
    "  cluster:\n"                                                                                 \
    "    server: " server "\n"
#define USER                                                                                       \
    "users:\n"                                                                                     \
    "- name: u\n"                                                                                  \
    "  user:\n"
#define TOKEN "    token: abc\n"
/* base64 of "hello", and of a PEM-looking line */
#define NOT_PEM "aGVsbG8="
#define PEM_B64 "LS0tLS1CRUdJTiBYLS0tLS0K" /* "-----BEGIN X-----\n" */

static const struct bad {
    const char *text;
    const char *context;
    int code;
    const char *error;
} bad[] = {
    /* refused kinds of authentication */
    {CTX CLUSTER USER "    exec:\n      command: aws\n", NULL, -EINVAL,
     "users[0].user.exec: exec credential plugins are not supported; use a token or client "
     "certificate"},
    {CTX CLUSTER USER "    auth-provider: {name: gcp}\n", NULL, -EINVAL,
     "users[0].user.auth-provider: auth provider plugins are not supported; use a token or "
     "client certificate"},
    {CTX CLUSTER USER "    username: admin\n    password: hunter2\n", NULL, -EINVAL,
     "users[0].user.username: basic authentication is not supported; use a token or client "
     "certificate"},
    {CTX CLUSTER USER "    password: hunter2\n" TOKEN, NULL, -EINVAL,
     "users[0].user.password: basic authentication is not supported; use a token or client "
     "certificate"},
    {CTX CLUSTER USER TOKEN "    as: bob\n", NULL, -EINVAL,
     "users[0].user.as: impersonation is not supported"},
    {CTX CLUSTER USER TOKEN "    as-groups: [admins]\n", NULL, -EINVAL,
     "users[0].user.as-groups: impersonation is not supported"},
    {CTX CLUSTER "    proxy-url: http://proxy:3128\n" USER TOKEN, NULL, -EINVAL,
     "clusters[0].cluster.proxy-url: proxies are not supported; the agent connects to the API "
     "server directly"},
    {CTX CLUSTER "    tls-server-name: kubernetes\n" USER TOKEN, NULL, -EINVAL,
     "clusters[0].cluster.tls-server-name: not supported; the certificate must match the host "
     "in server"},
    {CTX CLUSTER "    insecure-skip-tls-verify: true\n" USER TOKEN, NULL, -EPERM,
     "clusters[0].cluster.insecure-skip-tls-verify: refusing to turn off verification of the "
     "API server's certificate"},
    {CTX CLUSTER "    insecure-skip-tls-verify: yes\n" USER TOKEN, NULL, -EINVAL,
     "clusters[0].cluster.insecure-skip-tls-verify: must be true or false, not a string"},
    /* selecting the context */
    {"contexts: [{name: ctx, context: {cluster: c, user: u}}]\n" CLUSTER USER TOKEN, NULL, -ENOENT,
     "current-context: not set, and no context was asked for"},
    {"current-context: nope\n"
     "contexts: [{name: ctx, context: {cluster: c, user: u}}]\n" CLUSTER USER TOKEN,
     NULL, -ENOENT, "current-context: no context named \"nope\" in contexts"},
    {CTX CLUSTER USER TOKEN, "staging", -ENOENT, "contexts: no context named \"staging\""},
    {"current-context: ctx\n"
     "contexts: [{name: ctx, context: {cluster: other, user: u}}]\n" CLUSTER USER TOKEN,
     NULL, -ENOENT, "contexts[0].context.cluster: no cluster named \"other\" in clusters"},
    {"current-context: ctx\n"
     "contexts: [{name: ctx, context: {cluster: c, user: root}}]\n" CLUSTER USER TOKEN,
     NULL, -ENOENT, "contexts[0].context.user: no user named \"root\" in users"},
    {"current-context: ctx\n"
     "contexts: [{name: ctx, context: {user: u}}]\n" CLUSTER USER TOKEN,
     NULL, -EINVAL, "contexts[0].context.cluster: is required"},
    {"current-context: ctx\n"
     "contexts: [{name: ctx, context: {cluster: c}}]\n" CLUSTER USER TOKEN,
     NULL, -EINVAL,
     "contexts[0].context.user: is required (the agent does not connect anonymously)"},
    {"current-context: ctx\n"
     "contexts: [{name: x, context: {}}, {name: ctx}]\n" CLUSTER USER TOKEN,
     NULL, -EINVAL, "contexts[1].context: is required"},
    {"current-context: ctx\n"
     "contexts: [{name: ctx, context: {cluster: c, user: u}}, {context: {}}]\n" CLUSTER USER TOKEN,
     NULL, -EINVAL, "contexts[1].name: is required"},
    {"current-context: ctx\n"
     "contexts: [{name: ctx, context: {cluster: c, user: u}},\n"
     "           {name: ctx, context: {cluster: c, user: u}}]\n" CLUSTER USER TOKEN,
     NULL, -EINVAL, "contexts[1].name: duplicate name \"ctx\" (also contexts[0])"},
    {"current-context: ctx\ncontexts: {}\n", NULL, -EINVAL,
     "contexts: must be a list, not a mapping"},
    {"current-context: [ctx]\n", NULL, -EINVAL, "current-context: must be a string, not a list"},
    {"current-context: ctx\n"
     "contexts: [{name: ctx, context: {cluster: c, user: u, namespace: Prod}}]\n" CLUSTER USER
         TOKEN,
     NULL, -EINVAL,
     "contexts[0].context.namespace: \"Prod\" is not a namespace name (a lowercase RFC 1123 "
     "label)"},
    {CTX "clusters: [a, b]\n", NULL, -EINVAL, "clusters[0]: must be a mapping, not a string"},
    /* the server */
    {CTX "clusters: [{name: c, cluster: {}}]\n" USER TOKEN, NULL, -EINVAL,
     "clusters[0].cluster.server: is required"},
    {CTX CLUSTER_AT("http://k:6443") USER TOKEN, NULL, -EINVAL,
     "clusters[0].cluster.server: \"http://k:6443\" is not an https:// URL"},
    {CTX CLUSTER_AT("https://fd00::1:6443") USER TOKEN, NULL, -EINVAL,
     "clusters[0].cluster.server: \"https://fd00::1:6443\" has an IPv6 address without "
     "brackets (write it as https://[fd00::1]:443)"},
    {CTX CLUSTER_AT("https://[fd00::zz]:6443") USER TOKEN, NULL, -EINVAL,
     "clusters[0].cluster.server: \"https://[fd00::zz]:6443\" has a bad IPv6 address (write it "
     "as https://[fd00::1]:443)"},
    {CTX CLUSTER_AT("https://k:65536") USER TOKEN, NULL, -EINVAL,
     "clusters[0].cluster.server: \"https://k:65536\" has a bad port (must be 1-65535)"},
    {CTX CLUSTER_AT("https:///api") USER TOKEN, NULL, -EINVAL,
     "clusters[0].cluster.server: \"https:///api\" has no host"},
    {CTX CLUSTER_AT("https://admin:pw@k:6443") USER TOKEN, NULL, -EINVAL,
     "clusters[0].cluster.server: \"https://admin:pw@k:6443\" has spaces, user info, a query "
     "or a fragment"},
    /* certificate data */
    {CTX CLUSTER "    certificate-authority-data: " PEM_B64 "\n"
                 "    certificate-authority: /etc/ca.crt\n" USER TOKEN,
     NULL, -EINVAL,
     "clusters[0].cluster: certificate-authority and certificate-authority-data are both set; "
     "keep one"},
    {CTX CLUSTER "    certificate-authority-data: LS0t$S1C\n" USER TOKEN, NULL, -EINVAL,
     "clusters[0].cluster.certificate-authority-data: not valid base64 (bad character at "
     "position 5)"},
    {CTX CLUSTER "    certificate-authority-data: LS0tLS1\n" USER TOKEN, NULL, -EINVAL,
     "clusters[0].cluster.certificate-authority-data: not valid base64 (truncated: the length "
     "is not a multiple of 4)"},
    {CTX CLUSTER "    certificate-authority-data: aGVsbG8=aGVs\n" USER TOKEN, NULL, -EINVAL,
     "clusters[0].cluster.certificate-authority-data: not valid base64 (bad character at "
     "position 9)"},
    {CTX CLUSTER "    certificate-authority-data: " NOT_PEM "\n" USER TOKEN, NULL, -EINVAL,
     "clusters[0].cluster.certificate-authority-data: does not decode to PEM (no "
     "\"-----BEGIN\" line)"},
    {CTX CLUSTER "    insecure-skip-tls-verify: true\n"
                 "    certificate-authority-data: " PEM_B64 "\n" USER TOKEN,
     NULL, -EPERM,
     "clusters[0].cluster.insecure-skip-tls-verify: refusing to turn off verification of the "
     "API server's certificate"},
    {CTX CLUSTER USER "    client-certificate-data: " PEM_B64 "\n", NULL, -EINVAL,
     "users[0].user: client-certificate-data is set without client-key or client-key-data"},
    {CTX CLUSTER USER "    client-key: /k.pem\n" TOKEN, NULL, -EINVAL,
     "users[0].user: client-key is set without client-certificate or client-certificate-data"},
    {CTX CLUSTER USER "    client-key-data: " PEM_B64 "\n"
                      "    client-certificate-data: '$$$$'\n",
     NULL, -EINVAL,
     "users[0].user.client-certificate-data: not valid base64 (bad character at position 1)"},
    {CTX CLUSTER USER "    client-key-data: " PEM_B64 "\n"
                      "    client-key: /k.pem\n"
                      "    client-certificate-data: " PEM_B64 "\n",
     NULL, -EINVAL, "users[0].user: client-key and client-key-data are both set; keep one"},
    {CTX CLUSTER USER "    client-key-data: " NOT_PEM "\n"
                      "    client-certificate-data: " PEM_B64 "\n",
     NULL, -EINVAL,
     "users[0].user.client-key-data: does not decode to PEM (no \"-----BEGIN\" line)"},
    /* tokens and files */
    {CTX CLUSTER USER TOKEN "    tokenFile: /var/token\n", NULL, -EINVAL,
     "users[0].user: token and tokenFile are both set; keep one"},
    {CTX CLUSTER USER "    token: 'abc def'\n", NULL, -EINVAL,
     "users[0].user.token: contains bytes that cannot go in an HTTP header"},
    {CTX CLUSTER USER "    token: [abc]\n", NULL, -EINVAL,
     "users[0].user.token: must be a string, not a list"},
    {CTX CLUSTER USER "    tokenFile: token\n", NULL, -EINVAL,
     "users[0].user.tokenFile: \"token\" is a relative path, and there is no kubeconfig "
     "directory to resolve it against"},
    {CTX CLUSTER "    certificate-authority: ca.crt\n" USER TOKEN, NULL, -EINVAL,
     "clusters[0].cluster.certificate-authority: \"ca.crt\" is a relative path, and there is "
     "no kubeconfig directory to resolve it against"},
    {CTX CLUSTER USER "    client-certificate: /nonexistent/edgewarden/c.pem\n"
                      "    client-key: /nonexistent/edgewarden/k.pem\n",
     NULL, -ENOENT,
     "users[0].user.client-certificate: /nonexistent/edgewarden/c.pem: No such file or "
     "directory"},
    {CTX CLUSTER USER "    tokenFile: /nonexistent/edgewarden/token\n", NULL, -ENOENT,
     "users[0].user.tokenFile: /nonexistent/edgewarden/token: No such file or directory"},
    {CTX CLUSTER USER "    tokenFile: /\n", NULL, -ENOTSUP,
     "users[0].user.tokenFile: /: not a regular file"},
    {CTX CLUSTER USER "    extensions: []\n", NULL, -EINVAL,
     "users[0].user: no credentials; set token, tokenFile, or client-certificate and "
     "client-key"},
    {CTX CLUSTER "users: [{name: u, user: ~}]\n", NULL, -EINVAL, "users[0].user: is required"},
    {CTX CLUSTER "users: [{name: u, user: abc}]\n", NULL, -EINVAL,
     "users[0].user: must be a mapping, not a string"},
    /* the document */
    {"", NULL, -EINVAL, "the kubeconfig is empty"},
    {"# nothing\n---\n", NULL, -EINVAL, "the kubeconfig is empty"},
    {"- a\n", NULL, -EINVAL, "the kubeconfig must be a mapping, not a list"},
    {"kind: AgentConfig\n", NULL, -EINVAL, "kind: must be Config; is this a kubeconfig?"},
    {"apiVersion: v2\nkind: Config\n", NULL, -EINVAL, "apiVersion: must be v1"},
    {"current-context: a\ncurrent-context: b\n", NULL, -EINVAL,
     "2:1: duplicate key \"current-context\""},
    {"a: b: c\n", NULL, -EINVAL, "1:5: mapping values are not allowed in this context"},
    {"users: [a\n", NULL, -EINVAL,
     "2:1: did not find expected ',' or ']' (while parsing a flow sequence at 1:8)"},
    {"kind: Config\n---\nkind: Config\n", NULL, -EINVAL,
     "2:1: more than one document; a kubeconfig is one YAML document"},
    {"a: &x [1]\nb: *x\n", NULL, -EINVAL, "1:4: anchors and aliases are not supported"},
    {"a: *x\n", NULL, -EINVAL, "1:4: anchors and aliases are not supported"},
    {"a: !!str b\n", NULL, -EINVAL, "1:4: tags are not supported"},
    {"? [a]\n: b\n", NULL, -EINVAL, "1:3: keys must be strings, not a mapping or a list"},
    {"token: \"a\\0b\"\n", NULL, -EINVAL, "1:8: strings must not contain NUL bytes"},
    {"a: \xc3\x28\n", NULL, -EINVAL, "1:5: invalid trailing UTF-8 octet"},
    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n", NULL,
     -EINVAL, "1:33: nested deeper than 32 levels"},
};

START_TEST(test_bad) {
    const struct bad *b = &bad[_i];
    assert_fails(b->text, b->context, false, b->code, b->error);
}
END_TEST

START_TEST(test_billion_laughs) {
    /* Each level would multiply by ten; refused at the first anchor. */
    static const char text[] = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
                               "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                               "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                               "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                               "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                               "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                               "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
                               "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
                               "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    assert_fails(text, NULL, false, -EINVAL, "1:4: anchors and aliases are not supported");
}
END_TEST

/* Not NUL-terminated, and a key in the way of the length. */
START_TEST(test_length_respected) {
    static const char text[] = "current-context: x\nzzz";
    struct kube_auth a = {0};
    char *error = NULL;

    ck_assert_int_eq(
        kubeconfig_load_string(text, strlen("current-context: x\n"), NULL, NULL, false, &a, &error),
        -ENOENT);
    ck_assert_str_eq(error, "current-context: no context named \"x\" in contexts");
    free(error);
}
END_TEST

START_TEST(test_size_limits) {
    char *dir = make_tmpdir(), *big = malloc(KUBECONFIG_MAX_FILE_BYTES + 2), *path, *expect;
    struct kube_auth a = {0};
    char *error = NULL;

    ck_assert_ptr_nonnull(big);
    memset(big, '#', KUBECONFIG_MAX_FILE_BYTES + 1);
    big[KUBECONFIG_MAX_FILE_BYTES + 1] = '\0';
    ck_assert_int_eq(
        kubeconfig_load_string(big, KUBECONFIG_MAX_FILE_BYTES + 1, NULL, NULL, false, &a, &error),
        -EFBIG);
    ck_assert_str_eq(error, "the kubeconfig is larger than 1048576 bytes");
    free(error);

    path = write_file(dir, "big", big);
    ck_assert_int_eq(kubeconfig_load(path, NULL, false, &a, &error), -EFBIG);
    expect = xasprintf("%s: larger than 1048576 bytes", path);
    ck_assert_str_eq(error, expect);
    free(expect);
    free(error);
    free(path);

    /* Exactly at the limit is read (and then found empty: all comment). */
    big[KUBECONFIG_MAX_FILE_BYTES] = '\0';
    path = write_file(dir, "at-limit", big);
    ck_assert_int_eq(kubeconfig_load(path, NULL, false, &a, &error), -EINVAL);
    expect = xasprintf("%s: the kubeconfig is empty", path);
    ck_assert_str_eq(error, expect);
    free(expect);
    free(error);
    free(path);

    /* A token file over 64 KiB. */
    big[KUBE_AUTH_MAX_TOKEN_BYTES + 1] = '\0';
    free(write_file(dir, "token", big));
    path = write_file(dir, "config",
                      "clusters: [{name: c, cluster: {server: 'https://k'}}]\n"
                      "users: [{name: u, user: {tokenFile: token}}]\n"
                      "contexts: [{name: x, context: {cluster: c, user: u}}]\n");
    ck_assert_int_eq(kubeconfig_load(path, "x", false, &a, &error), -EFBIG);
    expect = xasprintf("%s: users[0].user.tokenFile: %s/token: larger than 65536 bytes", path, dir);
    ck_assert_str_eq(error, expect);
    free(expect);
    free(error);
    free(path);

    free(big);
    remove_tmpdir(dir);
}
END_TEST

START_TEST(test_missing_file) {
    struct kube_auth a = {0};
    char *error = NULL;

    ck_assert_int_eq(kubeconfig_load("/nonexistent/edgewarden/kubeconfig", NULL, false, &a, &error),
                     -ENOENT);
    ck_assert_str_eq(error, "/nonexistent/edgewarden/kubeconfig: No such file or directory");
    free(error);
    /* A directory is not a kubeconfig. */
    ck_assert_int_eq(kubeconfig_load("/", NULL, false, &a, &error), -ENOTSUP);
    ck_assert_str_eq(error, "/: not a regular file");
    free(error);
    /* error may be NULL. */
    ck_assert_int_eq(kubeconfig_load("/nonexistent", NULL, false, &a, NULL), -ENOENT);
}
END_TEST

START_TEST(test_token_file_checks) {
    char *dir = make_tmpdir(), *path, *expect;
    struct kube_auth a = {0};
    char *error = NULL;

    free(write_file(dir, "token", " \n\t\n"));
    path = write_file(dir, "config",
                      "clusters: [{name: c, cluster: {server: 'https://k'}}]\n"
                      "users: [{name: u, user: {tokenFile: ./token}}]\n"
                      "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                      "current-context: x\n");
    ck_assert_int_eq(kubeconfig_load(path, NULL, false, &a, &error), -EINVAL);
    expect = xasprintf("%s: users[0].user.tokenFile: %s/./token: the token is empty", path, dir);
    ck_assert_str_eq(error, expect);
    free(expect);
    free(error);

    free(write_file(dir, "token", "abc\r\nInjected: header\n"));
    ck_assert_int_eq(kubeconfig_load(path, NULL, false, &a, &error), -EINVAL);
    expect = xasprintf("%s: users[0].user.tokenFile: %s/./token: the token contains bytes that "
                       "cannot go in an HTTP header",
                       path, dir);
    ck_assert_str_eq(error, expect);
    free(expect);
    free(error);
    free(path);
    remove_tmpdir(dir);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* In-cluster                                                               */

START_TEST(test_in_cluster_ipv4) {
    static const char *const env[] = {"KUBERNETES_SERVICE_HOST", "10.96.0.1",
                                      "KUBERNETES_SERVICE_PORT", "443", NULL};
    char *dir = make_tmpdir(), *sa = make_sa_dir(dir, "eyJhbGciOi.jwt.sig\n", "sql-ha\n");
    char *expect;
    struct kube_auth a = {0};
    char *error = NULL;

    fake_env = env;
    ck_assert_int_eq(kube_auth_in_cluster(fake_getenv, sa, &a, &error), 0);
    ck_assert_ptr_null(error);
    ck_assert_str_eq(a.server, "https://10.96.0.1:443");
    ck_assert_str_eq(a.token, "eyJhbGciOi.jwt.sig");
    expect = xasprintf("%s/token", sa);
    ck_assert_str_eq(a.token_file, expect);
    free(expect);
    expect = xasprintf("%s/ca.crt", sa);
    ck_assert_str_eq(a.ca_file, expect);
    free(expect);
    ck_assert_ptr_null(a.ca_data);
    ck_assert_ptr_null(a.client_cert_file);
    ck_assert_str_eq(a.namespace, "sql-ha");
    ck_assert_str_eq(a.origin, "in-cluster");
    ck_assert(!a.insecure_skip_tls_verify);
    kube_auth_free(&a);
    fake_env = NULL;
    free(sa);
    remove_tmpdir(dir);
}
END_TEST

START_TEST(test_in_cluster_ipv6) {
    static const char *const env[] = {"KUBERNETES_SERVICE_HOST", "fd00:10:96::1",
                                      "KUBERNETES_SERVICE_PORT", "6443", NULL};
    char *dir = make_tmpdir(), *sa = make_sa_dir(dir, "tok", NULL);
    struct kube_auth a = {0};

    fake_env = env;
    ck_assert_int_eq(kube_auth_in_cluster(fake_getenv, sa, &a, NULL), 0);
    ck_assert_str_eq(a.server, "https://[fd00:10:96::1]:6443");
    ck_assert_ptr_null(a.namespace); /* no namespace file */
    kube_auth_free(&a);
    fake_env = NULL;
    free(sa);
    remove_tmpdir(dir);
}
END_TEST

static const struct bad_env {
    const char *host, *port;
    int code;
    const char *error;
} bad_env[] = {
    {NULL, "443", -ENOENT, "KUBERNETES_SERVICE_HOST is not set; not running in a pod"},
    {"", "443", -ENOENT, "KUBERNETES_SERVICE_HOST is not set; not running in a pod"},
    {"10.96.0.1", NULL, -ENOENT, "KUBERNETES_SERVICE_PORT is not set"},
    {"10.96.0.1", "https", -EINVAL, "KUBERNETES_SERVICE_PORT: \"https\" is not a port (1-65535)"},
    {"10.96.0.1", "0", -EINVAL, "KUBERNETES_SERVICE_PORT: \"0\" is not a port (1-65535)"},
    {"10.96.0.1/x", "443", -EINVAL,
     "KUBERNETES_SERVICE_HOST: \"10.96.0.1/x\" is not a host name or IP address"},
    {"fd00::1::2", "443", -EINVAL,
     "KUBERNETES_SERVICE_HOST: \"fd00::1::2\" is not a host name or IP address"},
};

START_TEST(test_in_cluster_bad_env) {
    const struct bad_env *b = &bad_env[_i];
    const char *env[] = {"KUBERNETES_SERVICE_HOST", b->host, "KUBERNETES_SERVICE_PORT", b->port,
                         NULL};
    struct kube_auth a = {0};
    char *error = NULL;

    fake_env = env;
    ck_assert_int_eq(kube_auth_in_cluster(fake_getenv, "/nonexistent", &a, &error), b->code);
    ck_assert_str_eq(error, b->error);
    ck_assert_ptr_null(a.server);
    free(error);
    fake_env = NULL;
}
END_TEST

START_TEST(test_in_cluster_bad_files) {
    static const char *const env[] = {"KUBERNETES_SERVICE_HOST", "10.96.0.1",
                                      "KUBERNETES_SERVICE_PORT", "443", NULL};
    char *dir = make_tmpdir(), *sa, *path, *expect;
    struct kube_auth a = {0};
    char *error = NULL;

    fake_env = env;
    expect = xasprintf("%s/token: No such file or directory", dir);
    ck_assert_int_eq(kube_auth_in_cluster(fake_getenv, dir, &a, &error), -ENOENT);
    ck_assert_str_eq(error, expect);
    free(expect);
    free(error);

    sa = make_sa_dir(dir, "tok", "Not_A_Namespace");
    ck_assert_int_eq(kube_auth_in_cluster(fake_getenv, sa, &a, &error), -EINVAL);
    expect = xasprintf("%s/namespace: \"Not_A_Namespace\" is not a namespace name (a lowercase "
                       "RFC 1123 label)",
                       sa);
    ck_assert_str_eq(error, expect);
    free(expect);
    free(error);

    path = xasprintf("%s/ca.crt", sa);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(kube_auth_in_cluster(fake_getenv, sa, &a, &error), -ENOENT);
    expect = xasprintf("%s: No such file or directory", path);
    ck_assert_str_eq(error, expect);
    ck_assert_ptr_null(a.token);
    free(expect);
    free(error);
    free(path);

    fake_env = NULL;
    free(sa);
    remove_tmpdir(dir);
}
END_TEST

START_TEST(test_token_rotation) {
    static const char *const env[] = {"KUBERNETES_SERVICE_HOST", "10.96.0.1",
                                      "KUBERNETES_SERVICE_PORT", "443", NULL};
    char *dir = make_tmpdir(), *sa = make_sa_dir(dir, "first", "default"), *expect;
    struct kube_auth a = {0};
    char *error = NULL;

    fake_env = env;
    ck_assert_int_eq(kube_auth_in_cluster(fake_getenv, sa, &a, &error), 0);
    ck_assert_str_eq(a.token, "first");

    ck_assert_int_eq(kube_auth_read_token(&a, &error), 0);
    ck_assert_ptr_null(error);
    ck_assert_str_eq(a.token, "first");

    free(write_file(sa, "token", "first\n")); /* same after trimming */
    ck_assert_int_eq(kube_auth_read_token(&a, &error), 0);

    free(write_file(sa, "token", "second"));
    ck_assert_int_eq(kube_auth_read_token(&a, &error), 1);
    ck_assert_ptr_null(error);
    ck_assert_str_eq(a.token, "second");

    /* A failed re-read keeps the token the caller already has. */
    free(write_file(sa, "token", "\n"));
    ck_assert_int_eq(kube_auth_read_token(&a, &error), -EINVAL);
    expect = xasprintf("%s/token: the token is empty", sa);
    ck_assert_str_eq(error, expect);
    free(expect);
    free(error);
    ck_assert_str_eq(a.token, "second");

    expect = xasprintf("%s/token", sa);
    ck_assert_int_eq(unlink(expect), 0);
    free(expect);
    ck_assert_int_eq(kube_auth_read_token(&a, &error), -ENOENT);
    expect = xasprintf("%s/token: No such file or directory", sa);
    ck_assert_str_eq(error, expect);
    free(expect);
    free(error);
    ck_assert_str_eq(a.token, "second");
    kube_auth_free(&a);

    /* Nothing to re-read. */
    ck_assert_int_eq(kube_auth_read_token(&a, &error), -EINVAL);
    ck_assert_str_eq(error, "no token file to re-read");
    free(error);

    fake_env = NULL;
    free(sa);
    remove_tmpdir(dir);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Precedence                                                               */

START_TEST(test_resolve_precedence) {
    char *dir = make_tmpdir(), *sa = make_sa_dir(dir, "sa-token", "default");
    char *flag = write_file(dir, "flag.yaml",
                            "clusters: [{name: c, cluster: {server: 'https://flag'}}]\n"
                            "users: [{name: u, user: {token: t}}]\n"
                            "contexts: [{name: x, context: {cluster: c, user: u}},\n"
                            "           {name: y, context: {cluster: c, user: u}}]\n"
                            "current-context: x\n");
    char *envfile = write_file(dir, "env.yaml",
                               "clusters: [{name: c, cluster: {server: 'https://env'}}]\n"
                               "users: [{name: u, user: {token: t}}]\n"
                               "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                               "current-context: x\n");
    char *list = xasprintf("::%s:%s/missing", envfile, dir), *expect;
    const char *env_all[] = {
        "KUBECONFIG", list, "KUBERNETES_SERVICE_HOST", "10.96.0.1", "KUBERNETES_SERVICE_PORT",
        "443",        NULL};
    const char *env_pod[] = {"KUBERNETES_SERVICE_HOST", "10.96.0.1", "KUBERNETES_SERVICE_PORT",
                             "443", NULL};
    struct kube_auth_options opts = {.getenv_fn = fake_getenv, .sa_dir = sa};
    struct kube_auth a = {0};
    char *error = NULL;

    /* 1. the flag wins over everything */
    fake_env = env_all;
    opts.kubeconfig_path = flag;
    opts.context = "y";
    ck_assert_int_eq(kube_auth_resolve(&opts, &a, &error), 0);
    ck_assert_str_eq(a.server, "https://flag");
    expect = xasprintf("%s#y", flag);
    ck_assert_str_eq(a.origin, expect);
    free(expect);
    kube_auth_free(&a);

    /* 2. then $KUBECONFIG, its first non-empty entry only */
    opts.kubeconfig_path = NULL;
    opts.context = NULL;
    ck_assert_int_eq(kube_auth_resolve(&opts, &a, &error), 0);
    ck_assert_str_eq(a.server, "https://env");
    kube_auth_free(&a);

    /* a missing $KUBECONFIG file is an error, not a fall-through */
    free(list);
    list = xasprintf("%s/missing:%s", dir, envfile);
    env_all[1] = list;
    ck_assert_int_eq(kube_auth_resolve(&opts, &a, &error), -ENOENT);
    expect = xasprintf("%s/missing: No such file or directory", dir);
    ck_assert_str_eq(error, expect);
    free(expect);
    free(error);

    /* 3. then the service account */
    fake_env = env_pod;
    ck_assert_int_eq(kube_auth_resolve(&opts, &a, &error), 0);
    ck_assert_str_eq(a.origin, "in-cluster");
    ck_assert_str_eq(a.token, "sa-token");
    kube_auth_free(&a);

    /* a context needs a kubeconfig */
    opts.context = "x";
    ck_assert_int_eq(kube_auth_resolve(&opts, &a, &error), -EINVAL);
    ck_assert_str_eq(error, "a context (\"x\") was given, but there is no kubeconfig to take it "
                            "from");
    free(error);
    opts.context = NULL;

    /* 4. nothing at all */
    fake_env = NULL;
    ck_assert_int_eq(kube_auth_resolve(&opts, &a, &error), -ENOENT);
    ck_assert_str_eq(error, "no Kubernetes credentials: set --kubeconfig or run in a pod");
    free(error);

    /* an empty $KUBECONFIG counts as unset */
    {
        const char *env_empty[] = {"KUBECONFIG", ":", NULL};
        fake_env = env_empty;
        ck_assert_int_eq(kube_auth_resolve(&opts, &a, &error), -ENOENT);
        free(error);
    }

    fake_env = NULL;
    free(list);
    free(flag);
    free(envfile);
    free(sa);
    remove_tmpdir(dir);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                 */

/* The "# expect: " first line of a fixture, or NULL for a valid one. */
static char *expected_error(const char *path) {
    static const char prefix[] = "# expect: ";
    char line[1024];
    FILE *f = fopen(path, "r");
    char *out = NULL;

    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    if (fgets(line, sizeof(line), f) && !strncmp(line, prefix, strlen(prefix))) {
        line[strcspn(line, "\n")] = '\0';
        out = strdup(line + strlen(prefix));
        ck_assert_ptr_nonnull(out);
    }
    fclose(f);
    return out;
}

START_TEST(test_fixtures) {
    DIR *d = opendir(KCFG_DIR);
    struct dirent *de;
    size_t valid = 0, invalid = 0;

    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        struct kube_auth a = {0};
        char *path, *expected, *error = NULL;
        int r;

        if (n < 5 || strcmp(de->d_name + n - 5, ".yaml"))
            continue;
        path = xasprintf("%s/%s", KCFG_DIR, de->d_name);
        expected = expected_error(path);
        r = kubeconfig_load(path, NULL, false, &a, &error);
        if (!strncmp(de->d_name, "valid-", 6)) {
            ck_assert_msg(r == 0 && !expected, "%s: expected success, got %d: %s", de->d_name, r,
                          error ? error : "-");
            ck_assert_ptr_nonnull(a.server);
            valid++;
        } else {
            char *full;
            ck_assert_msg(expected != NULL, "%s: an invalid fixture needs a # expect: line",
                          de->d_name);
            full = xasprintf("%s: %s", path, expected);
            ck_assert_msg(r < 0 && error && !strcmp(error, full), "%s: expected\n%s\ngot %d\n%s",
                          de->d_name, full, r, error ? error : "-");
            free(full);
            invalid++;
        }
        kube_auth_free(&a);
        free(error);
        free(expected);
        free(path);
    }
    closedir(d);
    ck_assert_uint_ge(valid, 2);
    ck_assert_uint_ge(invalid, 8);
}
END_TEST

int main(void) {
    Suite *s = suite_create("kubeconfig");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_full_data);
    tcase_add_test(tc, test_relative_files);
    tcase_add_test(tc, test_token_and_context);
    tcase_add_test(tc, test_insecure_allowed);
    tcase_add_loop_test(tc, test_bad, 0, sizeof(bad) / sizeof(bad[0]));
    tcase_add_test(tc, test_billion_laughs);
    tcase_add_test(tc, test_length_respected);
    tcase_add_test(tc, test_size_limits);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_token_file_checks);
    tcase_add_test(tc, test_in_cluster_ipv4);
    tcase_add_test(tc, test_in_cluster_ipv6);
    tcase_add_loop_test(tc, test_in_cluster_bad_env, 0, sizeof(bad_env) / sizeof(bad_env[0]));
    tcase_add_test(tc, test_in_cluster_bad_files);
    tcase_add_test(tc, test_token_rotation);
    tcase_add_test(tc, test_resolve_precedence);
    tcase_add_test(tc, test_fixtures);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
