/* Unit tests for the informer core (kubeinf) and the object payloads
 * (kubeobj): list pagination, watch events, resourceVersion tracking,
 * relist and resume decisions, backoff. */
#include <criterion/criterion.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubeinf.h"
#include "kubeobj.h"
#include "serviceentry.h"

/* payload: the object's spec.v as text ("" when absent) */
static char *
spec_v(struct json_object *o)
{
	struct json_object *spec, *v;
	if (json_object_object_get_ex(o, "spec", &spec) && json_object_object_get_ex(spec, "v", &v))
		return strdup(json_object_get_string(v));
	return strdup("");
}

static struct json_object *
J(const char *text)
{
	struct json_object *o = json_tokener_parse(text);
	cr_assert_not_null(o, "bad test JSON: %s", text);
	return o;
}

static bool
page(struct kinf *k, const char *text, double now)
{
	struct json_object *o = J(text);
	bool changed = false;
	char err[256];
	bool ok = kinf_list_page(k, o, now, &changed, err, sizeof(err));
	json_object_put(o);
	kinf_ended(k, KINF_LIST, 200, true, now, 0.5);
	return ok && changed;
}

static int
event(struct kinf *k, const char *text, double now)
{
	struct json_object *o = J(text);
	bool changed = false;
	char err[256];
	bool ok = kinf_watch_event(k, o, now, &changed, err, sizeof(err));
	json_object_put(o);
	return ok ? (int)changed : -1;
}

#define OBJ(ns, name, rv, v) "{\"metadata\":{\"namespace\":\"" ns "\",\"name\":\"" name \
	"\",\"resourceVersion\":\"" rv "\"},\"spec\":{\"v\":\"" v "\"}}"
#define EV(type, obj) "{\"type\":\"" type "\",\"object\":" obj "}"

static struct kinf *
synced(void)
{
	struct kinf *k = kinf_new(spec_v, 500, 30000, 0);
	cr_assert(page(k, "{\"metadata\":{\"resourceVersion\":\"10\"},\"items\":[" OBJ("a", "x", "5", "1") "]}", 1));
	kinf_watch_open(k, 1);
	return k;
}

Test(kubeinf, first_request_is_a_list)
{
	struct kinf *k = kinf_new(spec_v, 500, 30000, 0);
	struct kinf_req r;
	kinf_next(k, &r);
	cr_assert_eq(r.op, KINF_LIST);
	cr_assert_null(r.cont);
	cr_assert_eq(r.delay_ms, 0);
	kinf_free(k);
}

Test(kubeinf, pages_replace_the_store_only_at_the_last)
{
	struct kinf *k = kinf_new(spec_v, 500, 30000, 0);
	cr_assert_not(page(k, "{\"metadata\":{\"resourceVersion\":\"7\",\"continue\":\"tok1\"},\"items\":["
	    OBJ("a", "x", "3", "1") "]}", 1));
	cr_assert_null(kinf_get(k, "a/x"), "a page alone must not reach the store");
	struct kinf_req r;
	kinf_next(k, &r);
	cr_assert_eq(r.op, KINF_LIST);
	cr_assert_str_eq(r.cont, "tok1");
	cr_assert(page(k, "{\"metadata\":{\"resourceVersion\":\"7\"},\"items\":[" OBJ("b", "y", "6", "2") "]}", 2));
	cr_assert_str_eq(kinf_get(k, "a/x"), "1");
	cr_assert_str_eq(kinf_get(k, "b/y"), "2");
	kinf_next(k, &r);
	cr_assert_eq(r.op, KINF_WATCH);
	cr_assert_str_eq(r.rv, "7");
	cr_assert_eq(r.delay_ms, 0);
	struct kinf_stats st;
	kinf_stats(k, &st);
	cr_assert(st.synced);
	cr_assert_eq(st.lists, 1);
	cr_assert_eq(st.relists, 0);
	cr_assert_eq(st.objects, 2);
	kinf_free(k);
}

Test(kubeinf, empty_first_list_is_a_change)
{
	/* the first sync must be applied even when there is nothing */
	struct kinf *k = kinf_new(spec_v, 500, 30000, 0);
	cr_assert(page(k, "{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[]}", 1));
	kinf_free(k);
}

