/* SPDX-License-Identifier: MIT */
/* The ASan control of overflow.c at 33 bytes: a message of 17 to 64 bytes
 * is copied inline with two fixed-size moves unless an AddressSanitizer
 * runtime is in the process (msg_copy(), lib/internal/queue.h), so this
 * one is reported only if the library sees the user's ASan runtime and
 * calls memcpy. */
#define OVERFLOW_LEN 33
#include "overflow.c"
