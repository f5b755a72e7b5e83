/*
 * The metrics registry behind metrics.h. A registry is an array of families;
 * a family an array of series pointers, kept in insertion order (removal
 * shifts the rest down). A histogram series keeps one count per bucket, not
 * cumulative; rendering sums them up, which keeps metric_observe O(buckets).
 * Numbers are printed the way Prometheus' own clients do: integers without an
 * exponent, other values in the shortest form that reads back to the same
 * double, and +Inf, -Inf and NaN spelled out.
 */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

static const char *const type_names[] = {
    [METRIC_COUNTER] = "counter",
    [METRIC_GAUGE] = "gauge",
    [METRIC_HISTOGRAM] = "histogram",
};

struct metric_series {
    char **label_values;     /* n_labels owned strings */
    double value;            /* counter, gauge */
    uint64_t *bucket_counts; /* histogram: n_bounds + 1, the last is +Inf only */
    double sum;
    uint64_t count;
};

struct metric_family {
    enum metric_type type;
    char *name;
    char *help;
    size_t n_labels;
    char **label_names;
    double *bounds;
    size_t n_bounds;
    struct metric_series **series;
    size_t n_series, cap_series;
};

struct metrics {
    struct metric_family **families;
    size_t n_families, cap_families;
};

static void free_strings(char **v, size_t n) {
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void series_free(struct metric_series *s, size_t n_labels) {
    if (!s)
        return;
    free_strings(s->label_values, n_labels);
    free(s->bucket_counts);
    free(s);
}

static void family_free(struct metric_family *f) {
    if (!f)
        return;
    for (size_t i = 0; i < f->n_series; i++)
        series_free(f->series[i], f->n_labels);
    free(f->series);
    free(f->name);
    free(f->help);
    free_strings(f->label_names, f->n_labels);
    free(f->bounds);
    free(f);
}

struct metrics *metrics_new(void) {
    return calloc(1, sizeof(struct metrics));
}

void metrics_free(struct metrics *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->n_families; i++)
        family_free(m->families[i]);
    free(m->families);
    free(m);
}

/* Grow an array of pointers to hold one more. */
static int grow(void *array_ptr, size_t n, size_t *cap) {
    void ***array = array_ptr;
    if (n < *cap)
        return 0;
    size_t new_cap = *cap ? *cap * 2 : 8;
    void **p = realloc(*array, new_cap * sizeof(*p));
    if (!p)
        return -ENOMEM;
    *array = p;
    *cap = new_cap;
    return 0;
}

static bool utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        size_t n;
        unsigned min;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            c = (c << 6) | (p[i] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return false;
        p += n + 1;
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* [a-zA-Z_][a-zA-Z0-9_]*, and no lower-case letter followed by an upper-case
 * one (promtool's camelCase lint). */
static bool name_valid(const char *s) {
    if (!s || !s[0] || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z';
        if (!lower && !upper && !(c >= '0' && c <= '9') && c != '_')
            return false;
        if (upper && p > s && p[-1] >= 'a' && p[-1] <= 'z')
            return false;
    }
    return true;
}

static bool family_name_valid(enum metric_type type, const char *name) {
    if (!name_valid(name))
        return false;
    if ((type == METRIC_COUNTER) != ends_with(name, "_total"))
        return false;
    return !ends_with(name, "_bucket") && !ends_with(name, "_count") && !ends_with(name, "_sum");
}

static bool label_name_valid(const char *name) {
    if (!name_valid(name) || strncmp(name, "__", 2) == 0)
        return false;
    /* le is the histogram bucket label; promtool flags it on other types too. */
    return strcmp(name, "le") != 0;
}

static struct metric_family *find_family(const struct metrics *m, const char *name) {
    for (size_t i = 0; i < m->n_families; i++)
        if (strcmp(m->families[i]->name, name) == 0)
            return m->families[i];
    return NULL;
}

/* Returns 0, -EINVAL, -EEXIST or -ENOMEM; the public wrappers keep only the
 * family, as every failure is a programming error caught at start-up. */
static int register_family(struct metrics *m, enum metric_type type, const char *name,
                           const char *help, size_t n_labels, const char *const *label_names,
                           const double *bounds, size_t n_bounds, struct metric_family **ret) {
    *ret = NULL;
    if (!m || !family_name_valid(type, name) || !help || !help[0] || !utf8_valid(help))
        return -EINVAL;
    if (n_labels > 0 && !label_names)
        return -EINVAL;
    for (size_t i = 0; i < n_labels; i++) {
        if (!label_name_valid(label_names[i]))
            return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(label_names[i], label_names[j]) == 0)
                return -EINVAL;
    }
    if (n_bounds > 0 && !bounds)
        return -EINVAL;
    for (size_t i = 0; i < n_bounds; i++)
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return -EINVAL;
    if (find_family(m, name))
        return -EEXIST;

    int r = -ENOMEM;
    struct metric_family *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help);
    if (!f->name || !f->help)
        goto fail;
    if (n_labels > 0) {
        f->label_names = calloc(n_labels, sizeof(char *));
        if (!f->label_names)
            goto fail;
        f->n_labels = n_labels;
        for (size_t i = 0; i < n_labels; i++)
            if (!(f->label_names[i] = strdup(label_names[i])))
                goto fail;
    }
    if (n_bounds > 0) {
        f->bounds = malloc(n_bounds * sizeof(double));
        if (!f->bounds)
            goto fail;
        memcpy(f->bounds, bounds, n_bounds * sizeof(double));
        f->n_bounds = n_bounds;
    }
    r = grow(&m->families, m->n_families, &m->cap_families);
    if (r < 0)
        goto fail;
    m->families[m->n_families++] = f;
    *ret = f;
    return 0;

fail:
    family_free(f);
    return r;
}

