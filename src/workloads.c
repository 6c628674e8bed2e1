/* workloads — see include/workloads.h. */
#include "workloads.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "serviceentry.h"

struct wl_entry {
	struct netaddr ip;
	char *ns;                   /* NULL = empty slot */
};

struct workloads {
	struct wl_entry *tab;
	size_t cap, n;              /* cap: power of two */
};

static bool
grow(struct workloads *w)
{
	size_t nc = w->cap ? w->cap * 2 : 64;
	struct wl_entry *nt = calloc(nc, sizeof(*nt));
	if (nt == NULL)
		return false;
	for (size_t i = 0; i < w->cap; i++) {
		if (w->tab[i].ns == NULL)
			continue;
		size_t k = netaddr_hash(&w->tab[i].ip) & (nc - 1);
		while (nt[k].ns)
			k = (k + 1) & (nc - 1);
		nt[k] = w->tab[i];
	}
	free(w->tab);
	w->tab = nt;
	w->cap = nc;
	return true;
}

static bool
put(struct workloads *w, const struct netaddr *ip, const char *ns)
{
	if ((w->n + 1) * 2 > w->cap && !grow(w))
		return false;
	size_t k = netaddr_hash(ip) & (w->cap - 1);
	while (w->tab[k].ns) {
		if (netaddr_equal(&w->tab[k].ip, ip))
			return true; /* first pod listed keeps the IP */
		k = (k + 1) & (w->cap - 1);
	}
	char *d = strdup(ns);
	if (d == NULL)
		return false;
	w->tab[k].ip = *ip;
	w->tab[k].ns = d;
	w->n++;
	return true;
}

const char *
workloads_namespace(const struct workloads *w, const struct netaddr *ip)
{
	if (w == NULL || w->cap == 0)
		return NULL;
	for (size_t k = netaddr_hash(ip) & (w->cap - 1);; k = (k + 1) & (w->cap - 1)) {
		if (w->tab[k].ns == NULL)
			return NULL;
		if (netaddr_equal(&w->tab[k].ip, ip))
			return w->tab[k].ns;
	}
}

size_t
workloads_count(const struct workloads *w)
{
	return w ? w->n : 0;
}

struct workloads *
workloads_new(void)
{
	return calloc(1, sizeof(struct workloads));
}

bool
workloads_add(struct workloads *w, const struct netaddr *ip, const char *ns)
{
	return put(w, ip, ns);
}

void
workloads_free(struct workloads *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->cap; i++)
		free(w->tab[i].ns);
	free(w->tab);
	free(w);
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

static void
add_pod(struct workloads *w, yaml_document_t *doc, yaml_node_t *pod, size_t *npods)
{
	const char *ns = scalar(get(doc, get(doc, pod, "metadata"), "namespace"));
	yaml_node_t *spec = get(doc, pod, "spec"), *status = get(doc, pod, "status");
	const char *hostnet = scalar(get(doc, spec, "hostNetwork"));
	const char *phase = scalar(get(doc, status, "phase"));
	if (ns == NULL || (hostnet && strcmp(hostnet, "true") == 0))
		return;
	if (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0))
		return;
	struct netaddr a;
	bool any = false;
	yaml_node_t *ips = get(doc, status, "podIPs");
	if (ips && ips->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *it = ips->data.sequence.items.start; it < ips->data.sequence.items.top; it++) {
			const char *ip = scalar(get(doc, yaml_document_get_node(doc, *it), "ip"));
			if (ip && netaddr_parse(ip, &a)) {
				put(w, &a, ns);
				any = true;
			}
		}
	}
	const char *ip = scalar(get(doc, status, "podIP"));
	if (ip && netaddr_parse(ip, &a)) {
		put(w, &a, ns);
		any = true;
	}
	*npods += any;
}

/* An alias (*name) anywhere: the first one's position. A pod list never
 * needs one, and each can multiply the work of a load (10k aliases of a
 * pod with 10k aliased IPs stall a reload), so such a file is refused. */
static bool
find_alias(const char *buf, size_t len, size_t *line, size_t *col)
{
	yaml_parser_t p;
	yaml_event_t ev;
	bool found = false;
	if (!yaml_parser_initialize(&p))
		return false;
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	while (yaml_parser_parse(&p, &ev)) {
		bool end = ev.type == YAML_STREAM_END_EVENT;
		if (ev.type == YAML_ALIAS_EVENT) {
			*line = ev.start_mark.line + 1;
			*col = ev.start_mark.column + 1;
			found = true;
			end = true;
		}
		yaml_event_delete(&ev);
		if (end)
			break;
	}
	yaml_parser_delete(&p);
	return found;
}

static void
load_text(struct workloads *w, const char *name, const char *buf, size_t len, FILE *diag, size_t *npods,
    size_t *nerrors)
{
	size_t al, ac;
	if (find_alias(buf, len, &al, &ac)) {
		if (diag)
			fprintf(diag, "error: %s:%zu:%zu: YAML aliases (*name) are not supported in pod lists; file "
			    "ignored\n", name, al, ac);
		(*nerrors)++;
		return;
	}
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	for (;;) {
		yaml_document_t doc;
		if (!yaml_parser_load(&parser, &doc)) {
			if (diag)
				fprintf(diag, "error: %s:%zu:%zu: %s\n", name, parser.problem_mark.line + 1,
				    parser.problem_mark.column + 1, parser.problem ? parser.problem : "YAML error");
			(*nerrors)++;
			break;
		}
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		if (root == NULL) {
			yaml_document_delete(&doc);
			break;
		}
		const char *kind = scalar(get(&doc, root, "kind"));
		yaml_node_t *items = get(&doc, root, "items");
		if (items && items->type == YAML_SEQUENCE_NODE) {
			for (yaml_node_item_t *it = items->data.sequence.items.start; it < items->data.sequence.items.top;
			    it++)
				add_pod(w, &doc, yaml_document_get_node(&doc, *it), npods);
		} else if (kind && strcmp(kind, "Pod") == 0) {
			add_pod(w, &doc, root, npods);
		}
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
}

struct workloads *
workloads_load_buffer(const char *name, const char *buf, size_t len, FILE *diag, size_t *npods, size_t *nerrors)
{
	struct workloads *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	*npods = 0;
	*nerrors = 0;
	load_text(w, name, buf, len, diag, npods, nerrors);
	return w;
}

struct workloads *
workloads_load(char *const *paths, size_t npaths, FILE *diag, size_t *npods, size_t *nerrors)
{
	struct workloads *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	*npods = 0;
	*nerrors = 0;
	for (size_t p = 0; p < npaths; p++) {
		char **files;
		size_t n;
		char err[256];
		if (!se_list_path(paths[p], &files, &n, err, sizeof(err))) {
			if (diag)
				fprintf(diag, "error: %s:1:1: %s\n", paths[p], err);
			(*nerrors)++;
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			char *buf;
			size_t len;
			if (!se_read_file(files[i], &buf, &len, err, sizeof(err))) {
				if (diag)
					fprintf(diag, "error: %s:1:1: %s\n", files[i], err);
				(*nerrors)++;
				continue;
			}
			load_text(w, files[i], buf, len, diag, npods, nerrors);
			free(buf);
		}
		se_free_list(files, n);
	}
	return w;
}
