# lfipc_warnings.m4 - the compiler warnings lfipc builds with.
#
# LFIPC_WARNINGS: substitute WARN_CFLAGS, the warning flags of every
# compilation (Makefile.am puts them in AM_CFLAGS), and add
# --enable-werror, which appends -Werror (CI and tests/run-all use it).
AC_DEFUN([LFIPC_WARNINGS], [
AC_ARG_ENABLE([werror],
  [AS_HELP_STRING([--enable-werror], [treat compiler warnings as errors (CI)])],
  [], [enable_werror=no])
WARN_CFLAGS="-Wall -Wextra -Wshadow -Wpointer-arith -Wcast-align -Wwrite-strings \
-Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wundef -Wvla -Wno-unused-parameter"
AS_IF([test "x$enable_werror" = xyes], [WARN_CFLAGS="$WARN_CFLAGS -Werror"])
AC_SUBST([WARN_CFLAGS])
])
