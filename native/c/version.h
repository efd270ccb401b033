/* trilink kernel: version of the C ABI exposed through cffi. */
#ifndef TRILINK_VERSION_H
#define TRILINK_VERSION_H

/* cffi:begin */
/* Returns the kernel ABI version; the binding refuses a mismatched build. */
int tl_abi_version(void);
/* cffi:end */

#endif
