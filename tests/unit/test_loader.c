/*
 * Unit tests for loader's last-good cache: an unchanged file's entries are
 * shared with the next build (not parsed, not copied), a changed file is
 * parsed again, and an entry that stops validating keeps its last version.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"

static char dir[64];

/* file.yaml holding ServiceEntry ns/name */
static void
put_as(const char *file, const char *name, const char *host, const char *port)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/%s.yaml", dir, file);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	fprintf(f, "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: %s\n  namespace: ns\n"
	    "spec:\n  hosts: [%s]\n  ports: [{number: %s, name: http}]\n", name, host, port);
	fclose(f);
}

static void
put(const char *name, const char *host, const char *port)
{
	put_as(name, name, host, port);
}

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/sedns-loader-test-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(loader, .init = setup, .fini = teardown);

static struct registry *
build(struct config *cfg, struct loader_cache *c)
{
	char err[256] = "";
	struct load_summary sum;
	struct registry *r = loader_build_cached(cfg, NULL, false, c, 0, NULL, &sum, err, sizeof(err));
	cr_assert_not_null(r, "build: %s", err);
	return r;
}

static const struct serviceentry *
entry(const struct registry *r, const char *name)
{
	return se_set_find(&r->set, "ns", name);
}

Test(loader, unchanged_files_are_shared_with_the_next_build)
{
	put("a", "a.example.com", "80");
	put("b", "b.example.com", "80");
	char *argv[] = { (char *)"-s", dir };
	struct config *cfgp = config_load(2, argv, stderr, NULL, NULL, NULL);
	cr_assert_not_null(cfgp);
	struct config cfg = *cfgp;
	struct loader_cache c;
	memset(&c, 0, sizeof(c));

	struct registry *r1 = build(&cfg, &c);
	loader_cache_commit(&c, r1);
	cr_assert_eq(r1->set.nentries, 2);
	cr_assert_not_null(entry(r1, "a"));
	cr_assert_not_null(entry(r1, "b"));

	/* b changes (a new size, so a new fingerprint whatever the clock) */
	put("b", "b2.example.com", "8080");
	struct registry *r2 = build(&cfg, &c);
	cr_assert_eq(entry(r2, "a"), entry(r1, "a"), "a.yaml was not shared");
	cr_assert_neq(entry(r2, "b"), entry(r1, "b"));
	cr_assert_str_eq(entry(r2, "b")->hosts[0], "b2.example.com");
	loader_cache_commit(&c, r2);
	/* the old registry goes first: a's entry lives on in r2 */
	registry_free(r1);
	cr_assert_str_eq(entry(r2, "a")->hosts[0], "a.example.com");
	cr_assert_not_null(registry_find(r2, "a.example.com"));
	cr_assert_not_null(registry_find(r2, "b2.example.com"));

	/* b stops validating: its last version stays, a is still shared */
	put("b", "b3.example.com", "99999");
	struct registry *r3 = build(&cfg, &c);
	cr_assert_eq(entry(r3, "a"), entry(r2, "a"));
	cr_assert_str_eq(entry(r3, "b")->hosts[0], "b2.example.com");
	loader_cache_commit(&c, r3);
	registry_free(r2);

	loader_cache_free(&c);
	/* the registry holds its own references */
	cr_assert_str_eq(entry(r3, "a")->hosts[0], "a.example.com");
	registry_free(r3);
	config_free(cfgp);
}

/* What a build prints, through the cache (files parsed on two threads) or
 * without it (serial). */
static char *
diags_of(struct config *cfg, bool cached, size_t *nentries)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct loader_cache c;
	memset(&c, 0, sizeof(c));
	char err[256] = "";
	struct load_summary sum;
	struct registry *r = cached ? loader_build_cached(cfg, NULL, false, &c, 0, f, &sum, err, sizeof(err)) :
	    loader_build(cfg, NULL, false, 0, f, &sum, err, sizeof(err));
	cr_assert_not_null(r, "%s", err);
	*nentries = r->set.nentries;
	loader_cache_free(&c);
	registry_free(r);
	fclose(f);
	return buf;
}

