/*
 * trace.c - W3C Trace Context: the `traceparent` a job may carry as an AMQP
 * header, which its result carries back and its log lines name (README,
 * "Tracing across the queue").
 *
 * Only version 00's form is taken: "00-<32 hex>-<16 hex>-<2 hex>", lower
 * case, neither id all zeros (https://www.w3.org/TR/trace-context/). A
 * header that is anything else is not passed on: echoing bytes a sender
 * made up into every result and log line would let it forge either.
 */
#include <string.h>

#include "rebound_proto.h"

static bool lower_hex(const char *s, size_t n, bool *all_zero)
{
    *all_zero = true;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        if (c != '0') *all_zero = false;
    }
    return true;
}

bool rb_traceparent_valid(const char *s, size_t len)
{
    bool zero;
    if (len != RB_TRACEPARENT_LEN) return false;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-') return false;
    if (memcmp(s, "00", 2) != 0) return false;
    if (!lower_hex(s + 3, 32, &zero) || zero) return false;
    if (!lower_hex(s + 36, 16, &zero) || zero) return false;
    return lower_hex(s + 53, 2, &zero);
}