Test(kubeinf, watch_events_update_store_and_version)
{
	struct kinf *k = synced();
	cr_assert_eq(event(k, EV("ADDED", OBJ("a", "y", "11", "7")), 2), 1);
	cr_assert_str_eq(kinf_get(k, "a/y"), "7");
	cr_assert_str_eq(kinf_rv(k), "11");
	/* same payload: no change, but the version moves */
	cr_assert_eq(event(k, EV("MODIFIED", OBJ("a", "y", "12", "7")), 2), 0);
	cr_assert_str_eq(kinf_rv(k), "12");
	cr_assert_eq(event(k, EV("MODIFIED", OBJ("a", "y", "13", "8")), 2), 1);
	cr_assert_str_eq(kinf_get(k, "a/y"), "8");
	cr_assert_eq(event(k, EV("DELETED", OBJ("a", "x", "14", "1")), 2), 1);
	cr_assert_null(kinf_get(k, "a/x"));
	cr_assert_eq(event(k, EV("BOOKMARK", "{\"metadata\":{\"resourceVersion\":\"20\"}}"), 3), 0);
	cr_assert_str_eq(kinf_rv(k), "20");
	/* deleting what is not there changes nothing */
	cr_assert_eq(event(k, EV("DELETED", OBJ("a", "zz", "21", "1")), 4), 0);
	struct kinf_stats st;
	kinf_stats(k, &st);
	cr_assert_eq(st.events[KINF_ADDED], 1);
	cr_assert_eq(st.events[KINF_MODIFIED], 2);
	cr_assert_eq(st.events[KINF_DELETED], 2);
	cr_assert_eq(st.events[KINF_BOOKMARK], 1);
	cr_assert_eq(st.last_sync, 4);
	kinf_free(k);
}

Test(kubeinf, server_timeout_resumes_from_last_version_at_once)
{
	struct kinf *k = synced();
	event(k, EV("ADDED", OBJ("a", "y", "11", "7")), 2);
	kinf_ended(k, KINF_WATCH, 200, true, 300, 0.5);
	struct kinf_req r;
	kinf_next(k, &r);
	cr_assert_eq(r.op, KINF_WATCH);
	cr_assert_str_eq(r.rv, "11");
	cr_assert_eq(r.delay_ms, 0);
	struct kinf_stats st;
	kinf_stats(k, &st);
	cr_assert_eq(st.watch_restarts, 1);
	cr_assert_eq(st.lists, 1, "a resumed watch must not relist");
	kinf_free(k);
}

Test(kubeinf, broken_stream_resumes_after_backoff)
{
	struct kinf *k = synced();
	event(k, EV("ADDED", OBJ("a", "y", "11", "7")), 2);
	kinf_ended(k, KINF_WATCH, 200, false, 3, 0.0);
	struct kinf_req r;
	kinf_next(k, &r);
	cr_assert_eq(r.op, KINF_WATCH);
	cr_assert_str_eq(r.rv, "11");
	cr_assert_eq(r.delay_ms, 250);
	kinf_free(k);
}

Test(kubeinf, watch_closed_at_once_is_a_failure)
{
	struct kinf *k = synced();
	kinf_ended(k, KINF_WATCH, 200, true, 1.1, 0.0);
	struct kinf_req r;
	kinf_next(k, &r);
	cr_assert_eq(r.op, KINF_WATCH);
	cr_assert_gt(r.delay_ms, 0);
	kinf_free(k);
}

Test(kubeinf, error_410_event_relists_and_loses_nothing)
{
	struct kinf *k = synced();
	event(k, EV("ADDED", OBJ("a", "y", "11", "7")), 2);
	cr_assert_eq(event(k, EV("ERROR", "{\"kind\":\"Status\",\"code\":410,\"message\":\"too old\"}"), 3), -1);
	kinf_ended(k, KINF_WATCH, 200, true, 3, 0.5);
	struct kinf_req r;
	kinf_next(k, &r);
	cr_assert_eq(r.op, KINF_LIST);
	cr_assert_null(r.cont);
	cr_assert_eq(r.delay_ms, 0);
	/* the store serves on meanwhile */
	cr_assert_str_eq(kinf_get(k, "a/y"), "7");
	/* the relist: a/x deleted and a/z added while we were away */
	cr_assert(page(k, "{\"metadata\":{\"resourceVersion\":\"30\"},\"items\":[" OBJ("a", "y", "11", "7") ","
	    OBJ("a", "z", "25", "9") "]}", 4));
	cr_assert_null(kinf_get(k, "a/x"));
	cr_assert_str_eq(kinf_get(k, "a/z"), "9");
	kinf_next(k, &r);
	cr_assert_str_eq(r.rv, "30");
	struct kinf_stats st;
	kinf_stats(k, &st);
	cr_assert_eq(st.relists, 1);
	cr_assert_eq(st.expired, 1);
	kinf_free(k);
}

Test(kubeinf, http_410_on_watch_relists)
{
	struct kinf *k = synced();
	event(k, EV("BOOKMARK", "{\"metadata\":{\"resourceVersion\":\"11\"}}"), 2);
	kinf_ended(k, KINF_WATCH, 410, true, 2, 0.5);
	struct kinf_req r;
	kinf_next(k, &r);
	cr_assert_eq(r.op, KINF_LIST);
	cr_assert_eq(r.delay_ms, 0);
	kinf_free(k);
}

