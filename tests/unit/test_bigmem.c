/* Unit tests for bigmem (large zeroed blocks, huge-page mappings). */
#include <criterion/criterion.h>

#include <stdint.h>
#include <string.h>

#include "bigmem.h"

static void
check_block(size_t n)
{
	unsigned char *p = bigmem_alloc(n);
	cr_assert_not_null(p, "size %zu", n);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(p[i], 0, "size %zu: byte %zu not zero", n, i);
	memset(p, 0xa5, n);
	bigmem_free(p, n);
}

Test(bigmem, small_and_large_blocks_are_zeroed_and_writable)
{
	check_block(0);
	check_block(1);
	check_block(BIGMEM_MIN - 1);
	check_block(BIGMEM_MIN);
	check_block(BIGMEM_MIN + 1);
	check_block((2u << 20) + 4096);
	check_block(5u << 20);
}

Test(bigmem, large_blocks_are_huge_page_aligned)
{
	void *p = bigmem_alloc(3u << 20);
	cr_assert_not_null(p);
	cr_assert_eq((uintptr_t)p % (2u << 20), 0);
	bigmem_free(p, 3u << 20);
}

Test(bigmem, fresh_blocks_after_free_are_zeroed_again)
{
	for (int r = 0; r < 3; r++) {
		size_t n = (size_t)BIGMEM_MIN * (size_t)(r + 1) + 123;
		unsigned char *p = bigmem_alloc(n);
		cr_assert_not_null(p);
		cr_assert_eq(p[0], 0);
		cr_assert_eq(p[n - 1], 0);
		memset(p, 0xff, n);
		bigmem_free(p, n);
	}
	bigmem_free(NULL, 5u << 20);
}

Test(bigmem, absurd_size_fails_cleanly)
{
	cr_assert_null(bigmem_alloc(SIZE_MAX - 4096));
}

Test(bigmem, a_reused_block_is_zeroed_and_a_larger_spare_is_cut_to_size)
{
	bigmem_release();
	size_t big = 9u << 20, small = 3u << 20;
	unsigned char *p = bigmem_alloc(big);
	cr_assert_not_null(p);
	memset(p, 0x5a, big);
	bigmem_free(p, big);
	cr_assert_eq(bigmem_spare_bytes(), 10u << 20, "kept as a spare (huge page multiple)");
	unsigned char *q = bigmem_alloc(small);
	cr_assert_eq(q, p, "the spare is reused");
	cr_assert_eq(bigmem_spare_bytes(), 0);
	for (size_t i = 0; i < small; i++)
		cr_assert_eq(q[i], 0, "byte %zu not zeroed", i);
	memset(q, 0x5a, small);
	bigmem_free(q, small);
	cr_assert_eq(bigmem_spare_bytes(), 4u << 20, "cut to what it was taken for");
	bigmem_release();
	cr_assert_eq(bigmem_spare_bytes(), 0);
}

Test(bigmem, spares_are_bounded)
{
	bigmem_release();
	void *p[BIGMEM_SPARES + 2];
	for (size_t i = 0; i < BIGMEM_SPARES + 2; i++)
		cr_assert_not_null(p[i] = bigmem_alloc(2u << 20));
	for (size_t i = 0; i < BIGMEM_SPARES + 2; i++)
		bigmem_free(p[i], 2u << 20);
	cr_assert_eq(bigmem_spare_bytes(), (size_t)BIGMEM_SPARES * (2u << 20));
	void *huge = bigmem_alloc(BIGMEM_SPARE_BYTES + 1);
	cr_assert_not_null(huge);
	bigmem_free(huge, BIGMEM_SPARE_BYTES + 1);
	cr_assert_eq(bigmem_spare_bytes(), (size_t)BIGMEM_SPARES * (2u << 20), "too large to keep");
	bigmem_release();
}
