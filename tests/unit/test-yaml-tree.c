/* Tests for agent/yaml_tree.c: scalar typing in both modes, the limits, each
 * refusal with its message and line:column, and the two report modes. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yaml_tree.h"

/* The config loader's settings and the kubeconfig loader's, with small
 * limits where a test needs them. */
static const struct yaml_tree_options all_typed = {
    .max_bytes = 4096,
    .max_depth = 4,
    .max_string_bytes = 8,
    .max_errors = 0,
    .scalars = YAML_TREE_SCALARS_TYPED,
    .report = YAML_TREE_ALL_ERRORS,
    .document_name = "config",
};
static const struct yaml_tree_options first_strings = {
    .max_bytes = 4096,
    .max_depth = 4,
    .max_string_bytes = 0,
    .scalars = YAML_TREE_SCALARS_STRINGS,
    .report = YAML_TREE_FIRST_ERROR,
    .document_name = "kubeconfig",
};

/* Every error on one line each: "path: message" when recovered (path as
 * a.b[0], "(root)" for none), else "line:column: message" or the message. */
static char *render(const struct yaml_tree_errors *errs) {
    char *out = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&out, &size);

    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < errs->n; i++) {
        const struct yaml_tree_error *e = &errs->items[i];
        if (e->recovered) {
            if (e->path_len == 0)
                fputs("(root)", f);
            for (size_t k = 0; k < e->path_len; k++) {
                if (e->path[k].key)
                    fprintf(f, "%s%s", k ? "." : "", e->path[k].key);
                else
                    fprintf(f, "[%zu]", e->path[k].index);
            }
            fprintf(f, ": %s\n", e->message);
        } else if (e->line) {
            fprintf(f, "%zu:%zu: %s\n", e->line, e->column, e->message);
        } else {
            fprintf(f, "%s\n", e->message);
        }
    }
    fclose(f);
    return out;
}

/* Read text, which must succeed; returns the tree as compact JSON. */
static char *must_read(const char *text, const struct yaml_tree_options *opts) {
    struct yaml_tree_errors errs = {0};
    json_t *root = (json_t *)1;
    char *json;
    int r = yaml_tree_read(text, strlen(text), opts, &root, &errs);

    ck_assert_msg(r == 0, "%s: r = %d", text, r);
    ck_assert_uint_eq(errs.n, 0);
    ck_assert_ptr_nonnull(root);
    json = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    json_decref(root);
    return json;
}

#define ck_assert_reads(text, opts, expected)                                                      \
    do {                                                                                           \
        char *json_ = must_read(text, opts);                                                       \
        ck_assert_str_eq(json_, expected);                                                         \
        free(json_);                                                                               \
    } while (0)

/* Read n bytes of text, which must fail with want; compare the errors. */
static void assert_fails_n(const char *text, size_t n, const struct yaml_tree_options *opts,
                           int want, const char *expected) {
    struct yaml_tree_errors errs = {0};
    json_t *root = (json_t *)1;
    int r = yaml_tree_read(text, n, opts, &root, &errs);
    char *got = render(&errs);

    ck_assert_msg(r == want, "%s: r = %d, want %d (%s)", text, r, want, got);
    ck_assert_ptr_null(root);
    ck_assert_str_eq(got, expected);
    free(got);
    yaml_tree_errors_free(&errs);
    ck_assert_uint_eq(errs.n, 0);
    ck_assert_ptr_null(errs.items);
    /* Without a list the verdict is the same. */
    root = (json_t *)1;
    ck_assert_int_eq(yaml_tree_read(text, n, opts, &root, NULL), want);
    ck_assert_ptr_null(root);
}

static void assert_fails(const char *text, const struct yaml_tree_options *opts,
                         const char *expected) {
    assert_fails_n(text, strlen(text), opts, -EINVAL, expected);
}

START_TEST(test_typed_scalars) {
    ck_assert_reads(
        "a: 12\nb: -7\nc: +3\nd: 0x1F\ne: 0o17\nf: 1.5\ng: .5\nh: 1e3\n", &all_typed,
        "{\"a\":12,\"b\":-7,\"c\":3,\"d\":31,\"e\":15,\"f\":1.5,\"g\":0.5,\"h\":1000.0}");
    ck_assert_reads("[~, null, Null, NULL, true, True, TRUE, false, False, FALSE]", &all_typed,
                    "[null,null,null,null,true,true,true,false,false,false]");
    ck_assert_reads("a:\nb: ''\n", &all_typed, "{\"a\":null,\"b\":\"\"}");
    /* Quoted scalars and keys stay strings; yes is not a boolean; an
     * exponent past double stays a string; 0x without digits is a string. */
    ck_assert_reads("1: \"12\"\ntrue: 'true'\nc: yes\nd: 1e999\ne: 0x\n", &all_typed,
                    "{\"1\":\"12\",\"true\":\"true\",\"c\":\"yes\",\"d\":\"1e999\",\"e\":\"0x\"}");
    ck_assert_reads("{\"a\": [1, 2.5, \"x\", null, false]}", &all_typed,
                    "{\"a\":[1,2.5,\"x\",null,false]}");
}
END_TEST

