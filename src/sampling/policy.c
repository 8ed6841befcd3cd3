/*
 * src/sampling/policy.c - evaluation of tail sampling policies on a trace summary,
 * plus the config's defaults, derived fields and freeing.
 *
 * Adjusted counts (how many traces a kept one stands for): probabilistic p% gives
 * 100/p; `and` multiplies its sub-policies' counts (independent hashes); composite
 * and drop pass their sub-policy's count through; every other policy gives 1 (it keeps
 * every trace it matches, or, for rate_limiting, an unknown share, which we do not
 * pretend to know).
 */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "common/hash.h"
#include "sampling/sampler.h"

#define SEC_NS UINT64_C(1000000000)

void clew__tail_config_defaults(clew_tail_config *c)
{
    memset(c, 0, sizeof(*c));
    c->decision_wait_ns = 30 * SEC_NS;
    c->decision_grace_ns = 10 * SEC_NS;
    c->num_traces = 50000;
    c->sampled_cache_size = 100000;
    c->non_sampled_cache_size = 100000;
    c->max_bytes = UINT64_C(64) << 20;
    c->max_spans_per_trace = 10000;
}

static void policy_free(clew_tail_policy *p)
{
    clew__free(p->name);
    clew__free(p->hash_salt);
    clew__free(p->key);
    for (size_t i = 0; i < p->n_values; i++) {
        clew__free(p->values[i]);
        if (p->regexes != NULL) {
            regfree(&p->regexes[i]);
        }
    }
    clew__free(p->values);
    clew__free(p->regexes);
    for (size_t i = 0; i < p->n_subs; i++) {
        policy_free(&p->subs[i]);
    }
    clew__free(p->subs);
    clew__free(p->order);
    clew__free(p->alloc_pct);
    clew__free(p->sub_spent);
}

void clew__tail_config_free(clew_tail_config *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->n_policies; i++) {
        policy_free(&c->policies[i]);
    }
    clew__free(c->policies);
    for (size_t i = 0; i < c->n_attr_keys; i++) {
        clew__free(c->attr_keys[i]);
    }
    clew__free(c);
}

/* glibc's regcomp copies the sub-pattern of every `+` and `{m,n}` (a{3} becomes aaa), so
 * nested or stacked repetitions grow the compiled pattern exponentially: "a+++++..." takes
 * gigabytes. A config is refused when the product of those copies (2 per `+`, max(m,n)+1 per
 * bound) could pass 4096, when repetitions are stacked (`a++`, `a{2}{3}`), or when the
 * pattern is longer than 256 bytes. Ordinary patterns ("^/api/v[0-9]+/", "GET|POST") pass. */
#define REGEX_MAX_LEN    256
#define REGEX_MAX_GROWTH 4096.0

static const char *regex_check(const char *re)
{
    size_t n = strlen(re);
    if (n > REGEX_MAX_LEN) {
        return "longer than 256 bytes";
    }
    double growth = 1.0;
    bool prev_rep = false;
    for (size_t i = 0; i < n; i++) {
        char ch = re[i];
        if (ch == '\\') {
            i++;
            prev_rep = false;
            continue;
        }
        if (ch == '[') {
            /* a bracket expression: its contents are literal, `]` first is a member */
            size_t j = i + 1;
            if (j < n && re[j] == '^') {
                j++;
            }
            if (j < n && re[j] == ']') {
                j++;
            }
            while (j < n && re[j] != ']') {
                j++;
            }
            i = j;
            prev_rep = false;
            continue;
        }
        bool rep = ch == '+' || ch == '*' || ch == '?' || ch == '{';
        if (rep && prev_rep) {
            return "repetition of a repetition (e.g. a++ or a{2}{3})";
        }
        if (ch == '+') {
            growth *= 2.0;
        } else if (ch == '{') {
            unsigned long m = 0, mx = 0;
            size_t j = i + 1;
            while (j < n && re[j] != '}') {
                if (re[j] >= '0' && re[j] <= '9') {
                    m = m * 10 + (unsigned long)(re[j] - '0');
                    if (m > 100000) {
                        return "a repetition count above 100000";
                    }
                    mx = m > mx ? m : mx;
                } else {
                    m = 0; /* `,` starts the upper bound; the larger bound counts */
                }
                j++;
            }
            growth *= (double)mx + 1.0;
            i = j;
        }
        if (growth > REGEX_MAX_GROWTH) {
            return "too many or too large repetitions (+ and {m,n})";
        }
        prev_rep = rep;
    }
    return NULL;
}