Test(loader, parallel_parse_reports_exactly_what_a_serial_load_does)
{
	put("a", "a.example.com", "80");
	put("b", "b.example.com", "99999");     /* invalid port */
	put("c", "c.example.com", "80");
	put("d", "d.example.com", "80");
	/* e declares a/ns again: the later file's copy is the duplicate */
	put_as("e", "a", "e.example.com", "80");
	char *argv[] = { (char *)"-s", dir };
	struct config *cfg = config_load(2, argv, stderr, NULL, NULL, NULL);
	cr_assert_not_null(cfg);
	size_t n1, n2;
	char *serial = diags_of(cfg, false, &n1);
	char *parallel = diags_of(cfg, true, &n2);
	cr_assert_str_eq(parallel, serial);
	cr_assert_eq(n1, 3);
	cr_assert_eq(n2, 3);
	cr_assert_not_null(strstr(serial, "duplicate ServiceEntry ns/a"), "%s", serial);
	cr_assert_not_null(strstr(serial, "b.yaml"), "%s", serial);
	free(serial);
	free(parallel);
	config_free(cfg);
}

/* API objects: runs of documents are shared like files. */
#define NDOCS 200
static char doctext[NDOCS][512];
static char docname[NDOCS][64];

static void
mkdocs(struct loader_doc *d, size_t n, int changed, const char *host)
{
	for (size_t i = 0; i < n; i++) {
		snprintf(docname[i], sizeof(docname[i]), "kube:ServiceEntry ns/s%zu", i);
		snprintf(doctext[i], sizeof(doctext[i]), "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
		    "metadata:\n  name: s%zu\n  namespace: ns\nspec:\n  hosts: [%s%zu.example.com]\n"
		    "  ports: [{number: 80, name: http}]\n", i, (int)i == changed ? host : "s", i);
		d[i].name = docname[i];
		d[i].text = doctext[i];
		d[i].len = strlen(doctext[i]);
	}
}

static const struct serviceentry *
docentry(const struct registry *r, size_t i)
{
	char n[32];
	snprintf(n, sizeof(n), "s%zu", i);
	return se_set_find(&r->set, "ns", n);
}

Test(loader, unchanged_api_objects_are_shared_in_runs)
{
	char *argv[] = { (char *)"-s", dir };
	struct config *cfg = config_load(2, argv, stderr, NULL, NULL, NULL);
	cr_assert_not_null(cfg);
	struct loader_cache c;
	memset(&c, 0, sizeof(c));
	struct loader_doc d[NDOCS];
	char err[256];
	struct load_summary sum;

	mkdocs(d, NDOCS, -1, "");
	struct registry *r1 = loader_build_docs(cfg, NULL, false, &c, d, NDOCS, 0, NULL, &sum, err, sizeof(err));
	cr_assert_not_null(r1);
	cr_assert_eq(r1->set.nentries, NDOCS);
	loader_cache_commit(&c, r1);

	/* one object changes: it is parsed again, most of the rest shared */
	mkdocs(d, NDOCS, 100, "x");
	struct registry *r2 = loader_build_docs(cfg, NULL, false, &c, d, NDOCS, 0, NULL, &sum, err, sizeof(err));
	cr_assert_not_null(r2);
	cr_assert_eq(r2->set.nentries, NDOCS);
	cr_assert_str_eq(docentry(r2, 100)->hosts[0], "x100.example.com");
	cr_assert_neq(docentry(r2, 100), docentry(r1, 100));
	size_t shared = 0;
	for (size_t i = 0; i < NDOCS; i++)
		shared += docentry(r2, i) == docentry(r1, i);
	/* runs average 32 documents and hold at most 256 */
	cr_assert_gt(shared, NDOCS / 2, "only %zu of %d shared", shared, NDOCS);
	loader_cache_commit(&c, r2);
	registry_free(r1);

	/* one object goes: the runs after it are still shared */
	mkdocs(d, NDOCS, 100, "x");
	memmove(&d[10], &d[11], (NDOCS - 11) * sizeof(d[0]));
	struct registry *r3 = loader_build_docs(cfg, NULL, false, &c, d, NDOCS - 1, 0, NULL, &sum, err, sizeof(err));
	cr_assert_not_null(r3);
	cr_assert_eq(r3->set.nentries, NDOCS - 1);
	cr_assert_null(docentry(r3, 10));
	cr_assert_eq(docentry(r3, NDOCS - 1), docentry(r2, NDOCS - 1));
	loader_cache_commit(&c, r3);
	registry_free(r2);
	loader_cache_free(&c);
	cr_assert_str_eq(docentry(r3, 100)->hosts[0], "x100.example.com");
	registry_free(r3);
	config_free(cfg);
}
