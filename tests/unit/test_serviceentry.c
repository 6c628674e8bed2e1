/*
 * Unit tests for serviceentry: loading, Istio-webhook validation and
 * structural YAML errors. Run from tests/unit/ (fixtures under ../data/se/).
 */
#include <criterion/criterion.h>
#include <time.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serviceentry.h"

#define HDR \
	"apiVersion: networking.istio.io/v1\n" \
	"kind: ServiceEntry\n" \
	"metadata:\n" \
	"  name: t\n" \
	"  namespace: ns\n" \
	"spec:\n"
/* spec lines start at line 7 */

static struct se_set S;

static void
setup(void)
{
	se_set_init(&S);
}

static void
teardown(void)
{
	se_set_free(&S);
}

TestSuite(serviceentry, .init = setup, .fini = teardown);

static void
load(const char *yaml)
{
	se_load_buffer(&S, "t.yaml", yaml, strlen(yaml));
}

static void
append(char *buf, size_t cap, size_t *off, const char *s)
{
	size_t l = strlen(s);
	if (*off + l >= cap)
		l = cap - *off - 1;
	memcpy(buf + *off, s, l);
	*off += l;
	buf[*off] = '\0';
}

static char *
all_diags(void)
{
	static char buf[8192];
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < S.ndiags; i++) {
		append(buf, sizeof(buf), &off, S.diags[i].severity == SE_ERROR ?
		    "\n  [E] " : "\n  [W] ");
		append(buf, sizeof(buf), &off, S.diags[i].message);
	}
	return buf;
}

static const struct se_diag *
find_diag(const char *substr)
{
	for (size_t i = 0; i < S.ndiags; i++)
		if (strstr(S.diags[i].message, substr) != NULL)
			return &S.diags[i];
	return NULL;
}

/* Asserts a diagnostic containing substr exists with this severity and
 * position, formatted "FILE:LINE:COL: ...". */
static void
assert_diag_in(const char *file, enum se_severity sev, int line, int col,
    const char *substr)
{
	char pfx[512];
	const struct se_diag *d = find_diag(substr);

	cr_assert_not_null(d, "no diagnostic containing \"%s\"; have:%s",
	    substr, all_diags());
	snprintf(pfx, sizeof(pfx), "%s:%d:%d: ", file, line, col);
	cr_assert_eq(d->severity, sev, "wrong severity for: %s", d->message);
	cr_assert_eq(d->line, line, "line %d != %d: %s", d->line, line,
	    d->message);
	cr_assert_eq(d->col, col, "col %d != %d: %s", d->col, col, d->message);
	cr_assert(strncmp(d->message, pfx, strlen(pfx)) == 0,
	    "message does not start with \"%s\": %s", pfx, d->message);
	cr_assert_str_eq(d->file, file);
}

static void
assert_error(int line, int col, const char *substr)
{
	assert_diag_in("t.yaml", SE_ERROR, line, col, substr);
}

static void
assert_warning(int line, int col, const char *substr)
{
	assert_diag_in("t.yaml", SE_WARNING, line, col, substr);
}

/* The document was rejected and nothing loaded. */
static void
assert_rejected(void)
{
	cr_assert_eq(S.nentries, 0, "entry was loaded; diags:%s", all_diags());
	cr_assert_eq(S.nrejected, 1);
}

/* No errors, and no warnings but the missing-ports one (most fixtures
 * here declare no ports; serviceentry.missing_ports_warns tests it). */
static void
assert_clean(size_t nentries)
{
	size_t nw = 0;
	for (size_t i = 0; i < S.ndiags; i++)
		nw += S.diags[i].severity == SE_WARNING &&
		    strstr(S.diags[i].message, "spec.ports: missing: ") == NULL;
	cr_assert_eq(S.nerrors, 0, "errors:%s", all_diags());
	cr_assert_eq(nw, 0, "warnings:%s", all_diags());
	cr_assert_eq(S.nentries, nentries);
}

static const struct serviceentry *
entry(const char *name)
{
	for (size_t i = 0; i < S.nentries; i++)
		if (strcmp(S.entries[i]->name, name) == 0)
			return S.entries[i];
	cr_assert_fail("no entry %s; diags:%s", name, all_diags());
	return NULL;
}

/* ------------------------------------------------------ seed examples */

Test(serviceentry, seed_anatomy)
{
	cr_assert(se_load_path(&S, "../data/se/seed/01-anatomy.yaml"));
	assert_clean(1);
	const struct serviceentry *e = entry("external-api");
	cr_assert_str_eq(e->namespace, "production");
	cr_assert_str_eq(e->file, "../data/se/seed/01-anatomy.yaml");
	cr_assert_eq(e->line, 1);
	cr_assert_eq(e->nhosts, 1);
	cr_assert_str_eq(e->hosts[0], "api.stripe.com");
	cr_assert_eq(e->location, SE_LOC_MESH_EXTERNAL);
	cr_assert_eq(e->resolution, SE_RES_DNS);
	cr_assert_eq(e->nports, 1);
	cr_assert_eq(e->ports[0].number, 443);
	cr_assert_str_eq(e->ports[0].name, "https");
	cr_assert_str_eq(e->ports[0].protocol, "TLS");
	cr_assert_eq(e->ports[0].target_port, 0);
	cr_assert_eq(e->ports[0].line, 11);
	cr_assert_eq(e->nexport_to, 2);
	cr_assert_str_eq(e->export_to[0], ".");
	cr_assert_str_eq(e->export_to[1], "istio-system");
	cr_assert_eq(e->naddresses, 0);
	cr_assert_eq(e->nendpoints, 0);
	cr_assert_eq(S.nfiles, 1);
}

Test(serviceentry, seed_stripe_api)
{
	cr_assert(se_load_path(&S, "../data/se/seed/02-stripe-api.yaml"));
	assert_clean(1);
	const struct serviceentry *e = entry("stripe-api");
	cr_assert_str_eq(e->namespace, "payments");
	cr_assert_str_eq(e->hosts[0], "api.stripe.com");
	cr_assert_eq(e->ports[0].number, 443);
	cr_assert_str_eq(e->ports[0].name, "tls");
	cr_assert_str_eq(e->ports[0].protocol, "TLS");
	cr_assert_eq(e->resolution, SE_RES_DNS);
}

Test(serviceentry, seed_managed_database)
{
	cr_assert(se_load_path(&S, "../data/se/seed/03-orders-database.yaml"));
	assert_clean(1);
	const struct serviceentry *e = entry("orders-database");
	cr_assert_str_eq(e->namespace, "orders");
	cr_assert_str_eq(e->hosts[0],
	    "orders-db.abc123.us-east-1.rds.amazonaws.com");
	cr_assert_eq(e->ports[0].number, 5432);
	cr_assert_str_eq(e->ports[0].name, "postgres");
	cr_assert_str_eq(e->ports[0].protocol, "TCP");
	cr_assert_eq(e->resolution, SE_RES_DNS);
	cr_assert_eq(e->location, SE_LOC_MESH_EXTERNAL);
}

Test(serviceentry, seed_legacy_static)
{
	cr_assert(se_load_path(&S,
	    "../data/se/seed/04-legacy-monitoring.yaml"));
	assert_clean(1);
	const struct serviceentry *e = entry("legacy-monitoring");
	cr_assert_str_eq(e->namespace, "observability");
	cr_assert_str_eq(e->hosts[0], "legacy-monitoring.internal");
	cr_assert_eq(e->location, SE_LOC_MESH_INTERNAL);
	cr_assert_eq(e->resolution, SE_RES_STATIC);
	cr_assert_eq(e->ports[0].number, 8080);
	cr_assert_str_eq(e->ports[0].protocol, "HTTP");
	cr_assert_eq(e->nendpoints, 3);
	cr_assert_str_eq(e->endpoints[0].address, "10.0.5.10");
	cr_assert_str_eq(e->endpoints[1].address, "10.0.5.11");
	cr_assert_str_eq(e->endpoints[2].address, "10.0.5.12");
	cr_assert_eq(e->endpoints[2].line, 18);
	cr_assert_eq(e->endpoints[0].weight, 0);
	cr_assert_eq(e->endpoints[0].nports, 0);
}

Test(serviceentry, seed_multi_port_tcp)
{
	cr_assert(se_load_path(&S, "../data/se/seed/05-elasticsearch.yaml"));
	assert_clean(1);
	const struct serviceentry *e = entry("external-elasticsearch");
	cr_assert_str_eq(e->namespace, "search");
	cr_assert_str_eq(e->hosts[0], "es.example.com");
	cr_assert_eq(e->nports, 2);
	cr_assert_eq(e->ports[0].number, 9200);
	cr_assert_str_eq(e->ports[0].name, "http");
	cr_assert_str_eq(e->ports[0].protocol, "HTTP");
	cr_assert_eq(e->ports[1].number, 9300);
	cr_assert_str_eq(e->ports[1].name, "transport");
	cr_assert_str_eq(e->ports[1].protocol, "TCP");
}

