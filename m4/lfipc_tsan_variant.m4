# lfipc_tsan_variant.m4 - liblfipc-tsan, the library for users' TSan builds.
#
# LFIPC_TSAN_VARIANT: decide whether to build and install liblfipc-tsan
# and lfipc-tsan.pc (mk/tsan.am): the same sources compiled with
# -fsanitize=thread, installed beside liblfipc, so that a user's own TSan
# build sees the library's synchronisation (the atomics of the normal
# library are invisible to TSan). Built by default when the compiler can
# link a -fsanitize=thread program; never in a tree that is itself
# configured with --enable-sanitizer (its liblfipc is already
# instrumented, or instrumented with a sanitizer that cannot share a
# process with TSan). Adds --disable-tsan-variant; substitutes TSAN_VARIANT
# (yes or no) and sets the conditional of the same name. Expand it after
# LFIPC_SANITIZER.
AC_DEFUN([LFIPC_TSAN_VARIANT], [
AC_REQUIRE([LFIPC_SANITIZER])
AC_ARG_ENABLE([tsan-variant],
  [AS_HELP_STRING([--disable-tsan-variant],
    [do not build and install liblfipc-tsan and lfipc-tsan.pc, the library
     instrumented for users' ThreadSanitizer builds (default: build them when
     $CC supports -fsanitize=thread and --enable-sanitizer is not given)])],
  [], [enable_tsan_variant=auto])
TSAN_VARIANT=no
AS_IF([test "x$enable_tsan_variant" != xno], [
  AS_IF([test "x$enable_sanitizer" != xno && test "x$enable_sanitizer" != x], [
    AS_IF([test "x$enable_tsan_variant" = xyes],
      [AC_MSG_ERROR([--enable-tsan-variant and --enable-sanitizer exclude each other: this tree's liblfipc is already instrumented])])
    AC_MSG_NOTICE([liblfipc-tsan is not built in a --enable-sanitizer tree])
  ], [
    AC_CACHE_CHECK([whether $CC links -fsanitize=thread programs],
      [lfipc_cv_cc_tsan], [
      lfipc_save_CFLAGS=$CFLAGS
      CFLAGS="$CFLAGS -fsanitize=thread"
      AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <stdatomic.h>
static _Atomic int lfipc_flag;]], [[return atomic_fetch_add(&lfipc_flag, 1);]])],
        [lfipc_cv_cc_tsan=yes], [lfipc_cv_cc_tsan=no])
      CFLAGS=$lfipc_save_CFLAGS])
    AS_IF([test "x$lfipc_cv_cc_tsan" = xyes], [TSAN_VARIANT=yes],
      [test "x$enable_tsan_variant" = xyes],
      [AC_MSG_ERROR([--enable-tsan-variant: $CC cannot link -fsanitize=thread programs (apt-get install libtsan2)])])
  ])
])
AC_SUBST([TSAN_VARIANT])
AM_CONDITIONAL([TSAN_VARIANT], [test "x$TSAN_VARIANT" = xyes])
])
