/* curlshim — see include/curlshim.h. Its renaming macros do not touch
 * this file's code: libcurl is reached by dlsym with the names as strings. */
#include "curlshim.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>

#include "log.h"

struct curlshim curlshim;

#define CURLSHIM_SONAME "libcurl.so.4"

static bool
load(void)
{
	static const struct { const char *sym; size_t off; } syms[] = {
#define S(name, field) { name, offsetof(struct curlshim, field) }
		S("curl_easy_init", easy_init), S("curl_easy_cleanup", easy_cleanup),
		S("curl_easy_setopt", easy_setopt), S("curl_easy_getinfo", easy_getinfo),
		S("curl_easy_escape", easy_escape), S("curl_easy_strerror", easy_strerror), S("curl_free", free),
		S("curl_multi_init", multi_init), S("curl_multi_cleanup", multi_cleanup),
		S("curl_multi_add_handle", multi_add_handle), S("curl_multi_remove_handle", multi_remove_handle),
		S("curl_multi_setopt", multi_setopt), S("curl_multi_assign", multi_assign),
		S("curl_multi_socket_action", multi_socket_action), S("curl_multi_info_read", multi_info_read),
		S("curl_slist_append", slist_append), S("curl_slist_free_all", slist_free_all),
#undef S
	};
	void *h = dlopen(CURLSHIM_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		log_error("kubernetes: cannot load %s (Debian: apt-get install libcurl4): %s", CURLSHIM_SONAME,
		    dlerror());
		return false;
	}
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		void *f = dlsym(h, syms[i].sym);
		if (f == NULL) {
			log_error("kubernetes: %s has no %s", CURLSHIM_SONAME, syms[i].sym);
			return false;
		}
		/* POSIX: a function pointer and void * convert both ways */
		*(void **)((char *)&curlshim + syms[i].off) = f;
	}
	return true;
}

CURLcode
curlshim_global_init(long flags)
{
	static bool loaded;
	static CURLcode (*init)(long);
	if (!loaded) {
		if (!load())
			return CURLE_FAILED_INIT;
		void *h = dlopen(CURLSHIM_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
		*(void **)&init = h ? dlsym(h, "curl_global_init") : NULL;
		if (init == NULL)
			return CURLE_FAILED_INIT;
		loaded = true;
	}
	return init(flags);
}