Test(serviceentry, seed_with_destination_rule)
{
	cr_assert(se_load_path(&S, "../data/se/seed/06-stripe-dr.yaml"));
	assert_clean(1);
	cr_assert_str_eq(entry("stripe-api")->namespace, "payments");
}

Test(serviceentry, seed_tls_origination)
{
	cr_assert(se_load_path(&S,
	    "../data/se/seed/07-tls-origination.yaml"));
	assert_clean(1);
	const struct serviceentry *e = entry("external-api");
	cr_assert_str_eq(e->namespace, "default");
	cr_assert_str_eq(e->hosts[0], "api.external-service.com");
	cr_assert_eq(e->nports, 2);
	cr_assert_eq(e->ports[0].number, 80);
	cr_assert_str_eq(e->ports[0].protocol, "HTTP");
	cr_assert_eq(e->ports[1].number, 443);
	cr_assert_str_eq(e->ports[1].name, "https");
	cr_assert_str_eq(e->ports[1].protocol, "TLS");
}

Test(serviceentry, seed_virtual_service_only)
{
	cr_assert(se_load_path(&S, "../data/se/seed/08-stripe-vs.yaml"));
	assert_clean(0);
	cr_assert_eq(S.ndiags, 0);
	cr_assert_eq(S.nfiles, 1);
}

Test(serviceentry, seed_sticky_session)
{
	cr_assert(se_load_path(&S, "../data/se/seed/09-sticky-session.yaml"));
	assert_clean(1);
	const struct serviceentry *e = entry("legacy-session-service");
	cr_assert_str_eq(e->namespace, "default");
	cr_assert_str_eq(e->hosts[0], "legacy-session.internal");
	cr_assert_eq(e->resolution, SE_RES_STATIC);
	cr_assert_eq(e->location, SE_LOC_MESH_INTERNAL);
	cr_assert_eq(e->nendpoints, 3);
	cr_assert_str_eq(e->endpoints[0].address, "10.0.1.10");
	cr_assert_str_eq(e->endpoints[2].address, "10.0.1.12");
}

Test(serviceentry, traffic_shifting_static_hostnames_rejected)
{
	const char *f = "../data/se/negative/traffic-shifting.yaml";
	cr_assert(se_load_path(&S, f));
	cr_assert_eq(S.nentries, 0);
	cr_assert_eq(S.nrejected, 1);
	cr_assert_eq(S.nerrors, 2, "diags:%s", all_diags());
	assert_diag_in(f, SE_ERROR, 16, 14, "geo/geocoding-primary: "
	    "spec.endpoints[0].address: \"api.old-geocoding-provider.com\" is "
	    "a hostname, but resolution STATIC needs IP addresses; use "
	    "resolution: DNS to resolve endpoint hostnames");
	assert_diag_in(f, SE_ERROR, 19, 14, "spec.endpoints[1].address: "
	    "\"api.new-geocoding-provider.com\" is a hostname");
}

Test(serviceentry, traffic_shifting_with_dns_loads)
{
	cr_assert(se_load_path(&S,
	    "../data/se/seed/10-traffic-shifting-dns.yaml"));
	assert_clean(1);
	const struct serviceentry *e = entry("geocoding-fixed");
	cr_assert_eq(e->resolution, SE_RES_DNS);
	cr_assert_eq(e->nendpoints, 2);
	cr_assert_str_eq(e->endpoints[1].address,
	    "api.new-geocoding-provider.com");
	cr_assert_eq(e->endpoints[0].nlabels, 1);
	cr_assert_str_eq(e->endpoints[0].labels[0].key, "provider");
	cr_assert_str_eq(e->endpoints[0].labels[0].value, "old");
}

Test(serviceentry, config_examples_load_clean)
{
	cr_assert(se_load_path(&S, "../../config/serviceentries"));
	assert_clean(8);
	cr_assert_eq(S.nfiles, 6);
	/* sorted file order: databases, kubectl-list, legacy, payments, ... */
	cr_assert_str_eq(S.entries[0]->name, "orders-database");
	cr_assert_str_eq(S.entries[1]->name, "analytics-events");
	cr_assert_str_eq(S.entries[2]->name, "google-apis");
	cr_assert_str_eq(entry("stripe-api")->namespace, "payments");
	cr_assert_eq(entry("legacy-monitoring")->nendpoints, 3);
	cr_assert_eq(entry("legacy-session-service")->nendpoints, 3);
	cr_assert_eq(entry("external-elasticsearch")->nports, 2);
	cr_assert_eq(entry("external-api")->nports, 2);
}

Test(serviceentry, kubectl_list)
{
	cr_assert(se_load_path(&S, "../../config/serviceentries/"
	    "kubectl-list.yaml"));
	assert_clean(2);
	const struct serviceentry *a = S.entries[0], *g = S.entries[1];
	cr_assert_str_eq(a->name, "analytics-events");
	cr_assert_str_eq(a->namespace, "analytics");
	cr_assert_eq(a->line, 4);
	cr_assert_str_eq(a->creation_timestamp, "2026-03-02T09:14:07Z");
	cr_assert_eq(a->nlabels, 2);
	cr_assert_str_eq(a->labels[1].key, "team");
	cr_assert_str_eq(a->labels[1].value, "data");
	cr_assert_eq(a->naddresses, 1);
	cr_assert_str_eq(a->addresses[0], "10.20.30.40");
	cr_assert_eq(a->ports[0].number, 9092);
	cr_assert_str_eq(g->name, "google-apis");
	cr_assert_str_eq(g->hosts[0], "*.googleapis.com");
	cr_assert_eq(g->resolution, SE_RES_NONE);
	cr_assert_eq(g->nexport_to, 1);
	cr_assert_str_eq(g->export_to[0], "*");
}

Test(serviceentry, kubectl_list_inline_with_other_kinds)
{
	load("apiVersion: v1\nkind: List\nitems:\n"
	    "- apiVersion: networking.istio.io/v1beta1\n"
	    "  kind: ServiceEntry\n"
	    "  metadata: {name: one}\n"
	    "  spec: {hosts: [one.example.com], resolution: DNS}\n"
	    "- apiVersion: networking.istio.io/v1\n"
	    "  kind: DestinationRule\n"
	    "  metadata: {name: dr}\n"
	    "  spec: {host: one.example.com}\n"
	    "- apiVersion: networking.istio.io/v1alpha3\n"
	    "  kind: ServiceEntry\n"
	    "  metadata: {name: two, namespace: x}\n"
	    "  spec: {hosts: [two.example.com], resolution: DNS}\n"
	    "- just a string\n");
	cr_assert_eq(S.nentries, 2);
	cr_assert_str_eq(S.entries[0]->name, "one");
	cr_assert_str_eq(S.entries[0]->namespace, "default");
	cr_assert_str_eq(S.entries[1]->name, "two");
	cr_assert_eq(S.entries[1]->line, 12);
	assert_error(16, 3, "list item is not a mapping (found a scalar)");
}

Test(serviceentry, list_items_not_a_sequence)
{
	load("kind: List\nitems:\n  a: b\n");
	assert_error(3, 3, "items: expected a sequence, found a mapping");
}