static clew_status finish_policy(clew_tail_config *c, clew_tail_policy *p, clew_config_error *err)
{
    if (p->type == CLEW_TAIL_STRING_ATTRIBUTE || p->type == CLEW_TAIL_NUMERIC_ATTRIBUTE ||
        p->type == CLEW_TAIL_BOOLEAN_ATTRIBUTE) {
        size_t i = 0;
        while (i < c->n_attr_keys && strcmp(c->attr_keys[i], p->key) != 0) {
            i++;
        }
        if (i == c->n_attr_keys) {
            if (c->n_attr_keys == CLEW_TAIL_MAX_ATTR_KEYS) {
                snprintf(err->msg, sizeof(err->msg),
                         "policy '%s': more than %d distinct attribute keys", p->name,
                         CLEW_TAIL_MAX_ATTR_KEYS);
                return CLEW_EINVAL;
            }
            c->attr_keys[i] = clew__strdup(p->key);
            if (c->attr_keys[i] == NULL) {
                return CLEW_ENOMEM;
            }
            c->n_attr_keys++;
        }
        p->attr_slot = (int)i;
    }
    if (p->type == CLEW_TAIL_TRACE_STATE) {
        c->uses_trace_state = true;
    }
    if (p->type == CLEW_TAIL_PROBABILISTIC) {
        /* sample iff the 56-bit hash < threshold; 100% must include every value */
        double t = ldexp(p->percentage / 100.0, 56);
        p->prob_threshold = p->percentage >= 100.0 ? (UINT64_C(1) << 56) : (uint64_t)t;
    }
    if (p->type == CLEW_TAIL_STRING_ATTRIBUTE && p->regex && p->regexes == NULL &&
        p->n_values > 0) {
        p->regexes = clew__calloc(p->n_values, sizeof(regex_t));
        if (p->regexes == NULL) {
            return CLEW_ENOMEM;
        }
        for (size_t i = 0; i < p->n_values; i++) {
            const char *why_not = regex_check(p->values[i]);
            if (why_not != NULL) {
                for (size_t j = 0; j < i; j++) {
                    regfree(&p->regexes[j]);
                }
                clew__free(p->regexes);
                p->regexes = NULL;
                snprintf(err->msg, sizeof(err->msg), "policy '%s': regex '%.64s' refused: %s",
                         p->name, p->values[i], why_not);
                return CLEW_EINVAL;
            }
            int rc = regcomp(&p->regexes[i], p->values[i], REG_EXTENDED | REG_NOSUB);
            if (rc != 0) {
                char why[128];
                regerror(rc, &p->regexes[i], why, sizeof(why));
                /* free the ones compiled so far and leave no half state behind */
                for (size_t j = 0; j < i; j++) {
                    regfree(&p->regexes[j]);
                }
                clew__free(p->regexes);
                p->regexes = NULL;
                snprintf(err->msg, sizeof(err->msg), "policy '%s': bad regex '%.64s': %s", p->name,
                         p->values[i], why);
                return CLEW_EINVAL;
            }
        }
    }
    if (p->type == CLEW_TAIL_COMPOSITE) {
        if (p->order == NULL) {
            p->order = clew__calloc(p->n_subs ? p->n_subs : 1, sizeof(size_t));
            if (p->order == NULL) {
                return CLEW_ENOMEM;
            }
            for (size_t i = 0; i < p->n_subs; i++) {
                p->order[i] = i;
            }
        }
        if (p->alloc_pct == NULL) {
            p->alloc_pct = clew__calloc(p->n_subs ? p->n_subs : 1, sizeof(double));
            if (p->alloc_pct == NULL) {
                return CLEW_ENOMEM;
            }
            for (size_t i = 0; i < p->n_subs; i++) {
                p->alloc_pct[i] = 100.0 / (double)p->n_subs;
            }
        }
        if (p->sub_spent == NULL) {
            p->sub_spent = clew__calloc(p->n_subs ? p->n_subs : 1, sizeof(uint64_t));
            if (p->sub_spent == NULL) {
                return CLEW_ENOMEM;
            }
        }
    }
    for (size_t i = 0; i < p->n_subs; i++) {
        clew_status rc = finish_policy(c, &p->subs[i], err);
        if (rc != CLEW_OK) {
            return rc;
        }
    }
    return CLEW_OK;
}

