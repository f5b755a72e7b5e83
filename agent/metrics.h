/*
 * A small Prometheus registry: metric families (counter, gauge, histogram)
 * with fixed label names, series keyed by label values, rendered in the text
 * exposition format 0.0.4 so that `promtool check metrics` prints nothing.
 * The registry owns every family, series and string in it (names, help and
 * label strings are copied); metrics_free() releases it all. Families live as
 * long as the registry; series come and go with targets (metric_remove*).
 * Rendering is pure: no I/O, no clock, output in registration order (families)
 * and insertion order (series), so the same registry renders the same bytes.
 * Lookups are linear: a node has tens of series, not thousands.
 *
 * Names are checked when a family is registered, to the exposition syntax
 * and to the lint rules promtool applies, so a bad name fails at start-up
 * rather than in a scrape: [a-zA-Z_][a-zA-Z0-9_]*, no camelCase (a lower-case
 * letter followed by an upper-case one), no ':' (reserved for recording
 * rules), counters end in _total and nothing else does, and no family ends in
 * _bucket, _count or _sum (histogram series names). Label names follow the
 * same syntax, must not start with "__", must be distinct, and "le" is
 * reserved. Use base units (_seconds, _bytes): promtool flags _ms and friends,
 * which this registry does not check.
 *
 * Not thread-safe; the agent uses it from its one loop.
 */
#pragma once

#include <stddef.h>

#include "buf.h"

struct metrics;
struct metric_family;

/* A new, empty registry, or NULL when out of memory. */
struct metrics *metrics_new(void);
/* Free the registry and everything in it; NULL is a no-op. */
void metrics_free(struct metrics *m);

/*
 * Register a family. name, help and label_names are borrowed and copied
 * (label_names may be NULL when n_labels is 0). Returns a family borrowed
 * from m, valid until metrics_free(), or NULL when a name, the help text or
 * a label name breaks the rules above, the name is taken, or memory ran out:
 * each is a programming error the agent finds at start-up, so a pointer
 * return keeps the many registrations short.
 */
struct metric_family *metrics_counter(struct metrics *m, const char *name, const char *help,
                                      size_t n_labels, const char *const *label_names);
struct metric_family *metrics_gauge(struct metrics *m, const char *name, const char *help,
                                    size_t n_labels, const char *const *label_names);
/* bounds: n_bounds finite upper bounds, strictly increasing, copied; the +Inf
 * bucket is implicit (n_bounds may be 0). */
struct metric_family *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                        size_t n_labels, const char *const *label_names,
                                        const double *bounds, size_t n_bounds);

/*
 * Update the series with these label values (n_labels strings, borrowed and
 * copied; NULL when n_labels is 0), creating it at zero first when it does
 * not exist — metric_add(f, labels, 0) makes a series appear at 0. Returns 0,
 * -EINVAL (wrong family type, a NULL label value, or a value the type forbids),
 * -ENOMEM.
 */
/* Counters: v >= 0 (not NaN). */
int metric_add(struct metric_family *f, const char *const *label_values, double v);
/* Gauges: any v. Counters too, to mirror a count kept elsewhere, but only
 * v >= the current value (a counter never goes down). */
int metric_set(struct metric_family *f, const char *const *label_values, double v);
/* Histograms: any v but NaN. */
int metric_observe(struct metric_family *f, const char *const *label_values, double v);

/* Drop one series. Returns 0, or -ENOENT when it does not exist. */
int metric_remove(struct metric_family *f, const char *const *label_values);
/* Drop every series whose label label_index equals value (a removed target).
 * Returns how many were dropped (>= 0), or -EINVAL for a bad label_index. */
int metric_remove_matching(struct metric_family *f, size_t label_index, const char *value);

/* How many series the family has. */
size_t metric_series_count(const struct metric_family *f);

/* Append the exposition text of the whole registry to out. Families without
 * series print their HELP and TYPE lines only (promtool accepts that). On
 * failure (-ENOMEM, -E2BIG from a capped buffer) out is left as it was. */
int metrics_render(const struct metrics *m, struct buf *out);