Test(serviceentry, multi_document_stream)
{
	load("---\n"
	    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "metadata: {name: a}\nspec: {hosts: [a.example.com], "
	    "resolution: DNS}\n"
	    "---\n"
	    "---\n"
	    "# only a comment\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
	    "metadata: {name: vs}\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "metadata: {name: b}\nspec: {hosts: [b.example.com], "
	    "resolution: DNS}\n"
	    "...\n");
	assert_clean(2);
	cr_assert_str_eq(S.entries[0]->name, "a");
	cr_assert_eq(S.entries[0]->line, 2);
	cr_assert_str_eq(S.entries[1]->name, "b");
	cr_assert_eq(S.entries[1]->line, 14);
}

Test(serviceentry, empty_input)
{
	load("");
	load("# nothing\n");
	load("---\n...\n");
	cr_assert_eq(S.ndiags, 0, "%s", all_diags());
	cr_assert_eq(S.nentries, 0);
}

Test(serviceentry, directory_order_and_skips)
{
	cr_assert(se_load_path(&S, "../data/se/dir"));
	assert_clean(4);
	cr_assert_eq(S.nfiles, 4);
	cr_assert_str_eq(S.entries[0]->name, "a-first");
	cr_assert_str_eq(S.entries[1]->name, "b-second");
	cr_assert_str_eq(S.entries[2]->name, "c-third");
	cr_assert_str_eq(S.entries[3]->name, "e-via-symlink");
	cr_assert_str_eq(S.entries[3]->file, "../data/se/dir/e.yaml");
}

Test(serviceentry, missing_path)
{
	cr_assert_not(se_load_path(&S, "../data/se/does-not-exist.yaml"));
	cr_assert_eq(S.nerrors, 1);
	assert_diag_in("../data/se/does-not-exist.yaml", SE_ERROR, 1, 1,
	    "cannot read: No such file or directory");
}

Test(serviceentry, duplicate_across_files)
{
	cr_assert(se_load_path(&S, "../data/se/seed/02-stripe-api.yaml"));
	cr_assert(se_load_path(&S, "../data/se/seed/06-stripe-dr.yaml"));
	cr_assert_eq(S.nentries, 1);
	cr_assert_eq(S.nrejected, 1);
	assert_diag_in("../data/se/seed/06-stripe-dr.yaml", SE_ERROR, 4, 9,
	    "payments/stripe-api: metadata.name: duplicate ServiceEntry "
	    "payments/stripe-api, first defined at "
	    "../data/se/seed/02-stripe-api.yaml:1");
}

Test(serviceentry, duplicate_in_stream)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n---\n"
	    HDR "  hosts: [b.example.com]\n  resolution: DNS\n");
	cr_assert_eq(S.nentries, 1);
	cr_assert_str_eq(S.entries[0]->hosts[0], "a.example.com");
	assert_error(13, 9, "ns/t: metadata.name: duplicate ServiceEntry "
	    "ns/t, first defined at t.yaml:1");
	/* same name, other namespace: fine */
	load("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "metadata: {name: t, namespace: other}\n"
	    "spec: {hosts: [a.example.com], resolution: DNS}\n");
	cr_assert_eq(S.nentries, 2);
}

/* ------------------------------------------------- document structure */

Test(serviceentry, api_version)
{
	load("apiVersion: networking.istio.io/v2\nkind: ServiceEntry\n"
	    "metadata: {name: x}\nspec: {hosts: [a.b]}\n");
	assert_rejected();
	assert_error(1, 13, "default/x: apiVersion: unsupported apiVersion "
	    "\"networking.istio.io/v2\" for ServiceEntry (supported: "
	    "networking.istio.io/v1, networking.istio.io/v1beta1, "
	    "networking.istio.io/v1alpha3)");
	se_set_free(&S);
	load("kind: ServiceEntry\nmetadata: {name: x}\nspec: {hosts: [a.b]}\n");
	assert_error(1, 1, "default/x: apiVersion: missing");
}

Test(serviceentry, other_kinds_skipped_quietly)
{
	load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
	    "data: {a: b}\n---\napiVersion: networking.istio.io/v1\n"
	    "kind: Gateway\nspec: 42\n");
	cr_assert_eq(S.ndiags, 0, "%s", all_diags());
}

Test(serviceentry, document_not_a_mapping)
{
	load("- a\n- b\n---\njust text\n");
	assert_error(1, 1, "t.yaml:1:1: document is not a mapping (found a "
	    "sequence)");
	assert_error(4, 1, "t.yaml:4:1: document is not a mapping (found a "
	    "scalar)");
}

Test(serviceentry, document_without_kind_warns)
{
	load("apiVersion: networking.istio.io/v1\nmetadata: {name: x}\n");
	assert_warning(1, 1, "document has no kind; skipped");
	cr_assert_eq(S.nerrors, 0);
}

Test(serviceentry, kind_not_a_string)
{
	load("kind: [ServiceEntry]\n");
	assert_error(1, 7, "kind: expected a string, found a sequence");
}

Test(serviceentry, spec_not_a_mapping)
{
	load(HDR "  - a.example.com\n");
	assert_rejected();
	assert_error(7, 3, "ns/t: spec: expected a mapping, found a sequence");
}

Test(serviceentry, spec_missing)
{
	load("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "metadata: {name: x}\n");
	assert_rejected();
	assert_error(1, 1, "default/x: spec: missing");
}

Test(serviceentry, scalar_where_list_expected)
{
	load(HDR "  hosts: a.example.com\n");
	assert_rejected();
	assert_error(7, 10, "ns/t: spec.hosts: expected a sequence, found a "
	    "scalar");
}

Test(serviceentry, mapping_where_string_expected)
{
	load(HDR "  hosts:\n  - {a: b}\n  resolution: DNS\n");
	assert_rejected();
	assert_error(8, 5, "ns/t: spec.hosts[0]: expected a string, found a "
	    "mapping");
}

Test(serviceentry, port_not_a_mapping)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n"
	    "  ports:\n  - 443\n");
	assert_rejected();
	assert_error(10, 5, "spec.ports[0]: expected a mapping, found a "
	    "scalar");
}

Test(serviceentry, metadata_name_missing)
{
	load("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "metadata:\n  namespace: foo\nspec:\n  hosts: [a.example.com]\n"
	    "  resolution: DNS\n");
	assert_rejected();
	assert_error(4, 3, "t.yaml:4:3: foo/<unnamed>: metadata.name: "
	    "missing");
	se_set_free(&S);
	load("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "spec: {hosts: [a.example.com], resolution: DNS}\n");
	assert_rejected();
	assert_error(1, 1, "default/<unnamed>: metadata.name: missing");
}

Test(serviceentry, metadata_name_invalid)
{
	load("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "metadata:\n  name: Bad_Name\n  namespace: Prod\nspec:\n"
	    "  hosts: [a.example.com]\n  resolution: DNS\n");
	assert_rejected();
	assert_error(4, 9, "Prod/Bad_Name: metadata.name: invalid name "
	    "\"Bad_Name\"");
	assert_error(5, 14, "metadata.namespace: invalid namespace \"Prod\"");
}

Test(serviceentry, metadata_fields)
{
	load("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "metadata:\n  name: m\n  labels:\n    app: x\n"
	    "    networking.istio.io/enable-autoallocate-ip: \"false\"\n"
	    "  annotations: {a: b}\n  uid: 1234\n"
	    "  creationTimestamp: \"2026-01-01T00:00:00Z\"\n"
	    "spec: {hosts: [a.example.com], resolution: DNS}\n");
	assert_clean(1);
	const struct serviceentry *e = entry("m");
	cr_assert_str_eq(e->namespace, "default");
	cr_assert_eq(e->nlabels, 2);
	cr_assert_str_eq(e->labels[0].key, "app");
	cr_assert_str_eq(e->labels[1].key,
	    "networking.istio.io/enable-autoallocate-ip");
	cr_assert_str_eq(e->labels[1].value, "false");
	cr_assert_str_eq(e->creation_timestamp, "2026-01-01T00:00:00Z");
}

Test(serviceentry, known_optional_fields_are_silent)
{
	load("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "metadata: {name: x, namespace: ''}\n"
	    "spec:\n  hosts: [a.example.com]\n  resolution: STATIC\n"
	    "  subjectAltNames: [spiffe://cluster.local/ns/a/sa/b]\n"
	    "  endpoints:\n  - {address: 10.0.0.1, serviceAccount: sa}\n"
	    "status:\n  observedGeneration: 3\n  conditions: []\n");
	assert_clean(1);
	cr_assert_str_eq(S.entries[0]->namespace, "default");
}

/* kubectl's strict field validation: a misspelled field rejects the entry
 * (it would silently take its default) and the closest known one is named. */
Test(serviceentry, unknown_fields_are_errors_with_a_suggestion)
{
	load(HDR "  hosts: [a.example.com]\n  resolutoin: DNS\n"
	    "  frobnicate: true\n  ports:\n  - number: 80\n    name: http\n"
	    "    protocl: HTTP\nextra: 1\n");
	assert_rejected();
	assert_error(8, 3, "ns/t: spec.resolutoin: unknown field (did you mean "
	    "resolution?)");
	assert_error(9, 3, "ns/t: spec.frobnicate: unknown field (known: hosts, "
	    "addresses, ports,");
	assert_error(13, 5, "ns/t: spec.ports[0].protocl: unknown field (did "
	    "you mean protocol?)");
	assert_error(14, 1, "ns/t: extra: unknown field (known: apiVersion, "
	    "kind, metadata, spec, status)");
	cr_assert_eq(S.nerrors, 4, "%s", all_diags());
}

/* istiod writes status: a field a newer istiod adds must not reject it */
Test(serviceentry, unknown_status_fields_warn)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n"
	    "  ports: [{number: 80, name: http}]\n"
	    "status:\n  addresses:\n  - {value: 240.240.0.1, zone: z}\n");
	cr_assert_eq(S.nentries, 1, "%s", all_diags());
	cr_assert_eq(S.nerrors, 0);
	assert_warning(12, 26, "ns/t: status.addresses[0].zone: unknown field "
	    "ignored");
}