struct metric_family *metrics_counter(struct metrics *m, const char *name, const char *help,
                                      size_t n_labels, const char *const *label_names) {
    struct metric_family *f;
    (void)register_family(m, METRIC_COUNTER, name, help, n_labels, label_names, NULL, 0, &f);
    return f;
}

struct metric_family *metrics_gauge(struct metrics *m, const char *name, const char *help,
                                    size_t n_labels, const char *const *label_names) {
    struct metric_family *f;
    (void)register_family(m, METRIC_GAUGE, name, help, n_labels, label_names, NULL, 0, &f);
    return f;
}

struct metric_family *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                        size_t n_labels, const char *const *label_names,
                                        const double *bounds, size_t n_bounds) {
    struct metric_family *f;
    (void)register_family(m, METRIC_HISTOGRAM, name, help, n_labels, label_names, bounds, n_bounds,
                          &f);
    return f;
}

static bool labels_valid(const struct metric_family *f, const char *const *label_values) {
    if (f->n_labels > 0 && !label_values)
        return false;
    for (size_t i = 0; i < f->n_labels; i++)
        if (!label_values[i] || !utf8_valid(label_values[i]))
            return false;
    return true;
}

static ssize_t find_series(const struct metric_family *f, const char *const *label_values) {
    for (size_t i = 0; i < f->n_series; i++) {
        size_t k = 0;
        while (k < f->n_labels && strcmp(f->series[i]->label_values[k], label_values[k]) == 0)
            k++;
        if (k == f->n_labels)
            return (ssize_t)i;
    }
    return -1;
}

/* The series for these label values, created at zero when missing. */
static int get_series(struct metric_family *f, const char *const *label_values,
                      struct metric_series **ret) {
    if (!labels_valid(f, label_values))
        return -EINVAL;
    ssize_t i = find_series(f, label_values);
    if (i >= 0) {
        *ret = f->series[i];
        return 0;
    }

    struct metric_series *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    if (f->n_labels > 0) {
        s->label_values = calloc(f->n_labels, sizeof(char *));
        if (!s->label_values)
            goto fail;
        for (size_t k = 0; k < f->n_labels; k++)
            if (!(s->label_values[k] = strdup(label_values[k])))
                goto fail;
    }
    if (f->type == METRIC_HISTOGRAM) {
        s->bucket_counts = calloc(f->n_bounds + 1, sizeof(uint64_t));
        if (!s->bucket_counts)
            goto fail;
    }
    if (grow(&f->series, f->n_series, &f->cap_series) < 0)
        goto fail;
    f->series[f->n_series++] = s;
    *ret = s;
    return 0;

fail:
    series_free(s, f->n_labels);
    return -ENOMEM;
}

int metric_add(struct metric_family *f, const char *const *label_values, double v) {
    if (!f || f->type != METRIC_COUNTER || !(v >= 0))
        return -EINVAL;
    struct metric_series *s;
    int r = get_series(f, label_values, &s);
    if (r < 0)
        return r;
    s->value += v;
    return 0;
}

int metric_set(struct metric_family *f, const char *const *label_values, double v) {
    if (!f || f->type == METRIC_HISTOGRAM || (f->type == METRIC_COUNTER && !(v >= 0)))
        return -EINVAL;
    if (f->type == METRIC_COUNTER && labels_valid(f, label_values)) {
        /* Check before creating, so a rejected set leaves no series behind. */
        ssize_t i = find_series(f, label_values);
        if (i >= 0 && v < f->series[i]->value)
            return -EINVAL;
    }
    struct metric_series *s;
    int r = get_series(f, label_values, &s);
    if (r < 0)
        return r;
    s->value = v;
    return 0;
}

int metric_observe(struct metric_family *f, const char *const *label_values, double v) {
    if (!f || f->type != METRIC_HISTOGRAM || isnan(v))
        return -EINVAL;
    struct metric_series *s;
    int r = get_series(f, label_values, &s);
    if (r < 0)
        return r;
    size_t b = 0;
    while (b < f->n_bounds && v > f->bounds[b])
        b++;
    s->bucket_counts[b]++;
    s->sum += v;
    s->count++;
    return 0;
}

static void drop_series(struct metric_family *f, size_t i) {
    series_free(f->series[i], f->n_labels);
    memmove(&f->series[i], &f->series[i + 1], (f->n_series - i - 1) * sizeof(f->series[0]));
    f->n_series--;
}