Test(kubeinf, gone_right_after_a_list_backs_off)
{
	/* a server whose lists are always too old to watch from must not be
	 * relisted from in a tight loop */
	struct kinf *k = kinf_new(spec_v, 500, 30000, 0);
	uint64_t last = 0;
	for (int i = 0; i < 4; i++) {
		page(k, "{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[]}", 1);
		kinf_watch_open(k, 1);
		kinf_ended(k, KINF_WATCH, 410, true, 1, 0.0);
		struct kinf_req r;
		kinf_next(k, &r);
		cr_assert_eq(r.op, KINF_LIST);
		cr_assert_gt(r.delay_ms, last, "relist %d: %llu", i, (unsigned long long)r.delay_ms);
		last = r.delay_ms;
	}
	kinf_free(k);
}

Test(kubeinf, identical_relist_is_no_change)
{
	struct kinf *k = synced();
	kinf_ended(k, KINF_WATCH, 410, true, 2, 0.5);
	cr_assert_not(page(k, "{\"metadata\":{\"resourceVersion\":\"40\"},\"items\":[" OBJ("a", "x", "5", "1")
	    "]}", 3));
	kinf_free(k);
}

Test(kubeinf, list_failing_midway_starts_over_and_keeps_the_store)
{
	struct kinf *k = synced();
	event(k, EV("BOOKMARK", "{\"metadata\":{\"resourceVersion\":\"11\"}}"), 2);
	kinf_ended(k, KINF_WATCH, 410, true, 2, 0.5);
	cr_assert_not(page(k, "{\"metadata\":{\"resourceVersion\":\"40\",\"continue\":\"t\"},\"items\":["
	    OBJ("b", "b", "33", "3") "]}", 3));
	kinf_ended(k, KINF_LIST, 0, false, 3, 0.0);
	struct kinf_req r;
	kinf_next(k, &r);
	cr_assert_eq(r.op, KINF_LIST);
	cr_assert_null(r.cont, "a failed page restarts the list");
	cr_assert_eq(r.delay_ms, 250);
	cr_assert_str_eq(kinf_get(k, "a/x"), "1");
	cr_assert_null(kinf_get(k, "b/b"));
	/* an expired continue token: start over at once */
	page(k, "{\"metadata\":{\"resourceVersion\":\"40\",\"continue\":\"t\"},\"items\":[]}", 4);
	kinf_ended(k, KINF_LIST, 410, true, 4, 0.0);
	kinf_next(k, &r);
	cr_assert_null(r.cont);
	cr_assert_eq(r.delay_ms, 0);
	kinf_free(k);
}

Test(kubeinf, failures_back_off_exponentially_up_to_the_cap)
{
	struct kinf *k = kinf_new(spec_v, 500, 4000, 0);
	uint64_t want[] = { 250, 500, 1000, 2000, 2000 };
	for (size_t i = 0; i < 5; i++) {
		kinf_ended(k, KINF_LIST, 401, true, 1, 0.0);
		struct kinf_req r;
		kinf_next(k, &r);
		cr_assert_eq(r.op, KINF_LIST);
		cr_assert_eq(r.delay_ms, want[i], "failure %zu: %llu", i, (unsigned long long)r.delay_ms);
	}
	/* a completed list does not reset it; a watch event does */
	page(k, "{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[]}", 2);
	kinf_watch_open(k, 2);
	event(k, EV("BOOKMARK", "{\"metadata\":{\"resourceVersion\":\"2\"}}"), 2);
	kinf_ended(k, KINF_WATCH, 0, false, 3, 0.0);
	struct kinf_req r;
	kinf_next(k, &r);
	cr_assert_eq(r.delay_ms, 250);
	kinf_free(k);
}

Test(kubeinf, backoff_jitter_stays_in_range)
{
	cr_assert_eq(kinf_backoff_ms(500, 30000, 0, 0.0), 250);
	cr_assert_eq(kinf_backoff_ms(500, 30000, 0, 0.999), 499);
	cr_assert_eq(kinf_backoff_ms(500, 30000, 3, 0.5), 3000);
	cr_assert_eq(kinf_backoff_ms(500, 30000, 40, 0.0), 15000);
	cr_assert_leq(kinf_backoff_ms(500, 30000, 40, 0.999), 30000);
	cr_assert_eq(kinf_backoff_ms(500, 30000, 1, 7.0), 500, "out-of-range jitter counts as 0");
}

Test(kubeinf, malformed_input_is_refused)
{
	struct kinf *k = synced();
	cr_assert_eq(event(k, "{\"type\":\"ADDED\"}", 2), -1);
	kinf_ended(k, KINF_WATCH, 200, true, 2, 0.0);
	struct kinf_req r;
	kinf_next(k, &r);
	cr_assert_eq(r.op, KINF_LIST, "a malformed stream relists");
	cr_assert_gt(r.delay_ms, 0);
	/* a watch event without resourceVersion */
	kinf_free(k);
	k = synced();
	cr_assert_eq(event(k, EV("ADDED", "{\"metadata\":{\"name\":\"n\"}}"), 2), -1);
	kinf_free(k);
	/* a list without metadata.resourceVersion */
	k = kinf_new(spec_v, 500, 30000, 0);
	cr_assert_not(page(k, "{\"items\":[]}", 1));
	kinf_next(k, &r);
	cr_assert_eq(r.op, KINF_LIST);
	cr_assert_gt(r.delay_ms, 0);
	kinf_free(k);
}