Test(serviceentry, missing_ports_warns_what_happens)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n");
	cr_assert_eq(S.nentries, 1, "%s", all_diags());
	cr_assert_eq(S.nerrors, 0);
	assert_warning(7, 3, "ns/t: spec.ports: missing: the hosts get a VIP "
	    "but no DNAT rule, so every connection to the VIP is rejected");
	cr_assert_eq(S.nwarnings, 1, "%s", all_diags());
	se_set_free(&S);
	se_set_init(&S);
	/* no VIP, so nothing to say: resolution NONE, spec.addresses, or
	 * auto-allocation turned off */
	load(HDR "  hosts: [a.example.com]\n");
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n"
	    "  addresses: [10.1.2.3]\n");
	load("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "metadata:\n  name: t\n  namespace: ns2\n  labels:\n"
	    "    networking.istio.io/enable-autoallocate-ip: \"false\"\n"
	    "spec:\n  hosts: [b.example.com]\n  resolution: DNS\n");
	cr_assert_eq(S.nwarnings, 0, "%s", all_diags());
}

Test(serviceentry, duplicate_key)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n"
	    "  hosts: [b.example.com]\n");
	assert_rejected();
	assert_error(9, 3, "spec.hosts: duplicate key (first at line 7)");
}

Test(serviceentry, status_addresses)
{
	load(HDR "  hosts: [a.example.com, b.example.com]\n"
	    "  resolution: DNS\n  ports: [{number: 80, name: http}]\n"
	    "status:\n  conditions: []\n  addresses:\n"
	    "  - host: a.example.com\n    value: 240.240.0.1\n"
	    "    type: IPAddress\n"
	    "  - {host: b.example.com, value: \"2001:2::1\", type: IPAddress}\n"
	    "  - {value: 240.240.0.9}\n"
	    "  - {host: b.example.com, value: not-an-ip}\n");
	cr_assert_eq(S.nentries, 1, "%s", all_diags());
	const struct serviceentry *e = entry("t");
	cr_assert_eq(e->nstatus_addresses, 3);
	cr_assert_str_eq(e->status_addresses[0].host, "a.example.com");
	cr_assert_str_eq(e->status_addresses[0].value, "240.240.0.1");
	cr_assert_str_eq(e->status_addresses[1].value, "2001:2::1");
	cr_assert_null(e->status_addresses[2].host);
	cr_assert_str_eq(e->status_addresses[2].value, "240.240.0.9");
	assert_warning(18, 34, "status.addresses[3].value: \"not-an-ip\" is "
	    "not an IP address; status address ignored");
	cr_assert_eq(S.nwarnings, 1);
}

Test(serviceentry, errors_do_not_stop_the_stream)
{
	load(HDR "  hosts: ['*']\n---\n"
	    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "metadata: {name: ok}\nspec: {hosts: [a.example.com], "
	    "resolution: DNS}\n");
	cr_assert_eq(S.nentries, 1);
	cr_assert_eq(S.nrejected, 1);
	cr_assert_str_eq(S.entries[0]->name, "ok");
}

/* ---------------------------------------------------------------- hosts */

Test(serviceentry, hosts_required)
{
	load(HDR "  resolution: DNS\n");
	assert_rejected();
	assert_error(7, 3, "ns/t: spec.hosts: at least one host is required");
	se_set_free(&S);
	load(HDR "  hosts: []\n  resolution: DNS\n");
	assert_error(7, 10, "spec.hosts: at least one host is required");
}

Test(serviceentry, host_star_alone)
{
	load(HDR "  hosts:\n  - a.example.com\n  - '*'\n");
	assert_rejected();
	assert_error(9, 5, "ns/t: spec.hosts[1]: \"*\" alone is not allowed; "
	    "use a wildcard such as \"*.example.com\"");
}

Test(serviceentry, host_wildcard_position)
{
	load(HDR "  hosts:\n  - foo.*.example.com\n  - '*foo.example.com'\n"
	    "  - '*.example.com'\n");
	assert_rejected();
	assert_error(8, 5, "spec.hosts[0]: invalid hostname "
	    "\"foo.*.example.com\": a wildcard is only allowed as the whole "
	    "first label (\"*.example.com\")");
	assert_error(9, 5, "spec.hosts[1]: invalid hostname "
	    "\"*foo.example.com\": a wildcard is only allowed");
	cr_assert_eq(S.nerrors, 2, "%s", all_diags());
}

Test(serviceentry, host_invalid_names)
{
	load(HDR "  resolution: NONE\n  hosts:\n"
	    "  - a..example.com\n"
	    "  - -bad.example.com\n"
	    "  - bad-.example.com\n"
	    "  - under_score.example.com\n"
	    "  - aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    ".com\n"
	    "  - example.123\n"
	    "  - .example.com\n");
	assert_rejected();
	assert_error(9, 5, "spec.hosts[0]: invalid hostname \"a..example.com\": "
	    "empty label");
	assert_error(10, 5, "spec.hosts[1]: invalid hostname "
	    "\"-bad.example.com\": label starts or ends with '-'");
	assert_error(11, 5, "spec.hosts[2]: invalid hostname "
	    "\"bad-.example.com\": label starts or ends with '-'");
	assert_error(12, 5, "spec.hosts[3]: invalid hostname "
	    "\"under_score.example.com\": invalid character");
	assert_error(13, 5, "spec.hosts[4]: invalid hostname \"aaaa");
	assert_error(13, 5, "label longer than 63 characters");
	assert_error(14, 5, "spec.hosts[5]: invalid hostname \"example.123\": "
	    "top-level label cannot be all-numeric");
	assert_error(15, 5, "spec.hosts[6]: invalid hostname \".example.com\"");
	cr_assert_eq(S.nerrors, 7, "%s", all_diags());
}

Test(serviceentry, host_paths_after_invalid_host)
{
	load(HDR "  hosts: ['a..b', b.example.com]\n  resolution: DYNAMIC_DNS\n");
	assert_rejected();
	assert_error(7, 11, "invalid hostname \"a..b\"");
	assert_error(7, 19, "spec.hosts[1]: resolution DYNAMIC_DNS requires "
	    "wildcard hosts");
	cr_assert_eq(S.nerrors, 2, "%s", all_diags());
}

Test(serviceentry, host_duplicate_warns)
{
	load(HDR "  hosts: [a.example.com, A.example.com]\n  resolution: DNS\n");
	cr_assert_eq(S.nentries, 1);
	assert_warning(7, 26, "ns/t: spec.hosts[1]: duplicate host "
	    "\"A.example.com\"");
}

Test(serviceentry, host_too_long)
{
	char yaml[1024], host[300];
	size_t off = 0;
	/* 5 x (49 chars + dot) = 250, + "abcd" = 254 > 253 */
	for (int i = 0; i < 5; i++) {
		memset(host + off, 'a', 49);
		off += 49;
		host[off++] = '.';
	}
	memcpy(host + off, "abcd", 5);
	snprintf(yaml, sizeof(yaml), HDR "  hosts: [%s]\n", host);
	load(yaml);
	assert_rejected();
	assert_error(7, 11, "hostname longer than 253 characters");
}

Test(serviceentry, host_upper_case_and_trailing_dot_accepted)
{
	load(HDR "  hosts: [API.Example.COM, b.example.com.]\n"
	    "  resolution: DNS\n");
	assert_clean(1);
	cr_assert_str_eq(S.entries[0]->hosts[0], "API.Example.COM");
}

Test(serviceentry, valid_hostname_api)
{
	cr_assert(se_valid_hostname("api.stripe.com", false));
	cr_assert(se_valid_hostname("localhost", false));
	cr_assert(se_valid_hostname("A-1.b", false));
	cr_assert(se_valid_hostname("*.googleapis.com", true));
	cr_assert_not(se_valid_hostname("*.googleapis.com", false));
	cr_assert_not(se_valid_hostname("*", true));
	cr_assert_not(se_valid_hostname("*.", true));
	cr_assert_not(se_valid_hostname("a.*", true));
	cr_assert_not(se_valid_hostname("", true));
	cr_assert_not(se_valid_hostname(NULL, true));
	cr_assert_not(se_valid_hostname("a b.com", false));
	cr_assert_not(se_valid_hostname("10.0.0.1", false));
	cr_assert_not(se_valid_hostname("caf\xc3\xa9.com", false));
	cr_assert_str_eq(se_hostname_problem("x..y", false),
	    "empty label (two dots in a row, or a leading dot)");
	cr_assert_null(se_hostname_problem("x.y.", false));
}

/* ---------------------------------------------------------------- ports */