START_TEST(test_string_scalars) {
    /* Only null and the booleans are typed; numbers stay as written. */
    ck_assert_reads("a: 12\nb: 0x1F\nc: 1.5\nd: 99999999999999999999\n", &first_strings,
                    "{\"a\":\"12\",\"b\":\"0x1F\",\"c\":\"1.5\",\"d\":\"99999999999999999999\"}");
    ck_assert_reads("[~, null, true, FALSE, \"null\"]", &first_strings,
                    "[null,null,true,false,\"null\"]");
}
END_TEST

START_TEST(test_empty) {
    struct yaml_tree_errors errs = {0};
    json_t *root = (json_t *)1;

    /* No document: 0 and no tree; an empty document: null. */
    ck_assert_int_eq(yaml_tree_read("", 0, &all_typed, &root, &errs), 0);
    ck_assert_ptr_null(root);
    ck_assert_int_eq(yaml_tree_read("# only a comment\n", 17, &all_typed, &root, &errs), 0);
    ck_assert_ptr_null(root);
    ck_assert_int_eq(yaml_tree_read("---\n", 4, &all_typed, &root, &errs), 0);
    ck_assert_ptr_nonnull(root);
    ck_assert(json_is_null(root));
    ck_assert_uint_eq(errs.n, 0);
    yaml_tree_errors_free(&errs);
    yaml_tree_errors_free(NULL);
}
END_TEST

START_TEST(test_max_bytes) {
    struct yaml_tree_options opts = first_strings;
    char text[] = "a: bcdef\n";

    /* Exactly the limit is read; one byte more is refused whole. */
    opts.max_bytes = strlen(text);
    free(must_read(text, &opts));
    opts.max_bytes--;
    assert_fails_n(text, strlen(text), &opts, -EFBIG, "the document is larger than 8 bytes\n");
    opts = all_typed;
    opts.max_bytes = 3;
    assert_fails_n(text, strlen(text), &opts, -EFBIG, "the document is larger than 3 bytes\n");
}
END_TEST

START_TEST(test_max_depth) {
    /* max_depth 4: four levels read, the fifth refused where it opens. */
    ck_assert_reads("[[[[1]]]]", &first_strings, "[[[[\"1\"]]]]");
    assert_fails("[[[[[1]]]]]", &first_strings, "1:5: nested deeper than 4 levels\n");
    assert_fails("a:\n  b:\n    c:\n      d:\n        e: 1\n", &all_typed,
                 "5:9: nested deeper than 4 levels\n");
}
END_TEST

START_TEST(test_max_string_bytes) {
    /* max_string_bytes 8: values and keys; 8 bytes are fine. */
    ck_assert_reads("abcdefgh: abcdefgh", &all_typed, "{\"abcdefgh\":\"abcdefgh\"}");
    assert_fails("a: abcdefghi\nb: [x, 'abcdefghi']\nabcdefghi: 1\n", &all_typed,
                 "a: longer than 8 bytes\n"
                 "b[1]: longer than 8 bytes\n"
                 "abcdefghi: key longer than 8 bytes\n");
    /* Reading to the first error, the message names what it is about. */
    {
        struct yaml_tree_options opts = first_strings;
        opts.max_string_bytes = 8;
        assert_fails("a: [x, abcdefghi]\n", &opts,
                     "1:8: strings must not be longer than 8 bytes\n");
        assert_fails("abcdefghi: x\n", &opts, "1:1: keys must not be longer than 8 bytes\n");
    }
    /* 0 is no limit. */
    free(must_read("a: abcdefghijklmnopqrstuvwxyz\n", &first_strings));
}
END_TEST

START_TEST(test_first_error_refusals) {
    assert_fails("a: &x [1]\nb: *x\n", &first_strings,
                 "1:4: anchors and aliases are not supported\n");
    assert_fails("a: *x\n", &first_strings, "1:4: anchors and aliases are not supported\n");
    assert_fails("*x : b\n", &first_strings, "1:1: anchors and aliases are not supported\n");
    assert_fails("a: !!str b\n", &first_strings, "1:4: tags are not supported\n");
    assert_fails("a: !!map {b: c}\n", &first_strings, "1:4: tags are not supported\n");
    assert_fails("a: 1\nb: 2\na: 3\n", &first_strings, "3:1: duplicate key \"a\"\n");
    assert_fails("? \"x\\ty\"\n: 1\n\"x\\ty\": [2]\n", &first_strings,
                 "3:1: duplicate key \"x\\x09y\"\n");
    assert_fails("a: 1\n---\nb: 2\n", &first_strings,
                 "2:1: more than one document; a kubeconfig is one YAML document\n");
    assert_fails("? [a]\n: b\n", &first_strings,
                 "1:3: keys must be strings, not a mapping or a list\n");
    assert_fails("token: \"a\\0b\"\n", &first_strings, "1:8: strings must not contain NUL bytes\n");
    assert_fails("\"a\\0b\": c\n", &first_strings, "1:1: strings must not contain NUL bytes\n");
    /* Anchors are named before NUL bytes, on keys too. */
    assert_fails("&k \"a\\0b\": c\n", &first_strings,
                 "1:1: anchors and aliases are not supported\n");
}
END_TEST

