/*
 * YAML events into a jansson tree (see yaml_tree.h). libyaml's parser hands
 * over one event at a time; a stack of frames, one per open mapping or list,
 * remembers the key or index being read, so every value is attached to its
 * parent as soon as it is complete, and a container is attached when it
 * opens, so the duplicate check and the path of an error see it. A value
 * refused under a duplicate key is still read (its container is "detached":
 * owned by its frame, dropped when it closes), so the errors after it are
 * found as well. The config loader and the kubeconfig loader each had their
 * own copy of this reader; the two report modes keep both callers' errors
 * exactly as they were. The tree and the error list go to the caller; the
 * reader's own state is freed before yaml_tree_read() returns.
 */
#include "yaml_tree.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "text.h"

#define ANCHORS_REFUSED "anchors and aliases are not supported"
#define TAGS_REFUSED    "tags are not supported"

struct frame {
    json_t *node;         /* borrowed from its parent, or owned when detached */
    bool detached;        /* a duplicate key's value: read, checked, then dropped */
    char *key;            /* mapping: the key whose value is being read; NULL between entries */
    yaml_mark_t key_mark; /* where that key starts, for a duplicate's error */
    size_t index;         /* list: index of the item being read */
};

struct reader {
    const struct yaml_tree_options *opts;
    struct yaml_tree_errors *errs; /* NULL: problems are counted, not kept */
    size_t count;                  /* problems found */
    bool oom;
    bool done;
    const char *text;
    size_t len;
    struct frame *stack; /* opts->max_depth frames */
    size_t depth;
    json_t *root; /* new reference once the first node is read */
    unsigned documents;
};

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

static void reader_oom(struct reader *r) {
    r->oom = true;
    r->done = true;
}

static void steps_free(struct yaml_tree_step *path, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(path[i].key);
    free(path);
}

/* The path of the value being read: the key of every mapping that has one
 * (a mapping between entries adds nothing) and the index in every list. */
static int copy_path(const struct reader *r, struct yaml_tree_step **path_out, size_t *n_out) {
    struct yaml_tree_step *path;
    size_t n = 0;

    *path_out = NULL;
    *n_out = 0;
    if (r->depth == 0)
        return 0;
    path = calloc(r->depth, sizeof(*path));
    if (!path)
        return -ENOMEM;
    for (size_t i = 0; i < r->depth; i++) {
        const struct frame *f = &r->stack[i];
        if (json_is_object(f->node)) {
            if (!f->key)
                continue;
            path[n].key = strdup(f->key);
            if (!path[n].key) {
                steps_free(path, n);
                return -ENOMEM;
            }
        } else {
            path[n].index = f->index;
        }
        n++;
    }
    if (n == 0) {
        free(path);
        path = NULL;
    }
    *path_out = path;
    *n_out = n;
    return 0;
}

/* Record one problem; steals message (NULL: out of memory). Unless it was
 * recovered from, or in first-error mode, it ends the read. */
static void report(struct reader *r, size_t line, size_t column, bool recovered, char *message) {
    struct yaml_tree_error *items, *e;
    struct yaml_tree_step *path = NULL;
    size_t path_len = 0;

    r->count++;
    if (!recovered || r->opts->report == YAML_TREE_FIRST_ERROR ||
        (r->opts->max_errors && r->count >= r->opts->max_errors))
        r->done = true;
    if (!message) {
        reader_oom(r);
        return;
    }
    if (!r->errs) {
        free(message);
        return;
    }
    if (recovered && copy_path(r, &path, &path_len) < 0)
        goto oom;
    items = realloc(r->errs->items, (r->errs->n + 1) * sizeof(*items));
    if (!items)
        goto oom;
    r->errs->items = items;
    e = &items[r->errs->n++];
    *e = (struct yaml_tree_error){.line = line,
                                  .column = column,
                                  .recovered = recovered,
                                  .path = path,
                                  .path_len = path_len,
                                  .message = message};
    return;
oom:
    steps_free(path, path_len);
    free(message);
    reader_oom(r);
}

/* A problem that ends the read, at a libyaml mark (0-based; people count
 * from 1). */
__attribute__((format(printf, 3, 4))) static void fail_at(struct reader *r, yaml_mark_t mark,
                                                          const char *fmt, ...) {
    char *message;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&message, fmt, ap) < 0)
        message = NULL;
    va_end(ap);
    report(r, mark.line + 1, mark.column + 1, false, message);
}

/* A problem the tree survives, with the node at mark. at_mark says it on its
 * own, for first-error mode; at_path says it of the value the path names,
 * for all-errors mode, where the read goes on. Returns whether it does. */