Test(serviceentry, port_number_range)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n  ports:\n"
	    "  - number: 0\n    name: a\n"
	    "  - number: 65536\n    name: b\n"
	    "  - number: 65535\n    name: c\n"
	    "  - name: d\n");
	assert_rejected();
	assert_error(10, 13, "ns/t: spec.ports[0].number: port number 0 out of "
	    "range 1-65535");
	assert_error(12, 13, "spec.ports[1].number: port number 65536 out of "
	    "range 1-65535");
	assert_error(16, 5, "spec.ports[3].number: missing");
	cr_assert_eq(S.nerrors, 3, "%s", all_diags());
}

Test(serviceentry, port_number_types)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n  ports:\n"
	    "  - number: \"443\"\n    name: a\n"
	    "  - number: abc\n    name: b\n"
	    "  - number: 4.5\n    name: c\n"
	    "  - number: [1]\n    name: d\n"
	    "  - number: 99999999999999999999999\n    name: e\n");
	assert_rejected();
	assert_error(10, 13, "spec.ports[0].number: expected an integer, found "
	    "the quoted string \"443\"; remove the quotes");
	assert_error(12, 13, "spec.ports[1].number: expected an integer, found "
	    "\"abc\"");
	assert_error(14, 13, "spec.ports[2].number: expected an integer, found "
	    "\"4.5\"");
	assert_error(16, 13, "spec.ports[3].number: expected an integer, found "
	    "a sequence");
	assert_error(18, 13, "spec.ports[4].number: integer "
	    "99999999999999999999999 is too large");
}

Test(serviceentry, port_duplicates)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n  ports:\n"
	    "  - number: 80\n    name: http\n"
	    "  - number: 80\n    name: http2\n"
	    "  - number: 81\n    name: http\n");
	assert_rejected();
	assert_error(12, 13, "spec.ports[1].number: port 80 already declared "
	    "(line 10)");
	assert_error(15, 11, "spec.ports[2].name: port name \"http\" already "
	    "used (line 10)");
	cr_assert_eq(S.nerrors, 2, "%s", all_diags());
}

Test(serviceentry, port_name_invalid)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n  ports:\n"
	    "  - number: 80\n    name: http_web\n"
	    "  - number: 81\n    name: -x\n"
	    "  - number: 82\n");
	assert_rejected();
	assert_error(11, 11, "spec.ports[0].name: invalid port name "
	    "\"http_web\": must be a DNS-1123 label");
	assert_error(13, 11, "spec.ports[1].name: invalid port name \"-x\"");
	cr_assert_eq(S.nerrors, 2, "%s", all_diags());
}

Test(serviceentry, port_protocol)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n  ports:\n"
	    "  - {number: 1, name: a, protocol: grpc-web}\n"
	    "  - {number: 2, name: b, protocol: mongo}\n"
	    "  - {number: 3, name: c, protocol: http_proxy}\n"
	    "  - {number: 4, name: d, protocol: ''}\n"
	    "  - {number: 5, name: e}\n");
	assert_clean(1);
	const struct serviceentry *e = entry("t");
	cr_assert_str_eq(e->ports[0].protocol, "GRPC-Web");
	cr_assert_str_eq(e->ports[1].protocol, "Mongo");
	cr_assert_str_eq(e->ports[2].protocol, "HTTP_PROXY");
	cr_assert_null(e->ports[3].protocol);
	cr_assert_null(e->ports[4].protocol);
	se_set_free(&S);
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n  ports:\n"
	    "  - {number: 1, name: a, protocol: FTP}\n");
	assert_rejected();
	assert_error(10, 36, "spec.ports[0].protocol: unknown protocol \"FTP\" "
	    "(valid: HTTP, HTTPS, GRPC, GRPC-Web, HTTP2, HTTP_PROXY, TCP, TLS, "
	    "UDP, Mongo, Redis, MySQL)");
}

Test(serviceentry, port_target_port)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n  ports:\n"
	    "  - {number: 1, name: a, targetPort: 8443}\n"
	    "  - {number: 2, name: b, targetPort: 70000}\n"
	    "  - {number: 3, name: c, targetPort: 0}\n");
	assert_rejected();
	assert_error(11, 38, "spec.ports[1].targetPort: target port 70000 out "
	    "of range 1-65535");
	assert_error(12, 38, "spec.ports[2].targetPort: target port 0 out of "
	    "range 1-65535");
	se_set_free(&S);
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n  ports:\n"
	    "  - {number: 1, name: a, targetPort: 8443}\n");
	assert_clean(1);
	cr_assert_eq(S.entries[0]->ports[0].target_port, 8443);
}

Test(serviceentry, port_null_item)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n  ports:\n"
	    "  -\n  - {number: 2}\n");
	assert_rejected();
	assert_error(10, 4, "spec.ports[0]: port may not be null");
}

/* ------------------------------------------------------------ addresses */

Test(serviceentry, addresses_valid)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n"
	    "  addresses: [10.0.0.1, 10.0.0.2/32, 'fd00::1', 'fd00::2/128']\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "metadata: {name: c}\n"
	    "spec: {hosts: [c.example.com], resolution: STATIC, "
	    "addresses: [10.1.0.0/16], endpoints: [{address: 10.1.0.1}]}\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "metadata: {name: d}\n"
	    "spec: {hosts: [d.example.com], addresses: ['fd00::/64']}\n");
	assert_clean(3);
	const struct serviceentry *e = entry("t");
	cr_assert_eq(e->naddresses, 4);
	cr_assert_str_eq(e->addresses[1], "10.0.0.2/32");
	cr_assert_str_eq(e->addresses[3], "fd00::2/128");
	cr_assert_str_eq(entry("c")->addresses[0], "10.1.0.0/16");
	cr_assert_eq(entry("d")->resolution, SE_RES_NONE);
}

Test(serviceentry, addresses_invalid)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: NONE\n  addresses:\n"
	    "  - 10.0.0.300\n  - a.example.com\n  - 10.0.0.0/33\n");
	assert_rejected();
	assert_error(10, 5, "spec.addresses[0]: \"10.0.0.300\" is not an IP "
	    "address or CIDR");
	assert_error(11, 5, "spec.addresses[1]: \"a.example.com\" is not an IP "
	    "address or CIDR");
	assert_error(12, 5, "spec.addresses[2]: \"10.0.0.0/33\" is not an IP");
}

Test(serviceentry, addresses_tcp_multiple_hosts_warns)
{
	load(HDR "  hosts: [a.example.com, b.example.com]\n  resolution: DNS\n"
	    "  addresses: [10.0.0.1]\n"
	    "  ports: [{number: 80, name: http, protocol: HTTP}, "
	    "{number: 5432, name: pg, protocol: TCP}]\n");
	cr_assert_eq(S.nentries, 1);
	assert_warning(7, 10, "ns/t: spec.hosts: more than one host with "
	    "addresses and the TCP port 5432");
	se_set_free(&S);
	load(HDR "  hosts: [a.example.com, b.example.com]\n  resolution: DNS\n"
	    "  addresses: [10.0.0.1]\n"
	    "  ports: [{number: 80, name: http, protocol: HTTP}]\n");
	assert_clean(1);
}

Test(serviceentry, cidr_requires_none_or_static)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n"
	    "  addresses: [10.0.0.1, 10.0.0.0/24]\n");
	assert_rejected();
	assert_error(9, 25, "ns/t: spec.addresses: CIDR \"10.0.0.0/24\" is only "
	    "allowed with resolution NONE or STATIC, not DNS");
}

/* ----------------------------------------------- resolution / location */

Test(serviceentry, resolution_unknown)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: dns\n");
	assert_rejected();
	assert_error(8, 15, "ns/t: spec.resolution: unknown resolution \"dns\" "
	    "(valid: NONE, STATIC, DNS, DNS_ROUND_ROBIN, DYNAMIC_DNS)");
}

Test(serviceentry, resolution_unknown_skips_dependent_rules)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: Static\n"
	    "  endpoints: [{address: 10.0.0.1}]\n");
	assert_rejected();
	cr_assert_eq(S.nerrors, 1, "%s", all_diags());
	assert_error(8, 15, "unknown resolution \"Static\"");
}

Test(serviceentry, location_unknown)
{
	load(HDR "  hosts: [a.example.com]\n  location: EXTERNAL\n");
	assert_rejected();
	assert_error(8, 13, "ns/t: spec.location: unknown location \"EXTERNAL\" "
	    "(valid: MESH_EXTERNAL, MESH_INTERNAL)");
}

Test(serviceentry, resolution_default_none)
{
	load(HDR "  hosts: ['*.example.com']\n");
	assert_clean(1);
	cr_assert_eq(S.entries[0]->resolution, SE_RES_NONE);
	cr_assert_eq(S.entries[0]->location, SE_LOC_UNSET);
	cr_assert_str_eq(se_resolution_name(SE_RES_DNS_ROUND_ROBIN),
	    "DNS_ROUND_ROBIN");
	cr_assert_str_eq(se_location_name(SE_LOC_MESH_INTERNAL),
	    "MESH_INTERNAL");
}

