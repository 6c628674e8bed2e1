/* Unit tests for suggest (the "did you mean" matcher). */
#include <criterion/criterion.h>

#include <stdint.h>
#include <string.h>

#include "suggest.h"

static const char *const spec[] = { "hosts", "addresses", "ports", "location", "resolution", "endpoints",
	"exportTo", "workloadSelector", "subjectAltNames" };
#define NSPEC (sizeof(spec) / sizeof(spec[0]))

Test(suggest, distance_counts_each_kind_of_edit_once)
{
	cr_assert_eq(suggest_distance("resolution", "resolution"), 0);
	cr_assert_eq(suggest_distance("resolutoin", "resolution"), 1, "a transposition is one edit");
	cr_assert_eq(suggest_distance("resolutio", "resolution"), 1);
	cr_assert_eq(suggest_distance("resollution", "resolution"), 1);
	cr_assert_eq(suggest_distance("resulution", "resolution"), 1);
	cr_assert_eq(suggest_distance("Resolution", "resolution"), 0, "case does not count");
	cr_assert_eq(suggest_distance("", "port"), 4);
	cr_assert_eq(suggest_distance("kitten", "sitting"), 3);
	char longw[SUGGEST_MAX_LEN + 2];
	memset(longw, 'a', sizeof(longw) - 1);
	longw[sizeof(longw) - 1] = '\0';
	cr_assert_eq(suggest_distance(longw, "a"), SIZE_MAX);
}

Test(suggest, closest_known_field_for_typos)
{
	cr_assert_str_eq(suggest_closest("resolutoin", spec, NSPEC), "resolution");
	cr_assert_str_eq(suggest_closest("port", spec, NSPEC), "ports");
	cr_assert_str_eq(suggest_closest("host", spec, NSPEC), "hosts");
	cr_assert_str_eq(suggest_closest("endpoint", spec, NSPEC), "endpoints");
	cr_assert_str_eq(suggest_closest("exportto", spec, NSPEC), "exportTo");
	cr_assert_str_eq(suggest_closest("adresses", spec, NSPEC), "addresses");
	cr_assert_str_eq(suggest_closest("subjectAltName", spec, NSPEC), "subjectAltNames");
}

Test(suggest, nothing_for_words_that_are_not_typos)
{
	cr_assert_null(suggest_closest("frobnicate", spec, NSPEC));
	cr_assert_null(suggest_closest("colour", spec, NSPEC));
	cr_assert_null(suggest_closest("x", spec, NSPEC));
	cr_assert_null(suggest_closest("mode", spec, NSPEC));
	cr_assert_null(suggest_closest("anything", NULL, 0));
}

Test(suggest, short_names_allow_one_edit_and_ties_go_first)
{
	static const char *const k[] = { "ttl", "tll", NULL, "listen" };
	cr_assert_str_eq(suggest_closest("ttll", k, 4), "ttl");
	cr_assert_null(suggest_closest("tlt", (const char *const[]){ "abc" }, 1));
	cr_assert_str_eq(suggest_closest("lisen", k, 4), "listen");
}
