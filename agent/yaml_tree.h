/*
 * One YAML document (or JSON, which is YAML's flow style) read into a jansson
 * tree, for the loaders of outside files: the agent's config and kubeconfigs.
 * The reader bounds what a file can cost (bytes, nesting, string length) and
 * refuses what would let one file mean two things or grow past its own size:
 * anchors and aliases, tags, duplicate keys and a second document. Plain
 * scalars are typed as the caller asks; quoted scalars and keys are always
 * strings. Problems come back as a list of errors with their line:column (or,
 * for the ones the read can go on past, the path of the value), so each
 * caller words its own error lines around the same findings. The file is
 * named yaml_tree, not yaml, so it cannot shadow libyaml's <yaml.h> on the
 * include path. The module is pure: no logging, no files; the caller owns the
 * tree and the error list it is handed.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* How plain (unquoted) scalars are typed. */
enum yaml_tree_scalars {
    /* YAML 1.2 core schema: null, true/false, integers (decimal, 0x, 0o) and
     * floats; an integer past int64 is an error, "integer out of range". */
    YAML_TREE_SCALARS_TYPED,
    /* Only the core null and true/false forms are typed; everything else,
     * numbers included, stays a string. */
    YAML_TREE_SCALARS_STRINGS,
};

/* How many problems a read reports. */
enum yaml_tree_report {
    /* The first problem ends the read; every error has its line:column, and
     * its message names what it is about: "duplicate key \"name\"". */
    YAML_TREE_FIRST_ERROR,
    /* The read goes on past the problems a tree survives (anchors, aliases,
     * tags, duplicate keys, long or NUL-holding strings, integers out of
     * range: the value becomes null or is dropped), so a user sees them all
     * at once. Those errors are recovered and carry the path of the value,
     * with a message about it: "duplicate key". What leaves no tree to read
     * (syntax, depth, a second document, keys that are not strings) still
     * ends the read at its line:column. */
    YAML_TREE_ALL_ERRORS,
};

struct yaml_tree_options {
    size_t max_bytes;        /* longer text is refused whole (-EFBIG) */
    size_t max_depth;        /* nested mappings and lists, >= 1 */
    size_t max_string_bytes; /* longest key or scalar value; 0 = no limit */
    size_t max_errors;       /* YAML_TREE_ALL_ERRORS: stop after this many; 0 = no limit */
    enum yaml_tree_scalars scalars;
    enum yaml_tree_report report;
    /* What one document is, for "more than one document; a config is one
     * YAML document". Borrowed for the call. */
    const char *document_name;
};

/* One step from the root to a value: a mapping key, or a list index. */
struct yaml_tree_step {
    char *key; /* owned; NULL for a list index */
    size_t index;
};

struct yaml_tree_error {
    /* 1-based position of the problem; 0 when it concerns the whole text. */
    size_t line;
    size_t column;
    /* YAML_TREE_ALL_ERRORS only: the read went on, and path (path_len steps,
     * possibly none: the root) names the value the message is about. */
    bool recovered;
    struct yaml_tree_step *path; /* owned; NULL when path_len is 0 */
    size_t path_len;
    char *message; /* owned; never NULL; without the position or path */
};

struct yaml_tree_errors {
    struct yaml_tree_error *items; /* owned */
    size_t n;
};

/* Read len bytes of text (no NUL terminator needed) as one YAML document.
 * Returns 0 with *root a new reference (NULL when the text holds no
 * document, json null for an empty one); -EINVAL after one or more problems;
 * -EFBIG when len is past opts->max_bytes ("the document is larger than N
 * bytes"); -ENOMEM. On failure *root is NULL. Errors are appended to errs
 * (NULL: not kept) also when the result is -ENOMEM; the caller frees them
 * with yaml_tree_errors_free(). */
int yaml_tree_read(const char *text, size_t len, const struct yaml_tree_options *opts,
                   json_t **root, struct yaml_tree_errors *errs);

/* What v is called in an error about a document: "a mapping", "a list",
 * "a string", "an integer", "a number" (a float), "a boolean" or "null". A
 * static string. */
const char *yaml_tree_type_name(const json_t *v);

/* Free every error and empty the list; the struct itself stays the
 * caller's. NULL is a no-op. */
void yaml_tree_errors_free(struct yaml_tree_errors *errs);