int metric_remove(struct metric_family *f, const char *const *label_values) {
    if (!f || !labels_valid(f, label_values))
        return -EINVAL;
    ssize_t i = find_series(f, label_values);
    if (i < 0)
        return -ENOENT;
    drop_series(f, (size_t)i);
    return 0;
}

int metric_remove_matching(struct metric_family *f, size_t label_index, const char *value) {
    if (!f || label_index >= f->n_labels || !value)
        return -EINVAL;
    int dropped = 0;
    for (size_t i = 0; i < f->n_series;) {
        if (strcmp(f->series[i]->label_values[label_index], value) == 0) {
            drop_series(f, i);
            dropped++;
        } else {
            i++;
        }
    }
    return dropped;
}

size_t metric_series_count(const struct metric_family *f) {
    return f ? f->n_series : 0;
}

/* A sample value as Prometheus spells it. out holds at least 32 bytes. */
static void format_value(char *out, size_t size, double v) {
    if (isnan(v)) {
        snprintf(out, size, "NaN");
    } else if (isinf(v)) {
        snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
    } else if (v == 0) {
        snprintf(out, size, "0"); /* also -0 */
    } else if (v > -1e17 && v < 1e17 && v == (double)(int64_t)v) {
        snprintf(out, size, "%.0f", v);
    } else {
        for (int precision = 15; precision <= 17; precision++) {
            snprintf(out, size, "%.*g", precision, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
}

/* s with \ and newline escaped, and " too when quote is set (label values). */
static int put_escaped(struct buf *out, const char *s, bool quote) {
    const char *run = s;
    int r = 0;
    for (const char *p = s; *p && r >= 0; p++) {
        const char *esc = *p == '\\'           ? "\\\\"
                          : *p == '\n'         ? "\\n"
                          : quote && *p == '"' ? "\\\""
                                               : NULL;
        if (!esc)
            continue;
        r = buf_append(out, run, (size_t)(p - run));
        if (r >= 0)
            r = buf_puts(out, esc);
        run = p + 1;
    }
    if (r >= 0)
        r = buf_puts(out, run);
    return r;
}

/* {a="x",b="y"} with an optional le="..." last; nothing when there are no labels. */
static int put_labels(struct buf *out, const struct metric_family *f, const struct metric_series *s,
                      const char *le) {
    if (f->n_labels == 0 && !le)
        return 0;
    int r = buf_puts(out, "{");
    for (size_t i = 0; i < f->n_labels && r >= 0; i++) {
        r = buf_printf(out, "%s%s=\"", i ? "," : "", f->label_names[i]);
        if (r >= 0)
            r = put_escaped(out, s->label_values[i], true);
        if (r >= 0)
            r = buf_puts(out, "\"");
    }
    if (le && r >= 0)
        r = buf_printf(out, "%sle=\"%s\"", f->n_labels ? "," : "", le);
    if (r >= 0)
        r = buf_puts(out, "}");
    return r;
}

static int put_sample(struct buf *out, const struct metric_family *f, const struct metric_series *s,
                      const char *suffix, const char *le, const char *value) {
    int r = buf_printf(out, "%s%s", f->name, suffix);
    if (r >= 0)
        r = put_labels(out, f, s, le);
    if (r >= 0)
        r = buf_printf(out, " %s\n", value);
    return r;
}

static int put_series(struct buf *out, const struct metric_family *f,
                      const struct metric_series *s) {
    char value[64];
    if (f->type != METRIC_HISTOGRAM) {
        format_value(value, sizeof(value), s->value);
        return put_sample(out, f, s, "", NULL, value);
    }

    int r = 0;
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= f->n_bounds && r >= 0; b++) {
        char le[64];
        if (b < f->n_bounds)
            format_value(le, sizeof(le), f->bounds[b]);
        else
            snprintf(le, sizeof(le), "+Inf");
        cumulative += s->bucket_counts[b];
        snprintf(value, sizeof(value), "%" PRIu64, cumulative);
        r = put_sample(out, f, s, "_bucket", le, value);
    }
    if (r >= 0) {
        format_value(value, sizeof(value), s->sum);
        r = put_sample(out, f, s, "_sum", NULL, value);
    }
    if (r >= 0) {
        snprintf(value, sizeof(value), "%" PRIu64, s->count);
        r = put_sample(out, f, s, "_count", NULL, value);
    }
    return r;
}

static int put_family(struct buf *out, const struct metric_family *f) {
    int r = buf_printf(out, "# HELP %s ", f->name);
    if (r >= 0)
        r = put_escaped(out, f->help, false);
    if (r >= 0)
        r = buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
    for (size_t i = 0; i < f->n_series && r >= 0; i++)
        r = put_series(out, f, f->series[i]);
    return r;
}

int metrics_render(const struct metrics *m, struct buf *out) {
    if (!m || !out)
        return -EINVAL;
    size_t start_len = out->len;
    int r = 0;
    for (size_t i = 0; i < m->n_families && r >= 0; i++)
        r = put_family(out, m->families[i]);
    if (r < 0 && out->data) {
        /* Leave no half-rendered text behind. */
        out->len = start_len;
        out->data[start_len] = '\0';
    }
    return r;
}