START_TEST(test_syntax_errors) {
    static const char nul[] = "a: b\0c\n";

    assert_fails("a: [1, 2\n", &first_strings,
                 "2:1: did not find expected ',' or ']' (while parsing a flow sequence at 1:4)\n");
    assert_fails("a:\n  b: 1\n c: 2\n", &all_typed,
                 "3:2: did not find expected key (while parsing a block mapping at 1:1)\n");
    assert_fails("{\"a\": }}", &all_typed, "1:8: did not find expected <document start>\n");
    /* The reader's own errors know only an offset; it becomes line:column. */
    assert_fails("a: 1\nb: \xc3(\n", &all_typed, "2:5: invalid trailing UTF-8 octet\n");
    assert_fails("\x80x", &first_strings, "1:1: invalid leading UTF-8 octet\n");
    assert_fails_n(nul, sizeof(nul) - 1, &all_typed, -EINVAL,
                   "1:5: control characters are not allowed\n");
}
END_TEST

START_TEST(test_all_errors) {
    struct yaml_tree_options no_string_limit = all_typed;

    no_string_limit.max_string_bytes = 0;
    /* The read goes on past what a tree survives; each error has the path
     * of its value, in document order. */
    assert_fails("a: &x 1\nb: [*x, !!str c]\nc: 99999999999999999999\nd: \"x\\0y\"\n"
                 "e: {f: 1, f: 2}\n",
                 &no_string_limit,
                 "a: anchors and aliases are not supported\n"
                 "b[0]: anchors and aliases are not supported\n"
                 "b[1]: tags are not supported\n"
                 "c: integer out of range\n"
                 "d: must not contain NUL bytes\n"
                 "e.f: duplicate key\n");
    /* The root has an empty path; an anchored container is still read. */
    assert_fails("&r [1, *r]\n", &all_typed,
                 "(root): anchors and aliases are not supported\n"
                 "[1]: anchors and aliases are not supported\n");
    /* A duplicate key's value is read and dropped: nothing inside it is
     * reported again, but the errors after it are. */
    assert_fails("a: {b: 1}\na: {b: [1, {c: 1, c: 2}]}\nd: *x\n", &all_typed,
                 "a: duplicate key\n"
                 "d: anchors and aliases are not supported\n");
    /* What leaves no tree to read still ends it, at its line:column. */
    assert_fails("a: *x\n*y : 1\nb: *z\n", &all_typed,
                 "a: anchors and aliases are not supported\n"
                 "2:1: keys must be strings, not aliases\n");
    assert_fails("a: !!str x\n\"k\\0\": 1\n", &all_typed,
                 "a: tags are not supported\n"
                 "2:1: keys must not contain NUL bytes\n");
    assert_fails("a: 1\n---\nb: 2\n", &all_typed,
                 "2:1: more than one document; a config is one YAML document\n");
    assert_fails("? {a: 1}\n: b\n", &all_typed,
                 "1:3: keys must be strings, not a mapping or a list\n");
}
END_TEST

START_TEST(test_max_errors) {
    struct yaml_tree_options opts = all_typed;
    struct yaml_tree_errors errs = {0};
    json_t *root;

    opts.max_errors = 2;
    assert_fails("a: *x\nb: *x\nc: *x\n", &opts,
                 "a: anchors and aliases are not supported\n"
                 "b: anchors and aliases are not supported\n");
    /* The position is there on recovered errors too. */
    ck_assert_int_eq(yaml_tree_read("a: 1\na: 2\n", 10, &opts, &root, &errs), -EINVAL);
    ck_assert_uint_eq(errs.n, 1);
    ck_assert(errs.items[0].recovered);
    ck_assert_uint_eq(errs.items[0].line, 2);
    ck_assert_uint_eq(errs.items[0].column, 1);
    ck_assert_uint_eq(errs.items[0].path_len, 1);
    ck_assert_str_eq(errs.items[0].path[0].key, "a");
    yaml_tree_errors_free(&errs);
}
END_TEST

START_TEST(test_type_name) {
    static const struct {
        const char *text;
        const char *name;
    } cases[] = {
        {"{}", "a mapping"}, {"[]", "a list"},      {"'1'", "a string"}, {"1", "an integer"},
        {"1.5", "a number"}, {"true", "a boolean"}, {"~", "null"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *root;
        ck_assert_int_eq(
            yaml_tree_read(cases[i].text, strlen(cases[i].text), &all_typed, &root, NULL), 0);
        ck_assert_str_eq(yaml_tree_type_name(root), cases[i].name);
        json_decref(root);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("yaml_tree");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_typed_scalars);
    tcase_add_test(tc, test_string_scalars);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_max_bytes);
    tcase_add_test(tc, test_max_depth);
    tcase_add_test(tc, test_max_string_bytes);
    tcase_add_test(tc, test_first_error_refusals);
    tcase_add_test(tc, test_syntax_errors);
    tcase_add_test(tc, test_all_errors);
    tcase_add_test(tc, test_max_errors);
    tcase_add_test(tc, test_type_name);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
