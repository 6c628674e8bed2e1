/*
 * curlshim — libcurl loaded when the Kubernetes client starts, not at exec.
 *
 * Linking libcurl pulls its whole dependency chain (gnutls, krb5, ldap,
 * ssh2, rtmp, nghttp2, ...: 26 libraries) into every sedns process, and
 * their relocations cost ~4 MB of RSS even where the API watch is off (the
 * default). Instead kube.c includes this header in place of <curl/curl.h>:
 * the types and constants are libcurl's, and the calls it makes go through
 * a table that curl_global_init (curlshim_global_init) fills with dlopen
 * ("libcurl.so.4") and dlsym. Only kube.c may include it: it renames the
 * libcurl calls kube.c makes.
 *
 * Ownership: the library stays loaded for the life of the process.
 */
#ifndef SEDNS_CURLSHIM_H
#define SEDNS_CURLSHIM_H

#include <curl/curl.h>

struct curlshim {
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	char *(*easy_escape)(CURL *, const char *, int);
	const char *(*easy_strerror)(CURLcode);
	void (*free)(void *);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_cleanup)(CURLM *);
	CURLMcode (*multi_add_handle)(CURLM *, CURL *);
	CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
	CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
	CURLMcode (*multi_assign)(CURLM *, curl_socket_t, void *);
	CURLMcode (*multi_socket_action)(CURLM *, curl_socket_t, int, int *);
	CURLMsg *(*multi_info_read)(CURLM *, int *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
};
extern struct curlshim curlshim;

/* Loads libcurl (once) and runs its curl_global_init. CURLE_FAILED_INIT,
 * with the reason logged, when the library cannot be loaded. */
CURLcode curlshim_global_init(long flags);

#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init curlshim_global_init
#define curl_easy_init curlshim.easy_init
#define curl_easy_cleanup curlshim.easy_cleanup
#define curl_easy_setopt curlshim.easy_setopt
#define curl_easy_getinfo curlshim.easy_getinfo
#define curl_easy_escape curlshim.easy_escape
#define curl_easy_strerror curlshim.easy_strerror
#define curl_free curlshim.free
#define curl_multi_init curlshim.multi_init
#define curl_multi_cleanup curlshim.multi_cleanup
#define curl_multi_add_handle curlshim.multi_add_handle
#define curl_multi_remove_handle curlshim.multi_remove_handle
#define curl_multi_setopt curlshim.multi_setopt
#define curl_multi_assign curlshim.multi_assign
#define curl_multi_socket_action curlshim.multi_socket_action
#define curl_multi_info_read curlshim.multi_info_read
#define curl_slist_append curlshim.slist_append
#define curl_slist_free_all curlshim.slist_free_all

#endif
