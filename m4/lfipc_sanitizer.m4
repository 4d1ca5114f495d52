# lfipc_sanitizer.m4 - build the whole tree under a sanitizer.
#
# LFIPC_SANITIZER: add --enable-sanitizer=LIST; with it, substitute
# SAN_CFLAGS (-fsanitize=LIST -fno-omit-frame-pointer -g, and
# -fno-sanitize-recover=undefined when LIST has undefined) and SAN_LDFLAGS
# (-fsanitize=LIST), which Makefile.am adds to every compilation and link
# (library, tests and bench), and set the conditionals SANITIZER (any) and
# TSAN (LIST has thread). tests/run-all configures build/tsan with
# =thread and build/asan with =address,undefined.
AC_DEFUN([LFIPC_SANITIZER], [
AC_ARG_ENABLE([sanitizer],
  [AS_HELP_STRING([--enable-sanitizer=LIST],
    [build library, tests and bench with -fsanitize=LIST (thread, or address,undefined)])],
  [], [enable_sanitizer=no])
SAN_CFLAGS=""
SAN_LDFLAGS=""
AS_IF([test "x$enable_sanitizer" != xno && test "x$enable_sanitizer" != x], [
  SAN_CFLAGS="-fsanitize=$enable_sanitizer -fno-omit-frame-pointer -g"
  SAN_LDFLAGS="-fsanitize=$enable_sanitizer"
  AS_CASE([$enable_sanitizer], [*undefined*],
    [SAN_CFLAGS="$SAN_CFLAGS -fno-sanitize-recover=undefined"])
  dnl a sanitized build is only meaningful with the shared and static library
  dnl using the same runtime; tests link the library statically
])
AM_CONDITIONAL([SANITIZER], [test "x$enable_sanitizer" != xno && test "x$enable_sanitizer" != x])
AM_CONDITIONAL([TSAN], [echo "$enable_sanitizer" | grep -q thread])
AC_SUBST([SAN_CFLAGS])
AC_SUBST([SAN_LDFLAGS])
])
