/* kubeconfig — see include/kubeconfig.h. */
#include "kubeconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "serviceentry.h"

void
kube_conn_free(struct kube_conn *c)
{
	free(c->server);
	free(c->ca_file);
	free(c->ca_data);
	free(c->token);
	free(c->token_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->cert_data);
	free(c->key_data);
	free(c->source);
	memset(c, 0, sizeof(*c));
}

static int
b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

size_t
kube_base64_decode(const char *in, size_t len, unsigned char *out)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0, pad = 0;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		int v = b64val(c);
		if (v < 0 || pad > 0)
			return (size_t)-1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	if (pad > 2)
		return (size_t)-1;
	return n;
}

static yaml_node_t *
get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		if (k && k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

static const char *
scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* The entry of list (clusters, users, contexts) with this name: its inner
 * mapping (under `inner`). */
static yaml_node_t *
named(yaml_document_t *doc, yaml_node_t *root, const char *list, const char *inner, const char *name)
{
	yaml_node_t *seq = get(doc, root, list);
	if (seq == NULL || seq->type != YAML_SEQUENCE_NODE)
		return NULL;
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(doc, *it);
		const char *n = scalar(get(doc, e, "name"));
		if (n && (name == NULL || strcmp(n, name) == 0))
			return get(doc, e, inner);
	}
	return NULL;
}

static size_t
count(yaml_document_t *doc, yaml_node_t *root, const char *list)
{
	yaml_node_t *seq = get(doc, root, list);
	return seq && seq->type == YAML_SEQUENCE_NODE ?
	    (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start) : 0;
}

static bool fail(char *err, size_t errlen, const char *file, const yaml_node_t *at, const char *fmt,
    const char *arg) __attribute__((format(printf, 5, 0)));

static bool
fail(char *err, size_t errlen, const char *file, const yaml_node_t *at, const char *fmt, const char *arg)
{
	char msg[400];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	/* fmt is one of this file's literals, with at most one %s */
	snprintf(msg, sizeof(msg), fmt, arg ? arg : "");
#pragma GCC diagnostic pop
	if (at)
		snprintf(err, errlen, "%s:%zu:%zu: %s", file, at->start_mark.line + 1, at->start_mark.column + 1, msg);
	else
		snprintf(err, errlen, "%s: %s", file, msg);
	return false;
}

/* path relative to the kubeconfig's directory */
static char *
resolve(const char *kc, const char *p)
{
	if (p[0] == '/')
		return strdup(p);
	const char *slash = strrchr(kc, '/');
	if (slash == NULL)
		return strdup(p);
	char *r;
	if (asprintf(&r, "%.*s/%s", (int)(slash - kc), kc, p) < 0)
		return NULL;
	return r;
}

/* -data: base64 → *out (malloc'd). */
static bool
decode(const char *b64, char **out, size_t *len)
{
	size_t n = strlen(b64);
	unsigned char *b = malloc(n * 3 / 4 + 4);
	if (b == NULL)
		return false;
	size_t l = kube_base64_decode(b64, n, b);
	if (l == (size_t)-1) {
		free(b);
		return false;
	}
	b[l] = '\0';
	*out = (char *)b;
	*len = l;
	return true;
}

