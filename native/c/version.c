/* trilink kernel: ABI version (bump when a struct or signature in a header changes). */
#include "version.h"

int tl_abi_version(void) { return 1; }
