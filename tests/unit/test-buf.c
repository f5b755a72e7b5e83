/* Tests for agent/buf.c: growth, the max_bytes cap, all-or-nothing appends. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

START_TEST(test_append_and_grow) {
    struct buf b;
    buf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(buf_printf(&b, "%04d,", i), 0);
    ck_assert_uint_eq(b.len, 5000);
    ck_assert_int_eq(strncmp(b.data, "0000,0001,", 10), 0);
    ck_assert_int_eq(strcmp(b.data + 4995, "0999,"), 0);
    ck_assert_uint_gt(b.cap, b.len);
    buf_free(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(test_cap_rejects_whole) {
    struct buf b;
    buf_init(&b, 10);
    ck_assert_int_eq(buf_puts(&b, "12345678"), 0);
    ck_assert_int_eq(buf_puts(&b, "abc"), -E2BIG);
    ck_assert_uint_eq(b.len, 8);
    ck_assert_str_eq(b.data, "12345678");
    ck_assert_int_eq(buf_printf(&b, "%d", 123), -E2BIG);
    ck_assert_str_eq(b.data, "12345678");
    ck_assert_int_eq(buf_puts(&b, "90"), 0);
    ck_assert_str_eq(b.data, "1234567890");
    buf_free(&b);
}
END_TEST

START_TEST(test_consume_and_steal) {
    struct buf b;
    buf_init(&b, 0);
    ck_assert_int_eq(buf_puts(&b, "hello world"), 0);
    buf_consume(&b, 6);
    ck_assert_str_eq(b.data, "world");
    ck_assert_uint_eq(b.len, 5);
    buf_consume(&b, 100);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(buf_append(&b, "x\0y", 3), 0);
    ck_assert_uint_eq(b.len, 3);
    char *s = buf_steal(&b);
    ck_assert_int_eq(memcmp(s, "x\0y", 4), 0);
    ck_assert_ptr_null(b.data);
    free(s);
    s = buf_steal(&b);
    ck_assert_str_eq(s, "");
    free(s);
}
END_TEST

START_TEST(test_reserve_overflow) {
    struct buf b;
    buf_init(&b, 0);
    ck_assert_int_eq(buf_reserve(&b, (size_t)-1), -ENOMEM);
    ck_assert_ptr_null(b.data);
    buf_free(&b);
}
END_TEST

int main(void) {
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_append_and_grow);
    tcase_add_test(tc, test_cap_rejects_whole);
    tcase_add_test(tc, test_consume_and_steal);
    tcase_add_test(tc, test_reserve_overflow);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