Test(serviceentry, none_forbids_endpoints)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: NONE\n  endpoints:\n"
	    "  - address: 10.0.0.1\n");
	assert_rejected();
	assert_error(10, 3, "ns/t: spec.endpoints: resolution NONE does not "
	    "allow endpoints");
}

Test(serviceentry, static_without_endpoints_warns)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: STATIC\n");
	cr_assert_eq(S.nentries, 1);
	cr_assert_eq(S.nerrors, 0);
	assert_warning(8, 15, "ns/t: spec.endpoints: resolution STATIC with no "
	    "endpoints and no workloadSelector");
	se_set_free(&S);
	load(HDR "  hosts: [a.example.com]\n  resolution: STATIC\n"
	    "  workloadSelector:\n    labels: {app: vm}\n");
	assert_clean(1);
	cr_assert(S.entries[0]->has_workload_selector);
}

Test(serviceentry, static_endpoints_must_be_ips)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: STATIC\n  endpoints:\n"
	    "  - address: 10.0.0.1\n"
	    "  - address: 'fd00::1'\n"
	    "  - address: unix:///var/run/app.sock\n"
	    "  - address: not_a host\n");
	assert_rejected();
	assert_error(13, 14, "spec.endpoints[3].address: \"not_a host\" is not "
	    "an IP address or unix:// path");
	cr_assert_eq(S.nerrors, 1, "%s", all_diags());
}

Test(serviceentry, endpoint_address_missing)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: STATIC\n  endpoints:\n"
	    "  - labels: {a: b}\n");
	assert_rejected();
	assert_error(10, 5, "spec.endpoints[0].address: missing");
}

Test(serviceentry, dns_wildcard_needs_endpoints)
{
	load(HDR "  hosts: [a.example.com, '*.example.org']\n"
	    "  resolution: DNS\n");
	assert_rejected();
	assert_error(7, 26, "ns/t: spec.hosts[1]: wildcard host "
	    "\"*.example.org\" cannot be resolved with resolution DNS and no "
	    "endpoints; use resolution NONE or DYNAMIC_DNS, or add endpoints");
	se_set_free(&S);
	load(HDR "  hosts: ['*.example.org']\n  resolution: DNS\n"
	    "  endpoints: [{address: lb.example.org}]\n");
	assert_clean(1);
}

Test(serviceentry, dns_endpoint_addresses)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n  endpoints:\n"
	    "  - address: lb.example.com\n  - address: 10.0.0.1\n"
	    "  - address: 'bad host'\n");
	assert_rejected();
	assert_error(12, 14, "spec.endpoints[2].address: \"bad host\" is not a "
	    "hostname or IP address");
	cr_assert_eq(S.nerrors, 1, "%s", all_diags());
}

Test(serviceentry, dns_round_robin_one_endpoint)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS_ROUND_ROBIN\n"
	    "  endpoints:\n  - address: a.example.net\n"
	    "  - address: b.example.net\n");
	assert_rejected();
	assert_error(10, 3, "ns/t: spec.endpoints: resolution DNS_ROUND_ROBIN "
	    "allows at most one endpoint (found 2)");
	se_set_free(&S);
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS_ROUND_ROBIN\n"
	    "  endpoints:\n  - address: a.example.net\n");
	assert_clean(1);
	cr_assert_eq(S.entries[0]->resolution, SE_RES_DNS_ROUND_ROBIN);
}

Test(serviceentry, dynamic_dns)
{
	load(HDR "  hosts: ['*.example.com', b.example.com]\n"
	    "  resolution: DYNAMIC_DNS\n"
	    "  addresses: [10.0.0.1]\n"
	    "  endpoints: [{address: 10.0.0.2}]\n");
	assert_rejected();
	assert_error(7, 28, "ns/t: spec.hosts[1]: resolution DYNAMIC_DNS "
	    "requires wildcard hosts (\"*.example.com\"), not \"b.example.com\"");
	assert_error(9, 14, "spec.addresses: resolution DYNAMIC_DNS does not "
	    "allow addresses");
	assert_error(10, 14, "spec.endpoints: resolution DYNAMIC_DNS does not "
	    "allow endpoints");
	se_set_free(&S);
	load(HDR "  hosts: ['*.example.com']\n  resolution: DYNAMIC_DNS\n");
	assert_clean(1);
	cr_assert_eq(S.entries[0]->resolution, SE_RES_DYNAMIC_DNS);
}

/* ------------------------------------------------------------ endpoints */

Test(serviceentry, endpoint_fields)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: STATIC\n"
	    "  ports:\n  - {number: 443, name: https}\n"
	    "  endpoints:\n"
	    "  - address: 10.0.0.1\n"
	    "    ports: {https: 8443}\n"
	    "    labels: {version: v1}\n"
	    "    network: net-1\n"
	    "    locality: us-east-1/us-east-1a\n"
	    "    weight: 4294967295\n"
	    "    serviceAccount: sa\n");
	assert_clean(1);
	const struct se_endpoint *ep = &S.entries[0]->endpoints[0];
	cr_assert_eq(ep->nports, 1);
	cr_assert_str_eq(ep->ports[0].key, "https");
	cr_assert_str_eq(ep->ports[0].value, "8443");
	cr_assert_str_eq(ep->labels[0].value, "v1");
	cr_assert_str_eq(ep->network, "net-1");
	cr_assert_str_eq(ep->locality, "us-east-1/us-east-1a");
	cr_assert_eq(ep->weight, 4294967295u);
	cr_assert_eq(ep->line, 12);
}

Test(serviceentry, endpoint_ports)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: STATIC\n"
	    "  ports:\n  - {number: 80, name: http}\n"
	    "  endpoints:\n"
	    "  - address: 10.0.0.1\n"
	    "    ports:\n"
	    "      http: 0\n"
	    "      grpc: 9000\n"
	    "  - address: 10.0.0.2\n"
	    "    ports: {http: abc}\n");
	assert_rejected();
	assert_error(14, 13, "ns/t: spec.endpoints[0].ports.http: port 0 out of "
	    "range 1-65535");
	assert_error(15, 7, "ns/t: spec.endpoints[0].ports.grpc: port name "
	    "\"grpc\" is not declared in spec.ports");
	assert_error(17, 19, "spec.endpoints[1].ports.http: expected an "
	    "integer, found \"abc\"");
}

Test(serviceentry, endpoint_weight)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: STATIC\n"
	    "  endpoints:\n"
	    "  - {address: 10.0.0.1, weight: -1}\n"
	    "  - {address: 10.0.0.2, weight: 4294967296}\n");
	assert_rejected();
	assert_error(10, 33, "spec.endpoints[0].weight: weight -1 out of range "
	    "0-4294967295");
	assert_error(11, 33, "spec.endpoints[1].weight: weight 4294967296 out "
	    "of range 0-4294967295");
}

Test(serviceentry, endpoints_and_workload_selector_exclusive)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: STATIC\n"
	    "  endpoints: [{address: 10.0.0.1}]\n"
	    "  workloadSelector:\n    labels: {app: x}\n");
	assert_rejected();
	assert_error(11, 5, "ns/t: spec.workloadSelector: endpoints and "
	    "workloadSelector are mutually exclusive");
}

/* ------------------------------------------------------------- exportTo */

Test(serviceentry, export_to)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n"
	    "  exportTo: ['.', '*', other-ns]\n");
	assert_clean(1);
	cr_assert_eq(S.entries[0]->nexport_to, 3);
	se_set_free(&S);
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n"
	    "  exportTo:\n  - ns_bad\n  - '.'\n  - ns\n  - other\n  - other\n");
	assert_rejected();
	assert_error(10, 5, "ns/t: spec.exportTo[0]: invalid exportTo "
	    "\"ns_bad\": must be \".\", \"*\", \"~\" or a namespace name");
	assert_error(12, 5, "spec.exportTo[2]: duplicate exportTo entry \"ns\"");
	assert_error(14, 5, "spec.exportTo[4]: duplicate exportTo entry "
	    "\"other\"");
	cr_assert_eq(S.nerrors, 3, "%s", all_diags());
}

Test(serviceentry, export_to_none_alone)
{
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n"
	    "  exportTo: ['.', '~']\n");
	assert_rejected();
	assert_error(9, 19, "ns/t: spec.exportTo: \"~\" (export to no namespace) "
	    "cannot be combined with other entries");
	se_set_free(&S);
	load(HDR "  hosts: [a.example.com]\n  resolution: DNS\n"
	    "  exportTo: ['~']\n");
	assert_clean(1);
}

/* --------------------------------------------------------------- limits */

enum gen { GEN_HOST, GEN_PORT, GEN_ADDR, GEN_ENDPOINT };

