# lfipc_peers.m4 - the optional systems lfipc-bench compares lfipc with.
#
# LFIPC_BENCH_PEERS: find the benchmark's optional peers and tools; a
# missing one is compiled out of lfipc-bench and reported in a note,
# never an error. For each peer it sets have_<peer> (yes or no), the
# conditional HAVE_<PEER> and the config.h macro of the same name:
#  - ck: Concurrency Kit's ck_ring.h (header only);
#  - urcu: liburcu (pkg-config), URCU_CFLAGS and URCU_LIBS;
#  - dpdk: DPDK's rte_ring (pkg-config libdpdk), DPDK_RING_CFLAGS and
#    DPDK_RING_LIBS.
# The peers' include directories become -isystem: their headers are not
# ours to keep warning-free under -Werror (DPDK's trip -Wundef with clang).
# Also: the library for mq_open (the POSIX mq peer), GNUPLOT and
# GNUPLOT_PATH in config.h (for --plot, empty when absent), and
# --enable-bench-install (conditional BENCH_INSTALL): lfipc-bench links
# its peers (DPDK pulls in libnuma, libfdt, ...), so it is built, and run
# by make check, but installed only on request.
AC_DEFUN([LFIPC_BENCH_PEERS], [
AC_CHECK_HEADER([ck_ring.h], [have_ck=yes], [have_ck=no])
AM_CONDITIONAL([HAVE_CK], [test "x$have_ck" = xyes])
AS_IF([test "x$have_ck" = xyes], [AC_DEFINE([HAVE_CK], [1], [Concurrency Kit found])])
PKG_CHECK_MODULES([URCU], [liburcu], [have_urcu=yes], [have_urcu=no])
AM_CONDITIONAL([HAVE_URCU], [test "x$have_urcu" = xyes])
AS_IF([test "x$have_urcu" = xyes], [AC_DEFINE([HAVE_URCU], [1], [liburcu found])])
PKG_CHECK_MODULES([DPDK_RING], [libdpdk], [have_dpdk=yes], [have_dpdk=no])
AM_CONDITIONAL([HAVE_DPDK], [test "x$have_dpdk" = xyes])
AS_IF([test "x$have_dpdk" = xyes], [AC_DEFINE([HAVE_DPDK], [1], [DPDK rte_ring found])])
URCU_CFLAGS=`echo " $URCU_CFLAGS" | sed 's/ -I */ -isystem /g'`
DPDK_RING_CFLAGS=`echo " $DPDK_RING_CFLAGS" | sed 's/ -I */ -isystem /g'`
AC_SEARCH_LIBS([mq_open], [rt])
AC_PATH_PROG([GNUPLOT], [gnuplot], [])
AC_ARG_ENABLE([bench-install],
  [AS_HELP_STRING([--enable-bench-install],
    [install lfipc-bench and its man page; it links the benchmark's peers])],
  [], [enable_bench_install=no])
AM_CONDITIONAL([BENCH_INSTALL], [test "x$enable_bench_install" = xyes])
AC_DEFINE_UNQUOTED([GNUPLOT_PATH], ["$GNUPLOT"], [gnuplot for --plot, empty if none])
])