clew_status clew__tail_config_finish(clew_tail_config *c, clew_config_error *err)
{
    for (size_t i = 0; i < c->n_policies; i++) {
        clew_status rc = finish_policy(c, &c->policies[i], err);
        if (rc != CLEW_OK) {
            if (rc == CLEW_ENOMEM) {
                snprintf(err->msg, sizeof(err->msg), "out of memory");
            }
            return rc;
        }
    }
    return CLEW_OK;
}

/* ---- tracestate helpers ---- */

/* Finds `key` in a W3C tracestate ("k1=v1,k2=v2"); its value in *v. */
static bool ts_find(const char *ts, size_t len, const char *key, size_t klen, const char **v,
                    size_t *vlen)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (ts[i] == ' ' || ts[i] == '\t' || ts[i] == ',')) {
            i++;
        }
        size_t start = i;
        while (i < len && ts[i] != ',') {
            i++;
        }
        size_t end = i;
        while (end > start && (ts[end - 1] == ' ' || ts[end - 1] == '\t')) {
            end--;
        }
        const char *eq = memchr(ts + start, '=', end - start);
        if (eq != NULL && (size_t)(eq - (ts + start)) == klen &&
            memcmp(ts + start, key, klen) == 0) {
            *v = eq + 1;
            *vlen = (size_t)((ts + end) - (eq + 1));
            return true;
        }
    }
    return false;
}

double clew__tail_head_adjusted(const char *ts, size_t len)
{
    const char *v;
    size_t vlen;
    if (ts == NULL || !ts_find(ts, len, "ot", 2, &v, &vlen)) {
        return 1.0;
    }
    /* sub-keys separated by ';', th = 1..14 lowercase hex digits, right-padded */
    size_t i = 0;
    while (i < vlen) {
        size_t start = i;
        while (i < vlen && v[i] != ';') {
            i++;
        }
        if (i - start >= 4 && memcmp(v + start, "th:", 3) == 0) {
            size_t n = i - start - 3;
            if (n > 14) {
                return 1.0;
            }
            uint64_t t = 0;
            for (size_t k = 0; k < 14; k++) {
                unsigned d = 0;
                if (k < n) {
                    char ch = v[start + 3 + k];
                    if (ch >= '0' && ch <= '9') {
                        d = (unsigned)(ch - '0');
                    } else if (ch >= 'a' && ch <= 'f') {
                        d = (unsigned)(ch - 'a' + 10);
                    } else {
                        return 1.0;
                    }
                }
                t = (t << 4) | d;
            }
            return ldexp(1.0, 56) / (ldexp(1.0, 56) - (double)t);
        }
        i++;
    }
    return 1.0;
}

/* ---- policies ---- */

static bool attr_string_match(const clew_tail_policy *p, const char *s, size_t len)
{
    for (size_t i = 0; i < p->n_values; i++) {
        if (p->regex) {
            /* regexec needs a NUL-terminated subject; attribute values are capped at
             * summarising time, so a stack copy is enough */
            char tmp[1024];
            size_t n = len < sizeof(tmp) - 1 ? len : sizeof(tmp) - 1;
            memcpy(tmp, s, n);
            tmp[n] = '\0';
            if (p->regexes != NULL && regexec(&p->regexes[i], tmp, 0, NULL, 0) == 0) {
                return true;
            }
        } else if (strlen(p->values[i]) == len && memcmp(p->values[i], s, len) == 0) {
            return true;
        }
    }
    return false;
}

