/* Tests for agent/text.c: cutting at a UTF-8 boundary, quoting outside text. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* Trim a copy of the first len bytes of s and return what is left. */
static char trimmed[64];
static const char *trim(const char *s, size_t len) {
    ck_assert_uint_lt(len, sizeof(trimmed));
    memcpy(trimmed, s, len);
    trimmed[len] = '\0';
    text_utf8_trim_tail(trimmed, len);
    return trimmed;
}

START_TEST(test_trim_ascii) {
    ck_assert_str_eq(trim("", 0), "");
    ck_assert_str_eq(trim("a", 1), "a");
    ck_assert_str_eq(trim("hello world", 11), "hello world");
    /* Only the first len bytes are looked at. */
    ck_assert_str_eq(trim("abc\xc3\xa9", 3), "abc");
}
END_TEST

/* Every cut of "x" + seq + "y": inside seq the whole sequence goes; at its
 * end or after "y" the text stays. */
static void check_every_cut(const char *seq) {
    size_t n = strlen(seq);
    char text[16], expect[16];

    snprintf(text, sizeof(text), "x%sy", seq);
    ck_assert_str_eq(trim(text, 1), "x");
    for (size_t cut = 1; cut < n; cut++)
        ck_assert_msg(!strcmp(trim(text, 1 + cut), "x"), "%zu-byte sequence cut after %zu bytes", n,
                      cut);
    memcpy(expect, text, 1 + n);
    expect[1 + n] = '\0';
    ck_assert_str_eq(trim(text, 1 + n), expect);
    ck_assert_str_eq(trim(text, 2 + n), text);
    /* The sequence alone, cut anywhere, leaves nothing. */
    for (size_t cut = 1; cut < n; cut++)
        ck_assert_str_eq(trim(seq, cut), "");
    ck_assert_str_eq(trim(seq, n), seq);
}

START_TEST(test_trim_every_cut) {
    check_every_cut("\xc3\xa9");         /* U+00E9, 2 bytes */
    check_every_cut("\xe2\x82\xac");     /* U+20AC, 3 bytes */
    check_every_cut("\xf0\x9f\x98\x80"); /* U+1F600, 4 bytes */
}
END_TEST

START_TEST(test_trim_invalid) {
    /* Bytes that lead nothing are left alone: a stray continuation byte
     * after ASCII, a run of them longer than any sequence, or only them. */
    ck_assert_str_eq(trim("ab\x80", 3), "ab\x80");
    ck_assert_str_eq(trim("a\x80\x80\x80\x80\x80", 6), "a\x80\x80\x80\x80\x80");
    ck_assert_str_eq(trim("\x80\x80", 2), "\x80\x80");
    /* A complete sequence followed by an extra continuation byte is kept. */
    ck_assert_str_eq(trim("\xc3\xa9\x80", 3), "\xc3\xa9\x80");
    /* Invalid lead bytes (0xF8..0xFF) count as 4-byte leads: cut when short. */
    ck_assert_str_eq(trim("ab\xff", 3), "ab");
    ck_assert_str_eq(trim("ab\xf8\x80\x80", 5), "ab");
    ck_assert_str_eq(trim("ab\xf8\x80\x80\x80", 6), "ab\xf8\x80\x80\x80");
}
END_TEST

START_TEST(test_shown) {
    char out[TEXT_SHOWN_SIZE], small[12], longer[100];

    ck_assert_str_eq(text_shown("", out, sizeof(out)), "");
    ck_assert_str_eq(text_shown("plain text", out, sizeof(out)), "plain text");
    ck_assert_str_eq(text_shown("a\"b\\c", out, sizeof(out)), "a\\\"b\\\\c");
    ck_assert_str_eq(text_shown("tab\there\n\x7f\xc3\xa9", out, sizeof(out)),
                     "tab\\x09here\\x0a\\x7f\\xc3\\xa9");
    /* Past TEXT_SHOWN_MAX_BYTES the rest is "...". */
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    text_shown(longer, out, sizeof(out));
    ck_assert_uint_eq(strlen(out), TEXT_SHOWN_MAX_BYTES + 3);
    ck_assert_str_eq(out + TEXT_SHOWN_MAX_BYTES, "...");
    /* Every byte escaped: TEXT_SHOWN_SIZE holds all the limit allows. */
    memset(longer, '\x01', sizeof(longer) - 1);
    text_shown(longer, out, sizeof(out));
    ck_assert_uint_ge(strlen(out), TEXT_SHOWN_MAX_BYTES * 4);
    ck_assert_uint_lt(strlen(out), sizeof(out));
    ck_assert_int_eq(strncmp(out, "\\x01\\x01", 8), 0);
    /* A small buffer gets a shorter result, still terminated. */
    ck_assert_str_eq(text_shown("abcdefghijkl", small, sizeof(small)), "abcd");
}
END_TEST

int main(void) {
    Suite *s = suite_create("text");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_trim_ascii);
    tcase_add_test(tc, test_trim_every_cut);
    tcase_add_test(tc, test_trim_invalid);
    tcase_add_test(tc, test_shown);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
