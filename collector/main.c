/* placeholder until the collector lands */
#include <stdio.h>
int main(void) { fputs("cairn-collector: not built yet\n", stderr); return 2; }
