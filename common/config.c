/* common/config.c: placeholder, implemented next */
#include "common/config.h"