Test(kubeinf, object_cap_keeps_the_previous_store)
{
	struct kinf *k = kinf_new(spec_v, 500, 30000, 2);
	cr_assert(page(k, "{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[" OBJ("a", "x", "1", "1") "]}", 1));
	cr_assert_not(page(k, "{\"metadata\":{\"resourceVersion\":\"2\"},\"items\":[" OBJ("a", "x", "1", "1") ","
	    OBJ("a", "y", "1", "1") "," OBJ("a", "z", "1", "1") "]}", 2));
	cr_assert_str_eq(kinf_get(k, "a/x"), "1");
	cr_assert_null(kinf_get(k, "a/y"));
	kinf_free(k);
}

Test(kubeinf, snapshot_is_sorted_copies)
{
	struct kinf *k = synced();
	event(k, EV("ADDED", OBJ("0", "first", "11", "q")), 2);
	struct kinf_doc *d;
	size_t n;
	cr_assert(kinf_snapshot(k, &d, &n));
	cr_assert_eq(n, 2);
	cr_assert_str_eq(d[0].key, "0/first");
	cr_assert_str_eq(d[1].key, "a/x");
	cr_assert_str_eq(d[1].payload, "1");
	kinf_docs_free(d, n);
	kinf_free(k);
}

/* payloads */

static const char se_json[] =
    "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"ServiceEntry\","
    "\"metadata\":{\"name\":\"api\",\"namespace\":\"team-a\",\"resourceVersion\":\"9\","
    "\"creationTimestamp\":\"2024-01-01T00:00:00Z\",\"labels\":{\"app\":\"x\"},"
    "\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\"},"
    "\"managedFields\":[{\"manager\":\"kubectl\"}]},"
    "\"spec\":{\"hosts\":[\"api.example.com\"],\"ports\":[{\"number\":443,\"name\":\"https\",\"protocol\":\"TLS\"}],"
    "\"resolution\":\"DNS\",\"location\":\"MESH_EXTERNAL\"},"
    "\"status\":{\"conditions\":[{\"type\":\"Reconciled\"}],\"addresses\":[{\"value\":\"240.240.1.2\",\"host\":"
    "\"api.example.com\"}]}}";

Test(kubeobj, serviceentry_payload_loads_as_yaml)
{
	struct json_object *o = J(se_json);
	char *p = kubeobj_serviceentry_payload(o);
	json_object_put(o);
	cr_assert_not_null(p);
	cr_assert_null(strstr(p, "managedFields"));
	cr_assert_null(strstr(p, "annotations"));
	cr_assert_null(strstr(p, "conditions"));
	cr_assert_null(strstr(p, "resourceVersion"), "a new version alone is no change");
	struct se_set set;
	se_set_init(&set);
	se_load_buffer(&set, "k8s:team-a/api", p, strlen(p));
	cr_assert_eq(set.nerrors, 0, "%s", set.ndiags ? set.diags[0].message : "");
	cr_assert_eq(set.nwarnings, 0, "%s", set.ndiags ? set.diags[0].message : "");
	cr_assert_eq(set.nentries, 1);
	const struct serviceentry *e = set.entries[0];
	cr_assert_str_eq(e->namespace, "team-a");
	cr_assert_str_eq(e->hosts[0], "api.example.com");
	cr_assert_eq(e->nstatus_addresses, 1);
	cr_assert_str_eq(e->creation_timestamp, "2024-01-01T00:00:00Z");
	se_set_free(&set);
	free(p);
}

Test(kubeobj, list_items_without_kind_get_it)
{
	struct json_object *o = J("{\"metadata\":{\"name\":\"n\",\"namespace\":\"d\"},\"spec\":{\"hosts\":[\"a.b.c\"],"
	    "\"resolution\":\"STATIC\",\"endpoints\":[{\"address\":\"1.2.3.4\"}],\"ports\":[{\"number\":80,"
	    "\"name\":\"http\"}]}}");
	char *p = kubeobj_serviceentry_payload(o);
	json_object_put(o);
	struct se_set set;
	se_set_init(&set);
	se_load_buffer(&set, "k8s:d/n", p, strlen(p));
	cr_assert_eq(set.nentries, 1, "%s", set.ndiags ? set.diags[0].message : "");
	se_set_free(&set);
	free(p);
}

Test(kubeobj, invalid_serviceentry_is_a_diagnostic_with_its_name)
{
	struct json_object *o = J("{\"metadata\":{\"name\":\"bad\",\"namespace\":\"d\"},\"spec\":{\"hosts\":[\"-x-\"]}}");
	char *p = kubeobj_serviceentry_payload(o);
	json_object_put(o);
	struct se_set set;
	se_set_init(&set);
	se_load_buffer(&set, "k8s:d/bad", p, strlen(p));
	cr_assert_eq(set.nentries, 0);
	cr_assert_gt(set.nerrors, 0);
	cr_assert_not_null(strstr(set.diags[0].message, "k8s:d/bad:"), "%s", set.diags[0].message);
	cr_assert_eq(set.nrejected_keys, 1);
	se_set_free(&set);
	free(p);
}