/* pre + n comma-separated generated items + post; caller frees. */
static char *
gen_list(const char *pre, enum gen kind, int n, const char *post)
{
	size_t cap = strlen(pre) + strlen(post) + (size_t)n * 64 + 16;
	char *buf = malloc(cap);
	size_t off = 0;
	char item[64];
	cr_assert_not_null(buf);
	buf[0] = '\0';
	append(buf, cap, &off, pre);
	for (int i = 0; i < n; i++) {
		int a = i / 250, b = i % 250 + 1;
		switch (kind) {
		case GEN_HOST:
			snprintf(item, sizeof(item), "h%d-%d.example.com", a, b);
			break;
		case GEN_PORT:
			snprintf(item, sizeof(item), "{number: %d}", i + 1);
			break;
		case GEN_ADDR:
			snprintf(item, sizeof(item), "10.9.%d.%d", a, b);
			break;
		case GEN_ENDPOINT:
			snprintf(item, sizeof(item), "{address: 10.8.%d.%d}", a,
			    b);
			break;
		}
		if (i > 0)
			append(buf, cap, &off, ", ");
		append(buf, cap, &off, item);
	}
	append(buf, cap, &off, post);
	return buf;
}

Test(serviceentry, limit_hosts)
{
	char *y = gen_list(HDR "  resolution: DNS\n  hosts: [",
	    GEN_HOST, SE_MAX_HOSTS + 1, "]\n");
	load(y);
	free(y);
	assert_rejected();
	assert_error(8, 10, "ns/t: spec.hosts: too many hosts (257; the limit "
	    "is 256)");
	se_set_free(&S);
	y = gen_list(HDR "  resolution: DNS\n  hosts: [",
	    GEN_HOST, SE_MAX_HOSTS, "]\n");
	load(y);
	free(y);
	assert_clean(1);
}

Test(serviceentry, limit_ports)
{
	char *y = gen_list(HDR "  hosts: [a.b]\n  resolution: DNS\n  ports: [",
	    GEN_PORT, SE_MAX_PORTS + 1, "]\n");
	load(y);
	free(y);
	assert_rejected();
	assert_error(9, 10, "spec.ports: too many ports (257; the limit is "
	    "256)");
}

Test(serviceentry, limit_addresses)
{
	char *y = gen_list(HDR "  hosts: [a.b]\n  resolution: NONE\n"
	    "  addresses: [", GEN_ADDR, SE_MAX_ADDRESSES + 1, "]\n");
	load(y);
	free(y);
	assert_rejected();
	assert_error(9, 14, "spec.addresses: too many addresses (257; the "
	    "limit is 256)");
}

/* hosts x ports x endpoints, each under its own cap, is capped too */
static void
load_product(int nhosts, int nendpoints)
{
	char *h = gen_list(HDR "  resolution: STATIC\n  hosts: [", GEN_HOST, nhosts, "]\n  ports: [{number: 80}]\n");
	char *y = gen_list(h, GEN_ENDPOINT, nendpoints, "]\n");
	free(h);
	h = y;
	/* gen_list put the endpoints right after the ports line: name them */
	char *at = strstr(h, "  ports: [{number: 80}]\n") + strlen("  ports: [{number: 80}]\n");
	size_t cap = strlen(h) + 32;
	y = malloc(cap);
	cr_assert_not_null(y);
	snprintf(y, cap, "%.*s  endpoints: [%s", (int)(at - h), h, at);
	free(h);
	load(y);
	free(y);
}

Test(serviceentry, limit_dnat_targets)
{
	load_product(SE_MAX_TARGETS / SE_MAX_ENDPOINTS + 1, SE_MAX_ENDPOINTS);
	assert_rejected();
	assert_error(10, 14, "ns/t: spec: 17 hosts x 1 ports x 4096 endpoints = 69632 DNAT targets; the limit is "
	    "65536 per ServiceEntry");
	se_set_free(&S);
	load_product(SE_MAX_TARGETS / SE_MAX_ENDPOINTS, SE_MAX_ENDPOINTS);
	assert_clean(1);
}

Test(serviceentry, limit_endpoints)
{
	char *y = gen_list(HDR "  hosts: [a.b]\n  resolution: STATIC\n"
	    "  endpoints: [", GEN_ENDPOINT, SE_MAX_ENDPOINTS + 1,
	    "]\n");
	load(y);
	free(y);
	assert_rejected();
	assert_error(9, 14, "spec.endpoints: too many endpoints (4097; the "
	    "limit is 4096)");
	se_set_free(&S);
	y = gen_list(HDR "  hosts: [a.b]\n  resolution: STATIC\n"
	    "  endpoints: [", GEN_ENDPOINT, SE_MAX_ENDPOINTS,
	    "]\n");
	load(y);
	free(y);
	assert_clean(1);
	cr_assert_eq(S.entries[0]->nendpoints, SE_MAX_ENDPOINTS);
}

/* --------------------------------------------------- malformed YAML */

Test(serviceentry, yaml_tabs)
{
	const char *f = "../data/se/negative/tabs.yaml";
	cr_assert(se_load_path(&S, f));
	cr_assert_eq(S.nentries, 1);
	cr_assert_str_eq(S.entries[0]->name, "good-before-tab");
	cr_assert_eq(S.nerrors, 1, "%s", all_diags());
	assert_diag_in(f, SE_ERROR, 13, 1, "YAML syntax error: ");
	assert_diag_in(f, SE_ERROR, 13, 1, "tabs are not allowed for "
	    "indentation");
	/* the syntax error stops the file: the third document is not read */
	cr_assert_null(find_diag("never-reached"));
}

Test(serviceentry, yaml_bad_indentation)
{
	const char *f = "../data/se/negative/bad-indent.yaml";
	cr_assert(se_load_path(&S, f));
	cr_assert_eq(S.nentries, 0);
	assert_diag_in(f, SE_ERROR, 5, 2, "YAML syntax error: while parsing a "
	    "block mapping did not find expected key");
}

Test(serviceentry, yaml_unclosed_quote)
{
	const char *f = "../data/se/negative/unclosed-quote.yaml";
	cr_assert(se_load_path(&S, f));
	cr_assert_eq(S.nentries, 0);
	assert_diag_in(f, SE_ERROR, 8, 1, "YAML syntax error: while scanning a "
	    "quoted scalar found unexpected end of stream (line 4, column 9)");
}

Test(serviceentry, yaml_alias_bomb)
{
	const char *f = "../data/se/negative/alias-bomb.yaml";
	cr_assert(se_load_path(&S, f));
	assert_diag_in(f, SE_ERROR, 2, 8, "YAML aliases (*name) are not "
	    "supported; document skipped");
	cr_assert_eq(S.nerrors, 1, "%s", all_diags());
	/* the next document still loads */
	cr_assert_eq(S.nentries, 1);
	cr_assert_str_eq(S.entries[0]->name, "after-bomb");
}

Test(serviceentry, yaml_alias_inline)
{
	load("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "metadata: {name: x}\n"
	    "spec:\n  hosts: &h [a.example.com]\n  exportTo: *h\n");
	cr_assert_eq(S.nentries, 0);
	assert_error(6, 13, "t.yaml:6:13: YAML aliases (*name) are not "
	    "supported");
}

Test(serviceentry, yaml_non_utf8)
{
	const char *f = "../data/se/negative/latin1.yaml";
	cr_assert(se_load_path(&S, f));
	assert_diag_in(f, SE_ERROR, 13, 12, "invalid UTF-8 byte 0xe9; the file "
	    "must be UTF-8 text");
	cr_assert_eq(S.nerrors, 1, "%s", all_diags());
	/* the document before the bad byte is kept */
	cr_assert_eq(S.nentries, 1);
	cr_assert_str_eq(S.entries[0]->name, "utf8-ok");
}

Test(serviceentry, yaml_non_utf8_inline)
{
	static const char y[] = "kind: ServiceEntry\nmetadata: {name: \xff}\n";
	se_load_buffer(&S, "t.yaml", y, sizeof(y) - 1);
	assert_error(2, 18, "invalid UTF-8 byte 0xff");
	/* overlong encoding and surrogates are not UTF-8 either */
	se_set_free(&S);
	static const char y2[] = "a: \xc0\xaf\n";
	se_load_buffer(&S, "t.yaml", y2, sizeof(y2) - 1);
	assert_error(1, 4, "invalid UTF-8 byte 0xc0");
	se_set_free(&S);
	static const char y3[] = "a: \xed\xa0\x80\n";
	se_load_buffer(&S, "t.yaml", y3, sizeof(y3) - 1);
	assert_error(1, 4, "invalid UTF-8 byte 0xed");
}