static bool problem(struct reader *r, yaml_mark_t mark, const char *at_mark, const char *at_path) {
    bool all = r->opts->report == YAML_TREE_ALL_ERRORS;

    report(r, mark.line + 1, mark.column + 1, all, strdup(all ? at_path : at_mark));
    return !r->done;
}

static void fail_syntax(struct reader *r, const yaml_parser_t *p) {
    if (p->error == YAML_MEMORY_ERROR) {
        reader_oom(r);
    } else if (p->error == YAML_READER_ERROR) {
        /* The reader knows only a byte offset; count lines up to it. */
        size_t line = 1, column = 1;
        for (size_t i = 0; i < p->problem_offset && i < r->len; i++) {
            if (r->text[i] == '\n') {
                line++;
                column = 1;
            } else {
                column++;
            }
        }
        report(r, line, column, false, strdup(p->problem ? p->problem : "unreadable input"));
    } else if (p->context) {
        char *message;
        if (asprintf(&message, "%s (%s at %zu:%zu)", p->problem ? p->problem : "syntax error",
                     p->context, p->context_mark.line + 1, p->context_mark.column + 1) < 0)
            message = NULL;
        report(r, p->problem_mark.line + 1, p->problem_mark.column + 1, false, message);
    } else {
        report(r, p->problem_mark.line + 1, p->problem_mark.column + 1, false,
               strdup(p->problem ? p->problem : "syntax error"));
    }
}

/* ------------------------------------------------------------------------ */
/* Scalars                                                                  */

static bool all_digits(const char *s, const char *digits) {
    if (!*s)
        return false;
    for (; *s; s++)
        if (!strchr(digits, *s))
            return false;
    return true;
}

/* YAML 1.2 core float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool looks_float(const char *s) {
    bool digits = false;
    if (*s == '-' || *s == '+')
        s++;
    while (*s >= '0' && *s <= '9') {
        s++;
        digits = true;
    }
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') {
            s++;
            digits = true;
        }
    }
    if (!digits)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

/* Type a plain scalar (s is NUL-terminated, len bytes). A new reference;
 * NULL on allocation failure, or with *range set for an integer past int64. */
static json_t *type_plain(const char *s, size_t len, enum yaml_tree_scalars scalars, bool *range) {
    const char *digits = s;
    int base = 10;

    *range = false;
    if (len == 0 || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
        !strcmp(s, "NULL"))
        return json_null();
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return json_true();
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return json_false();
    if (scalars == YAML_TREE_SCALARS_STRINGS)
        return json_stringn_nocheck(s, len);
    if (s[0] == '0' && s[1] == 'x' && all_digits(s + 2, "0123456789abcdefABCDEF")) {
        digits = s + 2;
        base = 16;
    } else if (s[0] == '0' && s[1] == 'o' && all_digits(s + 2, "01234567")) {
        digits = s + 2;
        base = 8;
    } else if ((s[0] == '-' || s[0] == '+') && all_digits(s + 1, "0123456789")) {
        digits = s;
    } else if (!all_digits(s, "0123456789")) {
        digits = NULL;
    }
    if (digits) {
        char *end;
        long long v;
        errno = 0;
        v = strtoll(digits, &end, base);
        if (errno == ERANGE) {
            *range = true;
            return NULL;
        }
        return json_integer(v);
    }
    if (looks_float(s)) {
        double v = strtod(s, NULL);
        if (v == v && v - v == 0) /* finite; an overflowing exponent stays a string */
            return json_real(v);
    }
    return json_stringn_nocheck(s, len);
}

/* ------------------------------------------------------------------------ */
/* The reader                                                               */

/* Hand a finished value to its parent. A mapping refuses a key it already
 * has: two values for one key, and which one a client uses is anyone's
 * guess. Steals value. Returns false when it was not attached (refused,
 * dropped under a detached parent, or out of memory). */
static bool reader_attach(struct reader *r, json_t *value) {
    struct frame *top;

    if (r->depth == 0) {
        r->root = value;
        return true;
    }
    top = &r->stack[r->depth - 1];
    if (top->detached) {
        json_decref(value);
        return false;
    }
    if (json_is_array(top->node)) {
        if (json_array_append_new(top->node, value) < 0) {
            reader_oom(r);
            return false;
        }
        return true;
    }
    if (json_object_get(top->node, top->key)) {
        char shown[TEXT_SHOWN_SIZE], at_mark[TEXT_SHOWN_SIZE + 32];
        snprintf(at_mark, sizeof(at_mark), "duplicate key \"%s\"",
                 text_shown(top->key, shown, sizeof(shown)));
        problem(r, top->key_mark, at_mark, "duplicate key");
        json_decref(value);
        return false;
    }
    if (json_object_set_new_nocheck(top->node, top->key, value) < 0) {
        reader_oom(r);
        return false;
    }
    return true;
}