static bool
conn_from_doc(yaml_document_t *doc, const char *file, struct kube_conn *c, char *err, size_t errlen)
{
	yaml_node_t *root = yaml_document_get_root_node(doc);
	if (root == NULL || root->type != YAML_MAPPING_NODE)
		return fail(err, errlen, file, root, "not a kubeconfig (expected a mapping with clusters, users, "
		    "contexts)", NULL);
	const char *cur = scalar(get(doc, root, "current-context"));
	yaml_node_t *ctx;
	if (cur && cur[0])
		ctx = named(doc, root, "contexts", "context", cur);
	else if (count(doc, root, "contexts") == 1)
		ctx = named(doc, root, "contexts", "context", NULL);
	else
		return fail(err, errlen, file, root, "no current-context (and not exactly one context)", NULL);
	if (ctx == NULL)
		return fail(err, errlen, file, get(doc, root, "current-context"), "context \"%s\" not found in "
		    "contexts", cur);
	const char *cname = scalar(get(doc, ctx, "cluster")), *uname = scalar(get(doc, ctx, "user"));
	yaml_node_t *cl = cname ? named(doc, root, "clusters", "cluster", cname) : NULL;
	if (cl == NULL)
		return fail(err, errlen, file, ctx, "cluster \"%s\" of the context not found in clusters", cname);
	const char *server = scalar(get(doc, cl, "server"));
	/* never http://: the bearer token would cross the network in clear */
	if (server == NULL || strncasecmp(server, "https://", 8) != 0 || server[8] == '\0')
		return fail(err, errlen, file, get(doc, cl, "server") ? get(doc, cl, "server") : cl,
		    "cluster.server must be an https:// URL (the token is never sent in clear)", NULL);
	const char *insecure = scalar(get(doc, cl, "insecure-skip-tls-verify"));
	if (insecure && strcmp(insecure, "true") == 0)
		return fail(err, errlen, file, get(doc, cl, "insecure-skip-tls-verify"), "insecure-skip-tls-verify "
		    "is not supported: give the cluster's CA (certificate-authority or certificate-authority-data)",
		    NULL);
	c->server = strdup(server);
	if (c->server && c->server[0] && c->server[strlen(c->server) - 1] == '/')
		c->server[strlen(c->server) - 1] = '\0';
	const char *ca = scalar(get(doc, cl, "certificate-authority"));
	const char *cad = scalar(get(doc, cl, "certificate-authority-data"));
	if (cad && !decode(cad, &c->ca_data, &c->ca_len))
		return fail(err, errlen, file, get(doc, cl, "certificate-authority-data"), "certificate-authority-data "
		    "is not base64", NULL);
	if (ca && cad == NULL)
		c->ca_file = resolve(file, ca);
	yaml_node_t *u = uname ? named(doc, root, "users", "user", uname) : NULL;
	if (uname && u == NULL)
		return fail(err, errlen, file, ctx, "user \"%s\" of the context not found in users", uname);
	if (u) {
		if (get(doc, u, "exec") || get(doc, u, "auth-provider"))
			return fail(err, errlen, file, get(doc, u, "exec") ? get(doc, u, "exec") :
			    get(doc, u, "auth-provider"), "exec and auth-provider credential plugins are not supported: "
			    "use token, tokenFile or a client certificate", NULL);
		const char *tok = scalar(get(doc, u, "token")), *tf = scalar(get(doc, u, "tokenFile"));
		const char *cert = scalar(get(doc, u, "client-certificate"));
		const char *certd = scalar(get(doc, u, "client-certificate-data"));
		const char *key = scalar(get(doc, u, "client-key")), *keyd = scalar(get(doc, u, "client-key-data"));
		if (tok && tok[0])
			c->token = strdup(tok);
		if (tf && tf[0])
			c->token_file = resolve(file, tf);
		if (certd && !decode(certd, &c->cert_data, &c->cert_len))
			return fail(err, errlen, file, get(doc, u, "client-certificate-data"), "client-certificate-data is "
			    "not base64", NULL);
		if (keyd && !decode(keyd, &c->key_data, &c->key_len))
			return fail(err, errlen, file, get(doc, u, "client-key-data"), "client-key-data is not base64",
			    NULL);
		if (cert && !certd)
			c->cert_file = resolve(file, cert);
		if (key && !keyd)
			c->key_file = resolve(file, key);
		if ((c->cert_file || c->cert_data) != (c->key_file || c->key_data))
			return fail(err, errlen, file, u, "a client certificate needs its key (and a key its "
			    "certificate)", NULL);
	}
	return true;
}

bool
kubeconfig_load(const char *path, struct kube_conn *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	char *buf;
	size_t len;
	char e[256];
	if (!se_read_file(path, &buf, &len, e, sizeof(e))) {
		snprintf(err, errlen, "%s: %s", path, e);
		return false;
	}
	yaml_parser_t p;
	yaml_document_t doc;
	bool ok = false;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&p, &doc)) {
		snprintf(err, errlen, "%s:%zu:%zu: %s", path, p.problem_mark.line + 1, p.problem_mark.column + 1,
		    p.problem ? p.problem : "YAML error");
	} else {
		ok = conn_from_doc(&doc, path, out, err, errlen);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&p);
	free(buf);
	if (ok && (out->source = strdup(path)) == NULL)
		ok = false;
	if (!ok)
		kube_conn_free(out);
	return ok;
}

bool
kubeconfig_in_cluster(const char *sa_dir, struct kube_conn *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0') {
		snprintf(err, errlen, "kubernetes.in_cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are "
		    "not set (not running in a pod? use kubernetes.kubeconfig)");
		return false;
	}
	bool v6 = strchr(host, ':') != NULL;
	if (asprintf(&out->server, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port) < 0 ||
	    asprintf(&out->token_file, "%s/token", sa_dir) < 0 || asprintf(&out->ca_file, "%s/ca.crt", sa_dir) < 0 ||
	    (out->source = strdup("in-cluster")) == NULL) {
		snprintf(err, errlen, "out of memory");
		kube_conn_free(out);
		return false;
	}
	return true;
}