static char *
pod(const char *json)
{
	struct json_object *o = J(json);
	char *p = kubeobj_pod_payload(o);
	json_object_put(o);
	return p;
}

Test(kubeobj, pod_payloads)
{
	char *p = pod("{\"metadata\":{\"name\":\"p\",\"namespace\":\"team-a\"},\"spec\":{\"nodeName\":\"n1\"},"
	    "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.1.0.5\",\"podIPs\":[{\"ip\":\"10.1.0.5\"},{\"ip\":"
	    "\"fd00::5\"}]}}");
	cr_assert_str_eq(p, "team-a 10.1.0.5 fd00::5");
	char ns[80];
	struct netaddr ips[KUBEOBJ_MAX_POD_IPS];
	cr_assert_eq(kubeobj_pod_parse(p, ns, sizeof(ns), ips), 2);
	cr_assert_str_eq(ns, "team-a");
	char t[NETADDR_STRLEN];
	cr_assert_str_eq(netaddr_fmt(&ips[1], t, sizeof(t)), "fd00::5");
	free(p);
	cr_assert_null(pod("{\"metadata\":{\"namespace\":\"k\"},\"spec\":{\"hostNetwork\":true},"
	    "\"status\":{\"phase\":\"Running\",\"podIP\":\"192.168.0.1\"}}"));
	cr_assert_null(pod("{\"metadata\":{\"namespace\":\"b\"},\"status\":{\"phase\":\"Succeeded\",\"podIP\":\"10.0.0.7\"}}"));
	cr_assert_null(pod("{\"metadata\":{\"namespace\":\"b\"},\"status\":{\"phase\":\"Pending\"}}"));
	p = pod("{\"metadata\":{\"namespace\":\"old\"},\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.8\"}}");
	cr_assert_str_eq(p, "old 10.0.0.8");
	free(p);
	cr_assert_eq(kubeobj_pod_parse("nospace", ns, sizeof(ns), ips), 0);
	cr_assert_eq(kubeobj_pod_parse("ns 1.2.3.x", ns, sizeof(ns), ips), 0);
}