/* The parent moves on to its next entry once a value is complete. */
static void reader_advance(struct reader *r) {
    struct frame *top;
    if (r->depth == 0)
        return;
    top = &r->stack[r->depth - 1];
    if (json_is_array(top->node)) {
        top->index++;
    } else {
        free(top->key);
        top->key = NULL;
    }
}

static bool reader_awaits_key(const struct reader *r) {
    const struct frame *top = r->depth ? &r->stack[r->depth - 1] : NULL;
    return top && json_is_object(top->node) && !top->key;
}

/* Anchors and aliases are refused rather than expanded, the simplest bound
 * on a "billion laughs" document; tags, because they could make one value
 * mean two things. Returns whether the node is plain. */
static bool reader_plain_node(struct reader *r, yaml_mark_t mark, const yaml_char_t *anchor,
                              const yaml_char_t *tag) {
    if (anchor) {
        problem(r, mark, ANCHORS_REFUSED, ANCHORS_REFUSED);
        return false;
    }
    if (tag) {
        problem(r, mark, TAGS_REFUSED, TAGS_REFUSED);
        return false;
    }
    return true;
}

/* A scalar where a mapping expects a key: always a string, whatever it
 * looks like. */
static void reader_key(struct reader *r, const yaml_event_t *e) {
    const char *value = (const char *)e->data.scalar.value;
    size_t len = e->data.scalar.length, max = r->opts->max_string_bytes;
    struct frame *top = &r->stack[r->depth - 1];

    if (strlen(value) != len) {
        fail_at(r, e->start_mark, "keys must not contain NUL bytes");
        return;
    }
    top->key = strdup(value);
    if (!top->key) {
        reader_oom(r);
        return;
    }
    top->key_mark = e->start_mark;
    if (max && len > max) {
        char at_mark[64], at_path[64];
        snprintf(at_mark, sizeof(at_mark), "keys must not be longer than %zu bytes", max);
        snprintf(at_path, sizeof(at_path), "key longer than %zu bytes", max);
        if (!problem(r, e->start_mark, at_mark, at_path))
            return;
    }
    reader_plain_node(r, e->start_mark, e->data.scalar.anchor, e->data.scalar.tag);
}

static void reader_scalar(struct reader *r, const yaml_event_t *e) {
    const char *value = (const char *)e->data.scalar.value;
    size_t len = e->data.scalar.length, max = r->opts->max_string_bytes;
    const yaml_char_t *anchor = e->data.scalar.anchor, *tag = e->data.scalar.tag;
    json_t *node;
    bool range;

    if (r->opts->report == YAML_TREE_FIRST_ERROR) {
        /* One problem is all that is said: for a key or a value, an anchor
         * or tag first, then a NUL byte. (Reading on, a key that cannot be
         * read ends the read before anything recoverable is said of it.) */
        if (!reader_plain_node(r, e->start_mark, anchor, tag))
            return;
        if (strlen(value) != len) {
            fail_at(r, e->start_mark, "strings must not contain NUL bytes");
            return;
        }
    }
    if (reader_awaits_key(r)) {
        reader_key(r, e);
        return;
    }
    if (!reader_plain_node(r, e->start_mark, anchor, tag)) {
        node = json_null();
    } else if (max && len > max) {
        char at_mark[64], at_path[64];
        snprintf(at_mark, sizeof(at_mark), "strings must not be longer than %zu bytes", max);
        snprintf(at_path, sizeof(at_path), "longer than %zu bytes", max);
        problem(r, e->start_mark, at_mark, at_path);
        node = json_null();
    } else if (strlen(value) != len) {
        problem(r, e->start_mark, "strings must not contain NUL bytes",
                "must not contain NUL bytes");
        node = json_null();
    } else if (e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        node = type_plain(value, len, r->opts->scalars, &range);
        if (range) {
            problem(r, e->start_mark, "integer out of range", "integer out of range");
            node = json_null();
        }
    } else {
        node = json_stringn_nocheck(value, len);
    }
    if (r->done) {
        json_decref(node);
        return;
    }
    if (!node) {
        reader_oom(r);
        return;
    }
    reader_attach(r, node);
    reader_advance(r);
}