static bool attr_match(const clew_tail_policy *p, const clew_tail_trace_view *t)
{
    for (size_t i = 0; i < t->n_attrs; i++) {
        const clew_tail_attr *a = &t->attrs[i];
        if ((int)a->slot != p->attr_slot) {
            continue;
        }
        switch (p->type) {
        case CLEW_TAIL_STRING_ATTRIBUTE:
            if (a->type == CLEW_VALUE_STRING &&
                attr_string_match(p, t->strings + a->u.off, a->len)) {
                return true;
            }
            break;
        case CLEW_TAIL_NUMERIC_ATTRIBUTE: {
            double v;
            if (a->type == CLEW_VALUE_INT) {
                if ((!p->has_min || a->u.i >= p->min_value) &&
                    (!p->has_max || a->u.i <= p->max_value)) {
                    return true;
                }
                break;
            }
            if (a->type != CLEW_VALUE_DOUBLE) {
                break;
            }
            v = a->u.d;
            if ((!p->has_min || v >= (double)p->min_value) &&
                (!p->has_max || v <= (double)p->max_value)) {
                return true;
            }
            break;
        }
        case CLEW_TAIL_BOOLEAN_ATTRIBUTE:
            if (a->type == CLEW_VALUE_BOOL && a->u.b == p->bool_value) {
                return true;
            }
            break;
        default:
            break;
        }
    }
    return false;
}

static bool trace_state_match(const clew_tail_policy *p, const clew_tail_trace_view *t)
{
    size_t klen = strlen(p->key);
    for (size_t i = 0; i < t->n_trace_states; i++) {
        const char *ts = t->strings + (t->trace_states[i] >> 32);
        size_t len = (size_t)(t->trace_states[i] & 0xffffffffu);
        const char *v;
        size_t vlen;
        if (!ts_find(ts, len, p->key, klen, &v, &vlen)) {
            continue;
        }
        for (size_t k = 0; k < p->n_values; k++) {
            if (strlen(p->values[k]) == vlen && memcmp(p->values[k], v, vlen) == 0) {
                return true;
            }
        }
    }
    return false;
}

static uint64_t prob_hash(const clew_tail_policy *p, const clew_trace_id *id)
{
    uint64_t h = CLEW_HASH_SEED;
    if (p->hash_salt != NULL) {
        h = clew__hash_bytes(h, p->hash_salt, strlen(p->hash_salt));
    }
    h = clew__hash_bytes(h, id->bytes, sizeof(id->bytes));
    return clew__hash_finish(h) >> 8;
}

/* Rolls a per-second budget over when the clock enters a new second. */
static void roll_second(clew_tail_policy *p, uint64_t now_ns)
{
    uint64_t sec = now_ns / SEC_NS;
    if (sec != p->cur_second) {
        p->cur_second = sec;
        p->spent = 0;
        if (p->sub_spent != NULL) {
            memset(p->sub_spent, 0, p->n_subs * sizeof(uint64_t));
        }
    }
}

