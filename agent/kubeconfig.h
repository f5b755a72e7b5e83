/*
 * How the agent finds and proves its identity to the Kubernetes API server:
 * the service account a pod is given (in-cluster), or a kubeconfig file on a
 * bare-metal node. Either way the result is one struct kube_auth — the server
 * URL, the CA to verify it with, and a bearer token and/or client
 * certificate — that the HTTP glue turns into libcurl options. Only what can
 * be honoured exactly is accepted: exec and auth-provider plugins, basic
 * auth, impersonation, proxies and turning TLS verification off are refused
 * with an error naming the field, never ignored. The module is pure: it reads
 * the files it is pointed at but never logs, never touches the network and
 * never reads the environment on its own (a getenv-like function is passed
 * in). The caller owns every struct kube_auth it hands in, and every error
 * string it gets back. docs/kubernetes-auth.md is the operator's reference.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define KUBE_AUTH_DEFAULT_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* Limits on the input; past them the load fails with -EFBIG or -EINVAL. */
#define KUBECONFIG_MAX_FILE_BYTES (1024 * 1024) /* the kubeconfig document */
#define KUBECONFIG_MAX_DEPTH      32            /* nesting of mappings and lists */
#define KUBE_AUTH_MAX_TOKEN_BYTES (64 * 1024)   /* a token file, before trimming */
#define KUBE_AUTH_MAX_SMALL_BYTES 4096          /* the in-cluster namespace file */

/* Credentials for one API server. Every pointer is owned by the struct, is
 * either NULL (not set) or a NUL-terminated string (the *_data fields also
 * have their length, and are NUL-terminated for convenience), and is released
 * by kube_auth_free(). File paths are absolute. */
struct kube_auth {
    /* "https://10.96.0.1:443" or "https://[fd00::1]:443"; never NULL after a
     * successful load; no trailing slash (a path prefix such as a proxy's
     * "/k8s/clusters/c-1" is kept). */
    char *server;
    /* The CA bundle (PEM) that verifies the server: a file, or the decoded
     * certificate-authority-data. At most one is set; neither means the
     * system trust store. */
    char *ca_file;
    char *ca_data;
    size_t ca_data_len;
    /* Client certificate and key (PEM), as a file or decoded data each. A
     * certificate is always accompanied by a key, and a key by a certificate. */
    char *client_cert_file;
    char *client_cert_data;
    size_t client_cert_data_len;
    char *client_key_file;
    char *client_key_data;
    size_t client_key_data_len;
    /* A bearer token: the static token, or the token file's content with
     * surrounding whitespace trimmed. Only bytes 0x21..0x7e, so it is always
     * safe in an Authorization header. */
    char *token;
    /* When set, token came from this file and the caller re-reads it with
     * kube_auth_read_token() every minute and after a 401 (service account
     * tokens are rotated). */
    char *token_file;
    /* Only ever true when the load was called with allow_insecure. */
    bool insecure_skip_tls_verify;
    /* The context's namespace, or the in-cluster namespace file's content;
     * NULL when neither names one (the caller picks its default). */
    char *namespace;
    /* Where the credentials came from, for logs: "in-cluster", or
     * "<kubeconfig path>#<context name>". Never NULL after a successful load. */
    char *origin;
};

/* Where kube_auth_resolve() looks, in this order: kubeconfig_path, then the
 * first path in $KUBECONFIG, then the in-cluster service account when
 * $KUBERNETES_SERVICE_HOST is set. All strings are borrowed. */
struct kube_auth_options {
    const char *kubeconfig_path; /* --kubeconfig; NULL = not given */
    const char *context;         /* --context; NULL = the kubeconfig's current-context */
    bool allow_insecure;         /* accept insecure-skip-tls-verify: true (test clusters only) */
    /* getenv, or a stub in tests. Required. The strings it returns are
     * borrowed and not kept. */
    const char *(*getenv_fn)(const char *name);
    const char *sa_dir; /* NULL = KUBE_AUTH_DEFAULT_SA_DIR */
};

/*
 * Error reporting, for every function below: error may be NULL. Otherwise
 * *error is set to NULL on success and, on failure, to a new string the
 * caller frees — one line such as
 *   users[0].user.exec: exec credential plugins are not supported; use a ...
 * (or NULL when even that could not be allocated, with -ENOMEM). On failure
 * *out is left zeroed: there is nothing to free, though kube_auth_free() on
 * it is harmless. out must not hold credentials on entry (they would leak);
 * start it zeroed.
 *
 * Return codes: 0; -ENOENT (something named is missing: an environment
 * variable, a file, a context, cluster or user); -EINVAL (invalid content);
 * -EPERM (insecure-skip-tls-verify without allow_insecure); -EFBIG (a file
 * over its size limit); -ENOTSUP (a file that is not a regular file);
 * another -errno from stat/open/read; -ENOMEM.
 */

/* The pod's service account: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
 * (an IPv6 host is bracketed), token from <sa_dir>/token (token and
 * token_file set), CA file <sa_dir>/ca.crt (required), namespace from
 * <sa_dir>/namespace (NULL when the file is absent). getenv_fn is required;
 * sa_dir NULL means KUBE_AUTH_DEFAULT_SA_DIR. Fills *out (borrowed, caller-owned). */
int kube_auth_in_cluster(const char *(*getenv_fn)(const char *name), const char *sa_dir,
                         struct kube_auth *out, char **error);

/* Load the kubeconfig at path and select context (NULL = its current-context).
 * Relative file names inside it are resolved against the file's directory
 * (made absolute with the working directory when path is relative). Errors
 * are prefixed with "<path>: ". Fills *out (borrowed, caller-owned). */
int kubeconfig_load(const char *path, const char *context, bool allow_insecure,
                    struct kube_auth *out, char **error);

/* As kubeconfig_load() on a document in memory (borrowed; need not be
 * NUL-terminated). base_dir is what relative file names are resolved against;
 * NULL refuses relative file names. origin becomes "(string)#<context>".
 * Errors carry no file prefix. */
int kubeconfig_load_string(const char *text, size_t len, const char *base_dir, const char *context,
                           bool allow_insecure, struct kube_auth *out, char **error);

/* Pick the credentials by the precedence above: an explicit kubeconfig path
 * > $KUBECONFIG (its first non-empty entry; merging several files as kubectl
 * does is not supported) > in-cluster when $KUBERNETES_SERVICE_HOST is set >
 * -ENOENT "no Kubernetes credentials: set --kubeconfig or run in a pod".
 * A context with no kubeconfig to apply it to is -EINVAL. opts is borrowed. */
int kube_auth_resolve(const struct kube_auth_options *opts, struct kube_auth *out, char **error);

/* Re-read a->token_file (trimmed; empty, over KUBE_AUTH_MAX_TOKEN_BYTES or
 * holding bytes unfit for a header is an error). Returns 1 when the token
 * changed (a->token replaced), 0 when it did not, or a negative errno with
 * a->token left as it was, so the caller keeps using the old token. No
 * token_file is -EINVAL. */
int kube_auth_read_token(struct kube_auth *a, char **error);

/* Release everything a owns and zero it; a itself (usually embedded in the
 * caller's struct) is not freed. NULL-safe, and safe to call twice. */
void kube_auth_free(struct kube_auth *a);
