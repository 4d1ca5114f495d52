/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lfipc/region.h>

#include "common/testhelp.h"

static char name[64];
static lfipc_region *r;

static void setup(void)
{
	th_name(name, sizeof(name), "region");
	cr_assert_eq(lfipc_region_create(name, 1 << 20, 0600, &r), 0);
}

static void teardown(void)
{
	lfipc_region_close(r);
	lfipc_region_unlink(name);
}

Test(region, create_then_open_by_name_shares_stats, .init = setup,
     .fini = teardown)
{
	lfipc_region *o;
	lfipc_region_info a, b;

	cr_assert_eq(lfipc_region_open(name, &o), 0);
	cr_assert_eq(lfipc_region_stats(r, &a), 0);
	cr_assert_eq(lfipc_region_stats(o, &b), 0);
	cr_assert_eq(a.size, 1 << 20);
	cr_assert_eq(a.bytes_free, b.bytes_free);
	cr_assert_eq(b.participants, 2);
	lfipc_region_close(o);
	cr_assert_eq(lfipc_region_stats(r, &a), 0);
	cr_assert_eq(a.participants, 1);
}

Test(region, create_existing_name_returns_eexist, .init = setup,
     .fini = teardown)
{
	lfipc_region *o = (lfipc_region *)1;

	cr_assert_eq(lfipc_region_create(name, 1 << 20, 0600, &o), -EEXIST);
	cr_assert_null(o);
}

Test(region, open_missing_returns_enoent)
{
	lfipc_region *o;

	cr_assert_eq(lfipc_region_open("/lfipc-t-does-not-exist", &o), -ENOENT);
}