clew_tail_verdict clew__tail_policy_eval(clew_tail_policy *p, const clew_tail_config *c,
                                         const clew_tail_trace_view *t, uint64_t now_ns,
                                         double *adjusted)
{
    *adjusted = 1.0;
    bool m;
    switch (p->type) {
    case CLEW_TAIL_ALWAYS_SAMPLE:
        return CLEW_TAIL_SAMPLED;
    case CLEW_TAIL_LATENCY: {
        uint64_t d = t->max_end_ns > t->min_start_ns ? t->max_end_ns - t->min_start_ns : 0;
        m = d >= p->threshold_ns && (p->upper_threshold_ns == 0 || d < p->upper_threshold_ns);
        return m ? CLEW_TAIL_SAMPLED : CLEW_TAIL_NOT_SAMPLED;
    }
    case CLEW_TAIL_STATUS_CODE:
        return (t->status_seen & p->status_mask) ? CLEW_TAIL_SAMPLED : CLEW_TAIL_NOT_SAMPLED;
    case CLEW_TAIL_PROBABILISTIC:
        if (p->percentage <= 0.0 || prob_hash(p, &t->trace_id) >= p->prob_threshold) {
            return CLEW_TAIL_NOT_SAMPLED;
        }
        *adjusted = 100.0 / p->percentage;
        return CLEW_TAIL_SAMPLED;
    case CLEW_TAIL_STRING_ATTRIBUTE:
    case CLEW_TAIL_NUMERIC_ATTRIBUTE:
    case CLEW_TAIL_BOOLEAN_ATTRIBUTE:
        m = attr_match(p, t);
        return (m != p->invert) ? CLEW_TAIL_SAMPLED : CLEW_TAIL_NOT_SAMPLED;
    case CLEW_TAIL_SPAN_COUNT:
        m = t->n_spans >= p->min_spans && (p->max_spans == 0 || t->n_spans <= p->max_spans);
        return m ? CLEW_TAIL_SAMPLED : CLEW_TAIL_NOT_SAMPLED;
    case CLEW_TAIL_TRACE_STATE:
        return trace_state_match(p, t) ? CLEW_TAIL_SAMPLED : CLEW_TAIL_NOT_SAMPLED;
    case CLEW_TAIL_RATE_LIMITING:
        roll_second(p, now_ns);
        if (p->spent + t->n_spans > p->spans_per_second) {
            return CLEW_TAIL_NOT_SAMPLED;
        }
        p->spent += t->n_spans;
        return CLEW_TAIL_SAMPLED;
    case CLEW_TAIL_AND: {
        double prod = 1.0;
        /* stop at the first miss so a later rate limit spends nothing on a no */
        for (size_t i = 0; i < p->n_subs; i++) {
            double a;
            if (clew__tail_policy_eval(&p->subs[i], c, t, now_ns, &a) != CLEW_TAIL_SAMPLED) {
                return CLEW_TAIL_NOT_SAMPLED;
            }
            prod *= a;
        }
        *adjusted = prod;
        return p->n_subs > 0 ? CLEW_TAIL_SAMPLED : CLEW_TAIL_NOT_SAMPLED;
    }
    case CLEW_TAIL_DROP:
        for (size_t i = 0; i < p->n_subs; i++) {
            double a;
            if (clew__tail_policy_eval(&p->subs[i], c, t, now_ns, &a) != CLEW_TAIL_SAMPLED) {
                return CLEW_TAIL_NOT_SAMPLED;
            }
        }
        return p->n_subs > 0 ? CLEW_TAIL_DROPPED : CLEW_TAIL_NOT_SAMPLED;
    case CLEW_TAIL_COMPOSITE:
        roll_second(p, now_ns);
        /* the first sub-policy (in policy_order) that matches decides: kept if its share
         * of max_total_spans_per_second has room for this trace's spans this second */
        for (size_t k = 0; k < p->n_subs; k++) {
            size_t i = p->order[k];
            double a;
            if (clew__tail_policy_eval(&p->subs[i], c, t, now_ns, &a) != CLEW_TAIL_SAMPLED) {
                continue;
            }
            double budget = (double)p->max_total_sps * p->alloc_pct[i] / 100.0;
            if ((double)(p->sub_spent[i] + t->n_spans) > budget) {
                return CLEW_TAIL_NOT_SAMPLED;
            }
            p->sub_spent[i] += t->n_spans;
            *adjusted = a;
            return CLEW_TAIL_SAMPLED;
        }
        return CLEW_TAIL_NOT_SAMPLED;
    }
    return CLEW_TAIL_NOT_SAMPLED;
}

clew_tail_verdict clew__tail_evaluate(clew_tail_config *c, const clew_tail_trace_view *t,
                                      uint64_t now_ns, const char **reason, double *adjusted)
{
    *reason = NULL;
    *adjusted = 1.0;
    for (size_t i = 0; i < c->n_policies; i++) {
        clew_tail_policy *p = &c->policies[i];
        double a;
        if (p->type == CLEW_TAIL_DROP &&
            clew__tail_policy_eval(p, c, t, now_ns, &a) == CLEW_TAIL_DROPPED) {
            *reason = p->name;
            return CLEW_TAIL_DROPPED;
        }
    }
    bool kept = false;
    double best = 0;
    for (size_t i = 0; i < c->n_policies; i++) {
        clew_tail_policy *p = &c->policies[i];
        double a;
        if (p->type == CLEW_TAIL_DROP ||
            clew__tail_policy_eval(p, c, t, now_ns, &a) != CLEW_TAIL_SAMPLED) {
            continue;
        }
        /* the policy that would keep it with the highest probability explains it best */
        if (!kept || a < best) {
            kept = true;
            best = a;
            *reason = p->name;
        }
    }
    if (kept) {
        *adjusted = best;
        return CLEW_TAIL_SAMPLED;
    }
    return CLEW_TAIL_NOT_SAMPLED;
}