static void reader_open(struct reader *r, const yaml_event_t *e, bool mapping) {
    const yaml_char_t *anchor =
        mapping ? e->data.mapping_start.anchor : e->data.sequence_start.anchor;
    const yaml_char_t *tag = mapping ? e->data.mapping_start.tag : e->data.sequence_start.tag;
    struct frame *f;
    json_t *node;
    bool attached;

    if (reader_awaits_key(r)) {
        fail_at(r, e->start_mark, "keys must be strings, not a mapping or a list");
        return;
    }
    if (r->depth == r->opts->max_depth) {
        fail_at(r, e->start_mark, "nested deeper than %zu levels", r->opts->max_depth);
        return;
    }
    reader_plain_node(r, e->start_mark, anchor, tag);
    if (r->done)
        return;
    node = mapping ? json_object() : json_array();
    if (!node) {
        reader_oom(r);
        return;
    }
    /* Attach at once, so children's paths and duplicate checks see it. The
     * extra reference survives a refused attach; when attached, the parent's
     * reference is enough and the frame's pointer is borrowed. */
    json_incref(node);
    attached = reader_attach(r, node);
    if (attached || r->done)
        json_decref(node);
    if (r->done)
        return;
    f = &r->stack[r->depth++];
    *f = (struct frame){.node = node, .detached = !attached};
}

static void reader_close(struct reader *r) {
    struct frame *f = &r->stack[--r->depth];
    free(f->key);
    if (f->detached)
        json_decref(f->node);
    reader_advance(r);
}

static void reader_event(struct reader *r, const yaml_event_t *e) {
    switch (e->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++r->documents > 1)
            fail_at(r, e->start_mark, "more than one document; a %s is one YAML document",
                    r->opts->document_name);
        break;
    case YAML_ALIAS_EVENT:
        /* Reading on, an alias key cannot be skipped like an alias value. */
        if (r->opts->report == YAML_TREE_ALL_ERRORS && reader_awaits_key(r)) {
            fail_at(r, e->start_mark, "keys must be strings, not aliases");
            break;
        }
        if (!problem(r, e->start_mark, ANCHORS_REFUSED, ANCHORS_REFUSED))
            break;
        reader_attach(r, json_null());
        reader_advance(r);
        break;
    case YAML_SCALAR_EVENT:
        reader_scalar(r, e);
        break;
    case YAML_SEQUENCE_START_EVENT:
        reader_open(r, e, false);
        break;
    case YAML_MAPPING_START_EVENT:
        reader_open(r, e, true);
        break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        reader_close(r);
        break;
    case YAML_STREAM_END_EVENT:
        r->done = true;
        break;
    case YAML_NO_EVENT:
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
        break;
    }
}

int yaml_tree_read(const char *text, size_t len, const struct yaml_tree_options *opts,
                   json_t **root, struct yaml_tree_errors *errs) {
    struct reader r = {.opts = opts, .errs = errs, .text = text, .len = len};
    yaml_parser_t parser;

    *root = NULL;
    if (len > opts->max_bytes) {
        char *message;
        if (asprintf(&message, "the document is larger than %zu bytes", opts->max_bytes) < 0)
            message = NULL;
        report(&r, 0, 0, false, message);
        return r.oom ? -ENOMEM : -EFBIG;
    }
    r.stack = calloc(opts->max_depth ? opts->max_depth : 1, sizeof(*r.stack));
    if (!r.stack)
        return -ENOMEM;
    if (!yaml_parser_initialize(&parser)) {
        free(r.stack);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!r.done) {
        yaml_event_t e;
        if (!yaml_parser_parse(&parser, &e)) {
            fail_syntax(&r, &parser);
            break;
        }
        reader_event(&r, &e);
        yaml_event_delete(&e);
    }
    /* Unwind what an early stop left open. */
    while (r.depth > 0) {
        struct frame *f = &r.stack[--r.depth];
        free(f->key);
        if (f->detached)
            json_decref(f->node);
    }
    yaml_parser_delete(&parser);
    free(r.stack);
    if (r.oom || r.count) {
        json_decref(r.root);
        return r.oom ? -ENOMEM : -EINVAL;
    }
    *root = r.root;
    return 0;
}

const char *yaml_tree_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "a mapping";
    case JSON_ARRAY:
        return "a list";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

void yaml_tree_errors_free(struct yaml_tree_errors *errs) {
    if (!errs)
        return;
    for (size_t i = 0; i < errs->n; i++) {
        steps_free(errs->items[i].path, errs->items[i].path_len);
        free(errs->items[i].message);
    }
    free(errs->items);
    errs->items = NULL;
    errs->n = 0;
}