Test(serviceentry, yaml_control_characters)
{
	static const char y[] = "apiVersion: networking.istio.io/v1\n"
	    "kind: ServiceEntry\nmetadata: {name: ok}\n"
	    "spec: {hosts: [a.b], resolution: DNS}\n"
	    "---\nkind: ServiceEntry\nmetadata: {name: \"x\001\"}\n";
	se_load_buffer(&S, "t.yaml", y, sizeof(y) - 1);
	assert_error(7, 20, "t.yaml:7:20: control character U+0001 is not "
	    "allowed in YAML");
	cr_assert_eq(S.nerrors, 1, "%s", all_diags());
	cr_assert_eq(S.nentries, 1);
	se_set_free(&S);
	static const char z[] = "a: b\0c\n";
	se_load_buffer(&S, "t.yaml", z, sizeof(z) - 1);
	assert_error(1, 5, "control character U+0000");
}

Test(serviceentry, yaml_nul_in_string)
{
	load(HDR "  hosts: [\"a\\0b.example.com\"]\n");
	assert_rejected();
	assert_error(7, 11, "spec.hosts[0]: string contains a NUL character");
}

Test(serviceentry, yaml_too_large)
{
	size_t n = (size_t)SE_MAX_FILE_BYTES + 1;
	char *big = malloc(n);
	cr_assert_not_null(big);
	memset(big, '#', n);
	se_load_buffer(&S, "t.yaml", big, n);
	free(big);
	char want[128];
	snprintf(want, sizeof(want), "file is too large (%zu bytes; the limit is %u bytes)", n, SE_MAX_FILE_BYTES);
	assert_error(1, 1, want);
	cr_assert(se_set_is_broken(&S, "t.yaml"), "a file not read to its end is broken (keeps last good)");
}

Test(serviceentry, yaml_nesting_depth)
{
	char y[512];
	size_t off = 0;
	off += (size_t)snprintf(y, sizeof(y), "a: ");
	for (int i = 0; i < SE_MAX_DEPTH + 5; i++)
		y[off++] = '[';
	for (int i = 0; i < SE_MAX_DEPTH + 5; i++)
		y[off++] = ']';
	y[off++] = '\n';
	off += (size_t)snprintf(y + off, sizeof(y) - off,
	    "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "metadata: {name: x}\nspec: {hosts: [a.b], resolution: DNS}\n");
	se_load_buffer(&S, "t.yaml", y, off);
	/* the root mapping is level 1, so the 64th '[' is level 65 */
	assert_error(1, 67, "YAML nesting deeper than 64 levels; document "
	    "skipped");
	cr_assert_eq(S.nerrors, 1, "%s", all_diags());
	cr_assert_eq(S.nentries, 1);
}

Test(serviceentry, yaml_node_limit)
{
	size_t n = SE_MAX_NODES + 1, cap = n * 2 + 16, off;
	char *y = malloc(cap);
	cr_assert_not_null(y);
	off = (size_t)snprintf(y, cap, "[");
	for (size_t i = 0; i < n; i++) {
		y[off++] = '0';
		y[off++] = ',';
	}
	y[off - 1] = ']';
	se_load_buffer(&S, "t.yaml", y, off);
	free(y);
	cr_assert_eq(S.nerrors, 1, "%s", all_diags());
	cr_assert_not_null(find_diag("document has more than 1000000 YAML "
	    "nodes; document skipped"));
}

Test(serviceentry, yaml_garbage_never_crashes)
{
	static const char *const inputs[] = {
		"{", "[", "]", "}", "'", "\"", "- - - -", ": :", "? ? ?",
		"a: b: c", "!!binary x", "%YAML 1.1\n%YAML 1.1\n---\na: b",
		"kind: ServiceEntry\nspec: [1,2", "&a *a", "a: !<tag> b",
		"kind: ServiceEntry\nmetadata: [x]\nspec: {}",
		"kind: ServiceEntry\nmetadata:\n  name: [x]\nspec: 3",
		"kind: List\nitems: [1, [2], {kind: ServiceEntry}]",
	};
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
		load(inputs[i]);
	cr_assert_eq(S.nentries, 0);
	cr_assert_gt(S.nerrors, 5);
	for (size_t i = 0; i < S.ndiags; i++)
		cr_assert(strncmp(S.diags[i].message, "t.yaml:", 7) == 0);
}

/* An author controls the size of a mapping: duplicate checks are not
 * quadratic and unknown fields are not a warning each. */
Test(serviceentry, huge_mappings_stay_cheap)
{
	size_t n = 50000, cap = n * 40 + 4096, off = 0;
	char *y = malloc(cap);
	cr_assert_not_null(y);
	off += (size_t)snprintf(y + off, cap - off, "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "metadata:\n  name: big\n  namespace: a\n  labels:\n");
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(y + off, cap - off, "    l%zu: v\n", i);
	off += (size_t)snprintf(y + off, cap - off, "    l7: dup\nspec:\n  hosts: [big.example]\n  resolution: DNS\n");
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(y + off, cap - off, "  zz%zu: 1\n", i);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	se_load_buffer(&S, "big.yaml", y, off);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	free(y);
	cr_assert_lt(secs, 2.0, "took %.2fs", secs);
	cr_assert_leq(S.nwarnings, 22, "%zu warnings", S.nwarnings);
	bool dup = false;
	for (size_t i = 0; i < S.ndiags; i++)
		dup |= strstr(S.diags[i].message, "metadata.labels.l7: duplicate key (first at line 14)") != NULL;
	cr_assert(dup, "the duplicate label is reported with its first line");
}

/* Blocks: a reload shares an unchanged file's entries instead of copying. */
static const char *const TWO =
    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: a\n  namespace: ns\n"
    "spec:\n  hosts: [a.example.com]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n"
    "---\n"
    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: b\n  namespace: ns\n"
    "spec:\n  hosts: [b.example.com]\n  ports: [{number: 443, name: https, protocol: TLS}]\n";

Test(serviceentry, adopted_block_shares_entries_and_outlives_its_first_set)
{
	load(TWO);
	cr_assert_eq(S.nentries, 2);
	struct se_block *b = se_set_last_block(&S);
	cr_assert_not_null(b);
	cr_assert_eq(se_block_count(b), 2);

	struct se_set next;
	se_set_init(&next);
	cr_assert(se_set_adopt_block(&next, b));
	cr_assert_eq(next.nentries, 2);
	/* the same entries, not copies */
	cr_assert_eq(next.entries[0], S.entries[0]);
	cr_assert_eq(next.entries[1], S.entries[1]);
	cr_assert_eq(se_set_find(&next, "ns", "b"), S.entries[1]);

	/* the first set goes (as the old registry does): the block stays */
	se_set_free(&S);
	se_set_init(&S);
	cr_assert_str_eq(next.entries[1]->hosts[0], "b.example.com");
	cr_assert_str_eq(next.entries[1]->ports[0].protocol, "TLS");
	se_set_free(&next);
}

Test(serviceentry, adopting_a_block_with_a_duplicate_changes_nothing)
{
	load(TWO);
	struct se_block *b = se_set_last_block(&S);
	struct se_set next;
	se_set_init(&next);
	/* b is already declared by another file of the new set */
	const char *dup = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: b\n"
	    "  namespace: ns\nspec:\n  hosts: [other.example.com]\n  ports: [{number: 80, name: http}]\n";
	se_load_buffer(&next, "first.yaml", dup, strlen(dup));
	cr_assert_eq(next.nentries, 1);
	cr_assert_not(se_set_adopt_block(&next, b));
	cr_assert_eq(next.nentries, 1);
	cr_assert_eq(next.nblocks, 1);
	cr_assert_str_eq(se_set_find(&next, "ns", "b")->hosts[0], "other.example.com");
	cr_assert_null(se_set_find(&next, "ns", "a"));
	/* copies after the files still work, in a block of their own */
	cr_assert(se_set_copy_entry(&next, S.entries[0]));
	cr_assert_neq(se_set_find(&next, "ns", "a"), S.entries[0]);
	cr_assert_str_eq(se_set_find(&next, "ns", "a")->hosts[0], "a.example.com");
	se_set_free(&next);
}

Test(serviceentry, entries_keep_their_address_while_a_file_grows)
{
	/* 100 entries in one file: the block's array moves while it loads */
	static char buf[64 * 1024];
	size_t off = 0;
	for (int i = 0; i < 100; i++) {
		char one[512];
		snprintf(one, sizeof(one), "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n"
		    "  name: s%d\n  namespace: ns\nspec:\n  hosts: [s%d.example.com]\n  ports: [{number: 80, name: http}]\n",
		    i, i);
		append(buf, sizeof(buf), &off, one);
	}
	load(buf);
	cr_assert_eq(S.nentries, 100);
	for (int i = 0; i < 100; i++) {
		char n[16];
		snprintf(n, sizeof(n), "s%d", i);
		cr_assert_eq(se_set_find(&S, "ns", n), S.entries[i]);
		cr_assert_str_eq(S.entries[i]->name, n);
	}
}