Test(kubeinf, a_resource_version_unfit_for_a_url_is_refused)
{
	/* it goes into the watch URL: a 9 MiB one wedged the watch forever */
	char big[400];
	memset(big, '9', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	char text[1024];
	snprintf(text, sizeof(text), "{\"metadata\":{\"resourceVersion\":\"%s\"},\"items\":[]}", big);
	struct kinf *k = kinf_new(spec_v, 500, 30000, 0);
	cr_assert_not(page(k, text, 1), "a %zu-byte resourceVersion is refused", strlen(big));
	struct kinf_req r;
	kinf_next(k, &r);
	cr_assert_eq(r.op, KINF_LIST, "refused: list again, never watch from it");
	cr_assert_not(page(k, "{\"metadata\":{\"resourceVersion\":\"1 2\"},\"items\":[]}", 2), "a space is refused");
	cr_assert_not(page(k, "{\"metadata\":{\"resourceVersion\":\"1\",\"continue\":\"a\\nb\"},\"items\":[]}", 3),
	    "a continue token with a control character is refused");
	cr_assert(page(k, "{\"metadata\":{\"resourceVersion\":\"123\"},\"items\":[]}", 4));
	kinf_free(k);
	k = synced();
	cr_assert_eq(event(k, EV("MODIFIED", "{\"metadata\":{\"namespace\":\"a\",\"name\":\"x\",\"resourceVersion\":"
	    "\"1\\t2\"},\"spec\":{\"v\":\"2\"}}"), 2), -1, "a watch event's resourceVersion is checked too");
	kinf_free(k);
}

Test(kubeinf, a_watch_that_keeps_failing_relists)
{
	struct kinf *k = synced();
	struct kinf_req r;
	int n;
	for (n = 0; n < 20; n++) {
		kinf_next(k, &r);
		if (r.op == KINF_LIST)
			break;
		kinf_watch_open(k, 2 + n);
		kinf_ended(k, KINF_WATCH, 0, false, 2 + n, 0.5); /* no HTTP status: the request failed */
	}
	cr_assert_eq(r.op, KINF_LIST, "still watching after 20 failures");
	cr_assert_eq(n, KINF_WATCH_FAILS_RELIST, "relisted after %d failures", n);
	kinf_free(k);
}

Test(kubeobj, a_pod_namespace_must_be_a_dns_label)
{
	/* 64 characters, cut short, would have been another namespace */
	char json[512];
	snprintf(json, sizeof(json), "{\"metadata\":{\"namespace\":\"%s\"},\"status\":{\"podIP\":\"10.1.0.9\"}}",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab");
	cr_assert_null(pod(json));
	cr_assert_null(pod("{\"metadata\":{\"namespace\":\"a\tb\"},\"status\":{\"podIP\":\"10.1.0.9\"}}"));
	cr_assert_null(pod("{\"metadata\":{\"namespace\":\"Team\"},\"status\":{\"podIP\":\"10.1.0.9\"}}"));
	char *p = pod("{\"metadata\":{\"namespace\":\"team-9\"},\"status\":{\"podIP\":\"10.1.0.9\"}}");
	cr_assert_str_eq(p, "team-9 10.1.0.9");
	free(p);
}

Test(kubeobj, json_that_json_c_would_blow_up_is_refused_before_parsing)
{
	static char bomb[60000];
	size_t n = 0;
	n += (size_t)snprintf(bomb, sizeof(bomb), "{\"items\":[");
	while (n + 4 < sizeof(bomb) - 8)
		n += (size_t)snprintf(bomb + n, sizeof(bomb) - n, "{},");
	n += (size_t)snprintf(bomb + n, sizeof(bomb) - n, "{}]}");
	cr_assert_not(kubeobj_json_budget_ok(bomb, n, 6, 4096), "one container per 3 bytes");
	/* braces inside strings are text, and managedFields-dense JSON passes */
	const char *s = "{\"a\":\"{{{{[[[[{{{{[[[[\\\"{{\",\"f:metadata\":{\"f:labels\":{\".\":{},\"f:app\":{}}}}";
	cr_assert(kubeobj_json_budget_ok(s, strlen(s), 6, 0));
	cr_assert(kubeobj_json_budget_ok(s, strlen(s), 6, 4096));
}

Test(kubeinf, a_list_with_a_nameless_item_keeps_the_previous_store)
{
	struct kinf *k = kinf_new(spec_v, 500, 30000, 0);
	cr_assert(page(k, "{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[" OBJ("a", "x", "1", "1") "]}", 1));
	/* a relist whose items are nameless: refused, not an empty store */
	cr_assert_not(page(k, "{\"metadata\":{\"resourceVersion\":\"2\"},\"items\":[{\"metadata\":{\"namespace\":\"a\"},"
	    "\"spec\":{\"v\":\"2\"}}]}", 2));
	cr_assert_str_eq(kinf_get(k, "a/x"), "1");
	kinf_free(k);
}

Test(kubeinf, watch_lines_are_searched_once_and_capped)
{
	char buf[64] = "abc";
	size_t scanned = 0;
	cr_assert_eq(kinf_line_end(buf, 3, &scanned, 16), -1);
	cr_assert_eq(scanned, 3, "the bytes searched are remembered");
	/* a newline among the bytes before scanned is not looked for again:
	 * the caller only appends */
	memcpy(buf, "abcde\nxy", 8);
	cr_assert_eq(kinf_line_end(buf, 8, &scanned, 16), 5);
	scanned = 0;
	cr_assert_eq(kinf_line_end(buf + 6, 2, &scanned, 16), -1);
	/* too long: refused before its newline comes */
	memset(buf, 'x', 20);
	scanned = 0;
	cr_assert_eq(kinf_line_end(buf, 17, &scanned, 16), -2);
	scanned = 0;
	buf[16] = '\n';
	cr_assert_eq(kinf_line_end(buf, 20, &scanned, 16), 16, "a line of exactly max is fine");
}

Test(kubeinf, dense_json_is_refused_unparsed)
{
	char err[200];
	/* a real object passes */
	const char *obj = OBJ("team-a", "x", "5", "1");
	cr_assert(kinf_json_budget_ok(obj, strlen(obj), err, sizeof(err)));
	/* braces inside strings (with escaped quotes) do not count */
	static char s[8192];
	strcpy(s, "{\"a\":\"\\\"");
	memset(s + strlen(s), '{', 4000);
	strcat(s, "\"}");
	cr_assert(kinf_json_budget_ok(s, strlen(s), err, sizeof(err)), "%s", err);
	/* 4 KiB of {} (what json-c turns into ~1.6 MB) is refused */
	size_t n = 0;
	s[n++] = '[';
	while (n + 3 < 4096) {
		memcpy(s + n, "{},", 3);
		n += 3;
	}
	s[n++] = ']';
	cr_assert_not(kinf_json_budget_ok(s, n, err, sizeof(err)));
	cr_assert(strstr(err, "objects and arrays") != NULL, "%s", err);
}

Test(kubeinf, byte_cap_keeps_the_previous_store)
{
	struct kinf *k = kinf_new(spec_v, 500, 30000, 0);
	kinf_set_max_bytes(k, 40);
	cr_assert(page(k, "{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[" OBJ("a", "x", "1", "0123456789") "]}",
	    1));
	/* 13 bytes held: a relist of 3 such objects (39, plus the 13 still
	 * held) is past 40 */
	cr_assert_not(page(k, "{\"metadata\":{\"resourceVersion\":\"2\"},\"items\":[" OBJ("a", "x", "1", "0123456789") ","
	    OBJ("a", "y", "1", "0123456789") "," OBJ("a", "z", "1", "0123456789") "]}", 2));
	cr_assert_str_eq(kinf_get(k, "a/x"), "0123456789");
	cr_assert_null(kinf_get(k, "a/y"));
	/* an event that would pass it is refused; a delete frees room */
	cr_assert_eq(event(k, EV("ADDED", OBJ("a", "big", "3", "0123456789012345678901234567890")), 3), -1);
	kinf_free(k);
}

Test(kubeinf, payload_over_etcd_limit_is_refused)
{
	struct kinf *k = kinf_new(spec_v, 500, 30000, 0);
	size_t n = KINF_MAX_PAYLOAD + 10;
	char *big = malloc(n + 200);
	int h = sprintf(big, "{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[{\"metadata\":{\"namespace\":\"a\","
	    "\"name\":\"x\"},\"spec\":{\"v\":\"");
	memset(big + h, 'v', n);
	strcpy(big + h + n, "\"}}]}");
	struct json_object *o = J(big);
	bool changed;
	char err[300];
	cr_assert_not(kinf_list_page(k, o, 1, &changed, err, sizeof(err)));
	cr_assert(strstr(err, "a/x is larger than 1536 KiB") != NULL, "%s", err);
	json_object_put(o);
	free(big);
	kinf_free(k);
}

Test(kubeobj, serviceentry_payload_is_no_longer_than_the_object)
{
	/* nested arrays: indented, each level cost a line and its indent */
	char s[4096];
	int n = sprintf(s, "{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"ServiceEntry\",\"metadata\":{\"name\":"
	    "\"n\",\"namespace\":\"d\"},\"spec\":{\"hosts\":");
	for (int i = 0; i < 30; i++)
		s[n++] = '[';
	for (int i = 0; i < 30; i++)
		s[n++] = ']';
	n += sprintf(s + n, "}}");
	struct json_object *o = J(s);
	char *p = kubeobj_serviceentry_payload(o);
	json_object_put(o);
	cr_assert_not_null(p);
	cr_assert_leq(strlen(p), (size_t)n, "payload %zu bytes from an object of %d: %s", strlen(p), n, p);
	free(p);
}

Test(kubeinf, long_or_unprintable_versions_are_refused)
{
	cr_assert(kinf_token_ok("12345"));
	cr_assert(kinf_token_ok("eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIzfQ=="));
	cr_assert_not(kinf_token_ok(""));
	cr_assert_not(kinf_token_ok("12 3"));
	cr_assert_not(kinf_token_ok("12\n3"));
	char big[200];
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_not(kinf_token_ok(big));
	big[128] = '\0';
	cr_assert(kinf_token_ok(big), "128 bytes is fine");
	big[128] = '1';
	/* a LIST with such a version is unusable: the store stays, relist */
	struct kinf *k = synced();
	char page_[512];
	snprintf(page_, sizeof(page_), "{\"metadata\":{\"resourceVersion\":\"%s\"},\"items\":[]}", big);
	cr_assert_not(page(k, page_, 2));
	cr_assert_str_eq(kinf_get(k, "a/x"), "1");
	struct kinf_req r;
	kinf_next(k, &r);
	cr_assert_eq(r.op, KINF_LIST);
	cr_assert_gt(r.delay_ms, 0);
	/* a continue token likewise */
	snprintf(page_, sizeof(page_), "{\"metadata\":{\"resourceVersion\":\"3\",\"continue\":\"a\\u0001b\"},\"items\":[]}");
	cr_assert_not(page(k, page_, 3));
	kinf_next(k, &r);
	cr_assert_null(r.cont);
	kinf_free(k);
	/* a watch event with one: the stream ends, relist */
	k = synced();
	snprintf(page_, sizeof(page_), EV("BOOKMARK", "{\"metadata\":{\"resourceVersion\":\"%s\"}}"), big);
	cr_assert_eq(event(k, page_, 2), -1);
	cr_assert_str_eq(kinf_rv(k), "10");
	kinf_ended(k, KINF_WATCH, 200, true, 3, 0.5);
	kinf_next(k, &r);
	cr_assert_eq(r.op, KINF_LIST);
	kinf_free(k);
}

Test(kubeinf, watch_failing_again_and_again_relists)
{
	struct kinf *k = synced();
	struct kinf_req r;
	for (int i = 1; i < KINF_WATCH_FAILS_RELIST; i++) {
		kinf_ended(k, KINF_WATCH, 0, false, 2 + i, 0.5);
		kinf_next(k, &r);
		cr_assert_eq(r.op, KINF_WATCH, "failure %d: the watch is retried", i);
	}
	kinf_ended(k, KINF_WATCH, 0, false, 9, 0.5);
	kinf_next(k, &r);
	cr_assert_eq(r.op, KINF_LIST, "after %d failures in a row: relist", KINF_WATCH_FAILS_RELIST);
	cr_assert_gt(r.delay_ms, 0);
	cr_assert_str_eq(kinf_get(k, "a/x"), "1", "the store stays");
	kinf_free(k);
}

Test(kubeobj, pod_host_network_and_namespace_are_read_strictly)
{
	/* only a JSON true is hostNetwork: the string "false" is not */
	char *p = pod("{\"metadata\":{\"namespace\":\"team-a\"},\"spec\":{\"hostNetwork\":\"false\"},"
	    "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.1.0.5\"}}");
	cr_assert_not_null(p, "hostNetwork \"false\" made the pod a host-network pod");
	cr_assert_str_eq(p, "team-a 10.1.0.5");
	free(p);
	cr_assert_null(pod("{\"metadata\":{\"namespace\":\"k\"},\"spec\":{\"hostNetwork\":true},"
	    "\"status\":{\"phase\":\"Running\",\"podIP\":\"192.168.0.1\"}}"));
	/* a namespace that is no DNS label is refused, never cut */
	char ns64[80];
	memset(ns64, 'a', 64);
	ns64[64] = '\0';
	char obj[300];
	snprintf(obj, sizeof(obj), "{\"metadata\":{\"namespace\":\"%s\"},\"status\":{\"phase\":\"Running\","
	    "\"podIP\":\"10.0.0.9\"}}", ns64);
	cr_assert_null(pod(obj), "a 64-byte namespace was accepted (truncated?)");
	ns64[63] = '\0';
	snprintf(obj, sizeof(obj), "{\"metadata\":{\"namespace\":\"%s\"},\"status\":{\"phase\":\"Running\","
	    "\"podIP\":\"10.0.0.9\"}}", ns64);
	p = pod(obj);
	cr_assert_not_null(p, "63 bytes is a valid namespace");
	free(p);
	const char *bad[] = { "Team-a", "team_a", "-a", "a-", "a.b", "a\\tb" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(obj, sizeof(obj), "{\"metadata\":{\"namespace\":\"%s\"},\"status\":{\"phase\":\"Running\","
		    "\"podIP\":\"10.0.0.9\"}}", bad[i]);
		cr_assert_null(pod(obj), "namespace %s accepted", bad[i]);
	}
}

Test(kubeinf, a_service_entry_with_many_endpoints_passes_the_json_budget)
{
	/* real JSON near the densest: endpoints with a ports map are one
	 * container per ~22 bytes (a tighter budget refused such a LIST for
	 * good); the page stays within KINF_MAX_PAGE */
	size_t cap = 200000, n = 0;
	char *s = malloc(cap), err[200];
	cr_assert_not_null(s);
	n += (size_t)snprintf(s + n, cap - n, "{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[{\"metadata\":"
	    "{\"namespace\":\"a\",\"name\":\"x\"},\"spec\":{\"hosts\":[\"x.example.com\"],\"endpoints\":[");
	for (int i = 0; i < 3000; i++)
		n += (size_t)snprintf(s + n, cap - n, "%s{\"address\":\"10.0.%d.%d\",\"ports\":{\"http\":8080}}",
		    i ? "," : "", i / 250, i % 250);
	n += (size_t)snprintf(s + n, cap - n, "]}}]}");
	cr_assert_lt(n, cap - 1);
	cr_assert(kinf_json_budget_ok(s, n, err, sizeof(err)), "%s", err);
	free(s);
}

Test(kubeinf, a_continue_token_may_be_longer_than_a_resource_version)
{
	/* base64 of {"v":..,"rv":..,"start":"namespace/name\u0000"}: a long
	 * name makes it hundreds of bytes, and refusing it would relist
	 * forever; past KINF_MAX_CONTINUE it is refused */
	static char text[8192], tokn[KINF_MAX_CONTINUE + 2];
	memset(tokn, 'e', 500);
	tokn[500] = '\0';
	snprintf(text, sizeof(text), "{\"metadata\":{\"resourceVersion\":\"5\",\"continue\":\"%s\"},\"items\":[]}", tokn);
	struct kinf *k = kinf_new(spec_v, 500, 30000, 0);
	bool changed;
	char err[300];
	struct json_object *o = J(text);
	cr_assert(kinf_list_page(k, o, 1, &changed, err, sizeof(err)), "a 500-byte continue token: %s", err);
	json_object_put(o);
	struct kinf_req r;
	kinf_next(k, &r);
	cr_assert_not_null(r.cont, "the next page is asked for with it");
	cr_assert_eq(strlen(r.cont), 500);
	memset(tokn, 'e', KINF_MAX_CONTINUE + 1);
	tokn[KINF_MAX_CONTINUE + 1] = '\0';
	snprintf(text, sizeof(text), "{\"metadata\":{\"resourceVersion\":\"5\",\"continue\":\"%s\"},\"items\":[]}", tokn);
	o = J(text);
	cr_assert_not(kinf_list_page(k, o, 2, &changed, err, sizeof(err)));
	cr_assert(strstr(err, "metadata.continue is longer than 4096 bytes") != NULL, "%s", err);
	json_object_put(o);
	kinf_free(k);
}
